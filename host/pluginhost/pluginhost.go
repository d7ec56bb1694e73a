// Package pluginhost is the daemon module that loads wasm plugins, routes
// bus messages to them, and installs, upgrades, rolls back, disables and
// removes them while it runs.
//
// Every plugin is a bus module under its own name in the group "plugins",
// so a message can address it directly. A plugin that declares receive
// patterns also gets the messages sent to the patterns' groups: for each such
// group the host registers one router module ("plugins:<group>") that hands
// each message to the first plugin whose pattern matches it.
//
// Plugins come from three places: modules.plugins.list and the *.wasm files
// of modules.plugins.dir (the operator's own, trusted as they are), and
// packages installed through the admin API (checked against the trust store
// and confined to their grants; see docs/plugins.md), kept in the store so
// they come back after a restart.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/builtin"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/plugins"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/hashicorp/go-hclog"
)

// Group is the bus group every plugin is registered in.
const Group = "plugins"

// logLines is how many log lines each plugin keeps for `edgehost plugin logs`.
const logLines = 500

// Module loads the configured and installed plugins and serves them on the
// bus. Create it with New and run it under the supervisor.
type Module struct {
	bus      *bus.Bus
	runtime  *wasm.Runtime
	store    *store.Store
	events   EventBus // nil: no eventbus, the MQTT imports fail
	cfg      config.Plugins
	log      hclog.Logger
	trust    *plugins.Trust
	builtins []builtin.Plugin
	// dormant are the built-in mapper plugins not started yet; under mu.
	dormant []dormantMapper

	progress startProgress

	// ops serialises the live operations (install, upgrade, ...).
	ops sync.Mutex

	mu      sync.RWMutex
	ctx     context.Context               // Run's, while running; nil otherwise
	loading map[string]context.CancelFunc // loads in flight, by plugin name; Remove cancels them
	pstore  *plugins.Store
	plugins []*hosted // in load order
	routers map[string]*router
	workers sync.WaitGroup
}

// New returns the plugin host module. The runtime, store and eventbus are
// shared services; the module does not close them. events serves the
// plugins' MQTT imports; nil (no eventbus in this daemon) makes them fail
// with unavailable. Installed packages are kept under <cfg.Dir>/blobs.
func New(b *bus.Bus, rt *wasm.Runtime, st *store.Store, events EventBus, cfg config.Plugins, log hclog.Logger) *Module {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	var keys []plugins.TrustedKey
	for _, k := range cfg.Trust.Keys {
		// config validation has checked the key.
		if pub, err := plugins.ParsePublicKey(k.PublicKey); err == nil {
			keys = append(keys, plugins.TrustedKey{Name: k.Name, PublicKey: pub})
		}
	}
	return &Module{bus: b, runtime: rt, store: st, events: events, cfg: cfg, log: log.Named("plugins"),
		trust: plugins.NewTrust(keys, cfg.Trust.Revoked)}
}

// Name implements supervisor.Module.
func (m *Module) Name() string { return "plugins" }

// Run loads every plugin, serves them until ctx ends, then unloads them. A
// plugin that fails to load is reported in Status and NotReady and skipped;
// the others serve. Plugins load in parallel, up to one per CPU; live
// operations (install, remove, ...) wait until they have.
func (m *Module) Run(ctx context.Context, ready func()) error {
	specs, err := m.discover()
	if err != nil {
		return err
	}
	pstore, err := plugins.NewStore(m.store, filepath.Join(m.cfg.Dir, "blobs"))
	if err != nil {
		return err
	}
	records, err := pstore.List()
	if err != nil {
		return err
	}
	m.ops.Lock()
	m.mu.Lock()
	m.ctx, m.pstore, m.plugins, m.routers = ctx, pstore, nil, map[string]*router{}
	m.mu.Unlock()

	loads := m.startLoads(specs, records)
	m.loadAll(ctx, loads)
	for _, l := range loads {
		m.add(l.h, l.live, l.err)
		if l.err == nil && l.live != nil && len(l.spec.Topics) > 0 {
			if err := m.subscribeTopics(l.h, l.spec.Topics); err != nil {
				m.mu.Lock()
				l.h.lastError = err.Error()
				m.mu.Unlock()
				m.log.Error("plugin topics not subscribed", "plugin", l.h.name, "error", err)
			}
		}
	}
	m.mu.Lock()
	err = m.reroute()
	n := len(m.plugins)
	m.mu.Unlock()
	m.ops.Unlock()
	if err != nil || ctx.Err() != nil {
		m.shutdown()
		return err
	}
	m.log.Info("plugins ready", "plugins", n)
	ready()
	<-ctx.Done()
	m.shutdown()
	return nil
}

