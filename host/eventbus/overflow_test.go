package eventbus

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/config"
)

// twinResponder stands in for the twin on the bus, as the twin path works:
// every message bridged to group twin is answered with a bus publish of
// its topic plus "/result", which the eventbus sends at its QoS (1) to the
// MQTT client subscribed to the results. The answers take at least work
// each on average (slept in batches of 16, as sleeps are coarse), so that,
// like the real twin, it is slower than a burst arrives. It runs until the
// test ends.
func twinResponder(tb testing.TB, s *setup, work time.Duration) {
	tb.Helper()
	ep := register(tb, s.bus, "twin", TwinGroup)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	tb.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			msg, err := ep.Receive(ctx)
			if err != nil {
				return
			}
			if i%16 == 0 {
				time.Sleep(16 * work)
			}
			topic, err := TopicOfTwinResource(msg.Route.Resource)
			if err != nil {
				tb.Errorf("twin resource: %v", err)
				return
			}
			err = s.bus.Send(ctx, ModuleName, abi.Message{
				Route:   abi.Route{Source: "twin", Group: ModuleGroup, Operation: abi.OpPublish, Resource: topic + "/result"},
				Content: msg.Content,
			})
			if err != nil && ctx.Err() == nil {
				tb.Errorf("publish result: %v", err)
			}
		}
	}()
}

// Finding 4 of issue 18: a mapper sends 10,000 twin updates back to back
// at QoS 1 on the connection it reads the results on, and gets all 10,000
// results. The twin is slower than the burst, so the broker reads the
// connection, acks of the first results included, at the twin's pace: up
// to the burst's length of results are in flight at once, and must fit
// maxInflight and maxPendingWrites. Every count must agree that nothing
// was lost.
func TestMapperBurstGetsEveryQoS1Result(t *testing.T) {
	const n = 10000
	s := newSetup(t, "embedded", nil)
	twinResponder(t, s, 400*time.Microsecond)
	m := s.start()
	peak := peakInflight(t, m)
	var got atomic.Int64
	seen := make([]atomic.Bool, n)
	c := client(t, s.addr)
	mustToken(t, c.Subscribe("$hw/events/device/+/+/twin/update/result", 1, func(_ paho.Client, msg paho.Message) {
		var i int
		if _, err := fmt.Sscanf(string(msg.Payload()), `{"event_id":"%d"}`, &i); err == nil && i >= 0 && i < n && !seen[i].Swap(true) {
			got.Add(1)
		}
	}))
	toks := make([]paho.Token, n)
	for i := range n {
		toks[i] = c.Publish(fmt.Sprintf("$hw/events/device/default/sensor-%d/twin/update", i%64), 1, false, fmt.Sprintf(`{"event_id":"%d"}`, i))
	}
	for _, tok := range toks {
		mustToken(t, tok)
	}
	deadline := time.Now().Add(4 * waitFor) // a hang guard for 10,000 round trips under -race
	for got.Load() < n && time.Now().Before(deadline) {
		st := m.Stats()
		if st.InflightDropped+st.WritesDropped+st.SubscriberDropped+st.SubscriberRefused > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := m.Stats()
	t.Logf("%d results; at most %d messages were in flight at once", got.Load(), peak())
	if got.Load() != n {
		t.Fatalf("the mapper got %d of %d results; stats %+v", got.Load(), n, st)
	}
	if st.InflightDropped+st.WritesDropped+st.SubscriberDropped+st.SubscriberRefused+st.BusFailed != 0 || st.Bridged != n {
		t.Fatalf("stats after a lossless burst: %+v", st)
	}
}

// The embedded broker's drops for a client it cannot send to fast enough
// are counted: past maxInflight unacknowledged QoS 1 messages (a client
// that never acks), and past maxPendingWrites packets waiting (a client
// that never reads). This also guards the log message mochi reports the
// first by (mochiQuotaReached).
func TestClientOverflowCounted(t *testing.T) {
	t.Run("inflight", func(t *testing.T) {
		const inflight, n = 5, 12
		s := newSetup(t, "embedded", func(c *config.EventBus) { c.Embedded.MaxInflight = inflight })
		m := s.start()
		var got atomic.Int64
		c := client(t, s.addr, func(o *paho.ClientOptions) { o.SetAutoAckDisabled(true) })
		mustToken(t, c.Subscribe("ov/in", 1, func(paho.Client, paho.Message) { got.Add(1) }))
		for i := range n {
			if err := m.Publish(context.Background(), "ov/in", []byte(fmt.Sprint(i)), 1, false); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "the client has the messages in flight", func() bool { return got.Load() == inflight })
		if st := m.Stats(); st.InflightDropped != n-inflight || st.WritesDropped != 0 {
			t.Fatalf("InflightDropped %d, WritesDropped %d; want %d, 0", st.InflightDropped, st.WritesDropped, n-inflight)
		}
	})
	t.Run("writes", func(t *testing.T) {
		s := newSetup(t, "embedded", func(c *config.EventBus) { c.Embedded.MaxPendingWrites = 2 })
		m := s.start()
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// CONNECT, then SUBSCRIBE to "ov/w" at QoS 0, then never read.
		subscribe := []byte{0x82, 9, 0, 1, 0, 4, 'o', 'v', '/', 'w', 0}
		if _, err := conn.Write(append(append([]byte{}, connectPacket...), subscribe...)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the raw client is subscribed", func() bool { return subscribedRaw(s, "ov/w") })
		payload := []byte(strings.Repeat("x", 64<<10))
		eventually(t, "a write to the client that never reads is dropped", func() bool {
			if err := m.Publish(context.Background(), "ov/w", payload, 0, false); err != nil {
				t.Fatal(err)
			}
			return m.Stats().WritesDropped > 0
		})
	})
}

// peakInflight samples the embedded broker's count of messages in flight
// until the test ends; the function returns the highest seen so far.
func peakInflight(tb testing.TB, m *Module) func() int64 {
	var e *embedded
	for _, b := range *m.brokers.Load() {
		if x, ok := b.(*embedded); ok {
			e = x
		}
	}
	var peak atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	tb.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if v := atomic.LoadInt64(&e.srv.Info.Inflight); v > peak.Load() {
				peak.Store(v)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return peak.Load
}

// subscribedRaw reports whether some client of the embedded broker has
// subscribed filter.
func subscribedRaw(s *setup, filter string) bool {
	bs := s.mod.brokers.Load()
	if bs == nil {
		return false
	}
	for _, b := range *bs {
		if e, ok := b.(*embedded); ok {
			for _, cl := range e.srv.Clients.GetAll() {
				if _, ok := cl.State.Subscriptions.Get(filter); ok {
					return true
				}
			}
		}
	}
	return false
}
