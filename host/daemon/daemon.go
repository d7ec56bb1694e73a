// Package daemon wires edgehost's services and modules together from a
// config and runs them until the context ends.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/builtin"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/devices"
	"github.com/edgehost/edgehost/host/dmi"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/hub"
	"github.com/edgehost/edgehost/host/meta"
	"github.com/edgehost/edgehost/host/pluginhost"
	"github.com/edgehost/edgehost/host/pluginsync"
	edged "github.com/edgehost/edgehost/host/runtime"
	"github.com/edgehost/edgehost/host/sdnotify"
	"github.com/edgehost/edgehost/host/servicebus"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/supervisor"
	"github.com/edgehost/edgehost/host/twin"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/hashicorp/go-hclog"
)

// Daemon is a running edgehost. It implements api.Backend.
type Daemon struct {
	version string
	started time.Time
	log     hclog.Logger
	bus     *bus.Bus
	store   *store.Store
	runtime *wasm.Runtime
	events  *eventbus.Module
	hub     *hub.Module
	plugins *pluginhost.Module
	twin    *twin.Module
	devices *devices.Module
	meta    *meta.Module
	edged   *edged.Module
	super   *supervisor.Supervisor
	metrics metricsRegistry

	// servicebus is nil when modules.servicebus is off.
	servicebus *servicebus.Module

	// cfg is the running config; reload re-reads it (Options.Reload).
	cfg    *config.Config
	reload func() (*config.Config, error)
}

// Options are the daemon's settings that are not in the config file.
type Options struct {
	// Version is the binary's version, for status.
	Version string
	// ResetStore sets a damaged or missing store aside and starts an
	// empty one (edgehost run --reset-store); a healthy store is kept.
	ResetStore bool
	// Reload, when set, re-reads the config for SIGHUP (reload.go).
	Reload func() (*config.Config, error)
}

// StorePath is the store file in the data dir.
func StorePath(dataDir string) string { return filepath.Join(dataDir, "edgehost.db") }

// SnapshotDir is where the store's snapshots are written.
func SnapshotDir(dataDir string) string { return filepath.Join(dataDir, "snapshots") }

