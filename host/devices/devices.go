// Package devices is the daemon's "devices" module: the device registry
// and the scheduler of wasm mapper plugins (abi/SPEC.md section 9).
//
// Devices come from the devices directory (read with host/twin's reader)
// and from the cloud's Device and DeviceModel objects, which the
// metamanager hands to group "devices". Each device is bound to the
// mapper plugin whose manifest declares its protocol
// (spec.protocol.protocolName); a device no mapper serves is listed as
// unbound. The host owns time: one heap of every property's collect
// cycle (schedule.go) sends each mapper a read of its devices' due
// properties, many devices a call; values become twin actual updates on
// the twin's own path, as an MQTT mapper's would; a twin delta (a desired
// value the actual one does not meet) becomes a write. Each mapper has its
// own queue and workers, so a slow mapper delays only its own devices,
// and a read still running when its next cycle falls due is counted as a
// missed cycle, never queued behind it.
package devices

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/twin"
	"github.com/hashicorp/go-hclog"
)

// ModuleName and Group are the module's bus name and group, where the
// metamanager sends the cloud's devices and device models.
const (
	ModuleName = "devices"
	Group      = "devices"
)

// Defaults for the zero fields of Config and of a property's cycles.
const (
	// DefaultCollectCycle and DefaultReportCycle are a property's cycles
	// when its collectCycle or reportCycle is 0, as mapper-framework
	// takes them.
	DefaultCollectCycle = time.Second
	DefaultReportCycle  = time.Second
	DefaultCallTimeout  = 5 * time.Second
	DefaultWorkers      = 4
	DefaultQueue        = 64
	// minCycle bounds how often a property is read.
	minCycle = 10 * time.Millisecond
)

// Bounds of one read call: it carries at most batchDevices devices and
// about batchBytes bytes of content.
const (
	batchDevices = 64
	batchBytes   = 48 << 10
)

// writeRetry is how long a value whose write failed waits before a delta
// may write it again.
const writeRetry = 30 * time.Second

// Config configures the module. The zero value is usable.
type Config struct {
	// DevicesDir holds KubeEdge Device and DeviceModel YAML (docs/twin.md);
	// empty means none.
	DevicesDir string
	// NodeName leaves out devices bound to another node, as the twin does.
	NodeName string
	// CallTimeout bounds each call to a mapper (DefaultCallTimeout).
	CallTimeout time.Duration
	// Workers is how many calls each mapper has in flight at most
	// (DefaultWorkers); Queue how many calls wait for them
	// (DefaultQueue). A read that finds the queue full is a missed cycle.
	Workers, Queue int
	// Now is the clock (time.Now when nil); tests drive the scheduler
	// with their own.
	Now func() time.Time
	// Stored, when set, lists the cloud's objects of a type (device,
	// devicemodel) that the metamanager stored, so that after a restart
	// the cloud's devices are served without the cloud.
	Stored func(typ string) ([]StoredObject, error)
}

// StoredObject is a cloud object as the metamanager keeps it.
type StoredObject struct {
	// Resource is its key, {namespace}/{type}/{name}.
	Resource string
	Content  []byte
}

// Mapper is a mapper plugin in service and the protocols it declares.
type Mapper struct {
	Name      string
	Protocols []string
}

// MapperSource lists the mapper plugins in service (the plugin host).
type MapperSource interface {
	Mappers() []Mapper
}

// MapperStarter is a MapperSource that can start a mapper on demand: the
// plugin host's built-in mappers start when a device needs their protocol.
type MapperStarter interface {
	// StartMapper starts a mapper that serves protocol and reports
	// whether it did.
	StartMapper(ctx context.Context, protocol string) (bool, error)
}

// MapperFunc adapts a function to MapperSource.
type MapperFunc func() []Mapper

// Mappers implements MapperSource.
func (f MapperFunc) Mappers() []Mapper { return f() }

// EventBus is the eventbus's subscription, for the twin's deltas.
type EventBus interface {
	Subscribe(owner, filter string, handler eventbus.Handler) (unsubscribe func(), err error)
}

// DeltaFilter is the MQTT filter of the twin's deltas, which turn into
// writes.
const DeltaFilter = "$hw/events/device/+/+/twin/update/delta"

