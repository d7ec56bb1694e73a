// Package dmi is the daemon's side of KubeEdge's Device Management
// Interface (DMI), so mapper-framework mappers (KubeEdge's standard since
// v1.15) work with edgehost unchanged.
//
// It serves v1beta1.DeviceManagerService on a unix socket, as edgecore does
// on /etc/kubeedge/dmi.sock: mappers register (MapperRegister) and report
// twins (ReportDeviceStatus) and states (ReportDeviceStates). A report
// becomes the same bus message the eventbus makes of a mapper's MQTT
// publish on $hw/events/device/{ns}/{name}/twin/update or …/state/update,
// so DMI and MQTT mappers share one twin path (host/twin and the twin
// plugin). And it is the client of each registered mapper's
// v1beta1.DeviceMapperService: devices and models of the mapper's protocol
// go to it with RegisterDevice, UpdateDevice, RemoveDevice and the model
// calls as the Source reports them added, changed or removed.
//
// A device is bound to exactly one mapper, by its protocol: the DMI mapper
// that registered that protocol, or, for a protocol in
// Config.WasmProtocols, a wasm mapper plugin (docs/dmi.md).
package dmi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/edgehost/edgehost/host/bus"
	pb "github.com/edgehost/edgehost/host/dmi/v1beta1"
	"github.com/edgehost/edgehost/host/store"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
)

// ModuleName is the module's name under the supervisor.
const ModuleName = "dmi"

// Defaults for the zero fields of Config.
const (
	DefaultRate        = 200
	DefaultBurst       = 400
	DefaultCallTimeout = 10 * time.Second
)

// Config configures the module.
type Config struct {
	// Socket is the unix socket DeviceManagerService is served on.
	Socket string
	// Rate is how many DMI requests a second all mappers together may
	// make, beyond Burst (DefaultRate when not positive).
	Rate float64
	// Burst is how many requests may come at once (DefaultBurst when 0).
	Burst int
	// CallTimeout bounds each call to a mapper (DefaultCallTimeout when 0).
	CallTimeout time.Duration
	// WasmProtocols returns the protocols served by wasm mapper plugins
	// (those the plugins in service declare, and any the config reserves);
	// it is asked at each check. Their devices are never handed to a DMI
	// mapper, and a DMI mapper may not register them or report for their
	// devices. Nil: none.
	WasmProtocols func() []string
}

// Module is the DMI server and mapper client. Create it with New and run it
// under the supervisor.
type Module struct {
	cfg    Config
	bus    *bus.Bus
	source Source
	ns     *store.Namespace
	log    hclog.Logger
	limit  *limiter

	mu       sync.Mutex
	catalog  *Catalog           // nil until the source delivers one
	loaded   chan struct{}      // closed with the run's first catalog
	stopping <-chan struct{}    // closed when the run ends
	mappers  map[string]*mapper // by protocol
	kick     chan struct{}      // wakes the sync loop
}

// New returns the module. Devices come from source; registered mappers are
// kept in st, so they get their devices' changes after a restart without
// registering again.
func New(cfg Config, b *bus.Bus, st *store.Store, source Source, log hclog.Logger) *Module {
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Module{cfg: cfg, bus: b, source: source, ns: st.Namespace(ModuleName, "mappers"), log: log.Named(ModuleName),
		limit: newLimiter(cfg.Rate, cfg.Burst), mappers: map[string]*mapper{}, kick: make(chan struct{}, 1)}
}

// Name implements supervisor.Module.
func (m *Module) Name() string { return ModuleName }