// Run starts the daemon from cfg and serves until ctx is cancelled, then
// stops every module in reverse order and closes the services. It returns
// an error if the daemon cannot start at all (a damaged store is a
// *store.DamageError); a module that fails later is restarted by the
// supervisor instead.
func Run(ctx context.Context, cfg *config.Config, opts Options, log hclog.Logger) error {
	started := time.Now()
	version := opts.Version
	hup := reloadSignals()
	defer signal.Stop(hup)
	// Before anything starts: a broker port taken by another broker is not
	// a failure retrying fixes.
	if err := eventbus.CheckEmbeddedAddress(cfg.Modules.EventBus); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	st, err := store.Open(StorePath(cfg.DataDir), &store.Options{
		CheckTimeout: cfg.Store.CheckTimeout, ResetDamaged: opts.ResetStore, Logger: log.Named("store")})
	if err != nil {
		return err
	}
	defer st.Close()
	rt, err := wasm.NewRuntime(ctx, wasm.RuntimeConfig{CacheDir: filepath.Join(cfg.DataDir, "cache", "wasm"), Logger: log})
	if err != nil {
		return fmt.Errorf("start plugin runtime: %w", err)
	}
	defer rt.Close(context.Background())
	b := bus.New(bus.Options{QueueLen: cfg.Modules.Bus.QueueLen, SendTimeout: cfg.Modules.Bus.SendTimeout})
	defer b.Close()

	d := &Daemon{version: version, started: started, log: log, bus: b, store: st, runtime: rt, cfg: cfg, reload: opts.Reload}
	// First, so that it stops last and its shutdown snapshot holds every
	// other module's last writes.
	modules := []supervisor.Module{&storeModule{store: st, cfg: cfg.Store, dir: SnapshotDir(cfg.DataDir), log: log.Named("store")}}
	if cfg.Modules.API.Enable {
		// First, so /healthz answers while the other modules start.
		modules = append(modules, &apiModule{cfg: cfg.Modules.API, server: api.New(d, "", log.Named("api")), tcpServer: tcpServer(d, cfg.Modules.API, log)})
	}
	// events serves the plugins' MQTT imports; without an eventbus they
	// fail with unavailable.
	var events pluginhost.EventBus
	if cfg.Modules.EventBus.Enable {
		ev := eventbus.New(cfg.Modules.EventBus, b, st, log)
		events = ev
		d.events = ev
		modules = append(modules, ev)
	}
	if cfg.Modules.Plugins.Enable {
		d.plugins = pluginhost.New(b, rt, st, events, cfg.Modules.Plugins, log)
		if cfg.Modules.Plugins.Builtin {
			d.plugins.SetBuiltins(builtins(cfg))
		}
		if missing := builtin.Missing(); len(missing) > 0 && cfg.Modules.Plugins.Builtin {
			log.Warn("this binary was built without first-party plugins; build it with `make build` or put them in the plugin dir",
				"missing", missing, "plugin_dir", cfg.Modules.Plugins.Dir)
		}
		modules = append(modules, d.plugins)
	}
	if cfg.Modules.Twin.Enable {
		// After the plugin host: the twin hands the devices to its plugin.
		d.twin = twin.New(b, twin.Config{Plugin: cfg.Modules.Twin.Plugin, NodeName: nodeName(cfg),
			DevicesDir: cfg.Modules.Devices.Dir, Lanes: cfg.Modules.Twin.Lanes, Store: st}, log)
		modules = append(modules, d.twin)
	}
	if d.plugins != nil {
		// After the twin, which takes what the mappers read.
		d.devices = newDevices(cfg, b, d.plugins, d.events, d.storedObjects, log)
		modules = append(modules, d.devices)
	}
	if dev := cfg.Modules.Devices; dev.DMIEnable {
		// After the twin, which takes what mappers report.
		modules = append(modules, dmi.New(dmi.Config{Socket: dev.DMISocket, Rate: dev.DMIRate, Burst: dev.DMIBurst,
			CallTimeout: dev.DMICallTimeout, WasmProtocols: d.wasmProtocols(dev.WasmProtocols)}, b, st, dmi.DirSource{Dir: dev.Dir}, log))
	}
	if cfg.Modules.Meta.Enable {
		d.meta = meta.New(b, st, meta.Config{Lanes: cfg.Modules.Meta.Lanes,
			RemoteQueryTimeout: cfg.Modules.Meta.RemoteQueryTimeout, RemoteQueries: cfg.Modules.Meta.RemoteQueries}, log)
		modules = append(modules, d.meta)
		if d.plugins != nil && cfg.Modules.Plugins.FromCloud {
			connected := func() bool { return d.hub != nil && d.hub.Connected() }
			modules = append(modules, pluginsync.New(b, d.plugins, d.meta, pluginsync.Config{Connected: connected}, log))
		}
	}
	if cfg.Modules.ServiceBus.Enable {
		d.servicebus = newServiceBus(cfg, b, st, log)
		modules = append(modules, d.servicebus)
	}
	if cfg.Modules.Edged.Enable {
		e, err := newEdged(cfg, b, d.meta, log)
		if err != nil {
			return err
		}
		d.edged = e
		modules = append(modules, e)
	}
	if cfg.Modules.Hub.Enable {
		// Last: the modules told of the link's state are on the bus when it
		// comes up, and it stops first.
		h, err := newHub(cfg, b, st, log)
		if err != nil {
			return err
		}
		d.hub = h
		modules = append(modules, h)
	}
	d.super = supervisor.New(supervisor.Options{Logger: log}, modules...)
	err = d.super.Start(ctx)
	if ctx.Err() != nil {
		log.Info("shutting down during start-up")
		return d.super.Stop()
	}
	// Every module has now become ready or failed; the daemon serves what
	// it can and says what it cannot.
	if notReady := d.super.NotReady(); err != nil || len(notReady) > 0 {
		log.Warn("daemon ready, but not fully", "elapsed_ms", time.Since(started).Milliseconds(), "data_dir", cfg.DataDir,
			"not_ready", notReady, "start_error", err)
	} else {
		log.Info("daemon ready", "elapsed_ms", time.Since(started).Milliseconds(), "data_dir", cfg.DataDir)
	}
	// Compiling and loading plugins leaves garbage the size of the modules;
	// hand it back now rather than whenever the heap next grows, so an
	// idle daemon stays small.
	debug.FreeOSMemory()
	notifyCtx, stopNotify := context.WithCancel(ctx)
	notified := make(chan struct{})
	go func() {
		defer close(notified)
		sdnotify.Run(notifyCtx, func() (bool, []string) { return d.super.Ready(), d.super.NotReady() }, log.Named("systemd"))
	}()
	d.serveReloads(ctx, hup)
	stopNotify()
	<-notified
	sdnotify.Stopping(log.Named("systemd"))
	log.Info("shutting down")
	return d.super.Stop()
}

