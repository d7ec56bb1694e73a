package eventbus

import (
	"context"
	"testing"

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
