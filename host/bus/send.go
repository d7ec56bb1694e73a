package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// Send queues m for the module named to. It fills m's ID (NewID) and
// Timestamp (now) if they are empty. When the queue is full, Send waits for
// room until Options.SendTimeout or ctx's deadline, whichever comes first,
// then fails with ErrQueueFull. An unknown module is ErrNoModule.
func (b *Bus) Send(ctx context.Context, to string, m abi.Message) error {
	ep, err := b.lookup("send", to)
	if err != nil {
		return err
	}
	stamp(&m)
	if ep.offer(&m) {
		return ep.settle("send")
	}
	return b.wait(ctx, "send", ep, &m, time.Now())
}

// SendToGroup queues m for one module of group, taking members in turn
// (round-robin) and passing over members whose queue is full. If every
// member's queue is full it waits on its turn's member as Send does.
func (b *Bus) SendToGroup(ctx context.Context, group string, m abi.Message) error {
	g, err := b.lookupGroup("send", group)
	if err != nil {
		return err
	}
	stamp(&m)
	n := uint32(len(g.members))
	first := g.next.Add(1)
	for i := range n {
		if ep := g.members[(first+i)%n]; ep.offer(&m) {
			return ep.settle("send")
		}
	}
	return b.wait(ctx, "send", g.members[first%n], &m, time.Now())
}

// Broadcast queues m for every module of group, in registration order. A
// full queue is waited on as Send does, with one deadline for the whole
// broadcast. The members that could not take m are reported together in the
// error (errors.Join); the others have it.
func (b *Bus) Broadcast(ctx context.Context, group string, m abi.Message) error {
	g, err := b.lookupGroup("broadcast", group)
	if err != nil {
		return err
	}
	stamp(&m)
	var (
		start time.Time
		errs  []error
	)
	for _, ep := range g.members {
		var err error
		if ep.offer(&m) {
			err = ep.settle("broadcast")
		} else {
			if start.IsZero() {
				start = time.Now()
			}
			err = b.wait(ctx, "broadcast", ep, &m, start)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// offer queues m if the queue has room, without blocking. The caller then
// calls settle.
func (ep *Endpoint) offer(m *abi.Message) bool {
	select {
	case ep.inbox <- *m:
		ep.sent.Add(1)
		return true
	default:
		return false
	}
}

// settle checks, after a message went into the queue, that the endpoint did
// not close meanwhile. If it did, the message may have missed Close's sweep,
// so settle sweeps again (counting what it drops) and reports ErrClosed: the
// message was probably not delivered.
func (ep *Endpoint) settle(op string) error {
	if !ep.closed.Load() {
		return nil
	}
	ep.discard()
	return fmt.Errorf("bus: %s to %q: %w", op, ep.name, ErrClosed)
}

// wait blocks until ep's queue takes m or the send deadline passes: the
// earlier of start+SendTimeout and ctx's deadline. It is the slow path, so
// it is the only place a timer is armed.
func (b *Bus) wait(ctx context.Context, op string, ep *Endpoint, m *abi.Message, start time.Time) error {
	if left := b.opts.SendTimeout - time.Since(start); left > 0 {
		t := timers.Get().(*time.Timer)
		t.Reset(left)
		defer func() {
			t.Stop()
			timers.Put(t)
		}()
		select {
		case ep.inbox <- *m:
			ep.sent.Add(1)
			return ep.settle(op)
		case <-t.C:
		case <-ctx.Done():
			ep.failed.Add(1)
			return fmt.Errorf("bus: %s to %q: %w after %v: %w", op, ep.name, ErrQueueFull, since(start), ctx.Err())
		case <-ep.done:
			ep.failed.Add(1)
			return fmt.Errorf("bus: %s to %q: %w", op, ep.name, ErrClosed)
		}
	}
	ep.failed.Add(1)
	return fmt.Errorf("bus: %s to %q: %w after %v", op, ep.name, ErrQueueFull, since(start))
}

// timers holds stopped timers for wait. Since Go 1.23 a stopped timer can be
// Reset without draining its channel, so reuse is safe.
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// since is the time waited, rounded for error messages.
func since(start time.Time) time.Duration {
	return time.Since(start).Round(time.Millisecond)
}
