package supervisor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder logs module starts and stops in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

type fakeModule struct {
	name string
	rec  *recorder
	// failures is how many runs fail before one serves.
	failures atomic.Int32
	panics   bool
	runs     atomic.Int32
}

func (m *fakeModule) Name() string { return m.name }

func (m *fakeModule) Run(ctx context.Context, ready func()) error {
	n := m.runs.Add(1)
	if m.failures.Load() >= n {
		if m.panics {
			panic("boom")
		}
		return errors.New("cannot start")
	}
	m.rec.add("start " + m.name)
	ready()
	<-ctx.Done()
	m.rec.add("stop " + m.name)
	return nil
}

func TestOrderAndReverseStop(t *testing.T) {
	rec := &recorder{}
	a, b, c := &fakeModule{name: "a", rec: rec}, &fakeModule{name: "b", rec: rec}, &fakeModule{name: "c", rec: rec}
	s := New(Options{}, a, b, c)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !s.Ready() {
		t.Fatalf("not ready: %+v", s.Status())
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	want := []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"}
	if got := rec.list(); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	for _, st := range s.Status() {
		if st.State != Stopped {
			t.Fatalf("%s is %s after Stop", st.Name, st.State)
		}
	}
}

func TestFailingModuleIsRestartedWithBackoff(t *testing.T) {
	for _, panics := range []bool{false, true} {
		rec := &recorder{}
		flaky := &fakeModule{name: "flaky", rec: rec, panics: panics}
		flaky.failures.Store(3)
		s := New(Options{BackoffBase: time.Millisecond, BackoffMax: 4 * time.Millisecond}, flaky)
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		st := s.Status()[0]
		if st.State != Running || st.Restarts != 3 {
			t.Fatalf("panics=%v: status %+v, want running after 3 restarts", panics, st)
		}
		want := "cannot start"
		if panics {
			want = "panic: boom"
		}
		if !strings.Contains(st.LastError, want) {
			t.Fatalf("last error %q, want %q", st.LastError, want)
		}
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStartReportsModulesNotReady(t *testing.T) {
	rec := &recorder{}
	broken := &fakeModule{name: "broken", rec: rec}
	broken.failures.Store(1 << 30)
	ok := &fakeModule{name: "ok", rec: rec}
	s := New(Options{StartTimeout: 50 * time.Millisecond, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond}, broken, ok)
	err := s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), `module "broken" not ready`) || !strings.Contains(err.Error(), "cannot start") {
		t.Fatalf("Start error = %v", err)
	}
	if s.Ready() {
		t.Fatal("Ready with a broken module")
	}
	if got := s.Status()[1].State; got != Running {
		t.Fatalf("the healthy module is %s, want running", got)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
}

// slowModule reports progress a step at a time and is ready after steps
// steps, each shorter than the start timeout but all together longer.
type slowModule struct {
	steps int
	step  time.Duration
	done  atomic.Int32
	bad   atomic.Value // string: what NotReady reports once running
}

func (m *slowModule) Name() string { return "slow" }

func (m *slowModule) StartProgress() string {
	return strings.Repeat(".", int(m.done.Load())) + " loaded"
}

func (m *slowModule) NotReady() []string {
	if s, _ := m.bad.Load().(string); s != "" {
		return []string{s}
	}
	return nil
}

func (m *slowModule) Run(ctx context.Context, ready func()) error {
	for range m.steps {
		select {
		case <-time.After(m.step):
			m.done.Add(1)
		case <-ctx.Done():
			return nil
		}
	}
	ready()
	<-ctx.Done()
	return nil
}

func TestStartWaitsWhileModuleProgresses(t *testing.T) {
	m := &slowModule{steps: 6, step: 150 * time.Millisecond}
	// 6 steps of 150ms take far longer than the 400ms timeout, but each
	// step is progress.
	s := New(Options{StartTimeout: 400 * time.Millisecond}, m)
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start gave up on a module that kept making progress: %v", err)
	}
	if !s.Ready() {
		t.Fatalf("not ready: %v", s.NotReady())
	}
	m.bad.Store("plugin x failed to load")
	if s.Ready() {
		t.Fatal("ready while the module reports a problem")
	}
	if got := s.NotReady(); !slices.Equal(got, []string{"plugin x failed to load"}) {
		t.Fatalf("NotReady = %v", got)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
}

func TestStartGivesUpWithoutProgressAndSaysWhere(t *testing.T) {
	m := &slowModule{steps: 2, step: time.Hour}
	s := New(Options{StartTimeout: 100 * time.Millisecond}, m)
	err := s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), `module "slow" not ready`) || !strings.Contains(err.Error(), " loaded") {
		t.Fatalf("Start error = %v, want one naming the module and its progress", err)
	}
	if got := s.NotReady(); len(got) != 1 || !strings.Contains(got[0], "module slow is starting:  loaded") {
		t.Fatalf("NotReady = %v", got)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
}