// startLoad is one plugin to load when the host starts, and the outcome.
type startLoad struct {
	h       *hosted
	spec    config.Plugin   // config, dir and built-in plugins
	builtin *builtin.Plugin // built-in plugins
	// grants are a built-in plugin's from its manifest; nil: trusted.
	grants *plugins.Policy
	rec    *plugins.Record

	live *live
	err  error
}

// startLoads lists what Run loads, in load order: the configured and
// directory plugins, then the installed ones, then the built-in plugins
// that none of those overrides by name.
func (m *Module) startLoads(specs []discovered, records []plugins.Record) []*startLoad {
	var loads []*startLoad
	taken := map[string]bool{}
	installed := map[string]bool{}
	for _, r := range records {
		installed[r.Name] = true
	}
	for _, d := range specs {
		if d.origin == OriginDir && installed[d.spec.Name] {
			// Two plugins of one name cannot both serve: the installed one
			// (signed, with its grants and history) wins, as on reload.
			m.log.Error("plugin file not loaded", "file", d.spec.Path, "error",
				fmt.Errorf("%w: plugin %q is installed; a file of its name in the plugin dir is not loaded", ErrConflict, d.spec.Name))
			continue
		}
		taken[d.spec.Name] = true
		loads = append(loads, &startLoad{h: m.newHosted(d.spec.Name, d.origin), spec: d.spec})
	}
	for _, r := range records {
		taken[r.Name] = true
		h := m.newHosted(r.Name, OriginInstalled)
		rec := r
		h.record = &rec
		loads = append(loads, &startLoad{h: h, rec: &rec})
	}
	var dormant []dormantMapper
	for _, b := range m.builtins {
		if taken[b.Name] {
			m.log.Info("built-in plugin overridden", "plugin", b.Name)
			continue
		}
		spec, grants := m.builtinSpec(b)
		if spec.Mapper != nil {
			// A built-in mapper costs an instance's memory; it starts when
			// a device needs one of its protocols (StartMapper).
			dormant = append(dormant, dormantMapper{plugin: b, protocols: spec.Mapper.Protocols})
			continue
		}
		loads = append(loads, &startLoad{h: m.newHosted(b.Name, OriginBuiltin), spec: spec, builtin: &b, grants: grants})
	}
	m.mu.Lock()
	m.dormant = dormant
	m.mu.Unlock()
	return loads
}

// loadAll loads loads in parallel, up to one per CPU, keeping StartProgress
// up to date.
func (m *Module) loadAll(ctx context.Context, loads []*startLoad) {
	m.progress.begin(len(loads))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for _, l := range loads {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				l.err = fmt.Errorf("load plugin %q: %w", l.h.name, ctx.Err())
				return
			}
			defer func() { <-sem }()
			m.progress.start(l.h.name)
			start := time.Now()
			switch {
			case l.rec == nil:
				l.live, l.err = m.loadSpec(ctx, l.h, l.spec, l.builtin, l.grants)
			case l.rec.Enabled:
				// Installed plugins can be removed while they load.
				lctx, done := m.startLoading(ctx, l.h.name)
				l.live, l.err = m.loadRecorded(lctx, l.h, l.rec.Current)
				done()
			}
			l.h.loadMS = msSince(start)
			m.progress.finish(l.h.name)
		})
	}
	wg.Wait()
}

// add records h with its loaded version (or its load error) and starts
// serving it on the bus.
func (m *Module) add(h *hosted, p *live, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.plugins = append(m.plugins, h)
	if err != nil {
		h.lastError = err.Error()
		m.log.Error("plugin not loaded", "plugin", h.name, "error", err)
		return
	}
	if p == nil {
		return // installed and disabled
	}
	h.cur.Store(p)
	if err := m.serveHosted(h); err != nil {
		h.lastError = err.Error()
		m.log.Error("plugin not served", "plugin", h.name, "error", err)
	}
}

