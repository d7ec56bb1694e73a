package pluginhost

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// BenchmarkMQTTPluginRoundTrip measures MQTT round trips through a wasm
// plugin: a client publishes on examples/echo/in, the eventbus hands the
// message to the bus, the bus to examples/mqtt-echo (installed with its
// grants, 2 instances), which publishes it on examples/echo/out, where a
// second client's subscription receives it. QoS 0, a 14-byte payload.
//
// "serial" has one message in flight: the latency. "pipelined" keeps up to
// 64 in flight: the throughput. Both report roundtrips/s. Compare the
// brokers as a ratio; absolute figures depend on the machine.
func BenchmarkMQTTPluginRoundTrip(b *testing.B) {
	for _, kind := range brokerKinds {
		b.Run(kind, func(b *testing.B) {
			dir := b.TempDir()
			var addr string
			h := startHostWith(b, dir, testPluginsConfig(dir), startEventBus(b, kind, &addr))
			if _, err := h.m.Install(context.Background(), pack(b, "examples/mqtt-echo", mqttEchoManifest()), SourceLocal); err != nil {
				b.Fatal(err)
			}
			var window chan struct{} // one token per message in flight
			var received atomic.Int64
			sub := mqttClient(b, addr)
			mustToken(b, sub.Subscribe("examples/echo/out", 0, func(paho.Client, paho.Message) {
				received.Add(1)
				<-window
			}))
			pub := mqttClient(b, addr)
			payload := []byte(`{"value":"21"}`)
			for _, mode := range []struct {
				name     string
				inFlight int
			}{{"serial", 1}, {"pipelined", 64}} {
				b.Run(mode.name, func(b *testing.B) {
					window = make(chan struct{}, mode.inFlight)
					received.Store(0)
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						window <- struct{}{}
						pub.Publish("examples/echo/in", 0, false, payload)
					}
					// Wait for the last ones; a lost message (QoS 0) ends the
					// wait with a failure rather than a hang.
					deadline := time.Now().Add(mqttWait)
					for received.Load() < int64(b.N) {
						if time.Now().After(deadline) {
							b.Fatalf("%d of %d round trips completed: messages lost", received.Load(), b.N)
						}
						time.Sleep(50 * time.Microsecond)
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
				})
			}
			if info, _ := h.m.Info("mqtt-echo"); info.MQTTDropped != 0 || info.Faults != 0 {
				b.Errorf("mqtt-echo dropped %d, faulted %d", info.MQTTDropped, info.Faults)
			}
		})
	}
}
