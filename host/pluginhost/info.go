package pluginhost

import (
	"fmt"
	"time"

	"github.com/edgehost/edgehost/host/plugins"
)

// Info is a plugin's state as `edgehost plugin list/info` and the status
// show it.
type Info struct {
	Name string `json:"name"`
	// Origin is config, dir or installed.
	Origin  string `json:"origin"`
	Version string `json:"version,omitempty"`
	Kind    string `json:"kind,omitempty"`
	// Description and Author come from the manifest.
	Description string `json:"description,omitempty"`
	Author      string `json:"author,omitempty"`
	// Enabled is false for a disabled installed plugin.
	Enabled bool `json:"enabled"`
	// State is ready, quarantined, closed, disabled or failed.
	State string `json:"state"`
	// Signer names the trusted key that signed the version in service.
	Signer       string `json:"signer,omitempty"`
	ModuleDigest string `json:"module_digest,omitempty"`
	// Previous is the version a rollback returns to.
	Previous    string    `json:"previous,omitempty"`
	InstalledAt time.Time `json:"installed_at,omitzero"`
	// Grants lists the capabilities granted by the manifest, as
	// "send group=... operation=... resource=..." and "kv prefixes=[...]".
	Grants   []string `json:"grants,omitempty"`
	Receives []string `json:"receives,omitempty"`
	// Instances is the number of live instances.
	Instances int `json:"instances"`
	// Calls, Faults and Denied count the calls, faults and refused host
	// calls of the version in service.
	Calls  uint64 `json:"calls"`
	Faults uint64 `json:"faults"`
	Denied uint64 `json:"denied"`
	// HeldFailed counts sends and MQTT publishes held until their call's
	// KV writes committed that then failed to go out.
	HeldFailed uint64 `json:"held_failed"`
	// Subscriptions are the plugin's MQTT topic filters; MQTTDropped
	// counts the MQTT messages that did not reach its queue.
	Subscriptions []string `json:"subscriptions,omitempty"`
	MQTTDropped   uint64   `json:"mqtt_dropped"`
	// TickFailed counts edgehost_tick calls that failed.
	TickFailed uint64 `json:"tick_failed"`
	// LastFault is the version in service's last fault.
	LastFault        string    `json:"last_fault,omitempty"`
	QuarantinedUntil time.Time `json:"quarantined_until,omitzero"`
	// LastError is the last failed load, upgrade or enable.
	LastError string `json:"last_error,omitempty"`
	// CompileMS is how long the last compilation of the module took (a hit
	// in the compilation cache is a few ms to a few tens of ms); LoadMS is
	// compile plus instantiate plus init at the last start or enable.
	CompileMS float64 `json:"compile_ms"`
	LoadMS    float64 `json:"load_ms"`
}

// List returns every plugin's Info, in load order.
func (m *Module) List() []Info {
	m.mu.RLock()
	hs := append([]*hosted(nil), m.plugins...)
	m.mu.RUnlock()
	out := make([]Info, len(hs))
	for i, h := range hs {
		out[i] = m.info(h)
	}
	return out
}

// Info returns the Info of the plugin called name.
func (m *Module) Info(name string) (Info, error) {
	m.mu.RLock()
	h := m.find(name)
	m.mu.RUnlock()
	if h == nil {
		return Info{}, fmt.Errorf("plugin %q: %w", name, ErrNotFound)
	}
	return m.info(h), nil
}

func (m *Module) info(h *hosted) Info {
	m.mu.RLock()
	in := Info{Name: h.name, Origin: h.origin, Enabled: true, LastError: h.lastError,
		CompileMS: h.compileMS, LoadMS: h.loadMS}
	if r := h.record; r != nil {
		in.Enabled = r.Enabled
		in.Version, in.Signer, in.ModuleDigest, in.InstalledAt = r.Current.Version, r.Current.Signer, r.Current.ModuleDigest, r.Current.InstalledAt
		if r.Previous != nil {
			in.Previous = r.Previous.Version
		}
	}
	m.mu.RUnlock()
	in.Subscriptions, in.MQTTDropped, in.TickFailed = h.subs.filters(), h.mqttDropped.Load(), h.tickFailed.Load()
	l := h.cur.Load()
	switch {
	case l == nil && !in.Enabled:
		in.State = "disabled"
		return in
	case l == nil:
		in.State = "failed"
		return in
	}
	st := l.p.Status()
	in.State, in.Instances, in.Calls, in.Faults, in.Denied = st.State.String(), st.Instances, st.Calls, st.Faults, st.Denied
	in.QuarantinedUntil, in.HeldFailed = st.QuarantinedUntil, st.HeldFailed
	if st.Version != "" {
		in.Version = st.Version
	}
	if st.LastFault != nil {
		in.LastFault = st.LastFault.Error()
	}
	for _, p := range l.receives {
		in.Receives = append(in.Receives, fmt.Sprintf("group=%s operation=%s resource=%s", p.Group, or(p.Operation), or(p.Resource)))
	}
	if man := l.manifest; man != nil {
		in.Kind, in.Description, in.Author = man.Kind, man.Description, man.Author
		in.Grants = grantStrings(man.Capabilities)
	}
	return in
}

func grantStrings(c plugins.Capabilities) []string {
	var out []string
	for _, s := range c.Send {
		out = append(out, fmt.Sprintf("send group=%s operation=%s resource=%s", s.Group, or(s.Operation), or(s.Resource)))
	}
	if c.KV != nil {
		out = append(out, fmt.Sprintf("kv prefixes=%q", c.KV.Prefixes))
	}
	if c.MQTT != nil {
		out = append(out, fmt.Sprintf("mqtt publish=%q subscribe=%q", c.MQTT.Publish, c.MQTT.Subscribe))
	}
	return out
}

func or(pattern string) string {
	if pattern == "" {
		return "*"
	}
	return pattern
}