// shutdown stops every endpoint and worker, then closes the plugins.
func (m *Module) shutdown() {
	m.mu.Lock()
	hs := slices.Clone(m.plugins)
	for _, r := range m.routers {
		r.ep.Close()
	}
	for _, h := range hs {
		if h.ep != nil {
			h.ep.Close()
		}
		h.stopTicker()
	}
	m.ctx = nil
	m.mu.Unlock()
	for _, h := range hs {
		m.unsubscribeAll(h)
	}
	m.workers.Wait()
	for _, h := range hs {
		if l := h.cur.Swap(nil); l != nil {
			m.closePlugin(h, l)
		}
	}
}

// closePlugin closes a version taken out of service, letting its calls in
// flight finish.
func (m *Module) closePlugin(h *hosted, l *live) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*m.cfg.Limits.CallTimeout+5*time.Second)
	defer cancel()
	if err := l.p.Close(ctx); err != nil {
		m.log.Warn("plugin close", "plugin", h.name, "error", err)
	}
}

// discovered is a plugin the config names or the plugin dir holds.
type discovered struct {
	spec   config.Plugin
	origin string
}

// discover lists the plugins to load from the config: those named in it,
// then every other *.wasm file in the plugin directory, named after its file.
func (m *Module) discover() ([]discovered, error) {
	var specs []discovered
	named := map[string]bool{}
	for _, p := range m.cfg.List {
		named[p.Name] = true
		specs = append(specs, discovered{p, OriginConfig})
	}
	files, err := filepath.Glob(filepath.Join(m.cfg.Dir, "*.wasm"))
	if err != nil {
		return nil, fmt.Errorf("list plugin dir %q: %w", m.cfg.Dir, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".wasm")
		if named[name] {
			continue
		}
		specs = append(specs, discovered{config.Plugin{Name: name, Path: f, Limits: m.cfg.Limits}, OriginDir})
	}
	return specs, nil
}

// loadSpec loads a plugin named in the config, found in the directory, or
// built in (b, when not nil). These are the operator's own and the
// project's: no signature or grant checks.
func (m *Module) loadSpec(ctx context.Context, h *hosted, spec config.Plugin, b *builtin.Plugin, grants *plugins.Policy) (*live, error) {
	path := "the binary"
	var code []byte
	var err error
	if b != nil {
		code, err = b.Module()
	} else {
		path = m.cfg.ModulePath(spec)
		code, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("load plugin %q: %w", spec.Name, err)
	}
	start := time.Now()
	mod, err := m.runtime.Compile(ctx, code)
	compileMS := msSince(start)
	if err != nil {
		return nil, fmt.Errorf("load plugin %q from %s: %w", spec.Name, path, err)
	}
	// The loaded plugin keeps what it needs; the compiled code stays in the
	// compilation cache, and the module's bytes become garbage.
	defer mod.Close(context.Background())
	pc := wasm.PluginConfig{
		Name:   spec.Name,
		Limits: wasmLimits(spec.Limits),
		Config: spec.Config,
		Host:   busHost{m.bus},
		KV:     storeKV{m.store.PluginKV(spec.Name)},
		MQTT:   m.mqttFor(h),
		Logger: h.logger,
	}
	if grants != nil {
		if err := grants.CheckImports(mod.Imports()); err != nil {
			return nil, fmt.Errorf("load plugin %q from %s: %w", spec.Name, path, err)
		}
		pc.Grants = grants
	}
	p, err := m.runtime.Load(ctx, mod, pc)
	if err != nil {
		return nil, fmt.Errorf("load plugin %q from %s: %w", spec.Name, path, err)
	}
	// h may be in service already: a dir plugin reloaded over its old
	// version.
	m.mu.Lock()
	h.compileMS = compileMS
	h.instances = max(spec.Limits.Instances, 1)
	m.mu.Unlock()
	m.log.Info("plugin loaded", "plugin", spec.Name, "digest", mod.Digest(), "path", path, "compile_ms", compileMS)
	l := &live{p: p, receives: spec.Receives, tick: spec.TickInterval, digest: mod.Digest()}
	if spec.Mapper != nil {
		l.protocols = spec.Mapper.Protocols
	}
	return l, nil
}

func wasmLimits(l config.Limits) wasm.Limits {
	return wasm.Limits{
		MemoryPages:     uint32(l.MemoryPages),
		CallTimeout:     l.CallTimeout,
		MaxMessageBytes: l.MaxMessageBytes,
		Instances:       l.Instances,
	}
}

func msSince(t time.Time) float64 {
	return float64(time.Since(t).Microseconds()) / 1000
}

