// Package bus is edgehost's in-process message bus: named modules in groups
// exchange abi.Message values through bounded queues.
//
// A module registers under a name and a group (KubeEdge's names: "twin" in
// group "twin", "eventbus" and "servicebus" in group "bus", ...) and takes its
// messages with Endpoint.Receive. Any code holding the Bus can Send to a
// module, SendToGroup (one member, round-robin), Broadcast (every member), or
// Request a reply, which the handling module gives with Respond. A reply is
// matched to its request only by Header.ParentID == the request's Header.ID.
//
// Back-pressure is explicit: a full queue blocks the sender until
// Options.SendTimeout or the context's deadline, whichever comes first, and
// then fails with ErrQueueFull, counted against the module. Nothing is dropped
// silently and nothing spawns a goroutine per message: messages still queued
// when a module or the bus closes are counted in Stats.Dropped.
//
// Messages travel by value, but a message's Content bytes are shared between
// the sender and every receiver (all members, for Broadcast): neither side may
// modify Content after sending or receiving it.
package bus

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// Options tune a Bus. The zero value is usable.
type Options struct {
	// QueueLen is the capacity of each module's queue (default 1024).
	QueueLen int
	// SendTimeout bounds how long a send waits for room in a full queue
	// (default 2s). A context deadline that comes sooner wins.
	SendTimeout time.Duration
}

// Bus carries messages between registered modules. Create one with New; all
// methods are safe for concurrent use.
type Bus struct {
	opts Options

	mu     sync.Mutex               // serialises Register, Endpoint.Close and Close
	seq    uint64                   // registration counter, under mu
	reg    atomic.Pointer[registry] // read lock-free on every send
	closed atomic.Bool
	done   chan struct{} // closed by Close; wakes waiting requesters

	pending pendingTable

	noModule  atomic.Uint64
	noWaiter  atomic.Uint64
	abandoned atomic.Uint64
	dropped   atomic.Uint64
}

// registry is an immutable snapshot of the registered modules; Register and
// Endpoint.Close replace it whole, so senders never take a lock to find a
// module.
type registry struct {
	modules map[string]*Endpoint
	groups  map[string]*group
}

// group is a snapshot of one group's members in registration order.
type group struct {
	members []*Endpoint
	next    atomic.Uint32 // round-robin cursor for SendToGroup
}

// New returns a Bus with no modules.
func New(opts Options) *Bus {
	if opts.QueueLen <= 0 {
		opts.QueueLen = 1024
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 2 * time.Second
	}
	b := &Bus{opts: opts, done: make(chan struct{})}
	b.reg.Store(&registry{modules: map[string]*Endpoint{}, groups: map[string]*group{}})
	b.pending.init()
	return b
}

// Register adds a module called name to group and returns its endpoint. The
// name must be unused; it becomes free again when the endpoint is closed.
func (b *Bus) Register(name, group string) (*Endpoint, error) {
	if name == "" || group == "" {
		return nil, fmt.Errorf("bus: register %q in group %q: %w", name, group, ErrInvalid)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return nil, fmt.Errorf("bus: register %q: %w", name, ErrClosed)
	}
	old := b.reg.Load()
	if _, taken := old.modules[name]; taken {
		return nil, fmt.Errorf("bus: register %q: module name %w", name, ErrDuplicate)
	}
	ep := &Endpoint{
		bus:   b,
		name:  name,
		group: group,
		inbox: make(chan abi.Message, b.opts.QueueLen),
		done:  make(chan struct{}),
		seq:   b.seq,
	}
	b.seq++
	mods := maps.Clone(old.modules)
	mods[name] = ep
	b.reg.Store(newRegistry(mods))
	return ep, nil
}

// unregister removes ep from the registry if it is still there.
func (b *Bus) unregister(ep *Endpoint) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.reg.Load()
	if b.closed.Load() || old.modules[ep.name] != ep {
		return
	}
	mods := maps.Clone(old.modules)
	delete(mods, ep.name)
	b.reg.Store(newRegistry(mods))
}

// newRegistry builds the group index for a module set.
func newRegistry(mods map[string]*Endpoint) *registry {
	r := &registry{modules: mods, groups: map[string]*group{}}
	eps := slices.SortedFunc(maps.Values(mods), func(a, b *Endpoint) int { return cmp.Compare(a.seq, b.seq) })
	for _, ep := range eps {
		g := r.groups[ep.group]
		if g == nil {
			g = &group{}
			r.groups[ep.group] = g
		}
		g.members = append(g.members, ep)
	}
	return r
}

// Close shuts the bus down: every Request still waiting returns ErrClosed at
// once, senders blocked on a full queue and Receive calls return ErrClosed,
// messages still queued are dropped and counted, and every later call fails
// with ErrClosed. Close is idempotent. Stats stay readable.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Swap(true) {
		return
	}
	close(b.done)
	for _, ep := range b.reg.Load().modules {
		ep.shut()
	}
}

// lookup finds the module a send is addressed to.
func (b *Bus) lookup(op, to string) (*Endpoint, error) {
	if b.closed.Load() {
		return nil, fmt.Errorf("bus: %s to %q: %w", op, to, ErrClosed)
	}
	ep := b.reg.Load().modules[to]
	if ep == nil {
		b.noModule.Add(1)
		return nil, fmt.Errorf("bus: %s to %q: %w", op, to, ErrNoModule)
	}
	return ep, nil
}

// lookupGroup finds the members of the group a send is addressed to.
func (b *Bus) lookupGroup(op, name string) (*group, error) {
	if b.closed.Load() {
		return nil, fmt.Errorf("bus: %s to group %q: %w", op, name, ErrClosed)
	}
	g := b.reg.Load().groups[name]
	if g == nil {
		b.noModule.Add(1)
		return nil, fmt.Errorf("bus: %s to group %q: %w", op, name, ErrNoModule)
	}
	return g, nil
}

// HasGroup reports whether a module of group is registered now, without
// counting a miss as a send to no module does.
func (b *Bus) HasGroup(name string) bool {
	g := b.reg.Load().groups[name]
	return g != nil && len(g.members) > 0
}

// Stats is a snapshot of the bus's counters.
type Stats struct {
	// Modules holds each registered module's counters, sorted by name.
	Modules []ModuleStats
	// NoModule counts sends and requests addressed to an unknown module or
	// an empty group.
	NoModule uint64
	// NoWaiter counts replies that no request was waiting for.
	NoWaiter uint64
	// Abandoned counts requests whose caller stopped waiting (deadline,
	// cancellation, Close) before the reply came.
	Abandoned uint64
	// Dropped counts messages still queued when their module or the bus
	// closed.
	Dropped uint64
	// Pending is the number of requests waiting for a reply now.
	Pending int
}

// Stats returns the bus's counters and every module's.
func (b *Bus) Stats() Stats {
	s := Stats{
		NoModule:  b.noModule.Load(),
		NoWaiter:  b.noWaiter.Load(),
		Abandoned: b.abandoned.Load(),
		Dropped:   b.dropped.Load(),
		Pending:   b.pending.len(),
	}
	for _, ep := range b.reg.Load().modules {
		s.Modules = append(s.Modules, ep.Stats())
	}
	slices.SortFunc(s.Modules, func(a, b ModuleStats) int { return cmp.Compare(a.Name, b.Name) })
	return s
}

// stamp fills a message's ID and Timestamp when the caller left them empty,
// so every message on the bus is traceable.
func stamp(m *abi.Message) {
	if m.Header.ID == "" {
		m.Header.ID = NewID()
	}
	if m.Header.Timestamp == 0 {
		m.Header.Timestamp = time.Now().UnixMilli()
	}
}
