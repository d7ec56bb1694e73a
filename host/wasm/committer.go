package wasm

import (
	"slices"
	"strings"
	"sync"
)

// committer applies a plugin's KV writes to its KV in the order the calls
// made them, one batch at a time, so that a call's instance can serve the
// next call while the store makes the writes durable (an fsync, ~3 ms here,
// against ~0.1 ms of guest work).
//
// Writes are submitted while the instance is still held, which fixes their
// order; a batch collects the writes of every call submitted while the
// previous batch is being applied, and is applied as one KV.Apply. Until a
// batch is applied its writes sit in an overlay that every instance's reads
// see, so a call reads what the calls before it wrote, just as when each
// call held its instance through its own commit.
//
// A batch is applied by the goroutine that opened it (its leader), after
// the batch before it is done: no goroutine of its own, nothing to stop.
type committer struct {
	kv KV

	mu      sync.Mutex
	busy    bool                    // a batch is being applied
	next    *batch                  // the batch collecting writes; nil if none
	overlay map[string]overlayWrite // by key: the latest write not yet applied
}

// batch is the writes of one or more calls, applied together.
type batch struct {
	ops  []KVOp
	turn chan struct{} // closed when the leader may apply the batch
	done chan struct{} // closed once it is applied (or failed); err is set then
	err  error
}

// overlayWrite is a write waiting in a batch.
type overlayWrite struct {
	value []byte
	del   bool
	b     *batch
}

// submitted is one call's share of a batch.
type submitted struct {
	b      *batch
	leader bool
}

// submit queues ops (which the committer now owns) behind every write
// submitted before them.
func (c *committer) submit(ops []KVOp) submitted {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := submitted{b: c.next}
	if s.b == nil {
		s.b = &batch{turn: make(chan struct{}), done: make(chan struct{})}
		s.leader = true
		if c.busy {
			c.next = s.b
		} else {
			c.busy = true
			close(s.b.turn)
		}
	}
	if c.overlay == nil {
		c.overlay = map[string]overlayWrite{}
	}
	for _, op := range ops {
		c.overlay[op.Key] = overlayWrite{value: op.Value, del: op.Delete, b: s.b}
	}
	s.b.ops = append(s.b.ops, ops...)
	return s
}

// wait returns once s's batch is applied, with the KV's error. The leader
// applies it when its turn comes and hands the turn to the next batch.
func (c *committer) wait(s submitted) error {
	b := s.b
	if s.leader {
		<-b.turn
		c.mu.Lock()
		if c.next == b {
			c.next = nil // closed to further writes
		}
		c.mu.Unlock()
		err := c.kv.Apply(b.ops)
		c.mu.Lock()
		for _, op := range b.ops {
			if w, ok := c.overlay[op.Key]; ok && w.b == b {
				delete(c.overlay, op.Key)
			}
		}
		if c.next != nil {
			close(c.next.turn)
		} else {
			c.busy = false
		}
		c.mu.Unlock()
		b.err = err
		close(b.done)
	}
	<-b.done
	return b.err
}

// get returns the value at key as the calls submitted so far left it.
func (c *committer) get(key string) ([]byte, bool, error) {
	c.mu.Lock()
	w, ok := c.overlay[key]
	c.mu.Unlock()
	if ok {
		return w.value, !w.del, nil
	}
	return c.kv.Get(key)
}

// list returns the keys starting with prefix as the calls submitted so far
// left them, in byte order.
func (c *committer) list(prefix string) ([]string, error) {
	keys, err := c.kv.List(prefix)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, w := range c.overlay {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		i, found := slices.BinarySearch(keys, k)
		switch {
		case w.del && found:
			keys = slices.Delete(keys, i, i+1)
		case !w.del && !found:
			keys = slices.Insert(keys, i, k)
		}
	}
	return keys, nil
}
