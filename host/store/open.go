package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
)

// DamageError is Open's and Check's refusal of a store file that is
// damaged, or missing where its marker says a store existed. Its message is
// one line naming the file, the damage and the way out.
type DamageError struct {
	// Path is the store file.
	Path string
	// Damage says what is wrong.
	Damage string
	// Problems lists every problem the consistency check found, when it
	// found more than the one Damage names.
	Problems []string
}

// damaged wraps a check's error as a DamageError.
func damaged(path string, err error) *DamageError {
	d := &DamageError{Path: path, Damage: oneLine(err.Error())}
	var ce *checkError
	if errors.As(err, &ce) && len(ce.problems) > 1 {
		d.Problems = ce.problems
	}
	return d
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("store %s is damaged: %s; restore the newest good snapshot with `edgehost store restore --data-dir %s` (or start with `edgehost run --reset-store` to set the file aside and begin empty)",
		e.Path, e.Damage, filepath.Dir(e.Path))
}

// ErrLocked is returned when another process holds the store file's lock.
var ErrLocked = errors.New("the store file is locked (is an edgehost daemon running?)")

// Open opens the store file at path, creating it (and its directory) on
// first use, and verifies an existing file before serving from it: the
// header check, then a consistency check bounded by opts.CheckTimeout. A
// damaged file, or a missing or empty one where the marker beside it
// records a store, is refused with a *DamageError, unless
// opts.ResetDamaged. A nil opts means the zero Options.
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
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = DefaultCheckTimeout
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	db, rep, late, err := openChecked(path, &o)
	var damage *DamageError
	if errors.As(err, &damage) && o.ResetDamaged {
		aside, aerr := setAside(path, "damaged")
		if aerr != nil {
			return nil, fmt.Errorf("reset store %q: %w", path, aerr)
		}
		if err := os.Remove(MarkerPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("reset store %q: %w", path, err)
		}
		o.Logger.Warn("store is damaged; --reset-store set it aside and starts an empty store",
			"path", path, "damage", damage.Damage, "kept_as", aside)
		db, rep, late, err = openChecked(path, &o)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:      db,
		path:    path,
		reqs:    make(chan *request, o.MaxBatch),
		done:    make(chan struct{}),
		max:     o.MaxBatch,
		log:     o.Logger,
		check:   rep,
		opened:  time.Now(),
		timeout: o.CheckTimeout,
	}
	go s.commitLoop()
	if late != nil {
		go s.lateCheck(late)
	}
	return s, nil
}

// lateCheck records what the part of Tx.Check that ran past the time
// limit at Open found: damage there is a read failure of a serving store.
func (s *Store) lateCheck(late <-chan []string) {
	problems := <-late
	if len(problems) == 0 {
		s.log.Info("store check finished after its time limit; no problems", "path", s.path)
		return
	}
	s.failed(false, false, &checkError{problems})
}

// openChecked opens and verifies the file, or creates it when there is
// none and no marker, and writes the marker if it is missing. late is as
// from verify.
func openChecked(path string, o *Options) (_ *bolt.DB, _ CheckReport, late <-chan []string, _ error) {
	marker, err := ReadMarker(path)
	rewriteMarker := marker == nil
	if errors.Is(err, ErrBadMarker) {
		// Still the record that a store existed; a new one is written
		// once the store passes the check.
		o.Logger.Warn("store marker is unreadable; it is rewritten if the store passes the check", "error", err)
		marker, rewriteMarker = &Marker{}, true
	} else if err != nil {
		return nil, CheckReport{}, nil, fmt.Errorf("open store %q: %w", path, err)
	}
	fresh := false
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && marker != nil:
		return nil, CheckReport{}, nil, &DamageError{Path: path, Damage: fmt.Sprintf("the file is missing, but %s records a store%s",
			MarkerPath(path), createdAt(marker))}
	case errors.Is(err, os.ErrNotExist):
		fresh = true
	case err != nil:
		return nil, CheckReport{}, nil, fmt.Errorf("open store %q: %w", path, err)
	case fi.Size() == 0 && marker == nil:
		// bbolt creates the file, then writes its first pages: a crash
		// in between leaves this, and no marker was ever written.
		o.Logger.Warn("store file is empty and no marker records a store here; starting a new store", "path", path)
		fresh = true
	default:
		if err := lockProbe(path, o.LockTimeout); err != nil {
			return nil, CheckReport{}, nil, fmt.Errorf("open store %q: %w", path, err)
		}
		if _, err := checkHeaderFile(path); err != nil {
			return nil, CheckReport{}, nil, damaged(path, err)
		}
	}
	// A panic inside bolt.Open leaves its descriptor, and the lock on it,
	// open until the process ends; the header check keeps bbolt from the
	// pages it reads there.
	var db *bolt.DB
	err = guard(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout, NoSync: o.NoSync})
		return err
	})
	switch {
	case errors.Is(err, bolt.ErrTimeout):
		return nil, CheckReport{}, nil, fmt.Errorf("open store %q: %w", path, ErrLocked)
	case err != nil && fresh:
		return nil, CheckReport{}, nil, fmt.Errorf("open store %q: %w", path, err)
	case err != nil:
		return nil, CheckReport{}, nil, damaged(path, err)
	}
	var rep CheckReport
	if !fresh {
		if rep, late, err = verify(db, o.CheckTimeout); err != nil {
			closeAfter(db, late)
			return nil, CheckReport{}, nil, damaged(path, err)
		}
		logCheck(o.Logger, path, rep, o.CheckTimeout)
	}
	if rewriteMarker {
		if err := writeMarker(path, newMarker()); err != nil {
			closeAfter(db, late)
			return nil, CheckReport{}, nil, fmt.Errorf("open store %q: %w", path, err)
		}
	}
	return db, rep, late, nil
}

