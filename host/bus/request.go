package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// Request sends m to the module named to and waits for the reply: the first
// message given to Respond whose ParentID is m's ID. It fills m's ID and
// Timestamp as Send does and sets Header.Sync, which tells the handler that
// someone waits.
//
// The wait ends with ctx: at its deadline Request returns an error matching
// both ErrTimeout and context.DeadlineExceeded, on cancellation ctx.Err(),
// and when the bus closes ErrClosed. Either way the request is forgotten, so
// a late reply gets ErrNoWaiter. A ctx without a deadline waits as long as
// the handler takes. Sending m is bounded as for Send.
func (b *Bus) Request(ctx context.Context, to string, m abi.Message) (abi.Message, error) {
	ep, err := b.lookup("request", to)
	if err != nil {
		return abi.Message{}, err
	}
	return b.request(ctx, ep, m)
}

// RequestGroup is Request to one module of group, picked round-robin as
// SendToGroup picks. Plugins address their requests this way: by group,
// as KubeEdge modules do.
func (b *Bus) RequestGroup(ctx context.Context, group string, m abi.Message) (abi.Message, error) {
	g, err := b.lookupGroup("request", group)
	if err != nil {
		return abi.Message{}, err
	}
	return b.request(ctx, g.members[g.next.Add(1)%uint32(len(g.members))], m)
}

func (b *Bus) request(ctx context.Context, ep *Endpoint, m abi.Message) (abi.Message, error) {
	to := ep.Name()
	stamp(&m)
	m.Header.Sync = true
	id := m.Header.ID
	sh := b.pending.shard(id)
	w, err := sh.add(id)
	if err != nil {
		return abi.Message{}, fmt.Errorf("bus: request to %q: id %s %w", to, id, err)
	}
	if ep.offer(&m) {
		err = ep.settle("request")
	} else {
		err = b.wait(ctx, "request", ep, &m, time.Now())
	}
	if err != nil {
		b.forget(sh, id, w)
		return abi.Message{}, err
	}
	select {
	case r := <-w.reply:
		waiters.Put(w)
		return r, nil
	case <-ctx.Done():
		if r, ok := b.forget(sh, id, w); ok {
			return r, nil
		}
		b.abandoned.Add(1)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return abi.Message{}, fmt.Errorf("bus: request %s to %q: %w: %w", id, to, ErrTimeout, ctx.Err())
		}
		return abi.Message{}, fmt.Errorf("bus: request %s to %q: %w", id, to, ctx.Err())
	case <-b.done:
		if r, ok := b.forget(sh, id, w); ok {
			return r, nil
		}
		b.abandoned.Add(1)
		return abi.Message{}, fmt.Errorf("bus: request %s to %q: %w", id, to, ErrClosed)
	}
}

// forget withdraws a request whose caller stopped waiting. If a responder
// claimed it first, its reply is in (or about to be in) the channel, and
// forget returns it: the reply won the race, so the caller gets it.
func (b *Bus) forget(sh *shard, id string, w *waiter) (abi.Message, bool) {
	if sh.remove(id, w) {
		waiters.Put(w)
		return abi.Message{}, false
	}
	r := <-w.reply
	waiters.Put(w)
	return r, true
}

// Waiting reports whether a Request waits for the reply to the message
// whose ID is id. A module that serves both the cloud and local requesters
// asks it on receipt: a request a local caller waits for is answered with
// Respond, one from the cloud (delivered by Send) through the hub.
func (b *Bus) Waiting(id string) bool {
	if id == "" {
		return false
	}
	sh := b.pending.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, ok := sh.m[id]
	return ok
}

// Respond delivers reply to the Request waiting for it, the one whose ID is
// reply's ParentID. It fills reply's ID and Timestamp as Send does and never
// blocks. If no request is waiting (the requester gave up, or there never was
// one) it returns ErrNoWaiter and counts it in Stats.NoWaiter. Once the bus
// is closed it returns ErrClosed, also when Close withdrew the request while
// Respond ran.
func (b *Bus) Respond(reply abi.Message) error {
	parent := reply.Header.ParentID
	if b.closed.Load() {
		return fmt.Errorf("bus: respond to request %s: %w", parent, ErrClosed)
	}
	var w *waiter
	if parent != "" {
		w = b.pending.shard(parent).take(parent)
	}
	if w == nil && b.closed.Load() {
		// Close came after the check above, and its requester stopped
		// waiting: Close, not a missing request, is why nobody takes it.
		return fmt.Errorf("bus: respond to request %s: %w", parent, ErrClosed)
	}
	if w == nil {
		b.noWaiter.Add(1)
		if parent == "" {
			return fmt.Errorf("bus: respond: reply has no ParentID: %w", ErrNoWaiter)
		}
		return fmt.Errorf("bus: respond to request %s: %w", parent, ErrNoWaiter)
	}
	stamp(&reply)
	w.reply <- reply // never blocks: capacity 1, and only the taker sends
	return nil
}

// waiter is where one Request's reply lands. Waiters are pooled; a waiter
// goes back to the pool only once its channel is empty and no responder can
// reach it.
type waiter struct {
	reply chan abi.Message
}

var waiters = sync.Pool{New: func() any { return &waiter{reply: make(chan abi.Message, 1)} }}

// pendingTable maps the ids of waiting requests to their waiters, split into
// shards so concurrent requests rarely share a lock.
type pendingTable struct {
	seed   maphash.Seed
	shards [32]shard
}

type shard struct {
	mu sync.Mutex
	m  map[string]*waiter
	_  [48]byte // pad to a cache line
}

func (p *pendingTable) init() {
	p.seed = maphash.MakeSeed()
	for i := range p.shards {
		p.shards[i].m = map[string]*waiter{}
	}
}

func (p *pendingTable) shard(id string) *shard {
	return &p.shards[maphash.String(p.seed, id)%uint64(len(p.shards))]
}

// len counts the waiting requests.
func (p *pendingTable) len() int {
	n := 0
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// add registers a waiter for id; an id already waiting is ErrDuplicate.
func (sh *shard) add(id string) (*waiter, error) {
	w := waiters.Get().(*waiter)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, dup := sh.m[id]; dup {
		waiters.Put(w)
		return nil, ErrDuplicate
	}
	sh.m[id] = w
	return w, nil
}

// take claims the waiter for id, or returns nil if none waits.
func (sh *shard) take(id string) *waiter {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	w := sh.m[id]
	if w != nil {
		delete(sh.m, id)
	}
	return w
}

// remove withdraws w for id, reporting false if a responder took it first.
func (sh *shard) remove(id string, w *waiter) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[id] != w {
		return false
	}
	delete(sh.m, id)
	return true
}