// call hands msg to h's current plugin. A call that reached a version
// being swapped out before it started is retried on the new one, so an
// upgrade loses no message and answers none twice.
func (h *hosted) call(ctx context.Context, msg *abi.Message) (abi.Message, bool, error) {
	for {
		l := h.cur.Load()
		if l == nil {
			return abi.Message{}, false, fmt.Errorf("plugin %q is not running: %w", h.name, abi.Unavailable)
		}
		reply, ok, err := l.p.Handle(ctx, msg)
		if err != nil && errors.Is(err, wasm.ErrClosed) && h.cur.Load() != l {
			continue
		}
		return reply, ok, err
	}
}

// dispatch hands msg to the first target that takes it and delivers the
// reply. A router (routed) checks the targets' patterns; a plugin's own
// endpoint takes everything addressed to it.
func (m *Module) dispatch(ctx context.Context, routed bool, targets []*hosted, msg *abi.Message) {
	var target *hosted
	for _, h := range targets {
		if !routed || h.matches(msg) {
			target = h
			break
		}
	}
	var reply abi.Message
	ok := true
	if target == nil {
		reply = msg.FailureReply(abi.Failure{Reason: abi.FailureNoReceiver, Error: fmt.Sprintf("no plugin receives group %q operation %q resource %q",
			msg.Route.Group, msg.Route.Operation, msg.Route.Resource)})
	} else if msg.Header.Sync && msg.Header.Chain.Waits(target.name) {
		reply = msg.FailureReply(abi.Failure{Reason: abi.FailureLoop, Code: abi.Loop, Plugin: target.name, Error: m.refuseLoop(target, msg).Error()})
	} else {
		var err error
		reply, ok, err = target.call(ctx, msg)
		if err != nil {
			reply, ok = msg.FailureReply(failure(target.name, err)), true
		}
	}
	if !ok || isMQTTDelivery(msg) {
		return
	}
	reply.Header.ParentID = msg.Header.ID
	if err := m.bus.Respond(reply); err != nil && msg.Header.Sync {
		// Only a requester that gave up misses its reply; replies to
		// one-way messages are counted by the bus as having no waiter.
		m.log.Debug("reply not delivered", "request", msg.Header.ID, "error", err)
	}
}

// failure describes err, the failure of a call to plugin, for its
// requester.
func failure(plugin string, err error) abi.Failure {
	f := abi.Failure{Plugin: plugin, Error: err.Error()}
	var fault *wasm.FaultError
	var code *wasm.CodeError
	switch {
	case errors.As(err, &fault):
		f.Reason, f.Fault = abi.FailureFault, string(fault.Kind)
	case errors.Is(err, wasm.ErrQuarantined):
		f.Reason, f.Code = abi.FailureQuarantined, abi.Unavailable
	case errors.As(err, &code):
		f.Reason, f.Code = abi.FailureCode, code.Code
	case errors.Is(err, abi.TooLarge):
		f.Reason, f.Code = abi.FailureTooLarge, abi.TooLarge
	case errors.Is(err, context.DeadlineExceeded):
		f.Reason, f.Code = abi.FailureTimeout, abi.Timeout
	default:
		// Not running: disabled, closed while being replaced, never loaded.
		f.Reason, f.Code = abi.FailureUnavailable, abi.Unavailable
	}
	return f
}

// ErrLoop is the error of a request refused because it would reach a
// plugin that waits for its reply: the plugin's own request chain back
// into itself, which could only end in a timeout. It matches abi.Loop.
var ErrLoop error = abi.NewError("request loops back into a plugin that waits for its reply", abi.Loop)

// refuseLoop counts and logs the refusal of msg, a request that would
// reach target while target waits for its reply, and returns its error.
func (m *Module) refuseLoop(target *hosted, msg *abi.Message) error {
	err := fmt.Errorf("plugin %q: request %s (group %q operation %q resource %q) from %q: %w; waiting: %s",
		target.name, msg.Header.ID, msg.Route.Group, msg.Route.Operation, msg.Route.Resource,
		msg.Route.Source, ErrLoop, strings.ReplaceAll(msg.Header.Chain.Waiting, " ", " -> "))
	if target.loops.Add(1) == 1 {
		target.logger.Warn("request refused: it loops back into the plugin; further refusals are logged at debug", "error", err)
	} else {
		target.logger.Debug("request refused: it loops back into the plugin", "error", err)
	}
	return err
}
