package pluginhost

import (
	"fmt"
	"github.com/edgehost/edgehost/host/api"

	"github.com/edgehost/edgehost/host/plugins"
)

// Info is a plugin's state as `edgehost plugin list/info` and the status
// show it: the admin API's document, filled here.
type Info = api.PluginInfo

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
		in.PackageDigest, in.Source = r.Current.Blob, r.Current.Source
		if r.Previous != nil {
			in.Previous, in.PreviousDigest = r.Previous.Version, r.Previous.Blob
		}
	}
	m.mu.RUnlock()
	in.Subscriptions, in.MQTTDropped, in.TickFailed = h.subs.filters(), h.mqttDropped.Load(), h.tickFailed.Load()
	in.Loops = h.loops.Load()
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
	in.Loops += st.Loops
	in.QuarantinedUntil, in.HeldFailed = st.QuarantinedUntil, st.HeldFailed
	in.MemoryPages, in.ModuleBytes = st.MemoryPages, st.ModuleBytes
	in.IOHandles, in.IOBytesIn, in.IOBytesOut = st.IOHandles, st.IOBytesIn, st.IOBytesOut
	if st.Version != "" {
		in.Version = st.Version
	}
	if in.ModuleDigest == "" {
		in.ModuleDigest = l.digest
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
	if len(c.TCP) > 0 {
		out = append(out, fmt.Sprintf("tcp %q", c.TCP))
	}
	if len(c.UDP) > 0 {
		out = append(out, fmt.Sprintf("udp %q", c.UDP))
	}
	if len(c.HTTP) > 0 {
		out = append(out, fmt.Sprintf("http %q", c.HTTP))
	}
	if len(c.Serial) > 0 {
		out = append(out, fmt.Sprintf("serial %q", c.Serial))
	}
	return out
}

func or(pattern string) string {
	if pattern == "" {
		return "*"
	}
	return pattern
}

// MapperPlugin is a plugin in service that serves device protocols.
type MapperPlugin struct {
	// Name is the plugin's name, its bus module.
	Name string
	// Protocols are the protocols its manifest (or config entry) declares.
	Protocols []string
}

// Mappers returns the plugins in service that declare device protocols,
// in load order: the devices module binds devices to them, and DMI
// refuses their protocols.
func (m *Module) Mappers() []MapperPlugin {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []MapperPlugin
	for _, h := range m.plugins {
		l := h.cur.Load()
		if l == nil || h.ep == nil || len(l.protocols) == 0 {
			continue
		}
		out = append(out, MapperPlugin{Name: h.name, Protocols: l.protocols})
	}
	return out
}
