package outbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/store"
)

func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	s, err := store.Open(path, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return s
}

func open(t testing.TB, s *store.Store, opts Options) *Outbox {
	t.Helper()
	o, err := Open(s.Namespace("hub", "outbox"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func readAll(t *testing.T, o *Outbox) []Entry {
	t.Helper()
	es, err := o.Read(0, 1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestOrderAckAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edgehost.db")
	s := openStore(t, path)
	o := open(t, s, Options{})
	for i := range 10 {
		if _, err := o.Append([]byte(fmt.Sprintf("m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	es := readAll(t, o)
	if len(es) != 10 {
		t.Fatalf("read %d entries, want 10", len(es))
	}
	for i, e := range es {
		if string(e.Frame) != fmt.Sprintf("m%d", i) {
			t.Fatalf("entry %d is %q", i, e.Frame)
		}
	}
	if err := o.Ack(es[3].Seq); err != nil {
		t.Fatal(err)
	}
	if st := o.Stats(); st.Depth != 6 || st.Sent != 4 || st.Bytes != 12 || st.OldestAge <= 0 {
		t.Fatalf("stats after ack = %+v", st)
	}
	// Read past a cursor, bounded by bytes.
	es, err := o.Read(es[5].Seq, 100, 3)
	if err != nil || len(es) != 1 || string(es[0].Frame) != "m6" {
		t.Fatalf("read after m5 = %v, %v", es, err)
	}
	s.Close()

	s = openStore(t, path)
	defer s.Close()
	o = open(t, s, Options{})
	if st := o.Stats(); st.Depth != 6 || st.Bytes != 12 {
		t.Fatalf("stats after restart = %+v", st)
	}
	es = readAll(t, o)
	if string(es[0].Frame) != "m4" || string(es[5].Frame) != "m9" {
		t.Fatalf("after restart: first %q last %q", es[0].Frame, es[5].Frame)
	}
	seq, err := o.Append([]byte("m10"))
	if err != nil || seq <= es[5].Seq {
		t.Fatalf("append after restart: seq %d (last was %d), %v", seq, es[5].Seq, err)
	}
}

func TestFullRefusesAndKeeps(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "edgehost.db"))
	defer s.Close()
	o := open(t, s, Options{MaxBytes: 10})
	if _, err := o.Append([]byte("12345678")); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Append([]byte("abc")); !errors.Is(err, ErrFull) {
		t.Fatalf("append past the cap: %v, want ErrFull", err)
	}
	if _, err := o.Append([]byte("ab")); err != nil {
		t.Fatalf("append up to the cap: %v", err)
	}
	st := o.Stats()
	if st.Refused != 1 || st.Depth != 2 || st.Bytes != 10 {
		t.Fatalf("stats = %+v", st)
	}
	if es := readAll(t, o); string(es[0].Frame) != "12345678" {
		t.Fatalf("first entry %q: a full queue must keep what it holds", es[0].Frame)
	}
}

func TestExpire(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "edgehost.db"))
	defer s.Close()
	now := time.Unix(1000, 0)
	o := open(t, s, Options{TTL: time.Minute, Now: func() time.Time { return now }})
	o.Append([]byte("old"))
	now = now.Add(30 * time.Second)
	o.Append([]byte("new"))
	now = now.Add(45 * time.Second)
	es := readAll(t, o)
	if len(es) != 1 || string(es[0].Frame) != "new" {
		t.Fatalf("entries after TTL = %v", es)
	}
	if st := o.Stats(); st.Expired != 1 || st.Depth != 1 || st.OldestAge != 45*time.Second {
		t.Fatalf("stats = %+v", st)
	}
}

func TestConcurrentAppendsAllKept(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "edgehost.db"))
	defer s.Close()
	o := open(t, s, Options{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := o.Append([]byte(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	es := readAll(t, o)
	if len(es) != 400 {
		t.Fatalf("%d entries, want 400", len(es))
	}
	// Each writer's entries are in its own order.
	next := map[byte]int{}
	for i, e := range es {
		if i > 0 && e.Seq <= es[i-1].Seq {
			t.Fatalf("sequence not increasing at %d", i)
		}
		var w, n int
		fmt.Sscanf(string(e.Frame), "w%d-%d", &w, &n)
		if n != next[byte(w)] {
			t.Fatalf("writer %d: entry %d came after %d", w, n, next[byte(w)]-1)
		}
		next[byte(w)]++
	}
}

// TestKill9KeepsEveryAppend kills a process appending to the outbox with
// SIGKILL and checks that every append it reported as committed is there.
func TestKill9KeepsEveryAppend(t *testing.T) {
	if path := os.Getenv("OUTBOX_KILL_CHILD"); path != "" {
		s := openStore(t, path)
		o := open(t, s, Options{})
		w := bufio.NewWriter(os.Stdout)
		for i := 0; ; i++ {
			if _, err := o.Append([]byte("m" + strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(w, i)
			w.Flush()
		}
	}
	path := filepath.Join(t.TempDir(), "edgehost.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9KeepsEveryAppend$")
	cmd.Env = append(os.Environ(), "OUTBOX_KILL_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	last := -1
	for sc.Scan() && last < 300 {
		last, _ = strconv.Atoi(sc.Text())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	for sc.Scan() {
		if n, err := strconv.Atoi(sc.Text()); err == nil {
			last = n
		}
	}
	cmd.Wait()
	if last < 300 {
		t.Fatalf("child stopped at %d before the kill", last)
	}
	s := openStore(t, path)
	defer s.Close()
	o := open(t, s, Options{})
	es := readAll(t, o)
	if len(es) < last+1 {
		t.Fatalf("%d entries after kill -9, but the child reported %d committed", len(es), last+1)
	}
	for i := 0; i <= last; i++ {
		if string(es[i].Frame) != "m"+strconv.Itoa(i) {
			t.Fatalf("entry %d is %q", i, es[i].Frame)
		}
	}
}

func TestAppendBatchPrefixWhenFull(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "edgehost.db"))
	defer s.Close()
	o := open(t, s, Options{MaxBytes: 6})
	seqs, err := o.AppendBatch([][]byte{[]byte("ab"), []byte("cd"), []byte("efg"), []byte("h")})
	if len(seqs) != 2 || !errors.Is(err, ErrFull) {
		t.Fatalf("batch past the cap: %d accepted, %v", len(seqs), err)
	}
	if st := o.Stats(); st.Refused != 2 || st.Depth != 2 || st.Appended != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

var benchFrame = []byte(`{"header":{"msg_id":"9591fd2a-9e22-4e79-9af1-def7b677075c","timestamp":1795715924710},"route":{"source":"twin","group":"resource","operation":"update","resource":"device/default/cloud-dev-0/twin/edge_updated"},"content":{"event_id":"5336ffc1","twin":{"temp":{"actual":{"value":"20"}}}}}`)

// BenchmarkOutboxAppend appends with fsync on, from many goroutines (the
// store groups concurrent appends into one commit) and in batches from
// one goroutine, as the hub's intake does.
func BenchmarkOutboxAppend(b *testing.B) {
	b.Run("concurrent", func(b *testing.B) {
		s := openStore(b, filepath.Join(b.TempDir(), "edgehost.db"))
		defer s.Close()
		o := open(b, s, Options{MaxBytes: 1 << 40})
		b.SetParallelism(128)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := o.Append(benchFrame); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
		st := s.Stats()
		b.ReportMetric(float64(st.Updates)/float64(max(st.Commits, 1)), "appends/commit")
	})
	b.Run("batch256", func(b *testing.B) {
		s := openStore(b, filepath.Join(b.TempDir(), "edgehost.db"))
		defer s.Close()
		o := open(b, s, Options{MaxBytes: 1 << 40})
		batch := make([][]byte, 256)
		for i := range batch {
			batch[i] = benchFrame
		}
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i += len(batch) {
			if _, err := o.AppendBatch(batch[:min(len(batch), b.N-i)]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
	})
}
