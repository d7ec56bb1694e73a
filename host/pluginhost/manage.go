package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/edgehost/edgehost/host/builtin"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/plugins"
	"github.com/edgehost/edgehost/host/wasm"
)

// Errors of the live operations; the admin API maps them to HTTP statuses.
var (
	// ErrNotFound: no plugin of that name.
	ErrNotFound = errors.New("no such plugin")
	// ErrConflict: the operation does not fit the plugin's state (it
	// exists already, comes from the config, has no previous version...).
	ErrConflict = errors.New("conflict")
	// ErrRefused: the package failed a check (format, manifest, signature,
	// grants) or its initialisation.
	ErrRefused = errors.New("refused")
	// ErrNotRunning: the plugin host is not running.
	ErrNotRunning = errors.New("plugin host is not running")
)

// Sources of an install, each with its signature policy in
// modules.plugins.trust.policy.
const (
	// SourceLocal: the admin unix socket; the local policy.
	SourceLocal = "local"
	// SourceRemote: the TCP admin listener; the remote policy.
	SourceRemote = "remote"
	// SourceCloud: the cloud, through the link (host/pluginsync); the
	// remote policy.
	SourceCloud = "cloud"
)

// checked is a package that passed the checks that need no compilation.
type checked struct {
	file   []byte
	pkg    *plugins.Package
	signer string
	source string
}

