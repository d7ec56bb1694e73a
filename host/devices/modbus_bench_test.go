package devices

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/edgehost/edgehost/internal/modbustest"
	"github.com/edgehost/edgehost/internal/plugintest"
	"github.com/simonvetter/modbus"
)

// BenchmarkModbusPoll: one holding-register read (temp, scale 0.1)
// against one in-process Modbus TCP server, two ways side by side:
//
//   - mapper: the real wasm Modbus mapper called directly with a read
//     message for one device and one property, as the devices module's
//     workers call it (the plugin host's Handle; not the scheduler or
//     the bus): JSON in, the request over the host's tcp imports on the
//     mapper's kept connection, the reply decoded, JSON out;
//   - native: simonvetter/modbus's Go client reading the same register
//     on its own connection, scaled and formatted the same way.
//
// The difference of the two times per op is the host's and the guest's
// overhead per poll; polls/s is reported for each.
func BenchmarkModbusPoll(b *testing.B) {
	bank := modbustest.NewBank()
	bank.SetHolding(0, 215)
	srv := modbustest.Serve(b, bank)
	host, port, _ := strings.Cut(srv.Addr, ":")

	b.Run("mapper", func(b *testing.B) {
		path, err := plugintest.Build("plugins/modbus")
		if err != nil {
			b.Fatal(err)
		}
		code, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		rt, err := wasm.NewRuntime(ctx, wasm.RuntimeConfig{CacheDir: plugintest.CacheDir(b)})
		if err != nil {
			b.Fatal(err)
		}
		defer rt.Close(ctx)
		mod, err := rt.Compile(ctx, code)
		if err != nil {
			b.Fatal(err)
		}
		p, err := rt.Load(ctx, mod, wasm.PluginConfig{Name: "modbus", Limits: wasm.Limits{Instances: 1, CallTimeout: 5 * time.Second}})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close(ctx)
		content, err := json.Marshal(abi.MapperRead{Devices: []abi.MapperDevice{{
			ID: "default/meter-0", Protocol: "modbus",
			ProtocolConfig: map[string]any{"ip": host, "port": port, "slaveID": 1},
			Properties: []abi.MapperProperty{{Name: "temp", Type: "float", CollectCycle: 1000,
				Visitor: map[string]any{"register": "HoldingRegister", "offset": 0, "limit": 1, "scale": 0.1}}},
		}}})
		if err != nil {
			b.Fatal(err)
		}
		msg := &abi.Message{Header: abi.Header{ID: "read", Sync: true},
			Route:   abi.Route{Source: abi.MapperSource, Group: abi.MapperGroup, Operation: abi.MapperOpRead, Resource: abi.MapperResourceRead},
			Content: content}
		for b.Loop() {
			reply, _, err := p.Handle(ctx, msg)
			if err != nil {
				b.Fatal(err)
			}
			var out abi.MapperReadReply
			if err := json.Unmarshal(reply.Content, &out); err != nil || len(out.Devices) != 1 ||
				len(out.Devices[0].Properties) != 1 || out.Devices[0].Properties[0].Value != "21.5" {
				b.Fatalf("read reply %s (%v)", reply.Content, err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "polls/s")
	})

	b.Run("native", func(b *testing.B) {
		c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: "tcp://" + srv.Addr, Timeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Open(); err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		for b.Loop() {
			v, err := c.ReadRegister(0, modbus.HOLDING_REGISTER)
			if err != nil {
				b.Fatal(err)
			}
			if s := strconv.FormatFloat(float64(int16(v))*0.1, 'f', 1, 64); s != "21.5" {
				b.Fatalf("read %s", s)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "polls/s")
	})
}
