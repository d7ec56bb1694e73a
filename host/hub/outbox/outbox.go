// Package outbox is the cloud link's durable upstream queue: every message
// for the cloud is committed (fsync) to the store before it is sent, and
// leaves the queue only once the cloud has read it, so it survives a broken
// link and a daemon restart, kill -9 included.
//
// Entries are kept in append order under an increasing sequence number.
// Delivery is at least once: an entry is removed by Ack after the cloud's
// websocket reader has read it (the hub learns that from a pong, see
// docs/hub.md); whatever was sent but not yet acknowledged when the link or
// the daemon died is sent again, so the cloud may see a message twice, with
// the same msg_id.
//
// The queue is bounded by MaxBytes. When full, Append refuses the new
// message with ErrFull and counts it; nothing already queued is dropped to
// make room. Entries older than TTL are removed unsent and counted as
// expired. Nothing is ever dropped without a count.
package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/host/store"
	bolt "go.etcd.io/bbolt"
)

// Defaults for zero Options fields.
const (
	DefaultTTL      = 24 * time.Hour
	DefaultMaxBytes = 64 << 20
)

// ErrFull is returned by Append when the message would take the queue past
// its byte cap.
var ErrFull = errors.New("outbox full")

// Options bound the queue.
type Options struct {
	// TTL is how long an entry may wait to be sent; 0 means DefaultTTL.
	TTL time.Duration
	// MaxBytes caps the frames queued, in bytes; 0 means DefaultMaxBytes.
	MaxBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Entry is one queued frame.
type Entry struct {
	// Seq is the entry's position; later appends have larger ones.
	Seq uint64
	// Enqueued is when Append committed it.
	Enqueued time.Time
	// Frame is the message as it goes on the wire.
	Frame []byte
}

// Stats are the queue's gauges and counters.
type Stats struct {
	// Depth and Bytes are what waits now: entries and frame bytes.
	Depth int
	Bytes int64
	// MaxBytes is the cap.
	MaxBytes int64
	// OldestAge is how long the oldest waiting entry has waited; 0 when
	// empty.
	OldestAge time.Duration
	// Appended counts entries committed, Sent entries acknowledged by the
	// cloud, Expired entries removed unsent after TTL, Refused appends
	// refused because the queue was full.
	Appended, Sent, Expired, Refused uint64
}

// Outbox is the durable queue. It is safe for concurrent use.
type Outbox struct {
	ns  *store.Namespace
	ttl time.Duration
	max int64
	now func() time.Time

	mu       sync.Mutex
	depth    int
	bytes    int64 // committed
	reserved int64 // being committed

	appended, sent, expired, refused atomic.Uint64

	notify chan struct{} // one token: something was appended
}

// headerLen is the enqueue time in front of each stored frame.
const headerLen = 8

// Open returns the outbox kept in ns, counting what a previous run left.
func Open(ns *store.Namespace, opts Options) (*Outbox, error) {
	o := &Outbox{ns: ns, ttl: opts.TTL, max: opts.MaxBytes, now: opts.Now, notify: make(chan struct{}, 1)}
	if o.ttl <= 0 {
		o.ttl = DefaultTTL
	}
	if o.max <= 0 {
		o.max = DefaultMaxBytes
	}
	if o.now == nil {
		o.now = time.Now
	}
	err := ns.View(func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) < headerLen {
				return fmt.Errorf("entry %x: bad length %d/%d", k, len(k), len(v))
			}
			o.depth++
			o.bytes += int64(len(v) - headerLen)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	return o, nil
}

// Append commits frame at the end of the queue and returns its sequence
// number once it is durable. A frame that would take the queue past
// MaxBytes is refused with ErrFull. Concurrent Appends share commits.
func (o *Outbox) Append(frame []byte) (uint64, error) {
	seqs, err := o.AppendBatch([][]byte{frame})
	if len(seqs) == 0 {
		return 0, err
	}
	return seqs[0], nil
}

// AppendBatch commits frames, in order, in one transaction: one fsync for
// them all, so one goroutine draining a queue appends as fast as many. It
// returns the sequence numbers of the frames accepted, a prefix of frames.
// Once a frame would take the queue past MaxBytes, it and the rest are
// refused and counted, and the error wraps ErrFull; on a store failure none
// is accepted.
func (o *Outbox) AppendBatch(frames [][]byte) ([]uint64, error) {
	o.mu.Lock()
	used := o.bytes + o.reserved
	var n int64
	fit := 0
	for _, f := range frames {
		if used+n+int64(len(f)) > o.max {
			break
		}
		n += int64(len(f))
		fit++
	}
	o.reserved += n
	o.mu.Unlock()
	var full error
	if fit < len(frames) {
		o.refused.Add(uint64(len(frames) - fit))
		full = fmt.Errorf("append %d bytes with %d of %d queued: %d of %d frames refused: %w",
			len(frames[fit]), used+n, o.max, len(frames)-fit, len(frames), ErrFull)
		if fit == 0 {
			return nil, full
		}
	}
	accepted := frames[:fit]

	at := uint64(o.now().UnixNano())
	seqs := make([]uint64, len(accepted))
	err := o.ns.Update(func(b *bolt.Bucket) error {
		for i, f := range accepted {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			seqs[i] = seq
			v := make([]byte, headerLen+len(f))
			binary.BigEndian.PutUint64(v, at)
			copy(v[headerLen:], f)
			if err := b.Put(key(seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	o.mu.Lock()
	o.reserved -= n
	if err == nil {
		o.bytes += n
		o.depth += len(accepted)
	}
	o.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("append %d frames to outbox: %w", len(accepted), err)
	}
	o.appended.Add(uint64(len(accepted)))
	select {
	case o.notify <- struct{}{}:
	default:
	}
	return seqs, full
}

// Appended returns a channel that receives after an Append; a reader
// waiting for work selects on it.
func (o *Outbox) Appended() <-chan struct{} { return o.notify }

// Read returns up to max entries after seq in order, at most maxBytes of
// frames (but always at least one entry if there is one). It first
// removes entries past their TTL.
func (o *Outbox) Read(after uint64, max int, maxBytes int) ([]Entry, error) {
	if _, err := o.Expire(); err != nil {
		return nil, err
	}
	var out []Entry
	size := 0
	err := o.ns.View(func(b *bolt.Bucket) error {
		c := b.Cursor()
		for k, v := c.Seek(key(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			f := v[headerLen:]
			if len(out) > 0 && size+len(f) > maxBytes {
				break
			}
			size += len(f)
			out = append(out, Entry{Seq: binary.BigEndian.Uint64(k), Enqueued: enqueued(v), Frame: append([]byte(nil), f...)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// Ack removes every entry up to and including seq: the cloud has them.
func (o *Outbox) Ack(seq uint64) error {
	n, size, err := o.remove(func(k, _ []byte) bool { return binary.BigEndian.Uint64(k) <= seq })
	if err != nil {
		return fmt.Errorf("ack outbox up to %d: %w", seq, err)
	}
	o.sent.Add(uint64(n))
	o.forget(n, size)
	return nil
}

// Expire removes the entries at the front of the queue that have waited
// longer than TTL and returns how many it removed.
func (o *Outbox) Expire() (int, error) {
	cutoff := o.now().Add(-o.ttl)
	n, size, err := o.remove(func(_, v []byte) bool { return enqueued(v).Before(cutoff) })
	if err != nil {
		return 0, fmt.Errorf("expire outbox entries: %w", err)
	}
	o.expired.Add(uint64(n))
	o.forget(n, size)
	return n, nil
}

// remove deletes entries from the front while match holds.
func (o *Outbox) remove(match func(k, v []byte) bool) (n int, size int64, err error) {
	// A cheap look first, so the common nothing-to-do case costs no fsync.
	var any bool
	if err := o.ns.View(func(b *bolt.Bucket) error {
		k, v := b.Cursor().First()
		any = k != nil && match(k, v)
		return nil
	}); err != nil || !any {
		return 0, 0, err
	}
	err = o.ns.Update(func(b *bolt.Bucket) error {
		n, size = 0, 0 // fn may run again
		c := b.Cursor()
		for k, v := c.First(); k != nil && match(k, v); k, v = c.First() {
			size += int64(len(v) - headerLen)
			n++
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return n, size, nil
}

func (o *Outbox) forget(n int, size int64) {
	o.mu.Lock()
	o.depth -= n
	o.bytes -= size
	o.mu.Unlock()
}

// Stats returns the queue's gauges and counters; OldestAge reads the
// store.
func (o *Outbox) Stats() Stats {
	o.mu.Lock()
	s := Stats{Depth: o.depth, Bytes: o.bytes, MaxBytes: o.max}
	o.mu.Unlock()
	s.Appended, s.Sent, s.Expired, s.Refused = o.appended.Load(), o.sent.Load(), o.expired.Load(), o.refused.Load()
	_ = o.ns.View(func(b *bolt.Bucket) error {
		if k, v := b.Cursor().First(); k != nil {
			s.OldestAge = max(0, o.now().Sub(enqueued(v)))
		}
		return nil
	})
	return s
}

func key(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func enqueued(v []byte) time.Time { return time.Unix(0, int64(binary.BigEndian.Uint64(v))) }
