package store

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DefaultCheckTimeout bounds the consistency check at open when
// Options.CheckTimeout is 0.
const DefaultCheckTimeout = time.Minute

// CheckReport is what a consistency check found on a healthy file.
type CheckReport struct {
	// Bytes is the file's size.
	Bytes int64
	// Pages is the number of pages in use (the high-water mark).
	Pages uint64
	// Buckets and Keys count what the walk read.
	Buckets, Keys int
	// Elapsed is how long the check took.
	Elapsed time.Duration
	// Complete is false when the time limit stopped the check: the header
	// was checked, but not every page.
	Complete bool
}

// errTimeLimit stops the walk when the check's time is up.
var errTimeLimit = errors.New("time limit reached")

// guard runs fn on a goroutine of its own whose memory faults are panics
// (debug.SetPanicOnFault) and turns any panic into an error: bbolt reads
// the file through a memory map and panics, or faults, on pages that are
// not what it expects.
func guard(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		debug.SetPanicOnFault(true)
		defer func() {
			if p := recover(); p != nil {
				errc <- fmt.Errorf("bbolt crashed reading the file: %s", oneLine(fmt.Sprint(p)))
			}
		}()
		errc <- fn()
	}()
	return <-errc
}

// verify checks the open db within timeout: first a walk that reads every
// bucket, key and value (so every reachable page is touched under guard),
// then bbolt's own Tx.Check (freelist, unreachable or doubly used pages, key
// order). A nil error with Complete false means the time ran out before
// any damage was found. If it ran out during Tx.Check, which cannot be
// stopped, late is non-nil and gets what the rest of Tx.Check finds once
// it is done (until then its read transaction stays open).
func verify(db *bolt.DB, timeout time.Duration) (rep CheckReport, late <-chan []string, err error) {
	start := time.Now()
	deadline := start.Add(timeout)
	err = guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			rep.Bytes = tx.Size()
			rep.Pages = uint64(tx.Size()) / uint64(db.Info().PageSize)
			w := walker{deadline: deadline, rep: &rep}
			return w.walk(tx.Cursor(), tx.Bucket)
		})
	})
	if errors.Is(err, errTimeLimit) {
		rep.Elapsed = time.Since(start)
		return rep, nil, nil
	}
	if err != nil {
		return rep, nil, err
	}
	tx, err := db.Begin(false)
	if err != nil {
		return rep, nil, fmt.Errorf("begin check: %w", err)
	}
	errs := tx.Check()
	var found []string
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case e, ok := <-errs:
			if !ok {
				tx.Rollback()
				rep.Elapsed = time.Since(start)
				if len(found) > 0 {
					return rep, nil, &checkError{found}
				}
				rep.Complete = true
				return rep, nil, nil
			}
			found = append(found, oneLine(e.Error()))
		case <-timer.C:
			// Tx.Check cannot be stopped: let it finish in the background
			// and only then end its transaction.
			rest := make(chan []string, 1)
			go func() {
				var more []string
				for e := range errs {
					more = append(more, oneLine(e.Error()))
				}
				tx.Rollback()
				rest <- more
			}()
			rep.Elapsed = time.Since(start)
			if len(found) > 0 {
				return rep, rest, &checkError{found}
			}
			return rep, rest, nil
		}
	}
}

// walker reads every key and value of a transaction.
type walker struct {
	deadline time.Time
	rep      *CheckReport
	// sink keeps the reads of values from being optimized away.
	sink byte
}

// walk reads every key and value under the cursor c, descending into
// nested buckets found with child.
func (w *walker) walk(c *bolt.Cursor, child func([]byte) *bolt.Bucket) error {
	for k, v := c.First(); k != nil; k, v = c.Next() {
		w.rep.Keys++
		if w.rep.Keys%1024 == 0 && time.Now().After(w.deadline) {
			return errTimeLimit
		}
		if v != nil {
			if len(v) > 0 {
				// Touch both ends: a value reaching past the file faults here.
				w.sink ^= v[0] ^ v[len(v)-1]
			}
			continue
		}
		b := child(k)
		if b == nil {
			return fmt.Errorf("key %q: no value and no bucket", k)
		}
		w.rep.Buckets++
		if err := w.walk(b.Cursor(), b.Bucket); err != nil {
			return fmt.Errorf("bucket %q: %w", k, err)
		}
	}
	return nil
}

// checkError is what Tx.Check found. Its message gives the first problem
// and counts the rest, to keep the refusal one readable line; the
// DamageError keeps them all for `edgehost store check`.
type checkError struct{ problems []string }

func (e *checkError) Error() string {
	if len(e.problems) == 1 {
		return "consistency check: " + e.problems[0]
	}
	return fmt.Sprintf("consistency check: %s; and %d more problems", e.problems[0], len(e.problems)-1)
}

// oneLine folds s onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
