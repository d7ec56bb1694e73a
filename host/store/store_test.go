package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTemp(t testing.TB, opts *Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "edgehost.db")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

func mustGet(t *testing.T, kv *KV, key string) ([]byte, bool) {
	t.Helper()
	v, ok, err := kv.Get(key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v, ok
}

func TestPersistAcrossReopen(t *testing.T) {
	s, path := openTemp(t, nil)
	kv := s.PluginKV("modbus")
	err := kv.Apply([]KVOp{
		{Key: "a", Value: []byte("1")},
		{Key: "empty", Value: nil},
		{Key: "gone", Value: []byte("x")},
		{Key: "gone", Delete: true},
	})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := kv.Apply([]KVOp{{Key: "a"}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: got %v, want ErrClosed", err)
	}

	s2, err := Open(path, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	kv2 := s2.PluginKV("modbus")
	if v, ok := mustGet(t, kv2, "a"); !ok || string(v) != "1" {
		t.Errorf("a = %q, %v; want \"1\", true", v, ok)
	}
	if v, ok := mustGet(t, kv2, "empty"); !ok || len(v) != 0 {
		t.Errorf("empty = %q, %v; want \"\", true", v, ok)
	}
	if _, ok := mustGet(t, kv2, "gone"); ok {
		t.Error("deleted key still present")
	}
}

func TestApplyAtomic(t *testing.T) {
	s, _ := openTemp(t, nil)
	kv := s.PluginKV("p")
	long := strings.Repeat("k", MaxKeyLen+1)
	for _, tc := range []struct {
		bad, want string
	}{
		{"", `op 1: key "": empty key`},
		{long, "op 1: key \"" + strings.Repeat("k", 64) + "\"...: 1025 bytes, longer than 1024"},
	} {
		err := kv.Apply([]KVOp{{Key: "ok", Value: []byte("v")}, {Key: tc.bad, Value: []byte("v")}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Apply with key of %d bytes: got %v, want error containing %q", len(tc.bad), err, tc.want)
		}
		if _, ok := mustGet(t, kv, "ok"); ok {
			t.Errorf("key %q written although its batch failed", "ok")
		}
	}
	if err := kv.Apply([]KVOp{{Key: strings.Repeat("k", MaxKeyLen), Value: []byte("v")}}); err != nil {
		t.Errorf("key of exactly MaxKeyLen: %v", err)
	}
}

// A member of a commit group that fails inside the transaction rolls back
// alone; the others in the same group still commit.
func TestGroupMemberFailureIsolated(t *testing.T) {
	s, _ := openTemp(t, nil)
	ns := s.Namespace("meta")
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			errs[i] = ns.Update(func(b *bolt.Bucket) error {
				if err := b.Put(fmt.Appendf(nil, "k%02d", i), []byte("v")); err != nil {
					return err
				}
				if i%5 == 0 {
					return boom
				}
				if i%7 == 0 {
					panic("bad caller")
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		var want error
		switch {
		case i%5 == 0:
			want = boom
		case i%7 == 0:
			if err == nil || !strings.Contains(err.Error(), "panic in store update: bad caller") {
				t.Errorf("member %d: got %v, want the panic as an error", i, err)
			}
			continue
		}
		if !errors.Is(err, want) {
			t.Errorf("member %d: got %v, want %v", i, err, want)
		}
	}
	err := ns.View(func(b *bolt.Bucket) error {
		for i := range errs {
			present := b.Get(fmt.Appendf(nil, "k%02d", i)) != nil
			if want := i%5 != 0 && i%7 != 0; present != want {
				t.Errorf("k%02d present = %v, want %v", i, present, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
}

func TestPluginIsolation(t *testing.T) {
	s, _ := openTemp(t, nil)
	a, b := s.PluginKV("a"), s.PluginKV("b")
	if err := a.Apply([]KVOp{{Key: "k", Value: []byte("from a")}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply([]KVOp{{Key: "k", Value: []byte("from b")}, {Key: "only-b", Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := mustGet(t, a, "k"); string(v) != "from a" {
		t.Errorf("a sees k = %q", v)
	}
	if _, ok := mustGet(t, a, "only-b"); ok {
		t.Error("a sees b's key")
	}
	if keys, err := a.List(""); err != nil || !slices.Equal(keys, []string{"k"}) {
		t.Errorf("a.List = %q, %v", keys, err)
	}
	// A plugin that never wrote reads as empty and creates nothing.
	if keys, err := s.PluginKV("c").List(""); err != nil || len(keys) != 0 {
		t.Errorf("c.List = %q, %v", keys, err)
	}
	if err := s.DeleteNamespace("plugins", "kv", "b"); err != nil {
		t.Fatalf("DeleteNamespace: %v", err)
	}
	if _, ok := mustGet(t, b, "k"); ok {
		t.Error("b's key survived DeleteNamespace")
	}
	if v, _ := mustGet(t, a, "k"); string(v) != "from a" {
		t.Errorf("after deleting b, a sees k = %q", v)
	}
	if err := s.DeleteNamespace("no", "such"); err != nil {
		t.Errorf("DeleteNamespace of a missing namespace: %v", err)
	}
}

func TestListPrefixOrdered(t *testing.T) {
	s, _ := openTemp(t, nil)
	kv := s.PluginKV("p")
	var ops []KVOp
	for _, k := range []string{"dev/b", "dev/a", "dev/a/x", "dev0", "de", "other", "dev/\xff"} {
		ops = append(ops, KVOp{Key: k, Value: []byte(k)})
	}
	if err := kv.Apply(ops); err != nil {
		t.Fatal(err)
	}
	got, err := kv.List("dev/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"dev/a", "dev/a/x", "dev/b", "dev/\xff"}; !slices.Equal(got, want) {
		t.Errorf("List(dev/) = %q, want %q", got, want)
	}
	all, err := kv.List("")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(ops) || !slices.IsSorted(all) {
		t.Errorf("List(\"\") = %q, want all %d keys sorted", all, len(ops))
	}
}

func TestConcurrentApply(t *testing.T) {
	s, path := openTemp(t, nil)
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			kv := s.PluginKV(fmt.Sprintf("p%d", i%4))
			key := fmt.Sprintf("k%03d", i)
			errs <- kv.Apply([]KVOp{{Key: key, Value: []byte(key)}, {Key: "last", Value: []byte(key)}})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	st := s.Stats()
	t.Logf("%d updates in %d commits", st.Updates, st.Commits)
	if st.Updates != n || st.Commits == 0 || st.Commits > n {
		t.Errorf("stats = %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for i := range n {
		kv := s2.PluginKV(fmt.Sprintf("p%d", i%4))
		key := fmt.Sprintf("k%03d", i)
		if v, ok := mustGet(t, kv, key); !ok || string(v) != key {
			t.Errorf("%s = %q, %v after reopen", key, v, ok)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	s, path := openTemp(t, nil)
	_, err := Open(path, &Options{LockTimeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, ErrLocked) {
		t.Errorf("second Open of a locked file: got %v, want ErrLocked naming %q", err, path)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	notDir := filepath.Join(path, "x.db") // parent is a file
	if _, err := Open(notDir, nil); err == nil || !strings.Contains(err.Error(), notDir) {
		t.Errorf("Open under a file: got %v, want an error naming %q", err, notDir)
	}
}

func benchApply(b *testing.B, parallel bool) {
	s, _ := openTemp(b, nil)
	kv := s.PluginKV("bench")
	val := []byte("twin-value-0123456789")
	var seq keySeq
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.SetParallelism(16) // goroutines per GOMAXPROCS, like many plugin instances
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := kv.Apply([]KVOp{{Key: seq.key(), Value: val}}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for b.Loop() {
			if err := kv.Apply([]KVOp{{Key: seq.key(), Value: val}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	if st := s.Stats(); st.Commits > 0 {
		b.ReportMetric(float64(st.Updates)/float64(st.Commits), "applies/fsync")
	}
}

// BenchmarkStoreApplySerial is one writer: one fsync per Apply.
func BenchmarkStoreApplySerial(b *testing.B) { benchApply(b, false) }

// BenchmarkStoreApplyParallel is many writers sharing fsyncs by group commit.
func BenchmarkStoreApplyParallel(b *testing.B) { benchApply(b, true) }

// keySeq hands out distinct keys to concurrent writers.
type keySeq struct{ n atomic.Uint64 }

func (s *keySeq) key() string { return fmt.Sprintf("key-%09d", s.n.Add(1)) }
