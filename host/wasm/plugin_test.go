package wasm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/plugintest"
)

func TestEchoRoundTrip(t *testing.T) {
	p := load(t, "echo", PluginConfig{})
	for _, size := range []int{0, 1, 256, 5000, 70000} { // 5000 and 70000 grow the exchange buffer
		mustEcho(t, p, strings.Repeat("x", size))
	}
	if st := p.Status(); st.State != StateReady || st.Calls != 5 || st.Faults != 0 || st.Instances != 1 {
		t.Fatalf("status = %+v", st)
	}
}

func TestGuestFailureCodeIsOrderly(t *testing.T) {
	p := load(t, "faulty", PluginConfig{Quarantine: Quarantine{After: 1}})
	for range 3 {
		_, _, err := p.Handle(context.Background(), message("fail", "10"))
		var ce *CodeError
		if !errors.As(err, &ce) || !errors.Is(err, abi.NoHandler) || ce.Plugin != "faulty" {
			t.Fatalf("got %v, want a CodeError with no handler", err)
		}
		var fe *FaultError
		if errors.As(err, &fe) {
			t.Fatalf("a failure code is not a fault: %v", err)
		}
	}
	if _, _, err := p.Handle(context.Background(), message("unknown-op", "")); !errors.Is(err, abi.NoHandler) {
		t.Fatalf("unknown op: %v", err)
	}
	if _, ok, err := p.Handle(context.Background(), message("consume", "")); ok || err != nil {
		t.Fatalf("consume: ok=%v err=%v, want no reply and no error", ok, err)
	}
	mustEcho(t, p, "still here")
	if st := p.Status(); st.State != StateReady || st.Faults != 0 || st.ConsecutiveFaults != 0 {
		t.Fatalf("status = %+v", st)
	}
}

func TestMessageTooLargeRefusedBeforeTheGuest(t *testing.T) {
	p := load(t, "echo", PluginConfig{Limits: Limits{MaxMessageBytes: 1024}})
	_, _, err := p.Handle(context.Background(), message("echo", strings.Repeat("x", 2000)))
	if !errors.Is(err, abi.TooLarge) || !strings.Contains(err.Error(), `plugin "echo"`) {
		t.Fatalf("got %v, want too large naming the plugin", err)
	}
	if st := p.Status(); st.Calls != 0 {
		t.Fatalf("the guest was called: %+v", st)
	}
}

func TestInitRefusalAndTrapNameThePlugin(t *testing.T) {
	m := compile(t, "faulty")
	_, err := testRuntime.Load(context.Background(), m, PluginConfig{Name: "picky", Config: []byte("refuse")})
	if !errors.Is(err, abi.Denied) || !strings.Contains(err.Error(), `plugin "picky"`) {
		t.Fatalf("refusing init: got %v", err)
	}
	_, err = testRuntime.Load(context.Background(), m, PluginConfig{Name: "crashy", Config: []byte("trap")})
	var fe *FaultError
	if !errors.As(err, &fe) || fe.Plugin != "crashy" || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("trapping init: got %v", err)
	}
}

func TestInitWritesAreCommitted(t *testing.T) {
	kv := NewMemKV()
	load(t, "faulty", PluginConfig{Config: []byte("kv"), KV: kv})
	if v, ok, _ := kv.Get("init"); !ok || string(v) != "done" {
		t.Fatalf("init's KV write: %q %v", v, ok)
	}
}

func TestTick(t *testing.T) {
	p := load(t, "faulty", PluginConfig{})
	for range 3 {
		if err := p.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, got := call(t, p, "ticks", ""); got != "3" {
		t.Fatalf("ticks = %s, want 3", got)
	}
	failing := load(t, "faulty", PluginConfig{Name: "tickfail", Config: []byte("tickfail")})
	if err := failing.Tick(context.Background()); !errors.Is(err, abi.Internal) {
		t.Fatalf("tick failure: %v", err)
	}
	if err := load(t, "echo", PluginConfig{}).Tick(context.Background()); err != nil {
		t.Fatalf("tick without the export: %v", err)
	}
}

func TestCloseStopsInstancesAndRefusesCalls(t *testing.T) {
	var logs logBuffer
	p := load(t, "faulty", PluginConfig{Logger: newLogger(&logs)})
	mustEcho(t, p, "before")
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "faulty: stop") {
		t.Errorf("edgehost_stop was not called; log:\n%s", logs.String())
	}
	if _, _, err := p.Handle(context.Background(), message("echo", "")); !errors.Is(err, ErrClosed) {
		t.Fatalf("handle after close: %v", err)
	}
	if st := p.Status(); st.State != StateClosed || st.Instances != 0 {
		t.Fatalf("status after close = %+v", st)
	}
}

