// Package store is edgehost's one bbolt file: each module owns a namespace
// of nested buckets in it, and every write is committed (fsync) before it is
// acknowledged, with concurrent writes grouped into one transaction. The
// file is verified before it is served from (open.go, header.go,
// verify.go), its failures while serving are counted rather than fatal,
// and it is snapshotted and restored whole (snapshot.go).
package store

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
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

// Options tune Open. The zero value gives the defaults.
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
	// CheckTimeout bounds the consistency check of an existing file; 0
	// means DefaultCheckTimeout. A check cut short is logged, not failed.
	CheckTimeout time.Duration
	// ResetDamaged makes Open set a damaged or missing store aside (renamed
	// with a timestamp, never deleted) and start an empty one instead of
	// refusing it. A healthy store is opened as usual.
	ResetDamaged bool
	// Logger receives the check's and the snapshots' log lines; nil
	// discards them.
	Logger hclog.Logger
}

// Stats counts the store's work and failures since Open.
type Stats struct {
	// Commits is the number of write transactions committed (one fsync each).
	Commits uint64
	// Updates is the number of Update calls that committed successfully.
	Updates uint64
	// ReadErrors counts reads that bbolt failed or panicked on, and
	// WriteErrors writes whose transaction failed to commit or panicked:
	// the file's failures, not the callers' own errors.
	ReadErrors, WriteErrors uint64
	// Panics counts bbolt panics and memory faults recovered into errors
	// (also in ReadErrors or WriteErrors).
	Panics uint64
	// LastError describes the last read or write failure, at LastErrorAt.
	LastError   string
	LastErrorAt time.Time
	// Opened is when Open returned the store.
	Opened time.Time
	// Check is the result of the consistency check at Open.
	Check CheckReport
	// Snapshots counts snapshots written and verified, SnapshotFailures
	// the attempts that failed.
	Snapshots, SnapshotFailures uint64
	// LastSnapshot describes the newest snapshot written, if any.
	LastSnapshot SnapshotInfo
	// LastSnapshotError is the error of the last attempt when it failed.
	LastSnapshotError string
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
	log     hclog.Logger
	check   CheckReport
	opened  time.Time
	timeout time.Duration
	commits atomic.Uint64
	updates atomic.Uint64

	// failMu guards the failure and snapshot records.
	failMu      sync.Mutex
	readErrors  uint64
	writeErrors uint64
	panics      uint64
	lastErr     string
	lastErrAt   time.Time
	snaps       uint64
	snapFails   uint64
	lastSnap    SnapshotInfo
	lastSnapErr string
	// snapMu serializes snapshots.
	snapMu sync.Mutex
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Stats returns the committer's counters; Updates/Commits is the average
// group size.
func (s *Store) Stats() Stats {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return Stats{
		Commits: s.commits.Load(), Updates: s.updates.Load(),
		ReadErrors: s.readErrors, WriteErrors: s.writeErrors, Panics: s.panics,
		LastError: s.lastErr, LastErrorAt: s.lastErrAt, Opened: s.opened, Check: s.check,
		Snapshots: s.snaps, SnapshotFailures: s.snapFails, LastSnapshot: s.lastSnap, LastSnapshotError: s.lastSnapErr,
	}
}

// NotReady returns why the store does not serve fully: a read or write
// failure since Open (a damaged page does not heal; restarting re-checks
// the file), or a failed last snapshot. It has the shape of
// supervisor.Checker.
func (s *Store) NotReady() []string {
	st := s.Stats()
	var out []string
	if n := st.ReadErrors + st.WriteErrors; n > 0 {
		out = append(out, fmt.Sprintf("store %s: %d read and %d write failures since start, last at %s: %s; run `edgehost store check` after stopping the daemon",
			s.path, st.ReadErrors, st.WriteErrors, st.LastErrorAt.Format(time.RFC3339), st.LastError))
	}
	if st.LastSnapshotError != "" {
		out = append(out, fmt.Sprintf("store %s: the last snapshot failed: %s", s.path, st.LastSnapshotError))
	}
	return out
}

// failed records a read or write failure of the file; panicked says it was
// a recovered panic or fault.
func (s *Store) failed(write, panicked bool, err error) {
	s.failMu.Lock()
	if write {
		s.writeErrors++
	} else {
		s.readErrors++
	}
	if panicked {
		s.panics++
	}
	s.lastErr, s.lastErrAt = oneLine(err.Error()), time.Now()
	s.failMu.Unlock()
	s.log.Error("store failure", "path", s.path, "write", write, "error", err)
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
	err := n.s.view(func(tx *bolt.Tx) error {
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

// view runs fn in a read transaction. A failure of bbolt itself (not an
// error fn returns) or a panic or memory fault while reading is counted
// and returned as an error.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	var fnErr error
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("bbolt crashed reading the store: %s", oneLine(fmt.Sprint(p)))
			s.failed(false, true, err)
		}
	}()
	err = s.db.View(func(tx *bolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	if err != nil && err != fnErr {
		s.failed(false, false, err)
	}
	return err
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}
