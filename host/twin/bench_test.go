package twin

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/pluginhost"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// benchDevices is how many devices the benchmark spreads its updates over.
const benchDevices = 64

// BenchmarkTwinUpdateE2E measures twin updates from an MQTT publish to its
// result arriving at the publisher: the embedded broker, the eventbus
// bridge, this module, the devicetwin plugin on wasm, its KV writes
// committed to bbolt with fsync (group commit) before the result is
// published, and the result back through the broker. The publisher keeps
// up to "window" updates in flight over 64 devices.
func BenchmarkTwinUpdateE2E(b *testing.B) {
	for _, c := range []struct{ instances, window int }{{4, 64}, {8, 256}, {16, 512}} {
		b.Run("instances="+strconv.Itoa(c.instances)+"/window="+strconv.Itoa(c.window), func(b *testing.B) {
			benchTwin(b, c.instances, c.window)
		})
	}
}

func benchTwin(b *testing.B, instances, window int) {
	dir := b.TempDir()
	var yaml strings.Builder
	for d := range benchDevices {
		yaml.WriteString("---\napiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: d" + strconv.Itoa(d) +
			"}\nspec:\n  properties:\n    - name: temp\n      desired: {value: \"20\"}\n")
	}
	devices := filepath.Join(dir, "devices")
	if err := os.MkdirAll(devices, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(devices, "d.yaml"), []byte(yaml.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	wasmFile, err := plugintest.Build("plugins/devicetwin")
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "edgehost.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	rt, err := wasm.NewRuntime(context.Background(), wasm.RuntimeConfig{CacheDir: plugintest.CacheDir(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close(context.Background())
	bs := bus.New(bus.Options{QueueLen: 4096})
	defer bs.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	evCfg := config.Default().Modules.EventBus
	evCfg.Embedded.Address = addr
	limits := config.Limits{MemoryPages: 256, CallTimeout: 5 * time.Second, MaxMessageBytes: 1 << 20, Instances: instances}
	ph := pluginhost.New(bs, rt, st, nil, config.Plugins{Enable: true, Dir: dir, Limits: limits, List: []config.Plugin{{
		Name: DefaultPlugin, Path: wasmFile, Config: config.JSON(`{"node_name":"bench"}`), Limits: limits,
	}}}, nil)
	stop := startAll(b, eventbus.New(evCfg, bs, st, nil), ph, New(bs, Config{DevicesDir: devices, Lanes: instances}, nil))
	defer stop()

	var (
		mu      sync.Mutex
		sent    = make([]time.Time, b.N)
		lat     = make([]time.Duration, 0, b.N)
		done    = make(chan struct{})
		credits = make(chan struct{}, window)
	)
	client := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("bench").SetOrderMatters(false))
	if tok := client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("connect: %v", tok.Error())
	}
	defer client.Disconnect(100)
	tok := client.Subscribe("$hw/events/device/+/+/twin/update/result", 0, func(_ mqtt.Client, m mqtt.Message) {
		var r struct {
			EventID string `json:"event_id"`
			Code    int    `json:"code"`
		}
		if json.Unmarshal(m.Payload(), &r) != nil || r.Code != 0 {
			return
		}
		i, err := strconv.Atoi(r.EventID)
		if err != nil || i < 0 || i >= len(sent) {
			return
		}
		mu.Lock()
		lat = append(lat, time.Since(sent[i]))
		n := len(lat)
		mu.Unlock()
		<-credits
		if n == len(sent) {
			close(done)
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("subscribe: %v", tok.Error())
	}
	waitForDevices(b, client)

	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		credits <- struct{}{}
		topic := "$hw/events/device/default/d" + strconv.Itoa(i%benchDevices) + "/twin/update"
		payload := `{"event_id":"` + strconv.Itoa(i) + `","timestamp":0,"twin":{"temp":{"actual":{"value":"` + strconv.Itoa(i%50) + `"}}}}`
		mu.Lock()
		sent[i] = time.Now()
		mu.Unlock()
		client.Publish(topic, 0, false, payload)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		mu.Lock()
		b.Fatalf("%d of %d results after 60s", len(lat), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "updates/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(st.Stats().Updates)/float64(max(st.Stats().Commits, 1)), "writes/commit")
}

// waitForDevices waits until the devices directory has been applied: a
// twin/get for the last device answers without an error.
func waitForDevices(b *testing.B, client mqtt.Client) {
	got := make(chan struct{}, 1)
	topic := "$hw/events/device/default/d" + strconv.Itoa(benchDevices-1) + "/twin/get"
	client.Subscribe(topic+"/result", 0, func(_ mqtt.Client, m mqtt.Message) {
		if !strings.Contains(string(m.Payload()), `"code"`) {
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}).Wait()
	defer client.Unsubscribe(topic + "/result")
	for range 100 {
		client.Publish(topic, 0, false, `{"event_id":"ready"}`)
		select {
		case <-got:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	b.Fatal("the devices were not applied")
}

// startAll runs modules in order, each once the previous is ready, and
// returns a function that stops them in reverse order.
func startAll(b *testing.B, mods ...interface {
	Run(context.Context, func()) error
}) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, m := range mods {
		ready := make(chan struct{})
		failed := make(chan error, 1)
		wg.Go(func() {
			if err := m.Run(ctx, func() { close(ready) }); err != nil {
				failed <- err
			}
		})
		select {
		case <-ready:
		case err := <-failed:
			b.Fatal(err)
		}
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
