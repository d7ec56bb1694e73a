// Package pluginhost is the daemon module that loads wasm plugins and routes
// bus messages to them.
//
// Every plugin is a bus module under its own name in the group "plugins",
// so a message can address it directly. A plugin that declares receive
// patterns also gets the messages sent to the patterns' groups: for each such
// group the host registers one router module ("plugins:<group>") that hands
// each message to the first plugin whose pattern matches it.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/hashicorp/go-hclog"
)

// Group is the bus group every plugin is registered in.
const Group = "plugins"

// Module loads the configured plugins and serves them on the bus. Create it
// with New and run it under the supervisor.
type Module struct {
	bus     *bus.Bus
	runtime *wasm.Runtime
	store   *store.Store
	cfg     config.Plugins
	log     hclog.Logger

	mu      sync.RWMutex
	plugins []*hosted
	failed  []Failure
}

// Failure records a plugin that could not be loaded.
type Failure struct {
	Name string
	Err  error
}

// hosted is one loaded plugin and the patterns it receives.
type hosted struct {
	spec   config.Plugin
	plugin *wasm.Plugin
}

// New returns the plugin host module. The runtime and store are shared
// services; the module does not close them.
func New(b *bus.Bus, rt *wasm.Runtime, st *store.Store, cfg config.Plugins, log hclog.Logger) *Module {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Module{bus: b, runtime: rt, store: st, cfg: cfg, log: log.Named("plugins")}
}

// Name implements supervisor.Module.
func (m *Module) Name() string { return "plugins" }

// Run loads every plugin, serves them until ctx ends, then unloads them. A
// plugin that fails to load is reported in Status and skipped; the others
// serve.
func (m *Module) Run(ctx context.Context, ready func()) error {
	specs, err := m.discover()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.plugins, m.failed = nil, nil
	m.mu.Unlock()
	for _, spec := range specs {
		h, err := m.load(ctx, spec)
		m.mu.Lock()
		if err != nil {
			m.failed = append(m.failed, Failure{Name: spec.Name, Err: err})
			m.log.Error("plugin not loaded", "plugin", spec.Name, "error", err)
		} else {
			m.plugins = append(m.plugins, h)
		}
		m.mu.Unlock()
	}
	m.mu.RLock()
	plugins := slices.Clone(m.plugins)
	m.mu.RUnlock()

	var workers sync.WaitGroup
	endpoints, err := m.serve(ctx, plugins, &workers)
	if err != nil {
		m.unload(plugins)
		return err
	}
	m.log.Info("plugins ready", "loaded", len(plugins), "failed", len(specs)-len(plugins))
	ready()
	<-ctx.Done()
	for _, ep := range endpoints {
		ep.Close()
	}
	workers.Wait()
	m.unload(plugins)
	return nil
}

// discover lists the plugins to load: those named in config, then every
// other *.wasm file in the plugin directory, named after its file.
func (m *Module) discover() ([]config.Plugin, error) {
	specs := slices.Clone(m.cfg.List)
	named := map[string]bool{}
	for _, p := range specs {
		named[p.Name] = true
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
		specs = append(specs, config.Plugin{Name: name, Path: f, Limits: m.cfg.Limits})
	}
	return specs, nil
}

func (m *Module) load(ctx context.Context, spec config.Plugin) (*hosted, error) {
	path := m.cfg.ModulePath(spec)
	code, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load plugin %q: %w", spec.Name, err)
	}
	mod, err := m.runtime.Compile(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("load plugin %q from %s: %w", spec.Name, path, err)
	}
	p, err := m.runtime.Load(ctx, mod, wasm.PluginConfig{
		Name: spec.Name,
		Limits: wasm.Limits{
			MemoryPages:     uint32(spec.Limits.MemoryPages),
			CallTimeout:     spec.Limits.CallTimeout,
			MaxMessageBytes: spec.Limits.MaxMessageBytes,
			Instances:       spec.Limits.Instances,
		},
		Config: spec.Config,
		Host:   busHost{m.bus},
		KV:     storeKV{m.store.PluginKV(spec.Name)},
		Logger: m.log.Named(spec.Name),
	})
	if err != nil {
		return nil, fmt.Errorf("load plugin %q from %s: %w", spec.Name, path, err)
	}
	m.log.Info("plugin loaded", "plugin", spec.Name, "digest", mod.Digest(), "path", path)
	return &hosted{spec: spec, plugin: p}, nil
}

func (m *Module) unload(plugins []*hosted) {
	for _, h := range plugins {
		ctx, cancel := context.WithTimeout(context.Background(), h.spec.Limits.CallTimeout+m.cfg.Limits.CallTimeout)
		if err := h.plugin.Close(ctx); err != nil {
			m.log.Warn("plugin close", "plugin", h.spec.Name, "error", err)
		}
		cancel()
	}
}

