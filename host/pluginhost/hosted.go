package pluginhost

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/plugins"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/hashicorp/go-hclog"
)

// Where a plugin comes from.
const (
	// OriginConfig: named in modules.plugins.list.
	OriginConfig = "config"
	// OriginDir: a *.wasm file in modules.plugins.dir.
	OriginDir = "dir"
	// OriginInstalled: installed through the admin API.
	OriginInstalled = "installed"
	// OriginBuiltin: a first-party plugin embedded in the binary.
	OriginBuiltin = "builtin"
)

// hosted is one plugin the host knows: the version in service (nil when
// disabled or failed), its bus endpoint and workers, and its log. Fields
// other than cur are guarded by Module.mu.
type hosted struct {
	name   string
	origin string
	cur    atomic.Pointer[live]
	ring   *plugins.Ring
	logger hclog.Logger

	instances int
	record    *plugins.Record // installed only

	ep        *bus.Endpoint
	workers   *workerPool // serving ep
	ticker    *ticker
	lastError string
	compileMS float64
	loadMS    float64

	subs        subscriptions
	mqttDropped atomic.Uint64 // MQTT messages that did not reach the plugin's queue
	tickFailed  atomic.Uint64 // edgehost_tick calls that failed
	loops       atomic.Uint64 // requests refused because the plugin waits for their reply
}

func (m *Module) newHosted(name, origin string) *hosted {
	ring := plugins.NewRing(logLines)
	return &hosted{name: name, origin: origin, ring: ring,
		logger: plugins.NewRingLogger(m.log.Named(name), ring)}
}

// live is a loaded version of a plugin and what it receives. Swapping
// h.cur swaps both at once.
type live struct {
	p         *wasm.Plugin
	receives  []config.Pattern
	tick      time.Duration     // edgehost_tick interval; 0: never
	manifest  *plugins.Manifest // installed only
	protocols []string          // the device protocols it serves as a mapper
	digest    string            // hex sha256 of a config, dir or built-in module
}

// receives returns the patterns of the version in service.
func (h *hosted) receives() []config.Pattern {
	if l := h.cur.Load(); l != nil {
		return l.receives
	}
	return nil
}

// matches reports whether one of h's receive patterns matches msg.
func (h *hosted) matches(msg *abi.Message) bool {
	for _, p := range h.receives() {
		if p.Group == msg.Route.Group && match(p.Operation, msg.Route.Operation) && match(p.Resource, msg.Route.Resource) {
			return true
		}
	}
	return false
}

// router is the bus module "plugins:<group>" that hands messages of group
// to the plugins whose patterns match.
type router struct {
	ep      *bus.Endpoint
	targets atomic.Pointer[[]*hosted]
	workers *workerPool
}

// callsPerInstance is how many of a plugin's calls may be in flight per
// instance: a call whose KV writes are being made durable no longer holds
// its instance (wasm's committer), so more calls than instances keep the
// instances busy while earlier calls wait for their fsync, and their
// writes share it. The workers beyond the instances wait for one.
const callsPerInstance = 32

// workers is how many workers serve a plugin of that many instances.
func workers(instances int) int { return instances * callsPerInstance }

// serveHosted registers h on the bus and serves it with up to
// workers(instances) workers, so no goroutine is started per message.
// Called with m.mu held while running.
func (m *Module) serveHosted(h *hosted) error {
	if m.ctx == nil {
		return fmt.Errorf("plugin %q: the plugin host is not running", h.name)
	}
	if h.ep == nil {
		ep, err := m.bus.Register(h.name, Group)
		if err != nil {
			return fmt.Errorf("register plugin %q on the bus: %w", h.name, err)
		}
		h.ep = ep
		h.workers = m.startWorkers(m.ctx, ep, func() []*hosted { return []*hosted{h} })
	}
	h.workers.grow(workers(h.instances))
	m.serveTicks(h)
	return nil
}

// unserve takes h off the bus; its workers end once their calls in flight
// are done. Messages still queued for it are dropped (and counted by the
// bus).
func (m *Module) unserve(h *hosted) {
	if h.ep != nil {
		h.ep.Close()
		h.ep, h.workers = nil, nil
	}
	h.stopTicker()
	m.unsubscribeAll(h)
}

// reroute brings the group routers in line with the running plugins'
// receive patterns: a router per group some plugin receives, with enough
// workers for their instances. Called with m.mu held.
func (m *Module) reroute() error {
	routes := map[string][]*hosted{}
	var groups []string
	for _, h := range m.plugins {
		if h.ep == nil {
			continue
		}
		for _, p := range h.receives() {
			rs := routes[p.Group]
			if len(rs) > 0 && rs[len(rs)-1] == h {
				continue
			}
			if rs == nil {
				groups = append(groups, p.Group)
			}
			routes[p.Group] = append(rs, h)
		}
	}
	for g, r := range m.routers {
		if _, ok := routes[g]; !ok {
			r.ep.Close()
			delete(m.routers, g)
		}
	}
	for _, g := range groups {
		r := m.routers[g]
		if r == nil {
			ep, err := m.bus.Register(Group+":"+g, g)
			if err != nil {
				return fmt.Errorf("register the plugin router for group %q: %w", g, err)
			}
			r = &router{ep: ep}
			m.routers[g] = r
		}
		targets := routes[g]
		r.targets.Store(&targets)
		n := 0
		for _, h := range targets {
			n += workers(h.instances)
		}
		if r.workers == nil {
			r.workers = m.startWorkers(m.ctx, r.ep, func() []*hosted { return *r.targets.Load() })
		}
		r.workers.grow(n)
	}
	return nil
}

// workerPool is the workers that take messages from one endpoint and
// dispatch them. It starts with one; a worker that takes a message while
// no other waits starts another, up to max, so a plugin idle or lightly
// used runs one goroutine rather than workers(instances) of them.
type workerPool struct {
	m       *Module
	ctx     context.Context
	ep      *bus.Endpoint
	targets func() []*hosted
	routed  bool
	max     atomic.Int32 // workers it may run
	running atomic.Int32 // workers started
	waiting atomic.Int32 // workers in Receive
}

// startWorkers starts a pool of one worker that takes messages from ep and
// dispatches them to the targets of the moment; its workers end when ep is
// closed.
func (m *Module) startWorkers(ctx context.Context, ep *bus.Endpoint, targets func() []*hosted) *workerPool {
	p := &workerPool{m: m, ctx: ctx, ep: ep, targets: targets, routed: ep.Group() != Group}
	p.max.Store(1)
	p.running.Store(1)
	m.workers.Go(p.work)
	return p
}

// grow lets the pool run up to n workers.
func (p *workerPool) grow(n int) {
	for {
		cur := p.max.Load()
		if int32(n) <= cur || p.max.CompareAndSwap(cur, int32(n)) {
			return
		}
	}
}

func (p *workerPool) work() {
	for {
		p.waiting.Add(1)
		msg, err := p.ep.Receive(p.ctx)
		p.waiting.Add(-1)
		if err != nil {
			return
		}
		// No one left to take the next message: start a worker for it,
		// from this one, which the host's WaitGroup still counts.
		if p.waiting.Load() == 0 {
			if n := p.running.Add(1); n <= p.max.Load() {
				p.m.workers.Go(p.work)
			} else {
				p.running.Add(-1)
			}
		}
		p.m.dispatch(p.ctx, p.routed, p.targets(), &msg)
	}
}