// Module is the device registry and mapper scheduler. Create it with New
// and run it under the supervisor.
type Module struct {
	bus     *bus.Bus
	mappers MapperSource
	events  EventBus // nil: no eventbus, desired values are not written
	cfg     Config
	log     hclog.Logger

	// kick wakes the scheduler when an earlier entry was added; rebind
	// asks for the devices to be bound again.
	kick, rebind chan struct{}

	mu       sync.Mutex
	sched    schedule
	devices  map[string]*device    // by id, bound or not
	runs     map[string]*mapperRun // by plugin name
	dir      map[string]twin.Mapping
	dirFiles map[string]string // device id -> the file that declared it
	dirErr   error
	cloud    map[string][]byte // cloud Device objects, by id
	models   map[string][]byte // cloud DeviceModel objects, by id
	boundSig string            // the mapper set of the last binding
	gen      uint64
	ctx      context.Context // Run's, while running
	workers  sync.WaitGroup
	warned   map[string]bool
	started  map[string]bool // protocols a mapper start was asked for

	stats counters
}

// counters are the module's totals, for metrics.
type counters struct {
	reads, writes, missed, reports, states, reportsFailed atomic.Uint64
	errs                                                  [numKinds]atomic.Uint64
	worstLateNS, worstDoneNS                              atomic.Int64
	doneNS, doneCount                                     atomic.Int64 // sum and count of completion lateness
}

// New returns the module. mappers lists the mapper plugins; events, if
// not nil, carries the twin's deltas.
func New(b *bus.Bus, mappers MapperSource, events EventBus, cfg Config, log hclog.Logger) *Module {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Module{bus: b, mappers: mappers, events: events, cfg: cfg, log: log.Named(ModuleName),
		kick: make(chan struct{}, 1), rebind: make(chan struct{}, 1),
		devices: map[string]*device{}, runs: map[string]*mapperRun{}, cloud: map[string][]byte{}, models: map[string][]byte{},
		warned: map[string]bool{}, started: map[string]bool{}}
}

// Name implements supervisor.Module.
func (m *Module) Name() string { return ModuleName }

// bindEvery is how often the module looks for mapper plugins that came or
// went.
const bindEvery = time.Second

// Run implements supervisor.Module: it takes the cloud's devices, binds
// devices to mappers and schedules their reads until ctx ends.
func (m *Module) Run(ctx context.Context, ready func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ep, err := m.bus.Register(ModuleName, Group)
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	defer ep.Close()
	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	defer m.shutdown()
	if m.cfg.DevicesDir != "" {
		m.readDir()
	}
	m.restoreCloud()
	if m.events != nil {
		unsub, err := m.events.Subscribe(ModuleName, DeltaFilter, m.onDelta)
		if err != nil {
			m.log.Warn("twin deltas not subscribed; desired values are not written to devices", "error", err)
		} else {
			defer unsub()
		}
	}
	m.bind()
	var loops sync.WaitGroup
	defer loops.Wait()
	defer cancel()
	loops.Go(func() { m.receive(ctx, ep) })
	loops.Go(func() { m.bindLoop(ctx) })
	ready()
	m.log.Info("devices ready", "devices", m.deviceCount(), "dir", m.cfg.DevicesDir)
	m.scheduleLoop(ctx)
	return nil
}

// shutdown stops every mapper's workers and waits for them.
func (m *Module) shutdown() {
	m.mu.Lock()
	for name, r := range m.runs {
		r.stop()
		delete(m.runs, name)
	}
	m.ctx = nil
	m.mu.Unlock()
	m.workers.Wait()
}

// Reload re-reads the devices dir and binds what changed; the twin
// module re-reads the same dir for the twin plugin.
func (m *Module) Reload() error {
	if m.cfg.DevicesDir == "" {
		return nil
	}
	err := m.readDir()
	m.askRebind()
	return err
}

// readDir reads the devices dir. A dir that cannot be read keeps the
// devices as they were; a refused file keeps the devices it declared
// before, as the twin does.
func (m *Module) readDir() error {
	read, err := twin.ReadDevicesDir(m.cfg.DevicesDir, m.cfg.NodeName)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.dirErr = err
		m.log.Warn("devices dir cannot be read; keeping the devices as they were", "dir", m.cfg.DevicesDir, "error", err)
		return err
	}
	m.dirErr = nil
	next, files := map[string]twin.Mapping{}, map[string]string{}
	for _, f := range read.Files {
		if f.Err != nil {
			for id, file := range m.dirFiles {
				if file == f.Name {
					next[id], files[id] = m.dir[id], file
				}
			}
			continue
		}
		for _, mp := range f.Mappings {
			next[mp.ID], files[mp.ID] = mp, f.Name
		}
	}
	m.dir, m.dirFiles = next, files
	return nil
}

