package wasm

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunawayCallsAreStopped runs guests that never return — an endless
// loop in handle, in init and in tick — 100 times each, while another
// plugin serves and garbage collections are forced from another goroutine.
// Every call must end as a timeout fault soon after the call timeout (what
// the caller waits past it is mostly the fresh instance the call needed,
// since the one before it was discarded: the safepoint itself fires within
// microseconds of the deadline), the
// collections must complete while the guests spin (compiled wasm cannot be
// preempted: only the safepoints let the GC stop it), and the other plugin
// must answer throughout.
func TestRunawayCallsAreStopped(t *testing.T) {
	const (
		timeout = 25 * time.Millisecond
		rounds  = 100
		// hangGuard is far above the expected overshoot (well under a
		// millisecond between safepoints): it catches a call that is not
		// stopped by its deadline at all, without timing the machine.
		hangGuard = 5 * time.Second
	)
	limits := Limits{MemoryPages: 100, CallTimeout: timeout, MaxMessageBytes: 64 << 10}
	noQuarantine := Quarantine{After: 1 << 20}
	ctx := context.Background()

	// Another plugin and the garbage collector keep working meanwhile.
	echo := load(t, "echo", PluginConfig{Name: "bystander"})
	stop := make(chan struct{})
	var served, failed, gcs atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if _, ok, err := echo.Handle(ctx, message("echo", "still here")); err != nil || !ok {
				failed.Add(1)
			} else {
				served.Add(1)
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				runtime.GC()
				gcs.Add(1)
			}
		}
	})

	overshoots := map[string][]time.Duration{}
	expectTimeout := func(what string, i int, start time.Time, err error) {
		t.Helper()
		took := time.Since(start)
		var fe *FaultError
		if !errors.As(err, &fe) || fe.Kind != FaultTimeout {
			t.Fatalf("%s, round %d: got %v, want a timeout fault", what, i, err)
		}
		if took > timeout+hangGuard {
			t.Fatalf("%s, round %d: stopped after %s for a %s timeout", what, i, took, timeout)
		}
		overshoots[what] = append(overshoots[what], took-timeout)
	}

	faulty := load(t, "faulty", PluginConfig{Limits: limits, Quarantine: noQuarantine})
	gcBefore := gcs.Load()
	for i := range rounds {
		start := time.Now()
		_, _, err := faulty.Handle(ctx, message("loop", ""))
		expectTimeout("loop in handle", i, start, err)
	}
	if gcs.Load() == gcBefore {
		t.Fatal("no garbage collection completed while the guest spun")
	}

	ticking := load(t, "faulty", PluginConfig{Name: "ticker", Limits: limits, Quarantine: noQuarantine, Config: []byte("tickloop")})
	for i := range rounds {
		start := time.Now()
		expectTimeout("loop in tick", i, start, ticking.Tick(ctx))
	}

	m := compile(t, "faulty")
	for i := range rounds {
		start := time.Now()
		p, err := testRuntime.Load(ctx, m, PluginConfig{Name: "initloop", Limits: limits, Config: []byte("loop")})
		if err == nil {
			p.Close(ctx)
		}
		// Load's own set-up comes on top of the init call's timeout.
		expectTimeout("loop in init", i, start, err)
	}

	close(stop)
	wg.Wait()
	if failed.Load() > 0 || served.Load() == 0 {
		t.Fatalf("the other plugin answered %d calls and failed %d while the guests spun", served.Load(), failed.Load())
	}
	for what, o := range overshoots {
		slices.Sort(o)
		t.Logf("%s: %d calls stopped, past the %s timeout by median %s, p99 %s, max %s",
			what, len(o), timeout, o[len(o)/2], o[len(o)*99/100], o[len(o)-1])
	}
	t.Logf("meanwhile %d GCs completed and the other plugin answered %d calls", gcs.Load(), served.Load())
}
