package store

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Group commit.
//
// Every write goes through one committer goroutine. It takes the first
// waiting request, then everything else already queued (up to MaxBatch), and
// runs them all in one bbolt transaction: one fsync for the whole group.
// While that fsync is under way new requests queue up and form the next
// group, so the group size follows the load: a lone writer commits at once,
// a hundred writers share a few fsyncs.
//
// Why not bolt.DB.Batch: it waits a fixed MaxBatchDelay (10 ms by default)
// for a group to form, so a lone writer pays that delay on every write; with
// the delay near zero its groups stop forming at all. Its failure handling is
// kept here: when one member's function fails, the transaction is rolled
// back, that member gets its error, and the rest run again without it. The
// failing member saw exactly the state its predecessors in the group wrote,
// and left nothing behind, so the outcome is as if the calls had run one
// after the other.

// request is one pending write and the channel its result comes back on.
type request struct {
	fn   func(*bolt.Tx) error
	err  error
	done chan struct{}
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

// write runs fn in a grouped write transaction and returns once it is
// committed (or has failed).
func (s *Store) write(fn func(*bolt.Tx) error) error {
	r := requestPool.Get().(*request)
	r.fn = fn
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		r.fn = nil
		requestPool.Put(r)
		return ErrClosed
	}
	s.reqs <- r
	s.mu.RUnlock()
	<-r.done
	err := r.err
	r.fn, r.err = nil, nil
	requestPool.Put(r)
	return err
}

// commitLoop is the committer goroutine; it ends when reqs is closed and
// drained.
func (s *Store) commitLoop() {
	defer close(s.done)
	// A fault reading a damaged page of the mapped file becomes a panic
	// that commit recovers, rather than the end of the process.
	debug.SetPanicOnFault(true)
	group := make([]*request, 0, s.max)
	for first := range s.reqs {
		group = append(group[:0], first)
	fill:
		for len(group) < s.max {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break fill
				}
				group = append(group, r)
			default:
				break fill
			}
		}
		s.commit(group)
	}
}

// commit runs group in one transaction, dropping failing members until the
// rest commits, and reports every member's result.
func (s *Store) commit(group []*request) {
	for len(group) > 0 {
		failed := -1
		var failErr error
		err := s.update(func(tx *bolt.Tx) error {
			for i, r := range group {
				if err := safeCall(r.fn, tx); err != nil {
					failed, failErr = i, err
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			if errors.Is(failErr, errPanicked) {
				s.failed(true, true, failErr)
			}
			group[failed].finish(failErr)
			group = append(group[:failed], group[failed+1:]...)
			continue
		}
		if err == nil {
			s.commits.Add(1)
			s.updates.Add(uint64(len(group)))
		} else {
			s.failed(true, errors.Is(err, errPanicked), err)
		}
		for _, r := range group {
			r.finish(err)
		}
		return
	}
}

func (r *request) finish(err error) {
	r.err = err
	r.done <- struct{}{}
}

// errPanicked marks errors made of a recovered panic or memory fault.
var errPanicked = errors.New("panic")

// update runs fn in one write transaction; a panic in bbolt's commit (a
// damaged page met while rebalancing or spilling) fails the transaction,
// which bbolt rolls back, instead of the committer.
func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w in store commit: %s", errPanicked, oneLine(fmt.Sprint(p)))
		}
	}()
	return s.db.Update(fn)
}

// safeCall runs fn, turning a panic into an error so that one bad caller
// (or a damaged page under it) cannot take down the committer and everyone
// waiting on it.
func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w in store update: %s", errPanicked, oneLine(fmt.Sprint(p)))
		}
	}()
	return fn(tx)
}
