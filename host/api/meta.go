package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
)

// MetaBackend is the metamanager's store the API reads under
// /v1/meta/objects. A Backend that also implements it gets those
// endpoints.
type MetaBackend interface {
	// MetaObject returns the object stored at key
	// ({namespace}/{type}/{name}); a missing one is ErrNotFound.
	MetaObject(key string) (MetaObject, error)
	// MetaObjects lists the stored objects of namespace ns and type typ,
	// either empty for all.
	MetaObjects(ns, typ string) ([]MetaObject, error)
}

// MetaObject is one object the metamanager stored from the cloud.
type MetaObject struct {
	Key             string          `json:"key"`
	ResourceVersion string          `json:"resource_version,omitempty"`
	Content         json.RawMessage `json:"content"`
}

// MetaList is the document GET /v1/meta/objects returns.
type MetaList struct {
	Objects []MetaObject `json:"objects"`
}

func (s *Server) registerMeta(mb MetaBackend) {
	s.mux.HandleFunc("GET /v1/meta/objects", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		objs, err := mb.MetaObjects(q.Get("namespace"), q.Get("type"))
		if objs == nil {
			objs = []MetaObject{}
		}
		metaReply(w, MetaList{Objects: objs}, err)
	})
	s.mux.HandleFunc("GET /v1/meta/objects/{key...}", func(w http.ResponseWriter, r *http.Request) {
		o, err := mb.MetaObject(r.PathValue("key"))
		metaReply(w, o, err)
	})
}

// metaReply writes v, or err as 404 (no such object, no metamanager), 422
// (a key that is not {namespace}/{type}/{name}) or 500.
func metaReply(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err)
	case errors.Is(err, ErrRefused):
		writeError(w, http.StatusUnprocessableEntity, err)
	default:
		writeError(w, http.StatusInternalServerError, err)
	}
}

// MetaObject fetches the stored object at key.
func (c *Client) MetaObject(ctx context.Context, key string) (MetaObject, error) {
	var o MetaObject
	err := c.do(ctx, http.MethodGet, "/v1/meta/objects/"+(&url.URL{Path: key}).EscapedPath(), nil, &o)
	return o, err
}

// MetaObjects lists the stored objects of namespace ns and type typ,
// either empty for all.
func (c *Client) MetaObjects(ctx context.Context, ns, typ string) ([]MetaObject, error) {
	q := url.Values{}
	if ns != "" {
		q.Set("namespace", ns)
	}
	if typ != "" {
		q.Set("type", typ)
	}
	path := "/v1/meta/objects"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l MetaList
	err := c.do(ctx, http.MethodGet, path, nil, &l)
	return l.Objects, err
}
