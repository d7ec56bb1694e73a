package api

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// TwinsBackend reads the device twins for GET /v1/twins and GET
// /v1/twins/{namespace}/{name}. A Backend that also implements it gets
// those endpoints.
type TwinsBackend interface {
	// Twins returns every device's twin, by id.
	Twins() ([]DeviceTwin, error)
	// Twin returns one device's twin; ErrNotFound when the twin has no
	// such device.
	Twin(id string) (DeviceTwin, error)
}

// DeviceTwin is one device's twin as the twin plugin keeps it
// (docs/api.md): each property's desired (KubeEdge's expected) and
// reported (actual) value, with the time each was set and its version.
type DeviceTwin struct {
	// ID is {namespace}/{name}.
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	State      string `json:"state,omitempty"`
	LastOnline string `json:"last_online,omitempty"`
	// OutOfSync counts the properties whose reported value differs from
	// the desired one.
	OutOfSync  int            `json:"out_of_sync"`
	Properties []TwinProperty `json:"properties"`
}

// TwinProperty is one twin property of a DeviceTwin.
type TwinProperty struct {
	Name string `json:"name"`
	// Type is the value type: int, float, boolean or string.
	Type string `json:"type,omitempty"`
	// Desired is the expected value, set at DesiredAt; nil when there is
	// none.
	Desired        *string      `json:"desired,omitempty"`
	DesiredAt      time.Time    `json:"desired_at,omitzero"`
	DesiredVersion *TwinVersion `json:"desired_version,omitempty"`
	// Reported is the actual value, set at ReportedAt; nil when none was
	// reported.
	Reported        *string      `json:"reported,omitempty"`
	ReportedAt      time.Time    `json:"reported_at,omitzero"`
	ReportedVersion *TwinVersion `json:"reported_version,omitempty"`
	// InSync is false when there is a non-empty desired value the
	// reported one differs from (KubeEdge's twin delta).
	InSync bool `json:"in_sync"`
}

// TwinVersion orders the edits of one side of a property: Cloud counts
// the cloud's edits, Edge the edge's.
type TwinVersion struct {
	Cloud int64 `json:"cloud"`
	Edge  int64 `json:"edge"`
}

func (s *Server) registerTwins(tb TwinsBackend) {
	s.mux.HandleFunc("GET /v1/twins", func(w http.ResponseWriter, _ *http.Request) {
		list, err := tb.Twins()
		s.backendReply(w, "twin read", list, err)
	})
	s.mux.HandleFunc("GET /v1/twins/{namespace}/{name}", func(w http.ResponseWriter, r *http.Request) {
		t, err := tb.Twin(r.PathValue("namespace") + "/" + r.PathValue("name"))
		s.backendReply(w, "twin read", t, err)
	})
}

// backendReply answers with v, or with err's status: 404 for ErrNotFound,
// 409 for ErrConflict (a module that is off, say), else 500, logged with
// what failed.
func (s *Server) backendReply(w http.ResponseWriter, what string, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, err)
	default:
		s.log.Warn(what+" failed", "error", err)
		writeError(w, http.StatusInternalServerError, err)
	}
}

// Twins gets /v1/twins.
func (c *Client) Twins(ctx context.Context) ([]DeviceTwin, error) {
	var out []DeviceTwin
	err := c.do(ctx, http.MethodGet, "/v1/twins", nil, &out)
	return out, err
}

// Twin gets /v1/twins/{id}; id is {namespace}/{name}.
func (c *Client) Twin(ctx context.Context, id string) (DeviceTwin, error) {
	var out DeviceTwin
	err := c.do(ctx, http.MethodGet, "/v1/twins/"+id, nil, &out)
	return out, err
}
