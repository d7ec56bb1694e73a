package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// populated builds a store of about 1.5 MiB of real data (plugin KV and
// nested twin-like buckets), closes it and returns its file and the keys
// written.
func populated(t *testing.T) (string, map[string]string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edgehost.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for b := range 30 {
		var ops []KVOp
		for i := range 100 {
			k := fmt.Sprintf("device-%02d/property-%03d", b, i)
			v := strings.Repeat(fmt.Sprintf("%s=%d;", k, i), 12)
			ops = append(ops, KVOp{Key: k, Value: []byte(v)})
			want[k] = v
		}
		if err := s.PluginKV(fmt.Sprintf("plugin-%d", b%3)).Apply(ops); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, want
}

// copyStore copies the store file and its marker into a new directory.
func copyStore(t *testing.T, path string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "edgehost.db")
	for _, suffix := range []string{"", ".id"} {
		data, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// flipBit flips one bit of the file at offset.
func flipBit(t *testing.T, path string, offset int64, bit uint) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, offset); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1 << bit
	if _, err := f.WriteAt(b, offset); err != nil {
		t.Fatal(err)
	}
}

// findPage returns the offset of the first page in use with the given
// flags (0x01 branch, 0x02 leaf) and its element count.
func findPage(t *testing.T, path string, flags uint16) (int64, int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := checkHeader(strings.NewReader(string(data)), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	ps := int64(meta.PageSize)
	for id := int64(2); id < int64(meta.Pgid); id++ {
		p := data[id*ps:]
		if binary.LittleEndian.Uint64(p) == uint64(id) && binary.LittleEndian.Uint16(p[8:]) == flags {
			return id * ps, int(binary.LittleEndian.Uint16(p[10:]))
		}
	}
	t.Fatalf("no page with flags %#x", flags)
	return 0, 0
}

func TestOpenRefusesDamage(t *testing.T) {
	good, want := populated(t)
	fi, err := os.Stat(good)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 1<<20 {
		t.Fatalf("test store is %d bytes, want > 1 MiB so that truncation cuts data", fi.Size())
	}
	ps := int64(os.Getpagesize())
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"0 bytes with marker", func(t *testing.T, p string) { os.Truncate(p, 0) }, "the file is empty (0 bytes)"},
		{"missing with marker", func(t *testing.T, p string) { os.Remove(p) }, "the file is missing, but"},
		{"truncated to 8 KiB", func(t *testing.T, p string) { os.Truncate(p, 8<<10) }, "shorter than the 4 pages"},
		{"truncated to 16 KiB", func(t *testing.T, p string) { os.Truncate(p, 16<<10) }, "but the file is 16384 bytes (truncated?)"},
		{"truncated to 64 KiB", func(t *testing.T, p string) { os.Truncate(p, 64<<10) }, "but the file is 65536 bytes (truncated?)"},
		{"truncated to 256 KiB", func(t *testing.T, p string) { os.Truncate(p, 256<<10) }, "but the file is 262144 bytes (truncated?)"},
		{"truncated off a page boundary", func(t *testing.T, p string) { os.Truncate(p, fi.Size()-100) }, "not a whole number of"},
		{"bit flipped in meta page 0", func(t *testing.T, p string) { flipBit(t, p, 16+44, 2) }, "meta page 0: checksum mismatch"},
		{"bit flipped in meta page 1", func(t *testing.T, p string) { flipBit(t, p, ps+16+20, 0) }, "meta page 1: checksum mismatch"},
		{"meta magic overwritten", func(t *testing.T, p string) { flipBit(t, p, 16, 7) }, "meta page 0: no bbolt magic"},
		{"bit flipped in a branch page's child pointer", func(t *testing.T, p string) {
			off, _ := findPage(t, p, 0x01)
			flipBit(t, p, off+16+8, 0) // low bit of the first element's page id
		}, ""},
		{"branch page's child pointer far out of the file", func(t *testing.T, p string) {
			off, _ := findPage(t, p, 0x01)
			flipBit(t, p, off+16+8+3, 6)
		}, ""},
		{"freelist page overwritten", func(t *testing.T, p string) {
			meta, err := checkHeaderFile(p)
			if err != nil || meta.Freelist == noFreelist {
				t.Fatalf("no freelist page: %+v, %v", meta, err)
			}
			off := int64(meta.Freelist) * int64(meta.PageSize)
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, off)
		}, ""},
		{"bit flipped in a leaf page's id", func(t *testing.T, p string) {
			off, _ := findPage(t, p, 0x02)
			flipBit(t, p, off, 4)
		}, ""},
		{"bit flipped in a leaf page's key order", func(t *testing.T, p string) {
			off, n := findPage(t, p, 0x02)
			if n < 3 {
				t.Skip("leaf too small")
			}
			// Element 1's key position: point its key at element 0's.
			flipBit(t, p, off+16+16+4+1, 5)
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := copyStore(t, good)
			tc.damage(t, path)
			s, err := Open(path, nil)
			if err == nil {
				s.Close()
				t.Fatal("Open accepted the damaged store")
			}
			var damage *DamageError
			if !errors.As(err, &damage) {
				t.Fatalf("got %v, want a *DamageError", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			for _, w := range []string{path, "edgehost store restore", tc.want} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if damage.Damage == "" {
				t.Error("DamageError names no damage")
			}
			t.Log(msg)
			if _, err := Check(path, 0); !errors.As(err, &damage) {
				t.Errorf("Check: got %v, want a *DamageError", err)
			}
		})
	}
	t.Run("undamaged copy opens with its data", func(t *testing.T) {
		s, err := Open(copyStore(t, good), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if rep := s.Stats().Check; !rep.Complete || rep.Keys < len(want) {
			t.Errorf("check report %+v, want complete over %d keys", rep, len(want))
		}
		for k, v := range want {
			kv := s.PluginKV(fmt.Sprintf("plugin-%d", (int(k[7]-'0')*10+int(k[8]-'0'))%3))
			if got, ok, err := kv.Get(k); err != nil || !ok || string(got) != v {
				t.Fatalf("%s: got %q, %v, %v", k, got, ok, err)
			}
		}
	})
}

func TestFreshStoreWritesMarker(t *testing.T) {
	s, path := openTemp(t, nil)
	m, err := ReadMarker(path)
	if err != nil || m == nil || m.ID == "" || m.Created.IsZero() {
		t.Fatalf("marker after first Open: %+v, %v", m, err)
	}
	s.Close()
	s2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if m2, _ := ReadMarker(path); m2 == nil || m2.ID != m.ID {
		t.Errorf("reopen changed the marker: %+v, was %+v", m2, m)
	}
}

func TestEmptyFileWithoutMarkerStartsNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edgehost.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open of an empty file no marker claims: %v", err)
	}
	s.Close()
	if m, _ := ReadMarker(path); m == nil {
		t.Error("no marker written")
	}
}