// check parses file and verifies it against the trust store under the
// policy of source.
func (m *Module) check(file []byte, source string) (*checked, error) {
	pkg, err := plugins.Parse(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	policy := m.cfg.Trust.Policy.Remote
	if source == SourceLocal {
		policy = m.cfg.Trust.Policy.Local
	}
	signer, err := m.trust.Verify(pkg, plugins.SignaturePolicy(policy))
	if err != nil {
		return nil, fmt.Errorf("%w: plugin %q %s: signature: %w", ErrRefused, pkg.Manifest.Name, pkg.Manifest.Version, err)
	}
	return &checked{file: file, pkg: pkg, signer: signer, source: source}, nil
}

// policy is the plugin's effective grants: its manifest's, under the
// operator's ceiling for it if the config has one.
func (m *Module) policy(man *plugins.Manifest) *plugins.Policy {
	for _, r := range m.cfg.Restrict {
		if r.Plugin != man.Name {
			continue
		}
		ceiling := plugins.Capabilities{}
		for _, s := range r.Send {
			ceiling.Send = append(ceiling.Send, plugins.Pattern(s))
		}
		if r.KV != nil {
			ceiling.KV = &plugins.KVGrant{Prefixes: r.KV.Prefixes}
		}
		if r.MQTT != nil {
			ceiling.MQTT = &plugins.MQTTGrant{Publish: r.MQTT.Publish, Subscribe: r.MQTT.Subscribe}
		}
		ceiling.TCP, ceiling.UDP, ceiling.Serial = r.TCP, r.UDP, r.Serial
		ceiling.HTTP = r.HTTP
		return plugins.NewPolicy(man.Capabilities, &ceiling)
	}
	return plugins.NewPolicy(man.Capabilities, nil)
}

// limits are the manifest's limits, each capped by modules.plugins.limits.
func (m *Module) limits(man *plugins.Manifest) config.Limits {
	l := m.cfg.Limits
	capTo := func(v int, limit *int) {
		if v > 0 && v < *limit {
			*limit = v
		}
	}
	capTo(man.Limits.MemoryPages, &l.MemoryPages)
	capTo(man.Limits.MaxMessageBytes, &l.MaxMessageBytes)
	capTo(man.Limits.Instances, &l.Instances)
	if d, _ := man.CallTimeout(); d > 0 && d < l.CallTimeout {
		l.CallTimeout = d
	}
	return l
}

// loadPackage compiles c's module (in the background of whatever h is
// serving), refuses it if it imports host functions its grants do not
// cover, and loads it, which runs its init.
func (m *Module) loadPackage(ctx context.Context, h *hosted, c *checked) (*live, error) {
	man := c.pkg.Manifest
	start := time.Now()
	mod, err := m.runtime.Compile(ctx, c.pkg.Module)
	compileMS := msSince(start)
	if err != nil {
		return nil, fmt.Errorf("%w: plugin %q %s: %w", ErrRefused, man.Name, man.Version, err)
	}
	// The loaded plugin keeps what it needs; the compiled code stays in the
	// compilation cache.
	defer mod.Close(context.Background())
	if err := man.CheckABI(mod.Imports()); err != nil {
		return nil, fmt.Errorf("%w: plugin %q %s: %w", ErrRefused, man.Name, man.Version, err)
	}
	pol := m.policy(man)
	if err := pol.CheckImports(mod.Imports()); err != nil {
		return nil, fmt.Errorf("%w: plugin %q %s: %w", ErrRefused, man.Name, man.Version, err)
	}
	lim := m.limits(man)
	p, err := m.runtime.Load(ctx, mod, wasm.PluginConfig{
		Name:    man.Name,
		Version: man.Version,
		Limits:  wasmLimits(lim),
		Config:  man.Config,
		Host:    busHost{m.bus},
		KV:      storeKV{m.store.PluginKV(man.Name)},
		MQTT:    m.mqttFor(h),
		Logger:  h.logger,
		Grants:  pol,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: plugin %q %s: %w", ErrRefused, man.Name, man.Version, err)
	}
	m.mu.Lock()
	h.compileMS = compileMS
	h.instances = max(h.instances, lim.Instances)
	m.mu.Unlock()
	receives := make([]config.Pattern, len(man.Receives))
	for i, r := range man.Receives {
		receives[i] = config.Pattern(r)
	}
	tick, _ := man.TickInterval() // validated with the manifest
	h.logger.Info("plugin version loaded", "version", man.Version, "digest", mod.Digest(), "compile_ms", compileMS, "signer", c.signer)
	l := &live{p: p, receives: receives, tick: tick, manifest: man}
	if man.Mapper != nil {
		l.protocols = man.Mapper.Protocols
	}
	return l, nil
}

// loadRecorded loads an installed version from its blob, checking its
// signature again if it was signed: a key revoked since is refused.
func (m *Module) loadRecorded(ctx context.Context, h *hosted, v plugins.Version) (*live, error) {
	file, err := m.pstore.ReadBlob(v.Blob)
	if err != nil {
		return nil, fmt.Errorf("load plugin %q %s: %w", h.name, v.Version, err)
	}
	policy := plugins.AllowUnsigned
	if v.Signer != "" {
		policy = plugins.RequireSignature
	}
	pkg, err := plugins.Parse(file)
	if err != nil {
		return nil, fmt.Errorf("load plugin %q %s: %w", h.name, v.Version, err)
	}
	signer, err := m.trust.Verify(pkg, policy)
	if err != nil {
		return nil, fmt.Errorf("load plugin %q %s: signature: %w", h.name, v.Version, err)
	}
	start := time.Now()
	l, err := m.loadPackage(ctx, h, &checked{file: file, pkg: pkg, signer: signer, source: v.Source})
	if err == nil {
		m.mu.Lock()
		h.loadMS = msSince(start)
		m.mu.Unlock()
	}
	return l, err
}

// version describes c for the store.
func (m *Module) version(c *checked) (plugins.Version, error) {
	blob, err := m.pstore.PutBlob(c.file)
	if err != nil {
		return plugins.Version{}, err
	}
	return plugins.Version{Version: c.pkg.Manifest.Version, Blob: blob, ModuleDigest: c.pkg.ModuleDigestHex(),
		Signer: c.signer, Source: c.source, InstalledAt: time.Now().UTC()}, nil
}

// find returns the plugin called name, or nil. Called with m.mu held.
func (m *Module) find(name string) *hosted {
	for _, h := range m.plugins {
		if h.name == name {
			return h
		}
	}
	return nil
}

// begin takes the operations lock and checks the host runs; call the
// returned func to release it.
func (m *Module) begin() (func(), error) {
	m.ops.Lock()
	m.mu.RLock()
	running := m.ctx != nil
	m.mu.RUnlock()
	if !running {
		m.ops.Unlock()
		return nil, ErrNotRunning
	}
	return m.ops.Unlock, nil
}

// installed returns the installed plugin called name, or an error saying
// why it cannot be operated on.
func (m *Module) installed(name string) (*hosted, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	h := m.find(name)
	switch {
	case h == nil:
		return nil, fmt.Errorf("plugin %q: %w", name, ErrNotFound)
	case h.origin != OriginInstalled:
		return nil, fmt.Errorf("%w: plugin %q comes from the %s; change it there", ErrConflict, name, h.origin)
	}
	return h, nil
}

// Install checks a package from source, loads it and serves it, and keeps
// it in the store. A plugin of the same name must not exist.
func (m *Module) Install(ctx context.Context, file []byte, source string) (Info, error) {
	done, err := m.begin()
	if err != nil {
		return Info{}, err
	}
	defer done()
	c, err := m.check(file, source)
	if err != nil {
		return Info{}, fmt.Errorf("install: %w", err)
	}
	name := c.pkg.Manifest.Name
	m.mu.RLock()
	existing := m.find(name)
	m.mu.RUnlock()
	// An installed plugin overrides the built-in one of its name.
	if existing != nil && existing.origin != OriginBuiltin {
		return Info{}, fmt.Errorf("install: %w: plugin %q exists; use upgrade", ErrConflict, name)
	}
	h := m.newHosted(name, OriginInstalled)
	lctx, loaded := m.startLoading(ctx, name)
	l, err := m.loadPackage(lctx, h, c)
	loaded()
	if err != nil {
		return Info{}, fmt.Errorf("install: %w", err)
	}
	v, err := m.version(c)
	if err == nil {
		rec := plugins.Record{Name: name, Enabled: true, Current: v}
		h.record = &rec
		err = m.pstore.Save(rec)
	}
	if err != nil {
		m.closePlugin(h, l)
		return Info{}, fmt.Errorf("install plugin %q: %w", name, err)
	}
	if existing != nil {
		m.drop(existing)
		m.log.Info("built-in plugin overridden by an install", "plugin", name)
	}
	m.add(h, l, nil)
	m.mu.Lock()
	err = m.reroute()
	m.mu.Unlock()
	m.log.Info("plugin installed", "plugin", name, "version", v.Version, "signer", v.Signer, "source", source)
	if err != nil {
		return m.info(h), fmt.Errorf("install plugin %q: %w", name, err)
	}
	return m.info(h), nil
}

// Upgrade replaces an installed plugin's version with the package's
// without stopping it: the new version is loaded beside the old, then
// swapped in; calls in flight finish on the old one, which is then closed.
// If the new version fails to load or init, the old one stays in service
// and the failure is kept in the plugin's status and log.
func (m *Module) Upgrade(ctx context.Context, file []byte, source string) (Info, error) {
	done, err := m.begin()
	if err != nil {
		return Info{}, err
	}
	defer done()
	c, err := m.check(file, source)
	if err != nil {
		return Info{}, fmt.Errorf("upgrade: %w", err)
	}
	h, err := m.installed(c.pkg.Manifest.Name)
	if err != nil {
		return Info{}, fmt.Errorf("upgrade: %w", err)
	}
	v, err := m.version(c)
	if err != nil {
		return Info{}, fmt.Errorf("upgrade plugin %q: %w", h.name, err)
	}
	return m.replace(ctx, h, c, v, "upgrade")
}

// Rollback puts an installed plugin's previous version back in service,
// as Upgrade does; the current one becomes the previous.
func (m *Module) Rollback(ctx context.Context, name string) (Info, error) {
	done, err := m.begin()
	if err != nil {
		return Info{}, err
	}
	defer done()
	h, err := m.installed(name)
	if err != nil {
		return Info{}, fmt.Errorf("rollback: %w", err)
	}
	m.mu.RLock()
	prev := h.record.Previous
	m.mu.RUnlock()
	if prev == nil {
		return Info{}, fmt.Errorf("rollback plugin %q: %w: no previous version", name, ErrConflict)
	}
	file, err := m.pstore.ReadBlob(prev.Blob)
	if err != nil {
		return Info{}, fmt.Errorf("rollback plugin %q: %w", name, err)
	}
	pkg, err := plugins.Parse(file)
	if err != nil {
		return Info{}, fmt.Errorf("rollback plugin %q: %w", name, err)
	}
	return m.replace(ctx, h, &checked{file: file, pkg: pkg, signer: prev.Signer, source: prev.Source}, *prev, "rollback")
}

// replace loads c and makes it h's current version (v in the store), the
// current one becoming the previous.
func (m *Module) replace(ctx context.Context, h *hosted, c *checked, v plugins.Version, op string) (Info, error) {
	m.mu.RLock()
	rec := *h.record
	m.mu.RUnlock()
	// A disabled plugin's new version is loaded too, so it is checked
	// now rather than at the next enable, then closed.
	l, err := m.loadPackage(ctx, h, c)
	if err != nil {
		m.keepInService(h, op, v.Version, rec.Current.Version, err)
		return Info{}, fmt.Errorf("%s plugin %q: %w", op, h.name, err)
	}
	if !rec.Enabled {
		m.closePlugin(h, l)
		l = nil
	}
	prev := rec.Current
	rec.Current, rec.Previous = v, &prev
	if err := m.pstore.Save(rec); err != nil {
		if l != nil {
			m.closePlugin(h, l)
		}
		return Info{}, fmt.Errorf("%s plugin %q: %w", op, h.name, err)
	}
	err = m.swapIn(h, l, &rec)
	if gcErr := m.pstore.GC(); gcErr != nil {
		m.log.Warn("plugin blob gc", "error", gcErr)
	}
	h.logger.Info("plugin "+op, "from", prev.Version, "to", v.Version)
	if err != nil {
		return m.info(h), fmt.Errorf("%s plugin %q: %w", op, h.name, err)
	}
	return m.info(h), nil
}

// keepInService records and logs the failure of op (an upgrade, a
// rollback, a reload of a dir plugin) to load version to: the version
// running stays in service.
func (m *Module) keepInService(h *hosted, op, to, running string, err error) {
	m.mu.Lock()
	h.lastError = fmt.Sprintf("%s to %s failed, %s stays in service: %v", op, to, running, err)
	m.mu.Unlock()
	h.logger.Error(op+" failed; the running version stays in service", "to", to, "running", running, "error", err)
}

// swapIn makes l (nil: none, the plugin is disabled) h's version in
// service and rec (nil: not installed) its record, and closes the version
// it replaces once that version's calls in flight finish: the hot swap of
// upgrade, rollback and a changed dir plugin.
func (m *Module) swapIn(h *hosted, l *live, rec *plugins.Record) error {
	var err error
	m.mu.Lock()
	if rec != nil {
		h.record = rec
	}
	h.lastError = ""
	var old *live
	if l != nil {
		old = h.cur.Swap(l)
		if err = m.serveHosted(h); err == nil {
			err = m.reroute()
		}
	}
	m.mu.Unlock()
	if old != nil {
		m.closePlugin(h, old)
	}
	return err
}

// SetEnabled enables or disables an installed plugin; the state is kept
// across restarts. Disabling takes it off the bus (messages still queued
// for it are dropped) and closes it once its calls in flight finish.
func (m *Module) SetEnabled(ctx context.Context, name string, enabled bool) (Info, error) {
	done, err := m.begin()
	if err != nil {
		return Info{}, err
	}
	defer done()
	h, err := m.installed(name)
	if err != nil {
		return Info{}, err
	}
	m.mu.RLock()
	rec := *h.record
	m.mu.RUnlock()
	if rec.Enabled == enabled && (!enabled || h.cur.Load() != nil) {
		return m.info(h), nil
	}
	var l *live
	if enabled {
		if l, err = m.loadRecorded(ctx, h, rec.Current); err != nil {
			m.mu.Lock()
			h.lastError = err.Error()
			m.mu.Unlock()
			return Info{}, fmt.Errorf("enable plugin %q: %w", name, err)
		}
	}
	rec.Enabled = enabled
	if err := m.pstore.Save(rec); err != nil {
		if l != nil {
			m.closePlugin(h, l)
		}
		return Info{}, fmt.Errorf("set plugin %q enabled=%v: %w", name, enabled, err)
	}
	m.mu.Lock()
	h.record, h.lastError = &rec, ""
	var old *live
	if enabled {
		h.cur.Store(l)
		err = m.serveHosted(h)
	} else {
		m.unserve(h)
		old = h.cur.Swap(nil)
	}
	if err == nil {
		err = m.reroute()
	}
	m.mu.Unlock()
	if old != nil {
		m.closePlugin(h, old)
	}
	h.logger.Info("plugin enabled changed", "enabled", enabled)
	if err != nil {
		return m.info(h), fmt.Errorf("set plugin %q enabled=%v: %w", name, enabled, err)
	}
	return m.info(h), nil
}

// Remove stops an installed plugin and forgets it and its versions. Its
// KV namespace is kept, so a reinstall finds its state. A load of the
// plugin in flight (its install, or its load at start) is cut short first.
func (m *Module) Remove(ctx context.Context, name string) error {
	cancelled := m.cancelLoading(name)
	done, err := m.begin()
	if err != nil {
		return err
	}
	defer done()
	h, err := m.installed(name)
	if err != nil {
		if cancelled && errors.Is(err, ErrNotFound) {
			m.log.Info("plugin install cut short by its removal", "plugin", name)
			return nil
		}
		return fmt.Errorf("remove: %w", err)
	}
	if err := m.pstore.Delete(name); err != nil {
		return fmt.Errorf("remove plugin %q: %w", name, err)
	}
	m.drop(h)
	if gcErr := m.pstore.GC(); gcErr != nil {
		m.log.Warn("plugin blob gc", "error", gcErr)
	}
	m.log.Info("plugin removed", "plugin", name)
	m.restoreBuiltin(ctx, name)
	m.mu.Lock()
	err = m.reroute()
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("remove plugin %q: %w", name, err)
	}
	return nil
}

// drop takes h out of service and out of the host's list, then closes its
// version once its calls in flight finish.
func (m *Module) drop(h *hosted) {
	m.mu.Lock()
	m.unserve(h)
	old := h.cur.Swap(nil)
	m.plugins = slices.DeleteFunc(m.plugins, func(x *hosted) bool { return x == h })
	m.mu.Unlock()
	if old != nil {
		m.closePlugin(h, old)
	}
}

// restoreBuiltin puts the built-in plugin called name back in service, if
// the binary has one, once the installed plugin that overrode it is gone.
func (m *Module) restoreBuiltin(ctx context.Context, name string) {
	i := slices.IndexFunc(m.builtins, func(b builtin.Plugin) bool { return b.Name == name })
	if i < 0 {
		return
	}
	h := m.newHosted(name, OriginBuiltin)
	spec, grants := m.builtinSpec(m.builtins[i])
	l, err := m.loadSpec(ctx, h, spec, &m.builtins[i], grants)
	m.add(h, l, err)
	if err == nil {
		m.log.Info("built-in plugin back in service", "plugin", name)
	}
}

// Logs returns up to the last n lines (all when n <= 0) of name's log.
func (m *Module) Logs(name string, n int) ([]plugins.LogLine, error) {
	m.mu.RLock()
	h := m.find(name)
	m.mu.RUnlock()
	if h == nil {
		return nil, fmt.Errorf("plugin %q: %w", name, ErrNotFound)
	}
	return h.ring.Lines(n), nil
}
