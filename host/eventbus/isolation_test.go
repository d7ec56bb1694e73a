package eventbus

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/config"
)

// gated is a subscriber that blocks on its first message until release:
// the slowest subscriber there can be, and one whose progress the test
// knows exactly (it is on its first message until released).
type gated struct {
	started chan string   // gets the first message's payload
	gate    chan struct{} // closed by release
	once    sync.Once
	mu      sync.Mutex
	got     []string
}

func newGated(tb testing.TB) *gated {
	g := &gated{started: make(chan string, 1), gate: make(chan struct{})}
	tb.Cleanup(g.release) // before the module stops: cleanups run last first
	return g
}

func (g *gated) handler(ctx context.Context, _ string, payload []byte) {
	select {
	case g.started <- string(payload):
		select {
		case <-g.gate:
		case <-ctx.Done():
		}
	default:
	}
	g.mu.Lock()
	g.got = append(g.got, string(payload))
	g.mu.Unlock()
}

func (g *gated) release() { g.once.Do(func() { close(g.gate) }) }

// recorder collects what a subscriber gets, in order.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) handler(_ context.Context, topic string, payload []byte) {
	r.mu.Lock()
	r.got = append(r.got, topic+"="+string(payload))
	r.mu.Unlock()
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// subscribe subscribes handler as owner, unsubscribing when the test ends.
func subscribe(tb testing.TB, m *Module, owner, filter string, handler Handler) {
	tb.Helper()
	unsub, err := m.Subscribe(owner, filter, handler)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(unsub)
}

// subscriber returns the Stats row of owner and filter.
func subscriber(tb testing.TB, m *Module, owner, filter string) SubscriberStats {
	tb.Helper()
	for _, r := range m.Stats().Subscribers {
		if r.Owner == owner && r.Filter == filter {
			return r
		}
	}
	tb.Fatalf("no subscriber row for %s %q in %+v", owner, filter, m.Stats().Subscribers)
	return SubscriberStats{}
}

// Finding 3 of issue 18: a subscriber that does not take its messages
// holds back no one else. Two subscribers share a topic, one stuck on its
// first message: the other gets every message of a burst from one MQTT
// connection, and a message on another topic from that connection after
// the burst, while the stuck one is still on its first. What its queue
// could not hold is refused and counted against it, and only it. QoS 1,
// so that the fast subscriber, which the burst may outrun for a moment,
// waits for room rather than losing a message.
func TestSlowSubscriberDoesNotStallOthers(t *testing.T) {
	const n, queueLen = 50, 4
	for _, kind := range brokerKinds {
		t.Run(kind, func(t *testing.T) {
			s := newSetup(t, kind, func(c *config.EventBus) {
				c.SubscriberQueue, c.SubscriberBackpressure, c.LocalBackpressure = queueLen, 50*time.Millisecond, 50*time.Millisecond
			})
			m := s.start()
			slow, fast, other := newGated(t), &recorder{}, &recorder{}
			subscribe(t, m, "slow", "iso/t", slow.handler)
			subscribe(t, m, "fast", "iso/t", fast.handler)
			subscribe(t, m, "other", "iso/other", other.handler)
			c := client(t, s.addr)

			mustToken(t, c.Publish("iso/t", 1, false, "0"))
			select {
			case <-slow.started:
			case <-time.After(waitFor):
				t.Fatal("the slow subscriber never got its first message")
			}
			for i := 1; i < n; i++ {
				mustToken(t, c.Publish("iso/t", 1, false, fmt.Sprint(i)))
			}
			mustToken(t, c.Publish("iso/other", 1, false, "after"))
			eventually(t, "the fast subscriber has the burst and the other topic its message",
				func() bool { return fast.len() == n && other.len() == 1 })
			for i, g := range fast.list() {
				if want := fmt.Sprintf("iso/t=%d", i); g != want {
					t.Fatalf("fast subscriber's message %d = %q, want %q", i, g, want)
				}
			}
			if g := other.list(); g[0] != "iso/other=after" {
				t.Fatalf("other subscriber got %q", g)
			}
			st := subscriber(t, m, "slow", "iso/t")
			if st.Delivered != 0 || st.Depth != queueLen || st.Refused != n-1-queueLen || st.Dropped != 0 {
				t.Fatalf("slow subscriber, still on its first message: %+v; want 0 delivered, %d queued, %d refused", st, queueLen, n-1-queueLen)
			}
			if f := subscriber(t, m, "fast", "iso/t"); f.Dropped != 0 || f.Refused != 0 || f.Delivered != n {
				t.Fatalf("fast subscriber: %+v", f)
			}
			if got := m.Stats().SubscriberRefused; got != n-1-queueLen {
				t.Fatalf("SubscriberRefused = %d, want %d", got, n-1-queueLen)
			}

			slow.release()
			eventually(t, "the slow subscriber has its queue", func() bool { return subscriber(t, m, "slow", "iso/t").Delivered == 1+queueLen })
		})
	}
}