func TestConcurrentHandle(t *testing.T) {
	// Half the calls wait 2 ms in a host request, so calls overlap and the
	// pool grows past one instance.
	p := load(t, "faulty", PluginConfig{Limits: Limits{Instances: 4}, Host: &fakeHost{}})
	const workers, calls = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				content := fmt.Sprintf("worker %d call %d", w, i)
				op, want := "echo", content
				if i%2 == 0 {
					op, content, want = "request", "slow", strings.Repeat("slow", 20)
				}
				reply, ok, err := p.Handle(context.Background(), message(op, content))
				if err != nil || !ok || string(reply.Content) != want {
					t.Errorf("worker %d call %d: ok=%v err=%v content=%q", w, i, ok, err, reply.Content)
					return
				}
			}
		})
	}
	wg.Wait()
	st := p.Status()
	if st.Calls != workers*calls || st.Faults != 0 || st.Instances < 2 || st.Instances > 4 {
		t.Fatalf("status = %+v, want 2 to 4 instances", st)
	}
	t.Logf("%d instances served %d concurrent calls", st.Instances, st.Calls)
}

func TestCallerContextCheckedFirst(t *testing.T) {
	p := load(t, "echo", PluginConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := p.Handle(ctx, message("echo", "")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestStatusCountsMemory(t *testing.T) {
	code := plugintest.MustRead(t, pluginDir+"echo")
	m := compile(t, "echo")
	p := load(t, "echo", PluginConfig{Limits: Limits{Instances: 2}})
	st := p.Status()
	// The memory as it is after _initialize and init, at least the initial.
	if st.ModuleBytes != len(code) || st.MemoryPages < int(m.InitialMemoryPages()) || st.Instances != 1 {
		t.Fatalf("after load: %+v, want %d module bytes, at least %d pages, 1 instance", st, len(code), m.InitialMemoryPages())
	}
	// Two calls at once need a second instance.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { mustEcho(t, p, strings.Repeat("x", 64<<10)) })
	}
	wg.Wait()
	st = p.Status()
	if st.MemoryPages < int(m.InitialMemoryPages()) || st.MemoryPages > st.Instances*int(p.limits.MemoryPages) {
		t.Fatalf("after calls: %d pages for %d instances", st.MemoryPages, st.Instances)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.MemoryPages != 0 {
		t.Fatalf("after close: %d pages", st.MemoryPages)
	}
}

// TestReplyHeaderRules: abi/SPEC.md section 4's rules for a reply's
// header hold whatever the guest wrote: its id is dropped (the host gives
// a fresh one when it sends the reply), parent_id is the request's id or
// the reply is malformed, and sync is ignored.
func TestReplyHeaderRules(t *testing.T) {
	p := load(t, "faulty", PluginConfig{})
	in := message("forge", "id")
	r, ok, err := p.Handle(context.Background(), in)
	if err != nil || !ok {
		t.Fatalf("forge id: %v", err)
	}
	if r.Header.ID != "" || r.Header.ParentID != in.Header.ID || r.Header.Sync {
		t.Fatalf("reply header %+v: want no guest id, parent %q, no sync", r.Header, in.Header.ID)
	}
	if r, _, err := p.Handle(context.Background(), message("forge", "sync")); err != nil || r.Header.Sync {
		t.Fatalf("forge sync: %+v, %v", r.Header, err)
	}
	var fe *FaultError
	if _, _, err := p.Handle(context.Background(), message("forge", "parent")); !errors.As(err, &fe) || fe.Kind != FaultMalformedReply ||
		!strings.Contains(err.Error(), `parent_id "not-the-request" is not the request's id`) {
		t.Fatalf("forge parent: %v, want a malformed reply naming the parent_id", err)
	}
}
