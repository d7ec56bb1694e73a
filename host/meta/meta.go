// Package meta is the daemon's "metamanager" module (group "meta"), the
// edge's metadata manager: every object the cloud sends is written to the
// store, durably, before the cloud gets its acknowledgement; the objects
// are handed to the modules that own them; and queries from local modules
// are answered from the cloud while it is connected (for the kinds edgecore
// asks the cloud for) and from the store otherwise. docs/meta.md describes
// the contract; KubeEdge's is in edgecore's edge/pkg/metamanager.
//
// Messages for one resource are handled in order; messages for different
// resources are handled by parallel lanes, so their store writes share
// fsyncs (the store's group commit).
package meta

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/store"
	"github.com/hashicorp/go-hclog"
)

// Names on the bus: KubeEdge's, so the cloud's routes and edgecore's
// modules' addressing carry over.
const (
	// ModuleName and Group are KubeEdge's metamanager module and group.
	ModuleName = "metamanager"
	Group      = "meta"
	// HubGroup is the cloud link's group: acknowledgements and remote
	// queries go there.
	HubGroup = "hub"
	// TwinGroup receives devices, device models and membership.
	TwinGroup = "twin"
	// RuntimeGroup is edged's group, the owner of pods, configmaps,
	// secrets and the rest of the Kubernetes objects.
	RuntimeGroup = "edged"
	// DevicesGroup is the devices module's group; it receives devices and
	// device models.
	DevicesGroup = "devices"
	// PluginGroup is host/pluginsync's group; it receives the
	// edgehostplugin objects.
	PluginGroup = "pluginsync"
)

// edgehost's own kinds (docs/hub.md, "Plugins from the cloud").
const (
	// PluginType is the EdgehostPlugin object: the package a node runs
	// for one plugin. It is stored and handed to PluginGroup.
	PluginType = "edgehostplugin"
	// PluginPackageType is a chunk of a package the node asked for; a
	// chunk is never stored.
	PluginPackageType = "edgehostpluginpackage"
)

// Route values of the connection broadcasts the hub sends to group meta.
const (
	ConnectionResource = "node/connection"
	CloudConnected     = "cloud_connected"
	CloudDisconnected  = "cloud_disconnected"
)

// Defaults for the zero fields of Config.
const (
	DefaultLanes              = 64
	DefaultRemoteQueryTimeout = 60 * time.Second
	DefaultRemoteQueries      = 32
)

// laneQueue is each lane's queue length; a full lane holds the receive
// loop, and so the bus queue, which is the back-pressure.
const laneQueue = 64

// Config configures the module. The zero value is usable.
type Config struct {
	// Lanes is how many resources are handled at once (DefaultLanes when
	// 0). Each lane waits for its write's fsync, so lanes are what lets
	// writes share one.
	Lanes int
	// RemoteQueryTimeout bounds a query sent to the cloud
	// (DefaultRemoteQueryTimeout, edgecore's remoteQueryTimeout, when 0).
	RemoteQueryTimeout time.Duration
	// RemoteQueries bounds the queries waiting for the cloud at once
	// (DefaultRemoteQueries when 0); more wait for a free slot.
	RemoteQueries int
}

// Module is the metamanager. Create it with New and run it under the
// supervisor.
type Module struct {
	bus  *bus.Bus
	objs objects
	cfg  Config
	log  hclog.Logger
	seed maphash.Seed

	connected atomic.Bool
	remote    chan struct{} // slots for remote queries
	queries   sync.WaitGroup

	pendingMu sync.Mutex
	pending   map[string]*remoteCall // remote queries by forwarded id

	c counters
}

