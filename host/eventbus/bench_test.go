package eventbus

import (
	"context"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/config"
)

// BenchmarkMQTTRoundTripNative measures one MQTT round trip through the
// bridge with a native Go bus module: a client publishes on a user topic,
// the bridge uploads it to group hub, the module there echoes it back with
// a bus publish, and the client's subscription receives it. QoS 0. Compare
// the two brokers as a ratio; absolute figures depend on the machine.
func BenchmarkMQTTRoundTripNative(b *testing.B) {
	for _, kind := range brokerKinds {
		b.Run(kind, func(b *testing.B) {
			s := newSetup(b, kind, func(c *config.EventBus) { c.QoS = 0 })
			echo := register(b, s.bus, "echo", HubGroup)
			s.start()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				for {
					m, err := echo.Receive(ctx)
					if err != nil {
						return
					}
					s.bus.Send(ctx, ModuleName, abi.Message{
						Route:   abi.Route{Source: "echo", Group: ModuleGroup, Operation: abi.OpPublish, Resource: "bench/pong"},
						Content: m.Content,
					})
				}
			}()
			pong := make(chan struct{}, 1)
			c := client(b, s.addr)
			mustToken(b, c.Subscribe("bench/pong", 0, func(paho.Client, paho.Message) { pong <- struct{}{} }))
			payload := []byte(`{"value":"21"}`)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.Publish("bench/user/ping", 0, false, payload)
				<-pong
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
		})
	}
}

// BenchmarkFastSubscriberLatency measures the latency of one subscriber
// (Module.Subscribe), from an MQTT client's QoS 0 publish to the handler,
// alone and with a slow neighbour on the same topic that sleeps 1 s per
// message (finding 3 of issue 18: it used to hold every message back). One
// message at a time; p50 and p99 of the fast subscriber are reported. The
// two should match: the neighbour's queue fills and drops, on its own.
func BenchmarkFastSubscriberLatency(b *testing.B) {
	for _, kind := range brokerKinds {
		for _, neighbour := range []string{"alone", "slowNeighbour"} {
			b.Run(kind+"/"+neighbour, func(b *testing.B) {
				s := newSetup(b, kind, func(c *config.EventBus) { c.SubscriberQueue = 64 })
				s.quiet = true // the neighbour's drops are expected
				m := s.start()
				if neighbour == "slowNeighbour" {
					unsub, err := m.Subscribe("slow", "bench/lat", func(ctx context.Context, _ string, _ []byte) {
						select {
						case <-time.After(time.Second):
						case <-ctx.Done():
						}
					})
					if err != nil {
						b.Fatal(err)
					}
					defer unsub()
				}
				got := make(chan time.Time, 1)
				unsub, err := m.Subscribe("fast", "bench/lat", func(context.Context, string, []byte) { got <- time.Now() })
				if err != nil {
					b.Fatal(err)
				}
				defer unsub()
				c := client(b, s.addr)
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for range b.N {
					sent := time.Now()
					c.Publish("bench/lat", 0, false, "x")
					lat = append(lat, (<-got).Sub(sent))
				}
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			})
		}
	}
}
