package twin

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/edgehost/edgehost/abi"
)

// router keeps each device's messages in order and serves up to lanes
// devices at once: a device's messages wait in its own queue, and a device
// with a message waiting is on the ready list until a lane takes it. So a
// busy device never holds up another one (as a lane per hash of the device
// did: 64 devices over 16 lanes put 8 behind one), and a lane is free again
// as soon as its message is answered. Membership messages run alone, once
// every queue is empty.
type router struct {
	m *Module

	// routing is held while a message is routed or a function runs alone,
	// so nothing is routed while the queues drain for it.
	routing sync.Mutex

	// ctx, lanes and workers start lanes: one when more devices are ready
	// than lanes idle, up to lanes, so an idle daemon runs none (64 lanes
	// were 64 goroutine stacks from the start).
	ctx     context.Context
	lanes   int
	workers *sync.WaitGroup

	mu      sync.Mutex
	running int                     // lanes started
	idle    int                     // lanes waiting for a ready device
	cond    *sync.Cond              // signalled when ready grows, room frees or the router closes
	devices map[string]*deviceQueue // devices with messages queued or in flight
	ready   []*deviceQueue          // devices with a message waiting and none in flight
	queued  int                     // messages in device queues, not yet taken by a lane
	closed  bool
	pending sync.WaitGroup // messages queued or in flight
	dropped atomic.Int64   // left queued when the module stopped
}

// deviceQueue is one device's messages, oldest first.
type deviceQueue struct {
	key  string
	msgs []abi.Message
	busy bool // a lane is handing over one of its messages
}

// maxQueued bounds the messages waiting in the device queues; past it,
// route holds up the receive loop, which leaves further messages queued on
// the bus (and the bus pushes back on the eventbus).
const maxQueued = 4096

// newRouter makes a router of up to n lanes, started as devices need them
// (on workers), which end when the router is closed. Once ctx ends they
// drop what is still queued, as the bus drops what is queued for a module
// that stops.
func newRouter(ctx context.Context, m *Module, n int, workers *sync.WaitGroup) *router {
	r := &router{m: m, devices: map[string]*deviceQueue{}, ctx: ctx, lanes: max(n, 1), workers: workers}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// readied puts q on the ready list and wakes a lane, starting one when
// fewer lanes idle than devices are ready and fewer than lanes run.
// Called with r.mu held.
func (r *router) readied(q *deviceQueue) {
	r.ready = append(r.ready, q)
	if len(r.ready) > r.idle && r.running < r.lanes && !r.closed {
		// close sets closed under r.mu before the module waits for its
		// workers, so no lane is started once it waits.
		r.running++
		r.workers.Go(func() { r.lane(r.ctx) })
	}
	r.cond.Broadcast()
}

// route queues msg behind its device's earlier messages, or, for a
// membership message, waits until every device queue is empty and hands
// it over alone.
func (r *router) route(ctx context.Context, msg abi.Message) {
	key, alone := laneKey(&msg)
	if alone {
		r.alone(func() { r.handOver(ctx, msg) })
		return
	}
	r.routing.Lock()
	defer r.routing.Unlock()
	r.pending.Add(1)
	r.mu.Lock()
	for r.queued >= maxQueued && !r.closed {
		r.cond.Wait()
	}
	q := r.devices[key]
	if q == nil {
		q = &deviceQueue{key: key}
		r.devices[key] = q
	}
	q.msgs = append(q.msgs, msg)
	r.queued++
	if !q.busy && len(q.msgs) == 1 {
		r.readied(q)
	}
	r.mu.Unlock()
}

// alone runs fn once every device queue is empty, with nothing routed
// meanwhile: a membership change never races a device's twin messages.
func (r *router) alone(fn func()) {
	r.routing.Lock()
	defer r.routing.Unlock()
	r.pending.Wait()
	fn()
}

// lane hands over the oldest message of each ready device in turn until
// the router is closed and nothing is ready.
func (r *router) lane(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		for len(r.ready) == 0 && !r.closed {
			r.idle++
			r.cond.Wait()
			r.idle--
		}
		if len(r.ready) == 0 {
			return
		}
		q := r.ready[0]
		r.ready[0] = nil
		r.ready = r.ready[1:]
		msg := q.msgs[0]
		q.msgs[0] = abi.Message{}
		q.msgs = q.msgs[1:]
		q.busy = true
		r.queued--
		r.cond.Broadcast() // room for route
		r.mu.Unlock()
		if ctx.Err() != nil {
			r.dropped.Add(1)
		} else {
			r.handOver(ctx, msg)
		}
		r.mu.Lock()
		q.busy = false
		if len(q.msgs) > 0 {
			r.ready = append(r.ready, q)
		} else {
			delete(r.devices, q.key)
		}
		r.pending.Done()
	}
}

// close ends the lanes once they have handed over what is queued.
func (r *router) close() {
	r.mu.Lock()
	r.closed = true
	r.cond.Broadcast()
	r.mu.Unlock()
}

// handOver delivers one message, logging a failure: the plugin has then
// applied nothing of it.
func (r *router) handOver(ctx context.Context, msg abi.Message) {
	if err := r.m.deliver(ctx, msg); err != nil {
		r.m.log.Warn("twin message not applied", "plugin", r.m.cfg.Plugin, "source", msg.Route.Source,
			"operation", msg.Route.Operation, "resource", msg.Route.Resource, "id", msg.Header.ID, "error", err)
	}
}
