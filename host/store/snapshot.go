package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Snapshots are whole copies of the store written from one read
// transaction (bbolt's Tx.WriteTo), so they are consistent while writes go
// on. Each is written to a temporary file, synced, verified like a store at
// Open, and only then renamed to edgehost-<UTC time>.db.

const (
	snapshotPrefix = "edgehost-"
	snapshotSuffix = ".db"
	// snapshotTimeFormat sorts by name in time order.
	snapshotTimeFormat = "20060102T150405.000Z"
)

// SnapshotInfo describes one snapshot file.
type SnapshotInfo struct {
	// Path is the snapshot file.
	Path string
	// Time is when it was taken.
	Time time.Time
	// Bytes is its size.
	Bytes int64
	// Elapsed is how long writing and verifying it took (0 when only
	// listed).
	Elapsed time.Duration
}

// Backup writes a consistent copy of the whole store to w while the store
// serves, and returns the bytes written.
func (s *Store) Backup(w io.Writer) (int64, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	var n int64
	out := &recordingWriter{w: w}
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(out)
		return err
	})
	if err != nil && out.err == nil {
		// Not the writer's failure (a closed connection, a full disk):
		// reading the store file failed.
		s.failed(false, false, err)
	}
	if err != nil {
		return n, fmt.Errorf("back up store %q: %w", s.path, err)
	}
	return n, nil
}

// recordingWriter remembers the first error of its writer.
type recordingWriter struct {
	w   io.Writer
	err error
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// Snapshot writes a verified snapshot into dir and then removes all but
// the newest keep snapshots there. Snapshots run one at a time.
func (s *Store) Snapshot(dir string, keep int) (SnapshotInfo, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	info, err := s.snapshot(dir, keep)
	s.failMu.Lock()
	if err != nil {
		s.snapFails++
		s.lastSnapErr = oneLine(err.Error())
	} else {
		s.snaps++
		s.lastSnap, s.lastSnapErr = info, ""
	}
	s.failMu.Unlock()
	return info, err
}

func (s *Store) snapshot(dir string, keep int) (SnapshotInfo, error) {
	start := time.Now().UTC()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot: %w", err)
	}
	path := filepath.Join(dir, snapshotPrefix+start.Format(snapshotTimeFormat)+snapshotSuffix)
	err := writeVerified(path, s.timeout, func(f *os.File) error {
		_, err := s.Backup(f)
		return err
	})
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot: %w", err)
	}
	info := SnapshotInfo{Path: path, Time: start, Bytes: fi.Size(), Elapsed: time.Since(start)}
	if err := rotate(dir, keep); err != nil {
		return info, fmt.Errorf("snapshot: rotate: %w", err)
	}
	return info, nil
}

// WriteBackupFile writes a verified copy of a store to path with fill (a
// Backup, or a stream of one), replacing path only when the copy passes the
// check.
func WriteBackupFile(path string, fill func(io.Writer) error) error {
	err := writeVerified(path, 0, func(f *os.File) error { return fill(f) })
	if err != nil {
		return fmt.Errorf("write backup %s: %w", path, err)
	}
	return nil
}

// writeVerified fills a temporary file beside path, syncs it, checks it as
// a store, and renames it to path.
func writeVerified(path string, timeout time.Duration, fill func(*os.File) error) error {
	return replaceFile(path, func(f *os.File) error {
		if err := fill(f); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		if _, err := Check(f.Name(), timeout); err != nil {
			return fmt.Errorf("the copy fails its check: %w", err)
		}
		return nil
	})
}

// ListSnapshots returns the snapshots in dir, newest first. A missing dir
// has none.
func ListSnapshots(dir string) ([]SnapshotInfo, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []SnapshotInfo
	for _, e := range entries {
		name := e.Name()
		stamp, ok := strings.CutPrefix(name, snapshotPrefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		stamp, ok = strings.CutSuffix(stamp, snapshotSuffix)
		t, err := time.Parse(snapshotTimeFormat, stamp)
		if !ok || err != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, SnapshotInfo{Path: filepath.Join(dir, name), Time: t, Bytes: fi.Size()})
	}
	slices.SortFunc(out, func(a, b SnapshotInfo) int { return b.Time.Compare(a.Time) })
	return out, nil
}