// Run implements supervisor.Module: it serves the DMI socket and keeps the
// registered mappers' devices in step with the source until ctx ends.
func (m *Module) Run(ctx context.Context, ready func()) error {
	// A run after a failed one starts afresh: the mappers come back from
	// the store and take the source's next first catalog as theirs.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.mu.Lock()
	m.catalog, m.loaded, m.stopping = nil, make(chan struct{}), ctx.Done()
	m.mu.Unlock()
	if err := m.loadMappers(); err != nil {
		return err
	}
	defer m.closeMappers()
	l, err := listenUnix(m.cfg.Socket)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(m.limit.intercept))
	pb.RegisterDeviceManagerServiceServer(srv, &server{m: m})
	reflection.Register(srv)

	var workers sync.WaitGroup
	errc := make(chan error, 2)
	workers.Go(func() {
		if err := m.source.Watch(ctx, m.setCatalog); err != nil {
			errc <- fmt.Errorf("dmi: device source: %w", err)
		}
	})
	workers.Go(func() { m.syncLoop(ctx) })
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()
	ready()
	m.log.Info("dmi ready", "socket", m.cfg.Socket, "rate", m.cfg.Rate, "burst", m.cfg.Burst, "mappers", m.mapperCount())

	select {
	case <-ctx.Done():
	case err = <-errc:
	case err = <-serveErr:
		err = fmt.Errorf("dmi: serve %s: %w", m.cfg.Socket, err)
	}
	cancel()
	stopServer(srv)
	workers.Wait()
	os.Remove(m.cfg.Socket)
	return err
}

// stopServer lets in-flight RPCs finish for a moment, then cuts them.
func stopServer(srv *grpc.Server) {
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		srv.Stop()
		<-done
	}
}

// listenUnix listens on path, replacing a stale socket but not a live one
// (another edgehost, or an edgecore, serving DMI there).
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("dmi socket %q: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("dmi socket %q: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("dmi socket %q: another DMI server (edgecore?) is listening on it", path)
		}
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("dmi socket %q: %w", path, err)
	}
	// Mappers run as root in KubeEdge's deployments; nobody else may
	// report twins.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("dmi socket %q: %w", path, err)
	}
	return l, nil
}

// setCatalog takes the source's latest catalog and wakes the sync loop.
// The first catalog is what the mappers restored from the store are taken
// to hold.
func (m *Module) setCatalog(c *Catalog) {
	m.mu.Lock()
	first := m.catalog == nil
	m.catalog = c
	for p, mp := range m.mappers {
		if first && mp.held == nil {
			mp.held, mp.heldModels = m.boundDevices(p)
		}
	}
	if first {
		close(m.loaded)
	}
	m.mu.Unlock()
	m.log.Info("devices for dmi", "devices", len(c.Devices), "models", len(c.Models))
	m.wake()
}

// wake asks the sync loop for a pass.
func (m *Module) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// wasmBound reports whether protocol belongs to a wasm mapper.
func (m *Module) wasmBound(protocol string) bool {
	return m.cfg.WasmProtocols != nil && slices.Contains(m.cfg.WasmProtocols(), protocol)
}

// boundDevices returns the catalog's devices and models for a DMI mapper of
// protocol: the devices of that protocol and the models they reference.
// Callers hold m.mu.
func (m *Module) boundDevices(protocol string) (map[string]*pb.Device, map[string]*pb.DeviceModel) {
	devices, models := map[string]*pb.Device{}, map[string]*pb.DeviceModel{}
	if m.catalog == nil || m.wasmBound(protocol) {
		return devices, models
	}
	for id, d := range m.catalog.Devices {
		if Protocol(d) != protocol {
			continue
		}
		devices[id] = d
		if mid := ModelID(d); m.catalog.Models[mid] != nil {
			models[mid] = m.catalog.Models[mid]
		}
	}
	return devices, models
}

// runState returns the run's channels: loaded is closed once the run has
// its first catalog, stopping when the run ends.
func (m *Module) runState() (loaded, stopping <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loaded, m.stopping
}

// mapperCount is how many mappers are registered.
func (m *Module) mapperCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.mappers)
}

// errNoProtocol is MapperRegister's answer to a mapper that names none.
var errNoProtocol = errors.New("the mapper's protocol is empty")