func TestResetDamagedKeepsTheFile(t *testing.T) {
	good, _ := populated(t)
	path := copyStore(t, good)
	old, _ := ReadMarker(path)
	if err := os.Truncate(path, 64<<10); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, &Options{ResetDamaged: true})
	if err != nil {
		t.Fatalf("Open with ResetDamaged: %v", err)
	}
	defer s.Close()
	if keys, err := s.PluginKV("plugin-0").List(""); err != nil || len(keys) != 0 {
		t.Errorf("reset store has keys %v, %v", len(keys), err)
	}
	aside, _ := filepath.Glob(path + ".damaged-*")
	if len(aside) != 1 {
		t.Fatalf("damaged files kept: %v, want one", aside)
	}
	if fi, err := os.Stat(aside[0]); err != nil || fi.Size() != 64<<10 {
		t.Errorf("kept file: %v, %v", fi, err)
	}
	if m, _ := ReadMarker(path); m == nil || m.ID == old.ID {
		t.Errorf("marker after reset: %+v, old %+v: want a new id", m, old)
	}

	// A healthy store is not reset.
	s.PluginKV("p").Apply([]KVOp{{Key: "k", Value: []byte("v")}})
	s.Close()
	s2, err := Open(path, &Options{ResetDamaged: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if v, ok := mustGet(t, s2.PluginKV("p"), "k"); !ok || string(v) != "v" {
		t.Errorf("healthy store lost its data to ResetDamaged: %q, %v", v, ok)
	}
}

func TestCheckTimeLimitIsReported(t *testing.T) {
	good, _ := populated(t)
	s, err := Open(copyStore(t, good), &Options{CheckTimeout: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if rep := s.Stats().Check; rep.Complete {
		t.Errorf("a 1ns check reported complete: %+v", rep)
	}
}

// TestRuntimeReadFailureIsCounted damages a page under an open store: the
// read fails with an error (not a crash), is counted, and makes the store
// not ready.
func TestRuntimeReadFailureIsCounted(t *testing.T) {
	good, _ := populated(t)
	path := copyStore(t, good)
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A caller's own error is not the store's failure.
	errMine := errors.New("mine")
	if err := s.Namespace("plugins").View(func(*bolt.Bucket) error { return errMine }); !errors.Is(err, errMine) {
		t.Fatalf("View: got %v, want the caller's error", err)
	}
	if nr := s.NotReady(); len(nr) != 0 || s.Stats().ReadErrors != 0 {
		t.Fatalf("healthy store not ready: %v, %+v", nr, s.Stats())
	}
	// Overwrite every leaf page's id: bbolt maps the file shared, so its
	// next read sees the damage.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	ps := int64(os.Getpagesize())
	page := make([]byte, 16)
	for off := 2 * ps; off < fi.Size(); off += ps {
		f.ReadAt(page, off)
		if binary.LittleEndian.Uint16(page[8:]) == 0x02 {
			f.WriteAt([]byte{0xff, 0xff, 0xff}, off)
		}
	}
	f.Close()
	_, _, err = s.PluginKV("plugin-1").Get("device-01/property-050")
	if err == nil {
		t.Fatal("read of a damaged page succeeded")
	}
	st := s.Stats()
	if st.ReadErrors == 0 || st.Panics == 0 || st.LastError == "" {
		t.Errorf("stats after a failed read: %+v", st)
	}
	if nr := s.NotReady(); len(nr) != 1 || !strings.Contains(nr[0], "1 read and 0 write failures") {
		t.Errorf("NotReady = %q", nr)
	}
}

// TestUnreadableMarkerStillRecordsAStore: a marker that does not decode
// still makes a missing store damage, and is rewritten beside a healthy one.
func TestUnreadableMarkerStillRecordsAStore(t *testing.T) {
	s, path := openTemp(t, nil)
	s.Close()
	if err := os.WriteFile(MarkerPath(path), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, nil)
	if err != nil {
		t.Fatalf("healthy store with a bad marker: %v", err)
	}
	s2.Close()
	if m, err := ReadMarker(path); err != nil || m == nil {
		t.Errorf("marker not rewritten: %+v, %v", m, err)
	}
	os.WriteFile(MarkerPath(path), []byte("{garbage"), 0o600)
	os.Remove(path)
	var damage *DamageError
	if _, err := Open(path, nil); !errors.As(err, &damage) || !strings.Contains(err.Error(), "the file is missing, but") {
		t.Errorf("missing store with a bad marker: got %v, want a *DamageError", err)
	}
}
