package api

import (
	"context"
	"net/http"
)

// PluginReloader re-reads the plugin dir and the trust store for POST
// /v1/plugins/reload. A Backend that also implements it gets that endpoint.
type PluginReloader interface {
	// ReloadPlugins re-reads the plugin dir and the config's trust store;
	// ErrConflict when plugins are disabled.
	ReloadPlugins(ctx context.Context) (PluginsReport, error)
}

// PluginsReport is the answer of POST /v1/plugins/reload (docs/api.md).
type PluginsReport struct {
	Dir string `json:"dir"`
	// Plugins is how many of the dir's plugins are in service now.
	Plugins int `json:"plugins"`
	// Loaded names the plugins of files new since the last read, now in
	// service; Upgraded those whose file changed, swapped to the new
	// module; Removed those whose file is gone, unloaded.
	Loaded   []string `json:"loaded,omitempty"`
	Upgraded []string `json:"upgraded,omitempty"`
	Removed  []string `json:"removed,omitempty"`
	// Unchanged counts the files whose module is the one in service.
	Unchanged int `json:"unchanged"`
	// Refused names each file not taken, with the reason; what served
	// before serves on.
	Refused []string `json:"refused,omitempty"`
	// Trust is the trust store now in force; nil when it was not re-read
	// (no config file, or a config that does not load: Error says why).
	Trust *TrustReport `json:"trust,omitempty"`
	// Error says why the config, and with it the trust store, was not
	// re-read; the trust store in force is kept.
	Error string `json:"error,omitempty"`
}

// TrustReport is the trust store a reload put in force, for the installs
// that follow; plugins in service keep running.
type TrustReport struct {
	// Keys counts the trusted keys; Added and Removed name the keys that
	// changed.
	Keys    int      `json:"keys"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// Revoked counts the revoked names, fingerprints and keys.
	Revoked int `json:"revoked"`
	// PolicyLocal and PolicyRemote are the signature policies.
	PolicyLocal  string `json:"policy_local"`
	PolicyRemote string `json:"policy_remote"`
}

// OK reports whether the reload took every file and re-read the config.
func (r PluginsReport) OK() bool { return r.Error == "" && len(r.Refused) == 0 }

func (s *Server) registerPluginReload(pr PluginReloader) {
	s.mux.HandleFunc("POST /v1/plugins/reload", func(w http.ResponseWriter, r *http.Request) {
		rep, err := pr.ReloadPlugins(r.Context())
		s.backendReply(w, "plugins reload", rep, err)
	})
}

// ReloadPlugins posts to /v1/plugins/reload.
func (c *Client) ReloadPlugins(ctx context.Context) (PluginsReport, error) {
	var rep PluginsReport
	err := c.do(ctx, http.MethodPost, "/v1/plugins/reload", nil, &rep)
	return rep, err
}
