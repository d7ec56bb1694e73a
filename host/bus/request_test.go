package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgehost/edgehost/abi"
)

// 10k requests at once across 8 modules, each with its own responder loop:
// every reply reaches the requester that asked for it.
func TestRequestConcurrent(t *testing.T) {
	const modules, requests = 8, 10000
	b := New(Options{SendTimeout: time.Minute})
	var waits []func()
	for i := range modules {
		waits = append(waits, responder(t, b, mustRegister(t, b, fmt.Sprintf("m%d", i), "g")))
	}

	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			to := fmt.Sprintf("m%d", i%modules)
			req := abi.Message{Header: abi.Header{ID: NewID()}, Route: abi.Route{Source: "test", Resource: "r"}, Content: fmt.Appendf(nil, "req-%d", i)}
			r, err := b.Request(context.Background(), to, req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			if want := to + ":req-" + fmt.Sprint(i); string(r.Content) != want || r.Header.ParentID != req.Header.ID || r.Header.ID == "" || r.Header.ID == req.Header.ID {
				t.Errorf("request %d (id %s) got reply %+v content %q, want content %q", i, req.Header.ID, r.Header, r.Content, want)
			}
		})
	}
	wg.Wait()

	s := b.Stats()
	if s.Pending != 0 || s.NoWaiter != 0 || s.Abandoned != 0 {
		t.Errorf("after all replies: %+v", s)
	}
	var received uint64
	for _, m := range s.Modules {
		received += m.Received
		if m.Failed != 0 {
			t.Errorf("%s: %d failed sends", m.Name, m.Failed)
		}
	}
	if received != requests {
		t.Errorf("modules received %d requests, want %d", received, requests)
	}
	b.Close()
	for _, w := range waits {
		w()
	}
}

func TestRequestSetsSync(t *testing.T) {
	b := New(Options{})
	ep := mustRegister(t, b, "twin", "twin")
	var sync bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		m, err := ep.Receive(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		sync = m.Header.Sync
		if err := b.Respond(m.Reply(abi.OpResponse, nil)); err != nil {
			t.Error(err)
		}
	}()
	if _, err := b.Request(context.Background(), "twin", abi.Message{}); err != nil {
		t.Fatal(err)
	}
	<-done
	if !sync {
		t.Error("the handler saw Sync false on a Request")
	}
	b.Close()
}

// A request to a module that never answers ends at the ctx deadline with a
// timeout; the pending entry is gone and a late reply is a counted error.
func TestRequestDeadline(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	ep := mustRegister(t, b, "twin", "twin")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := b.Request(ctx, "twin", abi.Message{Header: abi.Header{ID: "req-1"}})
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, abi.Timeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Request = %v, want ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), `request req-1 to "twin"`) {
		t.Errorf("error %q does not name the request", err)
	}
	if ctx.Err() == nil {
		t.Error("Request returned before its deadline")
	}
	if s := b.Stats(); s.Pending != 0 || s.Abandoned != 1 {
		t.Errorf("pending %d, abandoned %d; want 0, 1", s.Pending, s.Abandoned)
	}

	// The module answers after all: nobody waits any more.
	m, err := ep.Receive(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = b.Respond(m.Reply(abi.OpResponse, nil))
	if !errors.Is(err, ErrNoWaiter) || !errors.Is(err, abi.NotFound) || !strings.Contains(err.Error(), "req-1") {
		t.Errorf("late Respond = %v, want ErrNoWaiter naming req-1", err)
	}
	if n := b.Stats().NoWaiter; n != 1 {
		t.Errorf("NoWaiter = %d, want 1", n)
	}
}

func TestRequestCancel(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	mustRegister(t, b, "twin", "twin")
	ctx, cancel := context.WithCancel(context.Background())
	go cancel()
	_, err := b.Request(ctx, "twin", abi.Message{})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Errorf("Request = %v, want context.Canceled", err)
	}
	if s := b.Stats(); s.Pending != 0 || s.Abandoned != 1 {
		t.Errorf("pending %d, abandoned %d", s.Pending, s.Abandoned)
	}
}

func TestRequestSendFails(t *testing.T) {
	b := New(Options{QueueLen: 1, SendTimeout: 10 * time.Millisecond})
	defer b.Close()
	mustRegister(t, b, "twin", "twin")
	if err := b.Send(context.Background(), "twin", abi.Message{}); err != nil {
		t.Fatal(err)
	}
	_, err := b.Request(context.Background(), "twin", abi.Message{})
	if !errors.Is(err, ErrQueueFull) || !strings.Contains(err.Error(), `request to "twin"`) {
		t.Errorf("Request to a full queue = %v", err)
	}
	if p := b.Stats().Pending; p != 0 {
		t.Errorf("failed request left %d pending", p)
	}
}

func TestRequestDuplicateID(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	ep := mustRegister(t, b, "twin", "twin")
	first := make(chan error)
	go func() {
		_, err := b.Request(context.Background(), "twin", abi.Message{Header: abi.Header{ID: "same"}})
		first <- err
	}()
	m, err := ep.Receive(context.Background()) // the first request is now pending
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Request(context.Background(), "twin", abi.Message{Header: abi.Header{ID: "same"}}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("second Request with a pending id = %v, want ErrDuplicate", err)
	}
	if err := b.Respond(m.Reply(abi.OpResponse, nil)); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Errorf("first Request = %v", err)
	}
}

