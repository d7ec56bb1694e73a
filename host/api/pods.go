package api

import (
	"context"
	"net/http"
)

// PodsBackend is the container runtime the API reads under /v1/pods. A
// Backend that also implements it gets the endpoint.
type PodsBackend interface {
	// Pods returns the pods the runtime drives; ErrNotFound when the
	// runtime module is off.
	Pods() ([]Pod, error)
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
}

// Pods lists the pods the runtime drives.
func (c *Client) Pods(ctx context.Context) ([]Pod, error) {
	var l PodList
	err := c.do(ctx, http.MethodGet, "/v1/pods", nil, &l)
	return l.Pods, err
}
