// Package twin is the daemon's "twin" module: a thin adapter between the
// bus and the device twin plugin (plugins/devicetwin), which makes every
// twin decision.
//
// The module registers as KubeEdge's twin module ("twin" in group "twin"),
// so the eventbus's device and node topics and the cloud's twin messages
// reach it, and hands each message to the plugin by name. It keeps the
// messages of one device in order: a device's next message goes to the
// plugin only once the plugin has answered the previous one, which is after
// that call's KV writes are committed; messages of different devices run
// in parallel (router.go), so their commits share fsyncs. Membership messages
// change the registry and run alone, once the lanes are drained.
//
// It also keeps the plugin's devices in step with the devices directory
// (KubeEdge v1beta1 Device and DeviceModel YAML, handover.go): read at
// start and on Reload (SIGHUP, `edgehost devices reload`), handed over in
// bounded batches that are retried until the plugin takes them; and it
// carries what the plugin sends upstream to the cloud link with the route
// KubeEdge's twin module gives it (source "twin", group "resource").
package twin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/store"
	"github.com/hashicorp/go-hclog"
)

// Names on the bus.
const (
	// ModuleName and Group are KubeEdge's twin module and group.
	ModuleName = "twin"
	Group      = "twin"
	// UpstreamName and UpstreamGroup receive what the plugin sends to the
	// cloud; the plugin addresses them by group.
	UpstreamName  = "twin-upstream"
	UpstreamGroup = "twin-upstream"
	// SourceDevicesDir is the source of the membership updates that hand
	// the plugin the devices of the devices directory, on resource
	// ResourceDevicesDir.
	SourceDevicesDir   = "devicesdir"
	ResourceDevicesDir = "membership/updated"
)

// Defaults for the zero fields of Config.
const (
	DefaultPlugin  = "devicetwin"
	DefaultLanes   = 64
	DefaultTimeout = 30 * time.Second
)

// Config configures the module. The zero value is usable.
type Config struct {
	// Plugin is the twin plugin's name (DefaultPlugin when empty).
	Plugin string
	// DevicesDir holds KubeEdge Device and DeviceModel YAML files; empty
	// means none.
	DevicesDir string
	// NodeName is this node's name: devices whose spec.nodeName names
	// another node are left out (empty: every device is this node's), and
	// it is the group_id of the membership request sent to the cloud when
	// the link comes up.
	NodeName string
	// Lanes is how many devices are served at once (DefaultLanes when 0).
	// A lane waits for its update's commit, an instance does not, so lanes
	// may well outnumber the plugin's instances.
	Lanes int
	// Timeout bounds one hand-over to the plugin (DefaultTimeout when 0).
	Timeout time.Duration
	// Store keeps which file declared which device across restarts, so a
	// device is removed when its file is; nil keeps it in memory only.
	Store *store.Store
}

// Module is the twin adapter. Create it with New and run it under the
// supervisor.
type Module struct {
	bus *bus.Bus
	cfg Config
	log hclog.Logger

	mu  sync.Mutex
	reg *registry // of the current run; nil without a devices dir

	upstream, upstreamDropped, confirms atomic.Uint64
}

// Stats counts the module's traffic with the cloud since it was made.
type Stats struct {
	// Upstream counts the plugin's messages handed to the cloud link;
	// UpstreamDropped those that could not be (no link, a full queue).
	Upstream, UpstreamDropped uint64
	// Confirms counts the cloud's confirms of upstream messages (operation
	// response, resource "twin"); the module takes them itself, so they
	// cost the plugin no call.
	Confirms uint64
}

// Stats returns the module's counters.
func (m *Module) Stats() Stats {
	return Stats{Upstream: m.upstream.Load(), UpstreamDropped: m.upstreamDropped.Load(), Confirms: m.confirms.Load()}
}

// isConfirm reports whether msg is the cloud's confirm of an upstream twin
// message, as KubeEdge's devicecontroller sends it.
func isConfirm(msg *abi.Message) bool {
	return msg.Route.Operation == abi.OpResponse && msg.Route.Resource == "twin"
}