// serve registers the bus endpoints and starts their workers: as many per
// endpoint as the plugins behind it have instances, so no goroutine is
// started per message.
func (m *Module) serve(ctx context.Context, plugins []*hosted, workers *sync.WaitGroup) ([]*bus.Endpoint, error) {
	var endpoints []*bus.Endpoint
	fail := func(err error) ([]*bus.Endpoint, error) {
		for _, ep := range endpoints {
			ep.Close()
		}
		workers.Wait()
		return nil, err
	}
	routes := map[string][]*hosted{}
	var groups []string
	for _, h := range plugins {
		ep, err := m.bus.Register(h.spec.Name, Group)
		if err != nil {
			return fail(fmt.Errorf("register plugin %q on the bus: %w", h.spec.Name, err))
		}
		endpoints = append(endpoints, ep)
		m.startWorkers(ctx, ep, []*hosted{h}, h.spec.Limits.Instances, workers)
		for _, p := range h.spec.Receives {
			g := p.Group
			if !slices.Contains(routes[g], h) {
				if routes[g] == nil {
					groups = append(groups, g)
				}
				routes[g] = append(routes[g], h)
			}
		}
	}
	for _, g := range groups {
		ep, err := m.bus.Register(Group+":"+g, g)
		if err != nil {
			return fail(fmt.Errorf("register the plugin router for group %q: %w", g, err))
		}
		endpoints = append(endpoints, ep)
		n := 0
		for _, h := range routes[g] {
			n += h.spec.Limits.Instances
		}
		m.startWorkers(ctx, ep, routes[g], n, workers)
	}
	return endpoints, nil
}

func (m *Module) startWorkers(ctx context.Context, ep *bus.Endpoint, targets []*hosted, n int, workers *sync.WaitGroup) {
	for range max(n, 1) {
		workers.Go(func() {
			for {
				msg, err := ep.Receive(ctx)
				if err != nil {
					return
				}
				m.dispatch(ctx, ep.Group() != Group, targets, &msg)
			}
		})
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
		reply = msg.Reply(abi.OpError, []byte(fmt.Sprintf("no plugin receives group %q operation %q resource %q",
			msg.Route.Group, msg.Route.Operation, msg.Route.Resource)))
	} else {
		var err error
		reply, ok, err = target.plugin.Handle(ctx, msg)
		if err != nil {
			reply, ok = msg.Reply(abi.OpError, []byte(err.Error())), true
		}
	}
	if !ok {
		return
	}
	reply.Header.ParentID = msg.Header.ID
	if err := m.bus.Respond(reply); err != nil && msg.Header.Sync {
		// Only a requester that gave up misses its reply; replies to
		// one-way messages are counted by the bus as having no waiter.
		m.log.Debug("reply not delivered", "request", msg.Header.ID, "error", err)
	}
}

// matches reports whether one of h's receive patterns matches msg.
func (h *hosted) matches(msg *abi.Message) bool {
	for _, p := range h.spec.Receives {
		if p.Group == msg.Route.Group && match(p.Operation, msg.Route.Operation) && match(p.Resource, msg.Route.Resource) {
			return true
		}
	}
	return false
}

// match reports whether value matches pattern: empty or "*" match anything;
// otherwise path.Match rules, where "*" does not cross "/", and a trailing
// "/#" matches any number of further levels (as in MQTT).
func match(pattern, value string) bool {
	if pattern == "" || pattern == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "/#"); ok {
		if value == prefix {
			return true
		}
		levels := strings.Count(prefix, "/") + 1
		parts := strings.SplitN(value, "/", levels+1)
		if len(parts) <= levels {
			return false
		}
		return match(prefix, strings.Join(parts[:levels], "/"))
	}
	ok, err := path.Match(pattern, value)
	return ok && err == nil
}

// Plugins returns each loaded plugin's status and the patterns it receives,
// followed by the plugins that failed to load.
func (m *Module) Plugins() ([]wasm.Status, [][]config.Pattern, []Failure) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st := make([]wasm.Status, len(m.plugins))
	pats := make([][]config.Pattern, len(m.plugins))
	for i, h := range m.plugins {
		st[i] = h.plugin.Status()
		pats[i] = h.spec.Receives
	}
	return st, pats, slices.Clone(m.failed)
}

// busHost is the bus as plugins see it: they address groups, as KubeEdge
// modules do, and every message they send carries their name as source.
type busHost struct{ bus *bus.Bus }

func (h busHost) Send(ctx context.Context, plugin string, m *abi.Message) error {
	if m.Route.Group == "" {
		return errors.Join(errors.New("message has no route group"), abi.InvalidArgument)
	}
	m.Route.Source = plugin
	return h.bus.SendToGroup(ctx, m.Route.Group, *m)
}

func (h busHost) Request(ctx context.Context, plugin string, m *abi.Message) (abi.Message, error) {
	if m.Route.Group == "" {
		return abi.Message{}, errors.Join(errors.New("message has no route group"), abi.InvalidArgument)
	}
	m.Route.Source = plugin
	return h.bus.RequestGroup(ctx, m.Route.Group, *m)
}

// storeKV adapts a plugin's namespace in the store to the runtime's KV.
type storeKV struct{ kv *store.KV }

func (s storeKV) Get(key string) ([]byte, bool, error) { return s.kv.Get(key) }
func (s storeKV) List(prefix string) ([]string, error) { return s.kv.List(prefix) }
func (s storeKV) Apply(ops []wasm.KVOp) error {
	conv := make([]store.KVOp, len(ops))
	for i, op := range ops {
		conv[i] = store.KVOp(op)
	}
	return s.kv.Apply(conv)
}