// rotate removes all but the newest keep snapshots in dir, and the
// temporary files of snapshots a killed daemon left unfinished.
func rotate(dir string, keep int) error {
	snaps, err := ListSnapshots(dir)
	if err != nil {
		return err
	}
	stale, err := filepath.Glob(filepath.Join(dir, "."+snapshotPrefix+"*"+snapshotSuffix+".tmp-*"))
	if err != nil {
		return err
	}
	for _, tmp := range stale {
		if err := os.Remove(tmp); err != nil {
			return err
		}
	}
	for _, sn := range snaps[min(keep, len(snaps)):] {
		if err := os.Remove(sn.Path); err != nil {
			return err
		}
	}
	return nil
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	// From is the snapshot restored.
	From string
	// Aside is where the file it replaced was kept ("" if there was none).
	Aside string
	// Skipped lists the newer snapshots that failed their check.
	Skipped []string
}

// Restore replaces the store file at path with a snapshot: from, or when
// from is "" the newest snapshot in snapshotDir that passes the check. The
// current file is kept aside, renamed with a timestamp, and the marker is
// written (keeping the store's id). It refuses while a daemon holds the
// file.
func Restore(path, snapshotDir, from string) (RestoreResult, error) {
	var res RestoreResult
	if err := lockProbe(path, 100*time.Millisecond); err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("restore %s: %w; stop the daemon first", path, err)
	}
	if from != "" {
		if _, err := Check(from, 0); err != nil {
			return res, fmt.Errorf("restore %s: snapshot %s: %w", path, from, err)
		}
		res.From = from
	} else {
		snaps, err := ListSnapshots(snapshotDir)
		if err != nil {
			return res, fmt.Errorf("restore %s: %w", path, err)
		}
		for _, sn := range snaps {
			if _, err := Check(sn.Path, 0); err != nil {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s: %v", sn.Path, err))
				continue
			}
			res.From = sn.Path
			break
		}
		if res.From == "" {
			return res, fmt.Errorf("restore %s: no snapshot in %s passes the check (%d tried)", path, snapshotDir, len(snaps))
		}
	}
	marker, err := ReadMarker(path)
	if err != nil || marker == nil {
		marker = newMarker()
	}
	if res.Aside, err = setAside(path, "replaced"); err != nil {
		return res, fmt.Errorf("restore %s: keep the current file: %w", path, err)
	}
	src, err := os.Open(res.From)
	if err != nil {
		return res, fmt.Errorf("restore %s: %w", path, err)
	}
	defer src.Close()
	err = writeVerified(path, 0, func(f *os.File) error {
		_, err := io.Copy(f, src)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("restore %s from %s: %w", path, res.From, err)
	}
	marker.Restored, marker.From = time.Now().UTC(), res.From
	if err := writeMarker(path, marker); err != nil {
		return res, fmt.Errorf("restore %s: %w", path, err)
	}
	return res, nil
}

// BackupFile writes a verified copy of the store file at src, which no
// daemon may be serving, to dst. It holds bbolt's shared lock while it
// reads, so a daemon cannot start on src meanwhile.
func BackupFile(src, dst string) (int64, error) {
	if _, err := Check(src, 0); err != nil {
		return 0, err
	}
	var db *bolt.DB
	err := guard(func() error {
		var err error
		db, err = bolt.Open(src, 0o600, &bolt.Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
		return err
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return 0, fmt.Errorf("back up %s: %w", src, ErrLocked)
	}
	if err != nil {
		return 0, fmt.Errorf("back up %s: %w", src, err)
	}
	defer db.Close()
	var n int64
	err = WriteBackupFile(dst, func(w io.Writer) error {
		return guard(func() error {
			return db.View(func(tx *bolt.Tx) error {
				var err error
				n, err = tx.WriteTo(w)
				return err
			})
		})
	})
	return n, err
}
