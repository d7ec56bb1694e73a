package pluginhost

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// TestHotSwapUnderLoad upgrades a plugin five times and rolls it back once
// while senders keep it busy, and checks that every message is answered
// exactly once, by its own reply. It logs the throughput and the longest
// stall (the longest gap between two consecutive replies, and the slowest
// single request); it asserts nothing about speed.
func TestHotSwapUnderLoad(t *testing.T) {
	dir := t.TempDir()
	h := startHost(t, dir, testPluginsConfig(dir))
	ctx := context.Background()
	if _, err := h.m.Install(ctx, pack(t, "examples/echo", echoManifest("1.0.0")), SourceLocal); err != nil {
		t.Fatal(err)
	}
	upgrades := make([][]byte, 5)
	for i := range upgrades {
		upgrades[i] = pack(t, "examples/echo", echoManifest(fmt.Sprintf("1.0.%d", i+1)))
	}

	const senders = 8
	var stop atomic.Bool
	var wg sync.WaitGroup
	type result struct {
		done    []time.Time
		slowest time.Duration
		errs    []string
		sent    int
	}
	results := make([]result, senders)
	start := time.Now()
	for s := range senders {
		wg.Go(func() {
			r := &results[s]
			for i := 0; !stop.Load(); i++ {
				id := fmt.Sprintf("%d-%d", s, i)
				t0 := time.Now()
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				reply, err := h.bus.Request(rctx, "echo", abi.Message{Header: abi.Header{ID: id}, Content: []byte(id)})
				cancel()
				now := time.Now()
				r.sent++
				switch {
				case err != nil:
					r.errs = append(r.errs, fmt.Sprintf("%s: %v", id, err))
				case string(reply.Content) != id || reply.Header.ParentID != id || reply.Route.Operation != abi.OpResponse:
					r.errs = append(r.errs, fmt.Sprintf("%s: wrong reply %+v", id, reply))
				}
				r.done = append(r.done, now)
				r.slowest = max(r.slowest, now.Sub(t0))
			}
		})
	}
	pause := func() { time.Sleep(150 * time.Millisecond) }
	pause()
	for _, file := range upgrades {
		if _, err := h.m.Upgrade(ctx, file, SourceLocal); err != nil {
			t.Error(err)
		}
		pause()
	}
	if info, err := h.m.Rollback(ctx, "echo"); err != nil || info.Version != "1.0.4" {
		t.Errorf("rollback: %+v %v", info, err)
	}
	pause()
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)

	var done []time.Time
	total, slowest := 0, time.Duration(0)
	for _, r := range results {
		for _, e := range r.errs[:min(len(r.errs), 5)] {
			t.Error(e)
		}
		total += r.sent
		done = append(done, r.done...)
		slowest = max(slowest, r.slowest)
	}
	slices.SortFunc(done, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	for i := 1; i < len(done); i++ {
		gap = max(gap, done[i].Sub(done[i-1]))
	}
	// Every request got exactly its own reply; a second answer to any of
	// them would have found no waiter.
	if st := h.bus.Stats(); st.NoWaiter != 0 || st.Abandoned != 0 || st.Dropped != 0 || st.Pending != 0 {
		t.Errorf("bus: %d replies without a waiter, %d abandoned, %d dropped, %d pending",
			st.NoWaiter, st.Abandoned, st.Dropped, st.Pending)
	}
	info, _ := h.m.Info("echo")
	if info.Version != "1.0.4" || info.Previous != "1.0.5" {
		t.Errorf("after the swaps: %+v", info)
	}
	t.Logf("%d messages in %s (%.0f/s) through 5 upgrades and 1 rollback; longest gap between replies %s, slowest request %s",
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), gap.Round(time.Microsecond), slowest.Round(time.Microsecond))
}
