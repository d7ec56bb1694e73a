package wasm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// faultLimits are small limits so faults happen quickly.
var faultLimits = Limits{MemoryPages: 100, CallTimeout: 300 * time.Millisecond, MaxMessageBytes: 64 << 10}

func TestFaultsAreContained(t *testing.T) {
	cases := []struct {
		op, arg string
		kind    FaultKind
		cause   string
	}{
		{"panic", "", FaultTrap, "unreachable"},
		{"loop", "", FaultTimeout, "ran past"},
		{"oom", "", FaultMemory, "out of memory"},
		{"malformed", "", FaultMalformedReply, "malformed envelope"},
		{"badptr", "", FaultMalformedReply, "outside memory"},
		{"oversized", "100000", FaultReplyTooLarge, "over the limit"},
	}
	var logs logBuffer
	p := load(t, "faulty", PluginConfig{Limits: faultLimits, Quarantine: Quarantine{After: 100}, Logger: newLogger(&logs)})
	for i, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			_, _, err := p.Handle(context.Background(), message(c.op, c.arg))
			var fe *FaultError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FaultError", err)
			}
			if fe.Plugin != "faulty" || fe.Kind != c.kind || !strings.Contains(err.Error(), c.cause) ||
				!strings.Contains(err.Error(), `plugin "faulty"`) {
				t.Fatalf("got %v (kind %s), want kind %s with %q", err, fe.Kind, c.kind, c.cause)
			}
			mustEcho(t, p, "after "+c.op)
			st := p.Status()
			if st.Faults != uint64(i+1) || st.LastFault != fe || st.Instances != 1 {
				t.Fatalf("status = %+v", st)
			}
		})
	}
	if t.Failed() {
		t.Logf("plugin log:\n%s", logs.String())
	}
}

func TestQuarantineAndRecovery(t *testing.T) {
	q := Quarantine{After: 3, BackoffBase: 20 * time.Millisecond, BackoffMax: time.Second}
	p := load(t, "faulty", PluginConfig{Quarantine: q})
	ctx := context.Background()
	panicOnce := func() {
		t.Helper()
		var fe *FaultError
		if _, _, err := p.Handle(ctx, message("panic", "")); !errors.As(err, &fe) {
			t.Fatalf("panic: got %v, want a fault", err)
		}
	}
	waitBackoff := func(st Status) {
		t.Helper()
		time.Sleep(time.Until(st.QuarantinedUntil) + time.Millisecond)
	}
	for range 2 {
		panicOnce()
	}
	if st := p.Status(); st.State != StateReady || st.ConsecutiveFaults != 2 {
		t.Fatalf("after 2 faults: %+v", st)
	}
	panicOnce()
	st := p.Status()
	if st.State != StateQuarantined || st.QuarantinedUntil.Sub(st.LastFaultAt) != q.BackoffBase {
		t.Fatalf("after 3 faults: %+v", st)
	}
	if _, _, err := p.Handle(ctx, message("echo", "")); !errors.Is(err, ErrQuarantined) ||
		!strings.Contains(err.Error(), `plugin "faulty"`) {
		t.Fatalf("during quarantine: %v", err)
	}
	// Ticks keep their own health: the messages' quarantine does not stop
	// a tick that works.
	if err := p.Tick(ctx); err != nil {
		t.Fatalf("tick during the messages' quarantine: %v", err)
	}

	// A failing probe doubles the backoff.
	waitBackoff(st)
	panicOnce()
	st = p.Status()
	if st.State != StateQuarantined || st.QuarantinedUntil.Sub(st.LastFaultAt) != 2*q.BackoffBase {
		t.Fatalf("after a failed probe: %+v", st)
	}

	// A successful probe ends the quarantine.
	waitBackoff(st)
	mustEcho(t, p, "probe")
	st = p.Status()
	if st.State != StateReady || st.ConsecutiveFaults != 0 || st.Faults != 4 {
		t.Fatalf("after a good probe: %+v", st)
	}
	mustEcho(t, p, "again")
}

func TestBackoffIsCapped(t *testing.T) {
	q := Quarantine{BackoffBase: time.Second, BackoffMax: 5 * time.Second}.withDefaults()
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i, w := range want {
		if got := q.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
}

// TestStuckTickQuarantinesTicksOnly: a tick that never returns is stopped
// and, repeated, quarantines the plugin's ticks, while its messages are
// still served; good ticks do not excuse faulting messages either.
func TestStuckTickQuarantinesTicksOnly(t *testing.T) {
	q := Quarantine{After: 2, BackoffBase: time.Hour}
	limits := Limits{MemoryPages: 100, CallTimeout: 50 * time.Millisecond, MaxMessageBytes: 64 << 10}
	p := load(t, "faulty", PluginConfig{Name: "stucktick", Config: []byte("tickloop"), Quarantine: q, Limits: limits})
	ctx := context.Background()
	for range 2 {
		var fe *FaultError
		if err := p.Tick(ctx); !errors.As(err, &fe) || fe.Kind != FaultTimeout {
			t.Fatalf("stuck tick: %v, want a timeout fault", err)
		}
	}
	if err := p.Tick(ctx); !errors.Is(err, ErrQuarantined) || !strings.Contains(err.Error(), "ticks") {
		t.Fatalf("third tick: %v, want the ticks quarantined", err)
	}
	mustEcho(t, p, "messages still served")
	if st := p.Status(); st.State != StateReady || st.Faults != 0 {
		t.Fatalf("message health after stuck ticks: %+v", st)
	}

	ticker := load(t, "faulty", PluginConfig{Name: "goodtick", Quarantine: q})
	for range 2 {
		if _, _, err := ticker.Handle(ctx, message("panic", "")); asFault(err) == nil {
			t.Fatalf("panic: %v, want a fault", err)
		}
		if err := ticker.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st := ticker.Status(); st.State != StateQuarantined {
		t.Fatalf("a plugin faulting on every message but ticking fine: %s, want quarantined", st.State)
	}
}