// receive takes the cloud's Device and DeviceModel objects from the
// metamanager: resource {namespace}/device/{name} or
// {namespace}/devicemodel/{name}, operation insert, update or delete.
func (m *Module) receive(ctx context.Context, ep *bus.Endpoint) {
	for {
		msg, err := ep.Receive(ctx)
		if err != nil {
			return
		}
		if err := m.takeObject(&msg); err != nil {
			m.warnOnce("cloud object", "cloud device object not taken", "resource", msg.Route.Resource, "msg_id", msg.Header.ID, "error", err)
			continue
		}
		m.askRebind()
	}
}

// restoreCloud takes the cloud's stored device models, then devices, as
// if the cloud had just sent them.
func (m *Module) restoreCloud() {
	if m.cfg.Stored == nil {
		return
	}
	for _, typ := range []string{"devicemodel", "device"} {
		objs, err := m.cfg.Stored(typ)
		if err != nil {
			m.log.Warn("stored cloud objects not read; the cloud's devices wait for the cloud", "type", typ, "error", err)
			continue
		}
		for _, o := range objs {
			msg := abi.Message{Route: abi.Route{Source: "metamanager", Operation: abi.OpInsert, Resource: o.Resource}, Content: o.Content}
			if err := m.takeObject(&msg); err != nil {
				m.warnOnce("stored object", "stored cloud device object not taken", "resource", o.Resource, "error", err)
			}
		}
	}
}

// takeObject records one cloud object.
func (m *Module) takeObject(msg *abi.Message) error {
	parts := strings.Split(msg.Route.Resource, "/")
	if len(parts) != 3 || parts[2] == "" {
		return fmt.Errorf("resource %q is not {namespace}/device/{name} or {namespace}/devicemodel/{name}", msg.Route.Resource)
	}
	ns := parts[0]
	if ns == "" {
		ns = "default"
	}
	id := ns + "/" + parts[2]
	var into map[string][]byte
	switch parts[1] {
	case "device":
		into = m.cloud
	case "devicemodel":
		into = m.models
	default:
		return fmt.Errorf("resource %q is not a device or device model", msg.Route.Resource)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch msg.Route.Operation {
	case abi.OpDelete:
		delete(into, id)
	case abi.OpInsert, abi.OpUpdate:
		if parts[1] == "device" {
			if _, err := twin.DecodeMapping(msg.Content, nil); err != nil {
				return err
			}
		}
		into[id] = slices.Clone(msg.Content)
	default:
		return fmt.Errorf("operation %q is not insert, update or delete", msg.Route.Operation)
	}
	return nil
}

// askRebind asks the bind loop for a pass.
func (m *Module) askRebind() {
	select {
	case m.rebind <- struct{}{}:
	default:
	}
}

// bindLoop binds devices again when asked and when the mapper plugins
// change, until ctx ends.
func (m *Module) bindLoop(ctx context.Context) {
	t := time.NewTicker(bindEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.rebind:
			m.bind()
		case <-t.C:
			if m.mapperSig() != m.currentSig() {
				m.bind()
			}
		}
	}
}

// mapperSig is a signature of the mapper plugins in service.
func (m *Module) mapperSig() string {
	var b strings.Builder
	for _, mp := range m.mappers.Mappers() {
		b.WriteString(mp.Name)
		b.WriteByte('=')
		b.WriteString(strings.Join(mp.Protocols, ","))
		b.WriteByte(';')
	}
	return b.String()
}

func (m *Module) currentSig() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.boundSig
}

// deviceCount is how many devices the module knows.
func (m *Module) deviceCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.devices)
}

// Protocols returns the protocols the mappers of src declare, sorted and
// without repeats: DMI refuses them to native mappers.
func Protocols(src MapperSource) []string {
	var out []string
	for _, mp := range src.Mappers() {
		for _, p := range mp.Protocols {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out
}

// warnOnce logs at WARN the first time key is seen, at DEBUG after.
func (m *Module) warnOnce(key, msg string, args ...any) {
	m.mu.Lock()
	seen := m.warned[key]
	m.warned[key] = true
	m.mu.Unlock()
	if seen {
		m.log.Debug(msg, args...)
	} else {
		m.log.Warn(msg+"; further ones are logged at debug", args...)
	}
}