// A message for a full queue is lost by its QoS's policy and counted: QoS
// 0 dropped at once, QoS 1 refused after localBackpressure (and at
// once while the subscriber, stuck, takes nothing). The publisher is not failed:
// every Publish returns nil, all of them while the subscriber is still
// stuck on its first message (finding 3's faulted publisher). At QoS 1 a
// fast neighbour gets every message.
func TestSlowSubscriberLosesByQoSWithoutFailingThePublisher(t *testing.T) {
	const n, queueLen = 20, 4
	for _, kind := range brokerKinds {
		for _, qos := range []byte{0, 1} {
			t.Run(fmt.Sprintf("%s/qos%d", kind, qos), func(t *testing.T) {
				s := newSetup(t, kind, func(c *config.EventBus) {
					c.SubscriberQueue, c.LocalBackpressure = queueLen, 20*time.Millisecond
				})
				m := s.start()
				slow, fast := newGated(t), &recorder{}
				subscribe(t, m, "slow", "iso/q", slow.handler)
				if qos == 1 {
					subscribe(t, m, "fast", "iso/q", fast.handler)
				}
				published := make(chan error, 1)
				go func() {
					for i := range n {
						if err := m.Publish(context.Background(), "iso/q", []byte(fmt.Sprint(i)), qos, false); err != nil {
							published <- err
							return
						}
						if i == 0 {
							<-slow.started
						}
					}
					published <- nil
				}()
				select {
				case err := <-published:
					if err != nil {
						t.Fatalf("Publish: %v", err)
					}
				case <-time.After(waitFor):
					t.Fatal("Publish waits for the stuck subscriber")
				}
				lost := uint64(n - 1 - queueLen)
				eventually(t, "the losses are counted", func() bool {
					st := m.Stats()
					return st.SubscriberDropped+st.SubscriberRefused >= lost
				})
				st := subscriber(t, m, "slow", "iso/q")
				want := SubscriberStats{Owner: "slow", Filter: "iso/q", Depth: queueLen, Capacity: queueLen, Dropped: lost}
				if qos == 1 {
					want.Dropped, want.Refused = 0, lost
				}
				if st != want {
					t.Fatalf("slow subscriber: %+v, want %+v", st, want)
				}
				if qos == 1 {
					eventually(t, "the fast subscriber has every message", func() bool { return fast.len() == n })
				}
			})
		}
	}
}