// New returns the twin module.
func New(b *bus.Bus, cfg Config, log hclog.Logger) *Module {
	if cfg.Plugin == "" {
		cfg.Plugin = DefaultPlugin
	}
	if cfg.Lanes <= 0 {
		cfg.Lanes = DefaultLanes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Module{bus: b, cfg: cfg, log: log.Named("twin")}
}

// Name implements supervisor.Module.
func (m *Module) Name() string { return ModuleName }

// Run implements supervisor.Module: it routes until ctx ends, and keeps
// the plugin's devices in step with the devices directory. A devices
// directory that cannot be read, or a file that is refused, changes
// nothing in the plugin and does not fail the run: NotReady says so and
// the reading is retried.
func (m *Module) Run(ctx context.Context, ready func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ep, err := m.bus.Register(ModuleName, Group)
	if err != nil {
		return fmt.Errorf("twin: %w", err)
	}
	defer ep.Close()
	up, err := m.bus.Register(UpstreamName, UpstreamGroup)
	if err != nil {
		return fmt.Errorf("twin: %w", err)
	}
	defer up.Close()

	var workers sync.WaitGroup
	workers.Go(func() { m.forwardUpstream(ctx, up) })
	r := newRouter(ctx, m, m.cfg.Lanes, &workers)
	if m.cfg.DevicesDir != "" {
		reg := newRegistry(m, r)
		m.mu.Lock()
		m.reg = reg
		m.mu.Unlock()
		// Ready once the first reading is handed over (or has failed, or
		// waits for the plugin), so a daemon that says it is ready has
		// its devices.
		workers.Go(func() { reg.run(ctx, ready) })
	} else {
		ready()
	}
	m.log.Info("twin routing", "plugin", m.cfg.Plugin, "lanes", m.cfg.Lanes)
	for {
		msg, err := ep.Receive(ctx)
		if err != nil {
			cancel()
			r.close()
			up.Close()
			workers.Wait()
			if n := r.dropped.Load(); n > 0 {
				m.log.Warn("twin messages dropped at shutdown", "messages", n)
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("twin: %w", err)
		}
		if isCloudConnected(&msg) {
			m.requestMembership(ctx)
		}
		if isConfirm(&msg) {
			m.confirms.Add(1)
			continue
		}
		r.route(ctx, msg)
	}
}

// isCloudConnected reports whether msg is the cloud link's news that it
// came up.
func isCloudConnected(msg *abi.Message) bool {
	return msg.Route.Resource == "node/connection" && string(msg.Content) == "cloud_connected"
}

// requestMembership asks the cloud for the node's device list, as
// KubeEdge's twin does each time the link comes up: a get of
// membership/detail whose content is the event as a JSON string. A v1.23
// cloud ignores it; devices arrive as membership updates.
func (m *Module) requestMembership(ctx context.Context) {
	now := time.Now().UnixMilli()
	content := fmt.Sprintf(`{"event_type":"group_membership_event","event_id":%q,"group_id":%q,"operation":"detail","timestamp":%d}`,
		bus.NewID(), m.cfg.NodeName, now)
	msg := abi.Message{Header: abi.Header{ID: bus.NewID(), Timestamp: now},
		Route:   abi.Route{Source: ModuleName, Group: "resource", Operation: "get", Resource: "membership/detail"},
		Content: []byte(content)}
	if err := m.bus.SendToGroup(ctx, eventbus.HubGroup, msg); err != nil {
		m.log.Warn("membership request not sent to the cloud link", "error", err)
	}
}

// pluginPresent reports whether the plugin is registered on the bus.
func (m *Module) pluginPresent() bool {
	for _, s := range m.bus.Stats().Modules {
		if s.Name == m.cfg.Plugin {
			return true
		}
	}
	return false
}

// deliver hands msg to the plugin and waits until it is applied.
func (m *Module) deliver(ctx context.Context, msg abi.Message) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	reply, err := m.bus.Request(ctx, m.cfg.Plugin, msg)
	if err != nil {
		return err
	}
	if reply.Route.Operation == abi.OpError {
		return errors.New(string(reply.Content))
	}
	return nil
}

// laneKey returns the device a message is about, or alone = true for a
// message that changes the device registry.
func laneKey(msg *abi.Message) (key string, alone bool) {
	res := msg.Route.Resource
	if msg.Route.Source == eventbus.ModuleGroup {
		topic, err := eventbus.TopicOfTwinResource(res)
		if err != nil {
			return res, false
		}
		if rest, ok := strings.CutPrefix(topic, "$hw/events/device/"); ok {
			return deviceID(rest), false
		}
		return topic, false
	}
	if strings.Contains(res, "membership") {
		return "", true
	}
	if rest, ok := strings.CutPrefix(res, "device/"); ok {
		return deviceID(rest), false
	}
	return res, false
}

// deviceID is the {namespace}/{name} that starts a device topic or
// resource.
func deviceID(rest string) string {
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return rest
	}
	if j := strings.IndexByte(rest[i+1:], '/'); j >= 0 {
		return rest[:i+1+j]
	}
	return rest
}

// forwardUpstream sends what the plugin sends upstream to the cloud link,
// as KubeEdge's twin module would: source "twin", route group "resource".
// Without a cloud link the message is dropped and logged at debug level.
func (m *Module) forwardUpstream(ctx context.Context, up *bus.Endpoint) {
	for {
		msg, err := up.Receive(ctx)
		if err != nil {
			return
		}
		msg.Route.Source, msg.Route.Group = ModuleName, "resource"
		err = m.bus.SendToGroup(ctx, eventbus.HubGroup, msg)
		if err == nil {
			m.upstream.Add(1)
		} else {
			m.upstreamDropped.Add(1)
		}
		switch {
		case errors.Is(err, bus.ErrNoModule):
			m.log.Debug("no cloud link; upstream twin message dropped", "resource", msg.Route.Resource)
		case err != nil:
			m.log.Warn("upstream twin message not sent", "resource", msg.Route.Resource, "error", err)
		}
	}
}

// NotReady implements supervisor.Checker: a reason while the twin plugin
// is not on the bus, when twin traffic would go unanswered; while the
// devices dir cannot be read or is not handed to the plugin yet; and for
// each refused devices file.
func (m *Module) NotReady() []string {
	var out []string
	if !m.pluginPresent() {
		out = append(out, fmt.Sprintf("twin: the twin plugin %s is not running; twin messages go unanswered", m.cfg.Plugin))
	}
	m.mu.Lock()
	reg := m.reg
	m.mu.Unlock()
	if reg != nil {
		out = append(out, reg.notReady()...)
	}
	return out
}

// ErrNoDevicesDir is Reload's error when no devices dir is configured.
var ErrNoDevicesDir = errors.New("no devices dir is configured (modules.devices.dir, --devices-dir)")

// Reload re-reads the devices dir and hands the plugin what changed: new
// and changed devices, and the removal of those whose file was removed.
// It returns once that is done or has failed once (it is then retried),
// or when ctx ends.
func (m *Module) Reload(ctx context.Context) (Report, error) {
	m.mu.Lock()
	reg := m.reg
	m.mu.Unlock()
	if reg == nil {
		return Report{}, ErrNoDevicesDir
	}
	return reg.Reload(ctx)
}
