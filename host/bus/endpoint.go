package bus

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/edgehost/edgehost/abi"
)

// Endpoint is one registered module's end of the bus: its queue and its
// counters. The module takes its messages with Receive, typically from one
// loop.
type Endpoint struct {
	bus   *Bus
	name  string
	group string
	seq   uint64 // registration order, for round-robin and Broadcast order
	inbox chan abi.Message
	done  chan struct{} // closed when the endpoint or the bus closes

	// Senders write these; the receiver writes received. The padding keeps
	// them on separate cache lines so the two sides do not contend.
	sent   atomic.Uint64
	failed atomic.Uint64
	_      [64]byte

	received atomic.Uint64
	closed   atomic.Bool
}

// Name returns the module's name.
func (ep *Endpoint) Name() string { return ep.name }

// Group returns the module's group.
func (ep *Endpoint) Group() string { return ep.group }

// Receive returns the next message in the module's queue, waiting until one
// arrives, ctx ends (ctx.Err() is returned) or the module or the bus closes
// (ErrClosed).
func (ep *Endpoint) Receive(ctx context.Context) (abi.Message, error) {
	if ep.closed.Load() {
		return abi.Message{}, ep.errClosed()
	}
	// Fast path: a queued message costs one channel operation, not a
	// three-way select that locks all three channels.
	select {
	case m := <-ep.inbox:
		ep.received.Add(1)
		return m, nil
	default:
	}
	select {
	case m := <-ep.inbox:
		ep.received.Add(1)
		return m, nil
	case <-ep.done:
		return abi.Message{}, ep.errClosed()
	case <-ctx.Done():
		return abi.Message{}, ctx.Err()
	}
}

func (ep *Endpoint) errClosed() error {
	return fmt.Errorf("bus: receive on %q: %w", ep.name, ErrClosed)
}

// Close unregisters the module: its name becomes free, later sends to it
// fail with ErrNoModule, Receive returns ErrClosed, and messages still in its
// queue are dropped and counted in Stats.Dropped. Requests sent to it and
// not yet answered wait out their own deadline. Close is idempotent.
func (ep *Endpoint) Close() {
	ep.bus.unregister(ep)
	ep.shut()
}

// shut closes the endpoint and drops what is left in its queue.
func (ep *Endpoint) shut() {
	if ep.closed.Swap(true) {
		return
	}
	close(ep.done)
	ep.discard()
}

// discard empties the queue of a closed endpoint, counting each message.
// Both shut and settle call it, so a message that races with Close is
// counted, never lost.
func (ep *Endpoint) discard() {
	for {
		select {
		case <-ep.inbox:
			ep.bus.dropped.Add(1)
		default:
			return
		}
	}
}

// ModuleStats counts one module's traffic since it registered.
type ModuleStats struct {
	// Name and Group identify the module.
	Name, Group string
	// Sent counts messages queued for the module.
	Sent uint64
	// Received counts messages the module took with Receive.
	Received uint64
	// Failed counts sends to the module that failed: queue full until the
	// deadline, or module closed while the sender waited.
	Failed uint64
	// Queued is the number of messages waiting in the queue now, out of
	// Capacity.
	Queued, Capacity int
}

// Stats returns the module's counters.
func (ep *Endpoint) Stats() ModuleStats {
	return ModuleStats{
		Name:     ep.name,
		Group:    ep.group,
		Sent:     ep.sent.Load(),
		Received: ep.received.Load(),
		Failed:   ep.failed.Load(),
		Queued:   len(ep.inbox),
		Capacity: cap(ep.inbox),
	}
}