// New returns the metamanager over the store st.
func New(b *bus.Bus, st *store.Store, cfg Config, log hclog.Logger) *Module {
	if cfg.Lanes <= 0 {
		cfg.Lanes = DefaultLanes
	}
	if cfg.RemoteQueryTimeout <= 0 {
		cfg.RemoteQueryTimeout = DefaultRemoteQueryTimeout
	}
	if cfg.RemoteQueries <= 0 {
		cfg.RemoteQueries = DefaultRemoteQueries
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Module{bus: b, objs: newObjects(st), cfg: cfg, log: log.Named("meta"), seed: maphash.MakeSeed(),
		remote: make(chan struct{}, cfg.RemoteQueries), pending: map[string]*remoteCall{}}
}

// Name implements supervisor.Module.
func (m *Module) Name() string { return ModuleName }

// Run implements supervisor.Module: it registers on the bus and handles
// messages until ctx ends. Messages still in the lanes then are dropped
// unacknowledged (the cloud sends them again) and counted.
func (m *Module) Run(ctx context.Context, ready func()) error {
	ep, err := m.bus.Register(ModuleName, Group)
	if err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	defer ep.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A lane and its goroutine start with the first message it is given:
	// an idle node or a quiet cloud uses a few of them, not all.
	lanes := make([]chan abi.Message, m.cfg.Lanes)
	var workers sync.WaitGroup
	lane := func(i uint64) chan abi.Message {
		if lanes[i] == nil {
			in := make(chan abi.Message, laneQueue)
			lanes[i] = in
			workers.Go(func() { m.lane(ctx, in) })
		}
		return lanes[i]
	}
	ready()
	m.log.Info("metamanager ready", "lanes", m.cfg.Lanes)
	for {
		msg, err := ep.Receive(ctx)
		if err != nil {
			stopped := ctx.Err() != nil
			cancel()
			workers.Wait()
			m.queries.Wait()
			if n := m.c.dropped.Load(); n > 0 {
				m.log.Warn("messages dropped unacknowledged at shutdown; the cloud sends them again", "messages", n)
			}
			if stopped {
				return nil
			}
			return fmt.Errorf("meta: %w", err)
		}
		if !m.intercept(ctx, msg) {
			select {
			case lane(maphash.String(m.seed, msg.Route.Resource) % uint64(len(lanes))) <- msg:
			case <-ctx.Done():
				m.c.dropped.Add(1)
			}
		}
	}
}

// lane handles the messages of its share of the resources, one at a time.
func (m *Module) lane(ctx context.Context, in <-chan abi.Message) {
	for {
		select {
		case msg := <-in:
			m.handle(ctx, msg)
		case <-ctx.Done():
			for {
				select {
				case <-in:
					m.c.dropped.Add(1)
				default:
					return
				}
			}
		}
	}
}

// intercept handles, in the receive loop, what must not wait behind a
// lane: connection state and the cloud's replies to remote queries. It
// reports whether it took msg.
func (m *Module) intercept(ctx context.Context, msg abi.Message) bool {
	if msg.Route.Resource == ConnectionResource {
		m.connection(msg)
		return true
	}
	if msg.Header.ParentID != "" && m.answer(msg) {
		return true
	}
	return false
}

// connection records the hub's cloud_connected / cloud_disconnected.
func (m *Module) connection(msg abi.Message) {
	switch unquote(msg.Content) {
	case CloudConnected:
		if !m.connected.Swap(true) {
			m.log.Info("cloud connected: queries for cloud-served kinds go to the cloud", "msg_id", msg.Header.ID)
		}
	case CloudDisconnected:
		if m.connected.Swap(false) {
			m.log.Info("cloud disconnected: every query is answered from the store", "msg_id", msg.Header.ID)
		}
	default:
		// A broadcast: the hub gets no reply, which it would send up.
		m.refused(msg, ReasonMalformedContent, fmt.Errorf("connection state %.40q is neither %s nor %s", msg.Content, CloudConnected, CloudDisconnected))
	}
}

// Connected reports whether the hub last said the cloud is connected.
func (m *Module) Connected() bool { return m.connected.Load() }

// unquote returns content as a string, without the quotes of a JSON
// string, so a string content reads the same whichever way the link
// carried it.
func unquote(content []byte) string {
	s := string(content)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// Get returns the stored object at key ({namespace}/{type}/{name}) and
// whether there is one. It reads the store directly, so it answers while
// the module is stopped too.
func (m *Module) Get(key string) (Object, bool, error) {
	if _, err := ParseResource(key, false); err != nil {
		return Object{}, false, err
	}
	return m.objs.get(key)
}

// List returns the stored objects of type typ (all types when empty) in
// namespace ns (all namespaces when empty), in key order.
func (m *Module) List(ns, typ string) ([]Object, error) {
	prefix := ""
	if ns != "" {
		prefix = ns + "/"
	}
	objs, bad, err := m.objs.list(typ, prefix)
	if err == nil && bad > 0 {
		m.report(problemBadRecord, "stored objects that do not decode were left out of a list", "objects", bad)
	}
	return objs, err
}
