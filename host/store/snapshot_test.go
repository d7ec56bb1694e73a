package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// TestSnapshotIsConsistentUnderWrites snapshots while writers commit
// batches that each set a counter and add the key it names: in every
// snapshot the counter and the keys agree exactly.
func TestSnapshotIsConsistentUnderWrites(t *testing.T) {
	s, path := openTemp(t, &Options{NoSync: true})
	dir := filepath.Join(filepath.Dir(path), "snapshots")
	const writers = 4
	var seq atomic.Int64
	var mu sync.Mutex // writers commit in counter order
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kv := s.PluginKV("counter")
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				n := seq.Add(1)
				err := kv.Apply([]KVOp{
					{Key: "n", Value: []byte(strconv.FormatInt(n, 10))},
					{Key: fmt.Sprintf("k%08d", n), Value: bytes.Repeat([]byte{'x'}, 200)},
				})
				mu.Unlock()
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	// What a daemon killed while writing a snapshot leaves behind.
	os.MkdirAll(dir, 0o700)
	stale := filepath.Join(dir, ".edgehost-20260101T000000.000Z.db.tmp-123")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	var snaps []SnapshotInfo
	for range 5 {
		info, err := s.Snapshot(dir, 3)
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, info)
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	listed, err := ListSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 3 || listed[0].Path != snaps[4].Path {
		t.Fatalf("after 5 snapshots with keep 3: %+v", listed)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a stale snapshot temp file is still there: %v", err)
	}
	if st := s.Stats(); st.Snapshots != 5 || st.LastSnapshot.Path != snaps[4].Path {
		t.Errorf("stats: %+v", st)
	}
	for _, sn := range listed {
		if _, err := Check(sn.Path, 0); err != nil {
			t.Fatal(err)
		}
		snap, err := Open(copyFile(t, sn.Path), nil)
		if err != nil {
			t.Fatal(err)
		}
		kv := snap.PluginKV("counter")
		v, _, err := kv.Get("n")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(string(v))
		keys, err := kv.List("k")
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != n {
			t.Errorf("%s: counter %d but %d keys", sn.Path, n, len(keys))
		}
		t.Logf("%s: %d keys, %d bytes", filepath.Base(sn.Path), n, sn.Bytes)
		snap.Close()
	}
}

// copyFile copies a file into a new directory, to open it as a store.
func copyFile(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "edgehost.db")
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestRestoreBringsBackAcknowledgedState(t *testing.T) {
	s, path := openTemp(t, nil)
	dir := filepath.Join(filepath.Dir(path), "snapshots")
	kv := s.PluginKV("twin")
	for i := range 50 {
		if err := kv.Apply([]KVOp{{Key: fmt.Sprintf("dev%02d", i), Value: []byte(strconv.Itoa(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	older, err := s.Snapshot(dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Apply([]KVOp{{Key: "late", Value: []byte("yes")}}); err != nil {
		t.Fatal(err)
	}
	newest, err := s.Snapshot(dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	marker, _ := ReadMarker(path)

	if _, err := Restore(path, dir, ""); !errors.Is(err, ErrLocked) {
		t.Fatalf("Restore while open: got %v, want ErrLocked", err)
	}
	s.Close()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	// Damage the newest snapshot: Restore must skip it for the older one.
	flipBit(t, newest.Path, 16+40, 1)
	res, err := Restore(path, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.From != older.Path || len(res.Skipped) != 1 {
		t.Errorf("restored %+v, want from %s skipping the damaged newest", res, older.Path)
	}
	if fi, err := os.Stat(res.Aside); err != nil || fi.Size() != 0 {
		t.Errorf("the replaced file was not kept: %v, %v", fi, err)
	}
	if m, _ := ReadMarker(path); m == nil || m.ID != marker.ID || m.From != older.Path {
		t.Errorf("marker after restore %+v, before %+v", m, marker)
	}
	s2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	kv2 := s2.PluginKV("twin")
	for i := range 50 {
		if v, ok := mustGet(t, kv2, fmt.Sprintf("dev%02d", i)); !ok || string(v) != strconv.Itoa(i) {
			t.Errorf("dev%02d after restore: %q, %v", i, v, ok)
		}
	}
}

func TestBackupFileIsVerified(t *testing.T) {
	s, path := openTemp(t, nil)
	s.PluginKV("p").Apply([]KVOp{{Key: "k", Value: []byte("v")}})
	out := filepath.Join(filepath.Dir(path), "backup.db")
	var buf bytes.Buffer
	if _, err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	// A reader that goes away is its own failure, not the store's.
	if _, err := s.Backup(failingWriter{}); err == nil {
		t.Fatal("Backup to a failing writer succeeded")
	}
	if st := s.Stats(); st.ReadErrors != 0 || len(s.NotReady()) != 0 {
		t.Errorf("a failing backup reader counted against the store: %+v", st)
	}
	// A stream cut short is refused and leaves no file.
	err := WriteBackupFile(out, func(w io.Writer) error { _, err := w.Write(full[:len(full)/2]); return err })
	if err == nil {
		t.Fatal("a half backup was accepted")
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed backup left %s: %v", out, err)
	}
	if err := WriteBackupFile(out, func(w io.Writer) error { _, err := w.Write(full); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(out, 0); err != nil {
		t.Fatal(err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset") }

func FuzzDecodeMeta(f *testing.F) {
	s, path := openTemp(f, nil)
	s.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[:pageHeaderSize+metaSize], uint64(0))
	f.Add(data[os.Getpagesize():os.Getpagesize()+pageHeaderSize+metaSize], uint64(1))
	f.Fuzz(func(t *testing.T, page []byte, id uint64) {
		m, err := DecodeMeta(page, id)
		if err != nil {
			return
		}
		// Whatever decodes must be safe to map: sane page size and pages.
		if m.PageSize < minPageSize || m.PageSize&(m.PageSize-1) != 0 || m.Root >= m.Pgid {
			t.Fatalf("accepted %+v", m)
		}
		if binary.LittleEndian.Uint32(page[pageHeaderSize:]) != boltMagic {
			t.Fatal("accepted without magic")
		}
	})
}

func FuzzDecodeMarker(f *testing.F) {
	f.Add([]byte(`{"id":"5f2b","created":"2026-12-01T10:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMarker(data)
		if err == nil && (m == nil || m.ID == "") {
			t.Fatalf("accepted a marker without an id: %+v", m)
		}
	})
}
