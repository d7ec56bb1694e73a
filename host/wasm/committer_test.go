package wasm

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// gatedKV is a MemKV whose Apply waits until the test opens the gate, as
// a store waits for its fsync, and counts the batches it applied.
type gatedKV struct {
	*MemKV
	gate    chan struct{}
	applies atomic.Int64
	fail    atomic.Bool
}

func (kv *gatedKV) Apply(ops []KVOp) error {
	<-kv.gate
	kv.applies.Add(1)
	if kv.fail.Load() {
		return errors.New("disk on fire")
	}
	return kv.MemKV.Apply(ops)
}

// busy reports whether the committer is applying a batch.
func busy(p *Plugin) bool {
	p.commits.mu.Lock()
	defer p.commits.mu.Unlock()
	return p.commits.busy
}

// queued is how many writes wait in the committer's collecting batch.
func queued(p *Plugin) int {
	p.commits.mu.Lock()
	defer p.commits.mu.Unlock()
	if p.commits.next == nil {
		return 0
	}
	return len(p.commits.next.ops)
}

// awaitQueued waits until n writes wait behind the batch being applied.
func awaitQueued(t *testing.T, p *Plugin, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for queued(p) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", queued(p), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCommitFreesTheInstance: while one call's writes wait for the store,
// its single instance serves the next calls, which read those writes; the
// writes land in call order, in fewer batches than calls, and each reply
// waits for its own call's writes.
func TestCommitFreesTheInstance(t *testing.T) {
	kv := &gatedKV{MemKV: NewMemKV(), gate: make(chan struct{})}
	p := load(t, "faulty", PluginConfig{KV: kv, Limits: Limits{Instances: 1}})
	replies := make(chan string, 3)
	incr := func() {
		_, got := call(t, p, "incr", "n")
		replies <- got
	}
	go incr() // its batch waits at the gate, holding no instance
	deadline := time.Now().Add(30 * time.Second)
	for !busy(p) {
		if time.Now().After(deadline) {
			t.Fatal("the first call never reached the store")
		}
		time.Sleep(time.Millisecond)
	}
	// The one instance is free: a call without writes is answered at once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, _, err := p.Handle(ctx, message("echo", "free")); err != nil || string(r.Content) != "free" {
		close(kv.gate)
		t.Fatalf("echo while a commit waits = %q, %v", r.Content, err)
	}
	go incr()
	awaitQueued(t, p, 1)
	go incr()
	awaitQueued(t, p, 2)
	select {
	case r := <-replies:
		t.Fatalf("a reply (%s) came before its writes were durable", r)
	default:
	}
	close(kv.gate)
	got := map[string]bool{}
	for range 3 {
		got[<-replies] = true
	}
	if !got["1"] || !got["2"] || !got["3"] {
		t.Fatalf("replies %v, want 1, 2 and 3: each call read the writes before it", got)
	}
	if v, _, _ := kv.Get("n"); string(v) != "3" {
		t.Fatalf("stored n = %q, want 3", v)
	}
	if n := kv.applies.Load(); n != 2 {
		t.Fatalf("%d batches applied, want 2 (the first call's, then the two that waited)", n)
	}
}

// TestFailedCommitFailsItsCalls: when the store refuses a batch, every
// call in it fails with internal, and the next calls read the store as it
// is, not the refused writes.
func TestFailedCommitFailsItsCalls(t *testing.T) {
	kv := &gatedKV{MemKV: NewMemKV(), gate: make(chan struct{})}
	close(kv.gate)
	p := load(t, "faulty", PluginConfig{KV: kv, Limits: Limits{Instances: 1}})
	kv.fail.Store(true)
	_, _, err := p.Handle(context.Background(), message("incr", "n"))
	if !errors.Is(err, abi.Internal) {
		t.Fatalf("incr on a failing store: %v, want internal", err)
	}
	kv.fail.Store(false)
	if _, got := call(t, p, "incr", "n"); got != "1" {
		t.Fatalf("incr after the failure = %s, want 1 (the refused write is gone)", got)
	}
	p.commits.mu.Lock()
	defer p.commits.mu.Unlock()
	if n := len(p.commits.overlay); n != 0 {
		t.Fatalf("%d writes left in the overlay", n)
	}
}
