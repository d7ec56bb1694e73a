package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// PluginBackend is the plugin manager the API serves under /v1/plugins. A
// Backend that also implements it gets those endpoints.
type PluginBackend interface {
	// Plugins lists every plugin.
	Plugins() []PluginInfo
	// Plugin describes one plugin.
	Plugin(name string) (PluginInfo, error)
	// InstallPlugin installs (or, with upgrade, upgrades to) the package
	// file; source is SourceLocal or SourceRemote.
	InstallPlugin(ctx context.Context, file []byte, source string, upgrade bool) (PluginInfo, error)
	// RollbackPlugin returns a plugin to its previous version.
	RollbackPlugin(ctx context.Context, name string) (PluginInfo, error)
	// SetPluginEnabled enables or disables a plugin.
	SetPluginEnabled(ctx context.Context, name string, enabled bool) (PluginInfo, error)
	// RemovePlugin removes an installed plugin.
	RemovePlugin(ctx context.Context, name string) error
	// PluginLogs returns up to the last n lines of a plugin's log.
	PluginLogs(name string, n int) ([]LogLine, error)
}

// Sources of an install; the daemon applies the signature policy of each.
const (
	SourceLocal  = "local"
	SourceRemote = "remote"
)

// Errors a PluginBackend wraps so the API answers with the right status.
var (
	// ErrNotFound: 404.
	ErrNotFound = errors.New("not found")
	// ErrConflict: 409.
	ErrConflict = errors.New("conflict")
	// ErrRefused: 422, the package failed a check.
	ErrRefused = errors.New("refused")
)

// PluginInfo is one plugin as /v1/plugins describes it (docs/api.md).
type PluginInfo struct {
	Name             string    `json:"name"`
	Origin           string    `json:"origin"`
	Source           string    `json:"source,omitempty"`
	Version          string    `json:"version,omitempty"`
	Kind             string    `json:"kind,omitempty"`
	Description      string    `json:"description,omitempty"`
	Author           string    `json:"author,omitempty"`
	Enabled          bool      `json:"enabled"`
	State            string    `json:"state"`
	Signer           string    `json:"signer,omitempty"`
	ModuleDigest     string    `json:"module_digest,omitempty"`
	PackageDigest    string    `json:"package_digest,omitempty"`
	Previous         string    `json:"previous,omitempty"`
	PreviousDigest   string    `json:"previous_digest,omitempty"`
	InstalledAt      time.Time `json:"installed_at,omitzero"`
	Grants           []string  `json:"grants,omitempty"`
	Receives         []string  `json:"receives,omitempty"`
	Instances        int       `json:"instances"`
	MemoryPages      int       `json:"memory_pages"`
	ModuleBytes      int       `json:"module_bytes,omitempty"`
	Calls            uint64    `json:"calls"`
	Faults           uint64    `json:"faults"`
	Denied           uint64    `json:"denied"`
	HeldFailed       uint64    `json:"held_failed"`
	Subscriptions    []string  `json:"subscriptions,omitempty"`
	MQTTDropped      uint64    `json:"mqtt_dropped"`
	TickFailed       uint64    `json:"tick_failed"`
	Loops            uint64    `json:"loops"`
	IOHandles        int       `json:"io_handles"`
	IOBytesIn        uint64    `json:"io_bytes_in"`
	IOBytesOut       uint64    `json:"io_bytes_out"`
	LastFault        string    `json:"last_fault,omitempty"`
	QuarantinedUntil time.Time `json:"quarantined_until,omitzero"`
	LastError        string    `json:"last_error,omitempty"`
	CompileMS        float64   `json:"compile_ms"`
	LoadMS           float64   `json:"load_ms"`
}

// LogLine is one line of a plugin's log.
type LogLine struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

// maxPackage bounds an uploaded plugin package.
const maxPackage = 64 << 20

