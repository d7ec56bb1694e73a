package bus

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

func TestSendReceive(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	ep := mustRegister(t, b, "twin", "twin")

	sent := abi.Message{Route: abi.Route{Source: "eventbus", Group: "twin", Operation: abi.OpUpdate, Resource: "device/d1/twin/update"}, Content: []byte(`{}`)}
	if err := b.Send(context.Background(), "twin", sent); err != nil {
		t.Fatal(err)
	}
	got, err := ep.Receive(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Header.ID == "" || got.Header.Timestamp == 0 {
		t.Errorf("Send did not fill ID and Timestamp: %+v", got.Header)
	}
	if got.Route != sent.Route || string(got.Content) != "{}" {
		t.Errorf("got %+v, want route %+v", got, sent.Route)
	}

	sent.Header = abi.Header{ID: "my-id", Timestamp: 42}
	if err := b.Send(context.Background(), "twin", sent); err != nil {
		t.Fatal(err)
	}
	if got, _ = ep.Receive(context.Background()); got.Header.ID != "my-id" || got.Header.Timestamp != 42 {
		t.Errorf("Send overwrote the caller's header: %+v", got.Header)
	}
	if s := ep.Stats(); s.Sent != 2 || s.Received != 2 || s.Failed != 0 || s.Queued != 0 || s.Capacity != 1024 {
		t.Errorf("stats = %+v", s)
	}
}

func TestReceiveContext(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	ep := mustRegister(t, b, "twin", "twin")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ep.Receive(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive on a cancelled ctx = %v", err)
	}
}

func TestRegister(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	ep := mustRegister(t, b, "twin", "twin")
	_, err := b.Register("twin", "other")
	if !errors.Is(err, ErrDuplicate) || !errors.Is(err, abi.InvalidArgument) || !strings.Contains(err.Error(), `"twin"`) {
		t.Errorf("duplicate Register = %v, want ErrDuplicate naming the module", err)
	}
	for _, bad := range [][2]string{{"", "g"}, {"m", ""}} {
		if _, err := b.Register(bad[0], bad[1]); !errors.Is(err, ErrInvalid) {
			t.Errorf("Register(%q, %q) = %v, want ErrInvalid", bad[0], bad[1], err)
		}
	}
	ep.Close()
	ep.Close() // idempotent
	if _, err := b.Register("twin", "twin"); err != nil {
		t.Errorf("Register after the old endpoint closed = %v", err)
	}
}

func TestNoModule(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	ctx := context.Background()
	for name, err := range map[string]error{
		"send":      b.Send(ctx, "nobody", abi.Message{}),
		"group":     b.SendToGroup(ctx, "nogroup", abi.Message{}),
		"broadcast": b.Broadcast(ctx, "nogroup", abi.Message{}),
	} {
		if !errors.Is(err, ErrNoModule) || !errors.Is(err, abi.Unavailable) {
			t.Errorf("%s: %v, want ErrNoModule", name, err)
		}
	}
	if _, err := b.Request(ctx, "nobody", abi.Message{}); !errors.Is(err, ErrNoModule) || !strings.Contains(err.Error(), `request to "nobody"`) {
		t.Errorf("request: %v", err)
	}
	if n := b.Stats().NoModule; n != 4 {
		t.Errorf("NoModule = %d, want 4", n)
	}
}

// TestHasGroup: a group is there while a module of it is registered, and
// asking counts no miss.
func TestHasGroup(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	if b.HasGroup("g") {
		t.Error("empty bus has group g")
	}
	ep, err := b.Register("m", "g")
	if err != nil {
		t.Fatal(err)
	}
	if !b.HasGroup("g") || b.HasGroup("other") {
		t.Error("HasGroup after register")
	}
	ep.Close()
	if b.HasGroup("g") || b.Stats().NoModule != 0 {
		t.Errorf("after close: %v, NoModule %d", b.HasGroup("g"), b.Stats().NoModule)
	}
}

func TestQueueFullTimeout(t *testing.T) {
	b := New(Options{QueueLen: 2, SendTimeout: 20 * time.Millisecond})
	defer b.Close()
	ep := mustRegister(t, b, "twin", "twin")
	ctx := context.Background()
	for range 2 {
		if err := b.Send(ctx, "twin", abi.Message{}); err != nil {
			t.Fatal(err)
		}
	}
	err := b.Send(ctx, "twin", abi.Message{})
	if !errors.Is(err, ErrQueueFull) || !errors.Is(err, abi.Busy) {
		t.Fatalf("Send to a full queue = %v, want ErrQueueFull", err)
	}
	if !regexp.MustCompile(`^bus: send to "twin": queue full after \d`).MatchString(err.Error()) {
		t.Errorf("error text %q does not name the module and the wait", err)
	}
	if s := ep.Stats(); s.Failed != 1 || s.Sent != 2 || s.Queued != 2 {
		t.Errorf("stats = %+v, want 1 failed, 2 sent, 2 queued", s)
	}
}

func TestQueueFullContextDeadline(t *testing.T) {
	b := New(Options{QueueLen: 1, SendTimeout: time.Hour})
	defer b.Close()
	ep := mustRegister(t, b, "twin", "twin")
	if err := b.Send(context.Background(), "twin", abi.Message{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := b.Send(ctx, "twin", abi.Message{})
	if !errors.Is(err, ErrQueueFull) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want ErrQueueFull and DeadlineExceeded", err)
	}
	if ctx.Err() == nil {
		t.Error("Send gave up before the context's deadline")
	}
	if ep.Stats().Failed != 1 {
		t.Errorf("failed = %d", ep.Stats().Failed)
	}
}

// A full queue is back-pressure, not loss: the sender waits and gets through
// once the module catches up.
func TestFullQueueBlocksThenDelivers(t *testing.T) {
	b := New(Options{QueueLen: 1, SendTimeout: time.Minute})
	defer b.Close()
	ep := mustRegister(t, b, "twin", "twin")
	ctx := context.Background()
	if err := b.Send(ctx, "twin", abi.Message{Content: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- b.Send(ctx, "twin", abi.Message{Content: []byte("2")}) }()
	for _, want := range []string{"1", "2"} {
		m, err := ep.Receive(ctx)
		if err != nil || string(m.Content) != want {
			t.Fatalf("Receive = %q, %v; want %q", m.Content, err, want)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("blocked Send = %v", err)
	}
}

func TestSendToGroupRoundRobin(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	eps := []*Endpoint{mustRegister(t, b, "a", "g"), mustRegister(t, b, "b", "g"), mustRegister(t, b, "c", "g")}
	mustRegister(t, b, "other", "h")
	for range 9 {
		if err := b.SendToGroup(context.Background(), "g", abi.Message{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ep := range eps {
		if q := ep.Stats().Queued; q != 3 {
			t.Errorf("%s got %d of 9, want 3", ep.Name(), q)
		}
	}
}

func TestSendToGroupPassesOverFullMember(t *testing.T) {
	b := New(Options{QueueLen: 1, SendTimeout: 10 * time.Millisecond})
	defer b.Close()
	a, c := mustRegister(t, b, "a", "g"), mustRegister(t, b, "c", "g")
	ctx := context.Background()
	for range 2 {
		if err := b.SendToGroup(ctx, "g", abi.Message{}); err != nil {
			t.Fatal(err)
		}
	}
	if a.Stats().Queued != 1 || c.Stats().Queued != 1 {
		t.Fatalf("queues %d, %d; want 1, 1", a.Stats().Queued, c.Stats().Queued)
	}
	if err := b.SendToGroup(ctx, "g", abi.Message{}); !errors.Is(err, ErrQueueFull) {
		t.Errorf("SendToGroup with every member full = %v", err)
	}
}

func TestBroadcast(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	eventbus := mustRegister(t, b, "eventbus", "bus")
	servicebus := mustRegister(t, b, "servicebus", "bus")
	twin := mustRegister(t, b, "twin", "twin")

	// KubeEdge's connection event, as edgehub broadcasts it.
	ev := abi.Message{Route: abi.Route{Source: "edgehub", Group: "bus", Operation: "connect", Resource: "node/connection"}, Content: []byte("cloud_connected")}
	if err := b.Broadcast(context.Background(), "bus", ev); err != nil {
		t.Fatal(err)
	}
	var id string
	for _, ep := range []*Endpoint{eventbus, servicebus} {
		m, err := ep.Receive(context.Background())
		if err != nil || string(m.Content) != "cloud_connected" {
			t.Fatalf("%s: %q, %v", ep.Name(), m.Content, err)
		}
		if id != "" && m.Header.ID != id {
			t.Errorf("members got different ids %s and %s for one broadcast", id, m.Header.ID)
		}
		id = m.Header.ID
	}
	if q := twin.Stats().Queued; q != 0 {
		t.Errorf("twin, outside the group, got %d messages", q)
	}
}

func TestBroadcastReportsFullMembers(t *testing.T) {
	b := New(Options{QueueLen: 1, SendTimeout: 10 * time.Millisecond})
	defer b.Close()
	mustRegister(t, b, "eventbus", "bus")
	full := mustRegister(t, b, "servicebus", "bus")
	if err := b.Send(context.Background(), "servicebus", abi.Message{}); err != nil {
		t.Fatal(err)
	}
	err := b.Broadcast(context.Background(), "bus", abi.Message{})
	if !errors.Is(err, ErrQueueFull) || !strings.Contains(err.Error(), `broadcast to "servicebus"`) {
		t.Errorf("Broadcast = %v, want ErrQueueFull naming servicebus", err)
	}
	if s := b.Stats(); s.Modules[0].Name != "eventbus" || s.Modules[0].Queued != 1 || full.Stats().Failed != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestEndpointCloseCountsDropped(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	ep := mustRegister(t, b, "twin", "twin")
	for range 3 {
		if err := b.Send(context.Background(), "twin", abi.Message{}); err != nil {
			t.Fatal(err)
		}
	}
	ep.Close()
	if d := b.Stats().Dropped; d != 3 {
		t.Errorf("Dropped = %d, want 3", d)
	}
	if _, err := ep.Receive(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Receive after Close = %v", err)
	}
	if err := b.Send(context.Background(), "twin", abi.Message{}); !errors.Is(err, ErrNoModule) {
		t.Errorf("Send to a closed module = %v", err)
	}
	if len(b.Stats().Modules) != 0 {
		t.Errorf("closed module still listed: %+v", b.Stats().Modules)
	}
}

func TestErrorCodes(t *testing.T) {
	for err, code := range map[error]abi.Code{
		ErrQueueFull: abi.Busy,
		ErrNoModule:  abi.Unavailable,
		ErrTimeout:   abi.Timeout,
		ErrNoWaiter:  abi.NotFound,
		ErrClosed:    abi.Unavailable,
		ErrDuplicate: abi.InvalidArgument,
		ErrInvalid:   abi.InvalidArgument,
	} {
		if !errors.Is(err, code) || errors.Is(err, abi.Internal) {
			t.Errorf("%v should match %v and only it", err, code)
		}
	}
}

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 10000 {
		id := NewID()
		if !re.MatchString(id) {
			t.Fatalf("%q is not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("%q repeated", id)
		}
		seen[id] = true
	}
}
