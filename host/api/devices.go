package api

import (
	"context"
	"net/http"
)

// DevicesBackend re-reads the devices dir for POST /v1/devices/reload. A
// Backend that also implements it gets that endpoint.
type DevicesBackend interface {
	// ReloadDevices re-reads the devices dir and hands the twin plugin
	// what changed; ErrConflict when there is no devices dir.
	ReloadDevices(ctx context.Context) (DevicesReport, error)
}

// DevicesReport is the answer of POST /v1/devices/reload (docs/api.md).
type DevicesReport struct {
	Dir string `json:"dir"`
	// Devices is how many devices the dir holds for the twin now.
	Devices int `json:"devices"`
	// HandedOver counts new or changed devices handed to the twin plugin,
	// Removed the devices removed because their file was.
	HandedOver int `json:"handed_over"`
	Removed    int `json:"removed"`
	// Pending counts devices and removals not handed over yet (retried).
	Pending int `json:"pending"`
	// Refused names each refused file, with line and field; their devices
	// are kept as they were.
	Refused []string `json:"refused,omitempty"`
	// Warnings name the file and key of everything skipped.
	Warnings []string `json:"warnings,omitempty"`
	// Error says why the dir could not be read or the hand-over is
	// pending.
	Error string `json:"error,omitempty"`
}

// OK reports whether the reload read every file and handed everything over.
func (r DevicesReport) OK() bool {
	return r.Error == "" && len(r.Refused) == 0 && r.Pending == 0
}

func (s *Server) registerDevices(db DevicesBackend) {
	s.mux.HandleFunc("POST /v1/devices/reload", func(w http.ResponseWriter, r *http.Request) {
		rep, err := db.ReloadDevices(r.Context())
		s.backendReply(w, "devices reload", rep, err)
	})
}

// ReloadDevices posts to /v1/devices/reload.
func (c *Client) ReloadDevices(ctx context.Context) (DevicesReport, error) {
	var rep DevicesReport
	err := c.do(ctx, http.MethodPost, "/v1/devices/reload", nil, &rep)
	return rep, err
}
