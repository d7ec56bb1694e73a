package api

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// MappedDevicesBackend lists the devices and the wasm mappers serving
// them for GET /v1/devices and GET /v1/devices/{namespace}/{name}. A
// Backend that also implements it gets those endpoints.
type MappedDevicesBackend interface {
	// ListDevices returns every device the devices module knows, bound
	// or not, by id.
	ListDevices() []DeviceInfo
	// GetDevice returns one device; ErrNotFound when it is not known.
	GetDevice(id string) (DeviceDetail, error)
}

// DeviceInfo is a device in GET /v1/devices (docs/mappers.md).
type DeviceInfo struct {
	// ID is {namespace}/{name}.
	ID string `json:"id"`
	// Source is where it is declared: dir or cloud.
	Source   string `json:"source"`
	Protocol string `json:"protocol"`
	// Mapper is the plugin serving it; empty while no mapper plugin
	// declares its protocol (unbound).
	Mapper string `json:"mapper,omitempty"`
	// State is online, offline or unknown (not read yet, or unbound).
	State      string `json:"state"`
	Properties int    `json:"properties"`
	Reads      uint64 `json:"reads"`
	Writes     uint64 `json:"writes"`
	// Errors counts errors by kind (timeout, call, malformed, device,
	// property, write, twin); kinds with none are left out.
	Errors map[string]uint64 `json:"errors,omitempty"`
	// Missed counts the collect cycles of its properties that were
	// skipped: the last read was still running, or the mapper's queue
	// was full.
	Missed      uint64    `json:"missed"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// DeviceDetail is GET /v1/devices/{namespace}/{name}.
type DeviceDetail struct {
	DeviceInfo
	PropertyList []PropertyInfo `json:"property_list"`
}

// PropertyInfo is one property of a device in DeviceDetail.
type PropertyInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Value is the last value read, at ReadAt.
	Value  string    `json:"value,omitempty"`
	ReadAt time.Time `json:"read_at,omitzero"`
	// Error is the last read's error.
	Error string `json:"error,omitempty"`
	// Reported is the last value handed to the twin, at ReportedAt.
	Reported   string    `json:"reported,omitempty"`
	ReportedAt time.Time `json:"reported_at,omitzero"`
	// Written is the last value written to the device.
	Written        string `json:"written,omitempty"`
	CollectCycleMS int64  `json:"collect_cycle_ms"`
	ReportCycleMS  int64  `json:"report_cycle_ms"`
	Missed         uint64 `json:"missed"`
}

func (s *Server) registerMappedDevices(db MappedDevicesBackend) {
	s.mux.HandleFunc("GET /v1/devices", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, db.ListDevices())
	})
	s.mux.HandleFunc("GET /v1/devices/{namespace}/{name}", func(w http.ResponseWriter, r *http.Request) {
		d, err := db.GetDevice(r.PathValue("namespace") + "/" + r.PathValue("name"))
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, d)
		case errors.Is(err, ErrNotFound):
			writeError(w, http.StatusNotFound, err)
		default:
			writeError(w, http.StatusInternalServerError, err)
		}
	})
}

// ListDevices gets /v1/devices.
func (c *Client) ListDevices(ctx context.Context) ([]DeviceInfo, error) {
	var out []DeviceInfo
	err := c.do(ctx, http.MethodGet, "/v1/devices", nil, &out)
	return out, err
}

// GetDevice gets /v1/devices/{id}; id is {namespace}/{name}.
func (c *Client) GetDevice(ctx context.Context, id string) (DeviceDetail, error) {
	var out DeviceDetail
	err := c.do(ctx, http.MethodGet, "/v1/devices/"+id, nil, &out)
	return out, err
}