func TestRespondNoWaiter(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	for _, parent := range []string{"never-asked", ""} {
		err := b.Respond(abi.Message{Header: abi.Header{ParentID: parent}})
		if !errors.Is(err, ErrNoWaiter) {
			t.Errorf("Respond with ParentID %q = %v, want ErrNoWaiter", parent, err)
		}
	}
	if n := b.Stats().NoWaiter; n != 2 {
		t.Errorf("NoWaiter = %d, want 2", n)
	}
}

// Waiting is true for a request's id from its send until its reply is
// taken, and never for a message sent without waiting.
func TestWaiting(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	ep := mustRegister(t, b, "m", "g")
	sent := abi.Message{Header: abi.Header{ID: NewID()}}
	if err := b.Send(context.Background(), "m", sent); err != nil {
		t.Fatal(err)
	}
	if got, err := ep.Receive(context.Background()); err != nil || b.Waiting(got.Header.ID) {
		t.Errorf("Waiting for a sent message = true (receive error %v)", err)
	}
	done := make(chan error, 1)
	req := abi.Message{Header: abi.Header{ID: NewID()}}
	go func() {
		_, err := b.Request(context.Background(), "m", req)
		done <- err
	}()
	got, err := ep.Receive(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !b.Waiting(got.Header.ID) {
		t.Error("Waiting for a request being served = false")
	}
	if err := b.Respond(got.Reply(abi.OpResponse, nil)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b.Waiting(got.Header.ID) || b.Waiting("") {
		t.Error("Waiting after the reply was taken, or for no id, = true")
	}
}

// Close with requests and blocked sends in flight: every one returns
// ErrClosed, later calls fail with ErrClosed, and no goroutine is left.
func TestCloseInFlight(t *testing.T) {
	defer goleak.VerifyNone(t)
	const requests, senders = 100, 10
	b := New(Options{QueueLen: requests, SendTimeout: time.Hour})
	ep := mustRegister(t, b, "twin", "twin") // never receives
	mustRegister(t, b, "full", "full")

	errs := make(chan error, requests+senders)
	for range requests {
		go func() {
			_, err := b.Request(context.Background(), "twin", abi.Message{})
			errs <- err
		}()
	}
	for b.Stats().Pending < requests || ep.Stats().Queued < requests {
		time.Sleep(time.Millisecond)
	}
	for range b.opts.QueueLen {
		if err := b.Send(context.Background(), "full", abi.Message{}); err != nil {
			t.Fatal(err)
		}
	}
	for range senders {
		go func() { errs <- b.Send(context.Background(), "full", abi.Message{}) }()
	}

	b.Close()
	b.Close() // idempotent

	// A generous bound: what is checked is that every call returns.
	deadline := time.After(time.Minute)
	for i := range requests + senders {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) || !errors.Is(err, abi.Unavailable) {
				t.Errorf("call %d returned %v, want ErrClosed", i, err)
			}
		case <-deadline:
			t.Fatalf("only %d of %d calls returned after Close", i, requests+senders)
		}
	}

	s := b.Stats()
	// Dropped: both full queues, plus any blocked sender that slipped into
	// the emptied queue during Close (it got ErrClosed above).
	if s.Pending != 0 || s.Abandoned != requests || s.Dropped < 2*requests || s.Dropped > 2*requests+senders {
		t.Errorf("after Close: pending %d, abandoned %d, dropped %d", s.Pending, s.Abandoned, s.Dropped)
	}
	ctx := context.Background()
	if _, err := ep.Receive(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Receive after Close = %v", err)
	}
	if err := b.Send(ctx, "twin", abi.Message{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v", err)
	}
	if err := b.SendToGroup(ctx, "twin", abi.Message{}); !errors.Is(err, ErrClosed) {
		t.Errorf("SendToGroup after Close = %v", err)
	}
	if err := b.Broadcast(ctx, "twin", abi.Message{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Broadcast after Close = %v", err)
	}
	if _, err := b.Request(ctx, "twin", abi.Message{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Request after Close = %v", err)
	}
	if err := b.Respond(abi.Message{Header: abi.Header{ParentID: "x"}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Respond after Close = %v", err)
	}
	if _, err := b.Register("late", "g"); !errors.Is(err, ErrClosed) {
		t.Errorf("Register after Close = %v", err)
	}
}

// Close while responders are busy answering: requests end with their reply
// or ErrClosed, nothing hangs, nothing leaks.
func TestCloseUnderLoad(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := New(Options{SendTimeout: time.Minute})
	var waits []func()
	for i := range 4 {
		waits = append(waits, responder(t, b, mustRegister(t, b, fmt.Sprintf("m%d", i), "g")))
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for {
				r, err := b.Request(context.Background(), fmt.Sprintf("m%d", i%4), abi.Message{})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil || r.Header.ParentID == "" {
					t.Errorf("Request = %+v, %v", r.Header, err)
					return
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	b.Close()
	wg.Wait()
	for _, w := range waits {
		w()
	}
}

func TestRequestGroup(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	a, c := mustRegister(t, b, "a", "g"), mustRegister(t, b, "c", "g")
	defer responder(t, b, a)()
	defer responder(t, b, c)()
	defer a.Close()
	defer c.Close()
	seen := map[string]int{}
	for range 10 {
		r, err := b.RequestGroup(context.Background(), "g", abi.Message{Content: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		seen[string(r.Content)]++
	}
	if seen["a:x"] != 5 || seen["c:x"] != 5 {
		t.Fatalf("replies by member = %v, want 5 each (round-robin)", seen)
	}
	if _, err := b.RequestGroup(context.Background(), "nobody", abi.Message{}); !errors.Is(err, ErrNoModule) || !errors.Is(err, abi.Unavailable) {
		t.Fatalf("request to an unknown group: %v", err)
	}
}
