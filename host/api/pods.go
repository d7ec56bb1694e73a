package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// PodsBackend is the container runtime the API reads under /v1/pods. A
// Backend that also implements it gets the endpoint.
type PodsBackend interface {
	// Pods returns the pods the runtime drives; ErrNotFound when the
	// runtime module is off.
	Pods() ([]Pod, error)
	// PodLog opens the log of a container of pod ns/name (the only one
	// when container is empty), of its previous run with previous; a pod
	// or container not run is ErrNotFound.
	PodLog(ns, name, container string, previous bool) (io.ReadCloser, error)
}

// Pod is one pod as the runtime last reported it upstream.
type Pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	// Phase is the pod's phase; Reason, when set, is kubectl's STATUS
	// column: the pod's reason, else the first container's waiting or
	// terminated reason.
	Phase  string `json:"phase"`
	Reason string `json:"reason,omitempty"`
	// Ready and Containers count the ready containers and all of them.
	Ready      int    `json:"ready"`
	Containers int    `json:"containers"`
	Restarts   int32  `json:"restarts"`
	PodIP      string `json:"pod_ip,omitempty"`
	Message    string `json:"message,omitempty"`
}

// PodList is the document GET /v1/pods returns.
type PodList struct {
	Pods []Pod `json:"pods"`
}

func (s *Server) registerPods(pb PodsBackend) {
	s.mux.HandleFunc("GET /v1/pods", func(w http.ResponseWriter, r *http.Request) {
		pods, err := pb.Pods()
		if pods == nil {
			pods = []Pod{}
		}
		metaReply(w, PodList{Pods: pods}, err)
	})
	s.mux.HandleFunc("GET /v1/pods/{namespace}/{name}/log", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		rc, err := pb.PodLog(r.PathValue("namespace"), r.PathValue("name"), q.Get("container"), q.Get("previous") == "true")
		if err != nil {
			metaReply(w, nil, err)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if _, err := io.Copy(w, rc); err != nil {
			s.log.Debug("pod log cut short", "error", err)
		}
	})
}

// PodLog streams the log of a container of pod ns/name (GET
// /v1/pods/{ns}/{name}/log) into w.
func (c *Client) PodLog(ctx context.Context, ns, name, container string, previous bool, w io.Writer) error {
	q := url.Values{}
	if container != "" {
		q.Set("container", container)
	}
	if previous {
		q.Set("previous", "true")
	}
	path := "/v1/pods/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + "/log?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("admin api GET %s: %w", path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin api GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("admin api GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(data)))
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("admin api GET %s: %w", path, err)
	}
	return nil
}

// Pods lists the pods the runtime drives.
func (c *Client) Pods(ctx context.Context) ([]Pod, error) {
	var l PodList
	err := c.do(ctx, http.MethodGet, "/v1/pods", nil, &l)
	return l.Pods, err
}