// builtins returns the plugins embedded in the binary, configured from cfg:
// the twin plugin gets the node's name (modules.hub.nodeName, else the
// host name, as KubeEdge names a node) for its membership topics.
func builtins(cfg *config.Config) []builtin.Plugin {
	ps := builtin.Plugins()
	// The route-default plugin replaces the native default route only when
	// asked to; otherwise it would hold an instance for nothing.
	if sb := cfg.Modules.ServiceBus; !sb.Enable || sb.DefaultRoute != config.DefaultRoutePlugin {
		ps = slices.DeleteFunc(ps, func(p builtin.Plugin) bool { return p.Name == config.DefaultRoutePluginName })
	}
	for i := range ps {
		if ps[i].Name != cfg.Modules.Twin.Plugin {
			continue
		}
		ps[i].Config, _ = json.Marshal(map[string]string{"node_name": nodeName(cfg)})
	}
	return ps
}

// nodeName is modules.hub.nodeName, else the host name, as KubeEdge names
// a node.
func nodeName(cfg *config.Config) string {
	if cfg.Modules.Hub.NodeName != "" {
		return cfg.Modules.Hub.NodeName
	}
	node, _ := os.Hostname()
	return node
}

// Status implements api.Backend.
func (d *Daemon) Status() api.Status {
	st := api.Status{Version: d.version, StartedAt: d.started}
	if d.super != nil {
		st.Ready = d.super.Ready()
		st.NotReady = d.super.NotReady()
		for _, m := range d.super.Status() {
			st.Modules = append(st.Modules, api.ModuleStatus{Name: m.Name, State: string(m.State),
				Restarts: m.Restarts, LastError: m.LastError, Since: m.Since})
		}
	}
	if d.plugins != nil {
		for _, p := range d.plugins.List() {
			st.Plugins = append(st.Plugins, api.PluginStatus{Name: p.Name, Version: p.Version, State: p.State,
				Instances: p.Instances, MemoryPages: p.MemoryPages, ModuleBytes: p.ModuleBytes, Calls: p.Calls, Faults: p.Faults, Denied: p.Denied,
				HeldFailed: p.HeldFailed, MQTTDropped: p.MQTTDropped, TickFailed: p.TickFailed, Loops: p.Loops,
				LastFault: firstOf(p.LastFault, p.LastError), QuarantinedUntil: p.QuarantinedUntil, Receives: p.Receives})
		}
	}
	for _, m := range d.bus.Stats().Modules {
		st.Bus = append(st.Bus, api.BusStats{Name: m.Name, Group: m.Group, Sent: m.Sent, Received: m.Received,
			Failed: m.Failed, QueueDepth: m.Queued})
	}
	if d.events != nil {
		es := d.events.Stats()
		st.EventBus = &api.EventBusStatus{ClientInflightDropped: es.InflightDropped, ClientWritesDropped: es.WritesDropped}
		for _, s := range es.Subscribers {
			st.EventBus.Subscribers = append(st.EventBus.Subscribers, api.SubscriberStatus{Subscriber: s.Owner, Filter: s.Filter,
				Delivered: s.Delivered, Dropped: s.Dropped, Refused: s.Refused, QueueDepth: s.Depth})
		}
	}
	st.Pods = d.podsSummary()
	return st
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Inject implements api.Backend.
func (d *Daemon) Inject(ctx context.Context, req api.InjectRequest) (*abi.Message, error) {
	m := req.Parsed
	if m.Header.ID == "" {
		m.Header.ID = bus.NewID()
	}
	switch {
	case req.Broadcast:
		return nil, d.bus.Broadcast(ctx, req.To, m)
	case req.Wait:
		r, err := d.bus.Request(ctx, req.To, m)
		if err != nil {
			return nil, err
		}
		return &r, nil
	}
	return nil, d.bus.Send(ctx, req.To, m)
}

// apiModule serves the admin API on its unix socket and, if configured, on
// TCP behind a bearer token.
type apiModule struct {
	cfg       config.API
	server    *api.Server
	tcpServer *api.Server
}

func tcpServer(d *Daemon, cfg config.API, log hclog.Logger) *api.Server {
	if cfg.TCP == nil {
		return nil
	}
	return api.New(d, cfg.TCP.Token, log.Named("api-tcp"))
}

func (m *apiModule) Name() string { return "api" }

func (m *apiModule) Run(ctx context.Context, ready func()) error {
	unix, err := api.ListenUnix(m.cfg.Socket)
	if err != nil {
		return err
	}
	var tcp net.Listener
	if m.tcpServer != nil {
		if tcp, err = net.Listen("tcp", m.cfg.TCP.Address); err != nil {
			unix.Close()
			return fmt.Errorf("admin api tcp %s: %w", m.cfg.TCP.Address, err)
		}
	}
	// The first listener to fail stops the other, so the supervisor sees
	// the failure and restarts the module.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- m.server.Serve(ctx, unix) }()
	if tcp != nil {
		go func() { errc <- m.tcpServer.Serve(ctx, tcp) }()
	}
	ready()
	err = <-errc
	cancel()
	if tcp != nil {
		err = errors.Join(err, <-errc)
	}
	return err
}