// A QoS 1 message for a full queue waits for room: a subscriber that is
// slow but moving throttles the publisher and loses nothing. One stuck past
// its back-pressure bound costs a refusal, then refusals without waiting
// until it takes its next message; then waiting resumes, though the queue
// is still nearly full.
func TestStalledSubscriberResumesBackpressure(t *testing.T) {
	const queueLen, more = 8, 50
	s := newSetup(t, "embedded", func(c *config.EventBus) {
		c.SubscriberQueue, c.LocalBackpressure = queueLen, 200*time.Millisecond
	})
	m := s.start()
	started, gate := make(chan struct{}, 1), make(chan struct{})
	var gateOnce sync.Once
	release := func() { gateOnce.Do(func() { close(gate) }) }
	t.Cleanup(release)
	got := &recorder{}
	subscribe(t, m, "sub", "iso/s", func(ctx context.Context, topic string, payload []byte) {
		select {
		case started <- struct{}{}:
			<-gate
		default:
			time.Sleep(2 * time.Millisecond) // slow, but moving
		}
		got.handler(ctx, topic, payload)
	})
	publish := func(i int) {
		t.Helper()
		if err := m.Publish(context.Background(), "iso/s", []byte(fmt.Sprint(i)), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	publish(0)
	<-started
	for i := 1; i <= queueLen+2; i++ { // queueLen queued; one waits and is refused, one is refused at once
		publish(i)
	}
	if st := subscriber(t, m, "sub", "iso/s"); st.Refused != 2 || st.Depth != queueLen {
		t.Fatalf("stuck subscriber: %+v; want %d queued, 2 refused", st, queueLen)
	}
	release()
	eventually(t, "the subscriber moves again", func() bool { return subscriber(t, m, "sub", "iso/s").Delivered >= 2 })
	for i := queueLen + 3; i < queueLen+3+more; i++ { // faster than it takes them: they wait for room
		publish(i)
	}
	eventually(t, "every message not refused is delivered", func() bool { return got.len() == 1+queueLen+more })
	if st := subscriber(t, m, "sub", "iso/s"); st.Refused != 2 {
		t.Fatalf("after it moved again: %+v; want only the 2 refused while it was stuck", st)
	}
	var want []string
	for i := range queueLen + 3 + more {
		if i != queueLen+1 && i != queueLen+2 {
			want = append(want, "iso/s="+fmt.Sprint(i))
		}
	}
	if g := got.list(); !slices.Equal(g, want) {
		t.Fatalf("delivered %q, want %q", g, want)
	}
}

// A QoS 1 message from a client connection waits for room up to
// subscriberBackpressure, which holds back that connection alone; one
// published in process waits only localBackpressure, shorter than a
// plugin's call. Here the client's message outlasts the local bound many
// times over and is still delivered once the subscriber moves, while an
// in-process one at the same point is refused.
func TestClientMessagesWaitLongerThanInProcessOnes(t *testing.T) {
	s := newSetup(t, "embedded", func(c *config.EventBus) {
		c.SubscriberQueue, c.SubscriberBackpressure, c.LocalBackpressure = 1, waitFor, 10*time.Millisecond
	})
	m := s.start()
	fromClient, inProcess := newGated(t), newGated(t)
	subscribe(t, m, "client", "iso/c", fromClient.handler)
	subscribe(t, m, "local", "iso/l", inProcess.handler)

	c := client(t, s.addr)
	for i := range 3 { // 0 taken, 1 queued, 2 waits for room
		mustToken(t, c.Publish("iso/c", 1, false, fmt.Sprint(i)))
		if i == 0 {
			<-fromClient.started
		}
	}
	eventually(t, "the third message is being offered", func() bool { return m.Stats().Received == 3 })
	time.Sleep(10 * 10 * time.Millisecond) // ten times the local bound
	if st := subscriber(t, m, "client", "iso/c"); st.Refused != 0 {
		t.Fatalf("a client's message was refused after the local bound: %+v", st)
	}
	fromClient.release()
	eventually(t, "the client's messages are all delivered", func() bool { return subscriber(t, m, "client", "iso/c").Delivered == 3 })

	for i := range 3 {
		if err := m.Publish(context.Background(), "iso/l", []byte(fmt.Sprint(i)), 1, false); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-inProcess.started
		}
	}
	if st := subscriber(t, m, "local", "iso/l"); st.Refused != 1 {
		t.Fatalf("in-process publisher's third message: %+v, want it refused", st)
	}
}

// Unsubscribing a subscriber stuck in its handler cancels the handler's
// ctx, waits for it, and counts what was still queued as dropped; the
// goroutine is gone (the race detector and the test's end would see it).
func TestUnsubscribeStopsAStuckSubscriber(t *testing.T) {
	s := newSetup(t, "embedded", func(c *config.EventBus) { c.SubscriberQueue = 4 })
	m := s.start()
	stuck := make(chan struct{}, 1)
	unsub, err := m.Subscribe("stuck", "iso/u", func(ctx context.Context, _ string, _ []byte) {
		stuck <- struct{}{}
		<-ctx.Done()
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := m.Publish(context.Background(), "iso/u", []byte(fmt.Sprint(i)), 0, false); err != nil {
			t.Fatal(err)
		}
	}
	<-stuck
	eventually(t, "two messages queued", func() bool { return subscriber(t, m, "stuck", "iso/u").Depth == 2 })
	unsub()
	if got := m.Stats().SubscriberDropped; got != 2 {
		t.Fatalf("SubscriberDropped after unsubscribe = %d, want the 2 still queued", got)
	}
	for _, r := range m.Stats().Subscribers {
		if r.Owner == "stuck" {
			t.Fatalf("row of an ended subscription: %+v", r)
		}
	}
}
