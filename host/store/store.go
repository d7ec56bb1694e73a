// Package store is edgehost's one bbolt file: each module owns a namespace
// of nested buckets in it, and every write is committed (fsync) before it is
// acknowledged, with concurrent writes grouped into one transaction.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Defaults used by Open for zero Options fields.
const (
	// DefaultLockTimeout is how long Open waits for the file lock that
	// another process (a second daemon) may hold.
	DefaultLockTimeout = 2 * time.Second
	// DefaultMaxBatch is the most Update calls folded into one transaction.
	DefaultMaxBatch = 256
)

// ErrClosed is returned by operations on a Store after Close.
var ErrClosed = errors.New("store is closed")

// Options tune Open. The zero value is what the daemon uses.
type Options struct {
	// NoSync skips fsync on commit. It trades durability for speed and is
	// meant for tests only.
	NoSync bool
	// LockTimeout bounds the wait for the file lock; 0 means
	// DefaultLockTimeout.
	LockTimeout time.Duration
	// MaxBatch bounds how many Update calls share one transaction; 0 means
	// DefaultMaxBatch.
	MaxBatch int
}

// Stats counts the group committer's work since Open.
type Stats struct {
	// Commits is the number of write transactions committed (one fsync each).
	Commits uint64
	// Updates is the number of Update calls that committed successfully.
	Updates uint64
}

// Store is one open bbolt file. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string

	// mu guards closed and sends on reqs, so Close never closes reqs under a
	// sender.
	mu      sync.RWMutex
	closed  bool
	reqs    chan *request
	done    chan struct{}
	max     int
	commits atomic.Uint64
	updates atomic.Uint64
}

// Open opens (creating if needed) the store file at path, creating its
// parent directory too. A nil opts means the zero Options.
func Open(path string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout, NoSync: o.NoSync})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %q: file is locked (is another edgehost running?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	s := &Store{
		db:   db,
		path: path,
		reqs: make(chan *request, o.MaxBatch),
		done: make(chan struct{}),
		max:  o.MaxBatch,
	}
	go s.commitLoop()
	return s, nil
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Stats returns the committer's counters; Updates/Commits is the average
// group size.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Updates: s.updates.Load()}
}

// Close waits for pending writes to commit, then closes the file. Later
// calls return nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.mu.Unlock()
	<-s.done
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %q: %w", s.path, err)
	}
	return nil
}

// Namespace returns the nested bucket family at path, e.g.
// Namespace("meta") or Namespace("plugins", "kv", name). Buckets are created
// by the first Update; nothing touches the file here.
func (s *Store) Namespace(path ...string) *Namespace {
	p := make([][]byte, len(path))
	for i, name := range path {
		p[i] = []byte(name)
	}
	return &Namespace{s: s, path: p, name: strings.Join(path, "/")}
}

// DeleteNamespace removes the bucket at path and everything under it, in a
// durable transaction. A missing namespace is not an error.
func (s *Store) DeleteNamespace(path ...string) error {
	if len(path) == 0 {
		return errors.New("delete namespace: empty path")
	}
	parent := s.Namespace(path[:len(path)-1]...)
	last := []byte(path[len(path)-1])
	err := s.write(func(tx *bolt.Tx) error {
		var err error
		if len(parent.path) == 0 {
			err = tx.DeleteBucket(last)
		} else if b := parent.bucket(tx); b != nil {
			err = b.DeleteBucket(last)
		}
		if errors.Is(err, bolt.ErrBucketNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete namespace %q: %w", strings.Join(path, "/"), err)
	}
	return nil
}

// Namespace is one module's bucket family. Its methods hand fn the
// namespace's own bucket, so a module sees nothing outside it.
type Namespace struct {
	s    *Store
	path [][]byte
	name string
}

// View runs fn in a read-only transaction with the namespace's bucket. If
// nothing was ever written to the namespace, it reads as empty: fn is not
// called and View returns nil. The bucket, and every slice read from it, is
// valid only inside fn.
func (n *Namespace) View(fn func(b *bolt.Bucket) error) error {
	if n.s.isClosed() {
		return fmt.Errorf("view namespace %q: %w", n.name, ErrClosed)
	}
	err := n.s.db.View(func(tx *bolt.Tx) error {
		if b := n.bucket(tx); b != nil {
			return fn(b)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("view namespace %q: %w", n.name, err)
	}
	return nil
}

// Update runs fn in a write transaction with the namespace's bucket
// (created if missing) and returns once the transaction is durable. Calls
// from many goroutines are grouped into one transaction; fn's writes are
// still all-or-nothing on their own: if fn returns an error, none of them
// apply and the other calls in the group are unaffected. fn may run more
// than once (when another member of its group fails), so it must have no
// effects outside the transaction.
func (n *Namespace) Update(fn func(b *bolt.Bucket) error) error {
	err := n.s.write(func(tx *bolt.Tx) error {
		b, err := n.create(tx)
		if err != nil {
			return err
		}
		return fn(b)
	})
	if err != nil {
		return fmt.Errorf("update namespace %q: %w", n.name, err)
	}
	return nil
}

// bucket finds the namespace's bucket in tx, or nil if it does not exist.
func (n *Namespace) bucket(tx *bolt.Tx) *bolt.Bucket {
	if len(n.path) == 0 {
		return nil
	}
	b := tx.Bucket(n.path[0])
	for _, name := range n.path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(name)
	}
	return b
}

// create finds or creates the namespace's bucket in the write tx.
func (n *Namespace) create(tx *bolt.Tx) (*bolt.Bucket, error) {
	if len(n.path) == 0 {
		return nil, errors.New("empty namespace path")
	}
	b, err := tx.CreateBucketIfNotExists(n.path[0])
	for _, name := range n.path[1:] {
		if err != nil {
			break
		}
		b, err = b.CreateBucketIfNotExists(name)
	}
	if err != nil {
		return nil, fmt.Errorf("create bucket: %w", err)
	}
	return b, nil
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}