// registerPlugins adds the /v1/plugins endpoints for pb.
func (s *Server) registerPlugins(pb PluginBackend) {
	source := SourceLocal
	if s.token != "" {
		source = SourceRemote
	}
	upload := func(upgrade bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			file, err := io.ReadAll(r.Body) // bounded by ServeHTTP
			var tooLarge *http.MaxBytesError
			switch {
			case errors.As(err, &tooLarge):
				writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("plugin package over %d bytes", maxPackage))
				return
			case err != nil:
				writeError(w, http.StatusBadRequest, fmt.Errorf("read plugin package: %w", err))
				return
			}
			info, err := pb.InstallPlugin(r.Context(), file, source, upgrade)
			s.reply(w, info, err)
		}
	}
	s.mux.HandleFunc("GET /v1/plugins", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, pb.Plugins())
	})
	s.mux.HandleFunc("POST /v1/plugins", upload(false))
	s.mux.HandleFunc("PUT /v1/plugins", upload(true))
	s.mux.HandleFunc("GET /v1/plugins/{name}", func(w http.ResponseWriter, r *http.Request) {
		info, err := pb.Plugin(r.PathValue("name"))
		s.reply(w, info, err)
	})
	s.mux.HandleFunc("POST /v1/plugins/{name}/rollback", func(w http.ResponseWriter, r *http.Request) {
		info, err := pb.RollbackPlugin(r.Context(), r.PathValue("name"))
		s.reply(w, info, err)
	})
	for action, enabled := range map[string]bool{"enable": true, "disable": false} {
		s.mux.HandleFunc("POST /v1/plugins/{name}/"+action, func(w http.ResponseWriter, r *http.Request) {
			info, err := pb.SetPluginEnabled(r.Context(), r.PathValue("name"), enabled)
			s.reply(w, info, err)
		})
	}
	s.mux.HandleFunc("DELETE /v1/plugins/{name}", func(w http.ResponseWriter, r *http.Request) {
		err := pb.RemovePlugin(r.Context(), r.PathValue("name"))
		s.reply(w, map[string]bool{"removed": true}, err)
	})
	s.mux.HandleFunc("GET /v1/plugins/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		n := 100
		if v := r.URL.Query().Get("n"); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil {
				writeError(w, http.StatusBadRequest, fmt.Errorf("logs: n %q is not a number", v))
				return
			}
		}
		lines, err := pb.PluginLogs(r.PathValue("name"), n)
		s.reply(w, lines, err)
	})
}

// reply writes v, or err with the status its kind calls for.
func (s *Server) reply(w http.ResponseWriter, v any, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, v)
		return
	}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		status = http.StatusConflict
	case errors.Is(err, ErrRefused):
		status = http.StatusUnprocessableEntity
	}
	s.log.Warn("plugin operation failed", "error", err)
	writeError(w, status, err)
}

// Plugins lists the daemon's plugins.
func (c *Client) Plugins(ctx context.Context) ([]PluginInfo, error) {
	var out []PluginInfo
	err := c.doRaw(ctx, http.MethodGet, "/v1/plugins", nil, "", &out)
	return out, err
}

// Plugin describes one plugin.
func (c *Client) Plugin(ctx context.Context, name string) (PluginInfo, error) {
	var out PluginInfo
	err := c.doRaw(ctx, http.MethodGet, "/v1/plugins/"+url.PathEscape(name), nil, "", &out)
	return out, err
}

// InstallPlugin uploads a package; upgrade replaces the installed version.
func (c *Client) InstallPlugin(ctx context.Context, file []byte, upgrade bool) (PluginInfo, error) {
	var out PluginInfo
	method := http.MethodPost
	if upgrade {
		method = http.MethodPut
	}
	err := c.doRaw(ctx, method, "/v1/plugins", file, "application/wasm", &out)
	return out, err
}

// PluginAction posts rollback, enable or disable for a plugin.
func (c *Client) PluginAction(ctx context.Context, name, action string) (PluginInfo, error) {
	var out PluginInfo
	err := c.doRaw(ctx, http.MethodPost, "/v1/plugins/"+url.PathEscape(name)+"/"+action, nil, "", &out)
	return out, err
}

// RemovePlugin removes an installed plugin.
func (c *Client) RemovePlugin(ctx context.Context, name string) error {
	var out map[string]bool
	return c.doRaw(ctx, http.MethodDelete, "/v1/plugins/"+url.PathEscape(name), nil, "", &out)
}

// PluginLogs fetches up to the last n lines of a plugin's log.
func (c *Client) PluginLogs(ctx context.Context, name string, n int) ([]LogLine, error) {
	var out []LogLine
	err := c.doRaw(ctx, http.MethodGet, fmt.Sprintf("/v1/plugins/%s/logs?n=%d", url.PathEscape(name), n), nil, "", &out)
	return out, err
}