// createdAt says when the marker's store was created, if it knows.
func createdAt(m *Marker) string {
	if m.Created.IsZero() {
		return ""
	}
	return " created " + m.Created.Format(time.RFC3339)
}

// logCheck reports a passed check, saying so plainly when it was cut short.
func logCheck(log hclog.Logger, path string, rep CheckReport, limit time.Duration) {
	args := []any{"path", path, "bytes", rep.Bytes, "buckets", rep.Buckets, "keys", rep.Keys, "elapsed_ms", rep.Elapsed.Milliseconds()}
	if !rep.Complete {
		log.Warn("store check stopped at its time limit: the header is sound, but not every page was verified; raise store.checkTimeout to check it all",
			append(args, "check_timeout", limit)...)
		return
	}
	log.Info("store checked", args...)
}

// Check verifies the store file at path without changing it, as Open does
// (an unbounded check for timeout 0). A damaged file gives a *DamageError,
// a file a running daemon holds ErrLocked.
func Check(path string, timeout time.Duration) (CheckReport, error) {
	if timeout <= 0 {
		timeout = 1<<63 - 1
	}
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return CheckReport{}, &DamageError{Path: path, Damage: "the file is missing"}
		}
		return CheckReport{}, fmt.Errorf("check store %q: %w", path, err)
	}
	if fi.IsDir() {
		return CheckReport{}, fmt.Errorf("check store %q: is a directory", path)
	}
	if err := lockProbe(path, 100*time.Millisecond); err != nil {
		return CheckReport{}, fmt.Errorf("check store %q: %w", path, err)
	}
	if _, err := checkHeaderFile(path); err != nil {
		return CheckReport{}, damaged(path, err)
	}
	var db *bolt.DB
	err = guard(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
		return err
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return CheckReport{}, fmt.Errorf("check store %q: %w", path, ErrLocked)
	}
	if err != nil {
		return CheckReport{}, damaged(path, err)
	}
	rep, late, err := verify(db, timeout)
	closeAfter(db, late)
	if err != nil {
		return rep, damaged(path, err)
	}
	return rep, nil
}

// closeAfter closes db, at once or, while a check still runs in it (late
// non-nil), once that check is done.
func closeAfter(db *bolt.DB, late <-chan []string) {
	if late == nil {
		db.Close()
		return
	}
	go func() {
		<-late
		db.Close()
	}()
}

// lockProbe fails with ErrLocked if another process holds the file's lock
// for longer than timeout. It takes and drops the lock at once: bbolt takes
// its own on its own descriptor, which a lock held here would block.
func lockProbe(path string, timeout time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock: %w", err)
		}
		if time.Now().After(deadline) {
			return ErrLocked
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// setAside renames the store file at path, if there is one, to
// <path>.<why>-<UTC time> and returns the new name ("" when there was no
// file).
func setAside(path, why string) (string, error) {
	aside := fmt.Sprintf("%s.%s-%s", path, why, time.Now().UTC().Format("20060102T150405.000Z"))
	if err := os.Rename(path, aside); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return "", err
	}
	return aside, syncDir(filepath.Dir(path))
}
