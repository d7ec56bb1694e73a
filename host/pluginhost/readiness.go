package pluginhost

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edgehost/edgehost/host/builtin"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/plugins"
	"github.com/edgehost/edgehost/host/wasm"
)

// SetBuiltins gives the module the first-party plugins embedded in the
// binary; Run loads each one that no configured, directory or installed
// plugin of the same name overrides. Call it before Run.
func (m *Module) SetBuiltins(ps []builtin.Plugin) { m.builtins = ps }

// builtinSpec is how a built-in plugin is loaded: under the host's default
// limits, with the config the daemon gave it. A built-in plugin with a
// manifest receives what its manifest says and runs under its grants, narrowed by the operator's
// modules.plugins.restrict entry for it as an installed plugin's are (the
// Modbus mapper reaches only the device addresses the operator allows);
// one without a manifest is trusted (nil grants).
func (m *Module) builtinSpec(b builtin.Plugin) (config.Plugin, *plugins.Policy) {
	spec := config.Plugin{Name: b.Name, Limits: m.cfg.Limits, Config: b.Config}
	if b.Manifest == nil {
		return spec, nil
	}
	man, err := plugins.ParseManifest(b.Manifest)
	if err != nil {
		// Refuse everything rather than trust a plugin whose grants are
		// unreadable; the import check then names what it lacks.
		m.log.Error("built-in plugin manifest refused; the plugin gets no grants", "plugin", b.Name, "error", err)
		return spec, plugins.NewPolicy(plugins.Capabilities{}, nil)
	}
	if man.Mapper != nil {
		spec.Mapper = &config.Mapper{Protocols: man.Mapper.Protocols}
	}
	for _, r := range man.Receives {
		spec.Receives = append(spec.Receives, config.Pattern(r))
	}
	return spec, m.policy(man)
}

// startLoading registers a load of the plugin called name, which Remove
// can cancel; call done when the load has ended.
func (m *Module) startLoading(ctx context.Context, name string) (lctx context.Context, done func()) {
	lctx, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	if m.loading == nil {
		m.loading = map[string]context.CancelFunc{}
	}
	m.loading[name] = cancel
	m.mu.Unlock()
	return lctx, func() {
		m.mu.Lock()
		delete(m.loading, name)
		m.mu.Unlock()
		cancel()
	}
}

// cancelLoading cuts short a load of the plugin called name in flight, and
// reports whether there was one.
func (m *Module) cancelLoading(name string) bool {
	m.mu.Lock()
	cancel, ok := m.loading[name]
	m.mu.Unlock()
	if ok {
		cancel()
	}
	return ok
}

// startProgress is how far Run's loading has come, for StartProgress.
type startProgress struct {
	mu          sync.Mutex
	total, done int
	loading     []string
}

func (p *startProgress) begin(total int) {
	p.mu.Lock()
	p.total, p.done, p.loading = total, 0, nil
	p.mu.Unlock()
}

func (p *startProgress) start(name string) {
	p.mu.Lock()
	p.loading = append(p.loading, name)
	p.mu.Unlock()
}

func (p *startProgress) finish(name string) {
	p.mu.Lock()
	p.done++
	p.loading = slices.DeleteFunc(p.loading, func(n string) bool { return n == name })
	p.mu.Unlock()
}

// StartProgress implements supervisor.Progresser: how many plugins are
// loaded and which are compiling or initialising now.
func (m *Module) StartProgress() string {
	p := &m.progress
	p.mu.Lock()
	defer p.mu.Unlock()
	s := fmt.Sprintf("%d of %d plugins loaded", p.done, p.total)
	if len(p.loading) > 0 {
		s += "; loading " + strings.Join(p.loading, ", ")
	}
	return s
}

// NotReady implements supervisor.Checker: a reason for each enabled plugin
// that failed to load and each quarantined plugin.
func (m *Module) NotReady() []string {
	m.mu.RLock()
	hs := slices.Clone(m.plugins)
	m.mu.RUnlock()
	var out []string
	for _, h := range hs {
		l := h.cur.Load()
		if l == nil {
			m.mu.RLock()
			enabled, why := h.record == nil || h.record.Enabled, h.lastError
			m.mu.RUnlock()
			if enabled {
				out = append(out, fmt.Sprintf("plugin %s (%s) failed to load: %s", h.name, h.origin, why))
			}
			continue
		}
		st := l.p.Status()
		if !st.TicksQuarantinedUntil.IsZero() {
			out = append(out, fmt.Sprintf("plugin %s's ticks are quarantined until %s after repeated tick faults",
				h.name, st.TicksQuarantinedUntil.UTC().Format(time.RFC3339)))
		}
		if st.State == wasm.StateQuarantined {
			why := "repeated faults"
			if st.LastFault != nil {
				why = st.LastFault.Error()
			}
			out = append(out, fmt.Sprintf("plugin %s is quarantined until %s: %s",
				h.name, st.QuarantinedUntil.UTC().Format(time.RFC3339), why))
		}
	}
	return out
}

// dormantMapper is a built-in mapper plugin that has not been started.
type dormantMapper struct {
	plugin    builtin.Plugin
	protocols []string
}

// StartMapper starts the built-in mapper plugin that declares protocol, if
// one has not started yet: built-in mappers start when a device needs
// them, not with the host, so a node without such devices does not hold
// their memory. It reports whether it started one; a mapper that fails to
// load stays in the plugin list with its error, as at start.
func (m *Module) StartMapper(ctx context.Context, protocol string) (bool, error) {
	done, err := m.begin()
	if err != nil {
		return false, err
	}
	defer done()
	m.mu.Lock()
	i := slices.IndexFunc(m.dormant, func(d dormantMapper) bool { return slices.Contains(d.protocols, protocol) })
	if i < 0 {
		m.mu.Unlock()
		return false, nil
	}
	b := m.dormant[i].plugin
	m.dormant = slices.Delete(m.dormant, i, i+1)
	taken := m.find(b.Name) != nil // installed meanwhile, overriding it
	m.mu.Unlock()
	if taken {
		return false, nil
	}
	h := m.newHosted(b.Name, OriginBuiltin)
	lctx, loaded := m.startLoading(ctx, b.Name)
	spec, grants := m.builtinSpec(b)
	l, err := m.loadSpec(lctx, h, spec, &b, grants)
	loaded()
	m.add(h, l, err)
	if err != nil {
		return false, fmt.Errorf("start built-in mapper %q for protocol %q: %w", b.Name, protocol, err)
	}
	m.mu.Lock()
	err = m.reroute()
	m.mu.Unlock()
	if err != nil {
		return true, fmt.Errorf("start built-in mapper %q: %w", b.Name, err)
	}
	m.log.Info("built-in mapper started for a device", "plugin", b.Name, "protocol", protocol)
	return true, nil
}

// DormantProtocols returns the protocols of the built-in mappers not
// started yet: DMI refuses them to native mappers as it refuses those of
// the mappers in service.
func (m *Module) DormantProtocols() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for _, d := range m.dormant {
		out = append(out, d.protocols...)
	}
	return out
}
