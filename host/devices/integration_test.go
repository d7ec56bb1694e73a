package devices

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/builtin"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/pluginhost"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/twin"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// startFor bounds a module's start: the plugin host compiles the plugins,
// which takes long under -race on a cold cache.
const startFor = 3 * time.Minute

// run starts a module and returns once it is ready; it stops at the end of
// the test, which fails if the run ended with an error.
func run(t *testing.T, name string, mod interface {
	Run(context.Context, func()) error
}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- mod.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("%s ended before ready: %v", name, err)
	case <-time.After(startFor):
		t.Fatalf("%s not ready", name)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
}

// node is a node as the daemon wires it: the real embedded broker, the
// plugin host with the real devicetwin and virtual plugins (and the stuck
// test mapper), the twin module over a devices dir, and the devices
// module.
type node struct {
	bus     *bus.Bus
	devices *Module
	plugins *pluginhost.Module
	mqtt    *paho.Client
	addr    string
	got     chan mqttMessage
	seen    []mqttMessage // what waitTopic took from got, in order
}

type mqttMessage struct {
	topic   string
	payload []byte
}

// plugins gives the mapper plugins of ph to the devices module, and
// starts its built-in mappers when a device needs one, as the daemon does.
func plugins(ph *pluginhost.Module) MapperSource { return hostMappers{ph} }

type hostMappers struct{ ph *pluginhost.Module }

func (h hostMappers) Mappers() []Mapper {
	var out []Mapper
	for _, mp := range h.ph.Mappers() {
		out = append(out, Mapper(mp))
	}
	return out
}

func (h hostMappers) StartMapper(ctx context.Context, protocol string) (bool, error) {
	return h.ph.StartMapper(ctx, protocol)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

var clientSeq atomic.Int64

// newNode starts a node over the devices dir dir.
func newNode(t *testing.T, dir string, extra ...config.Plugin) *node {
	t.Helper()
	return newNodeWith(t, dir, nodeOptions{extra: extra})
}

// nodeOptions are what a test adds to the node newNodeWith starts.
type nodeOptions struct {
	// extra are plugins of modules.plugins.list beside the twin and the
	// virtual mapper.
	extra []config.Plugin
	// builtins are loaded as the binary's built-in plugins, under the
	// node's limits and restrict.
	builtins []builtin.Plugin
	restrict []config.PluginRestriction
}

// newNodeWith starts a node over the devices dir dir, with opts.
func newNodeWith(t *testing.T, dir string, opts nodeOptions) *node {
	t.Helper()
	twinWasm, err := plugintest.Build("plugins/devicetwin")
	if err != nil {
		t.Fatal(err)
	}
	virtualWasm, err := plugintest.Build("plugins/virtual")
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	st, err := store.Open(filepath.Join(data, "edgehost.db"), &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rt, err := wasm.NewRuntime(context.Background(), wasm.RuntimeConfig{CacheDir: plugintest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	n := &node{bus: b, addr: freeAddr(t), got: make(chan mqttMessage, 100000)}

	evCfg := config.Default().Modules.EventBus
	evCfg.Mode, evCfg.Embedded.Address = "embedded", n.addr
	ev := eventbus.New(evCfg, b, st, nil)
	run(t, "eventbus", ev)
	n.connect(t)
	limits := config.Limits{MemoryPages: 256, CallTimeout: 5 * time.Second, MaxMessageBytes: 1 << 20, Instances: 2}
	list := append([]config.Plugin{
		{Name: twin.DefaultPlugin, Path: twinWasm, Config: config.JSON(`{"node_name":"edge-1"}`), Limits: limits},
		{Name: "virtual", Path: virtualWasm, Limits: limits, Mapper: &config.Mapper{Protocols: []string{"virtual"}}},
	}, opts.extra...)
	ph := pluginhost.New(b, rt, st, ev, config.Plugins{Enable: true, Dir: filepath.Join(data, "plugins"), Limits: limits, List: list,
		Restrict: opts.restrict}, nil)
	ph.SetBuiltins(opts.builtins)
	n.plugins = ph
	run(t, "plugins", ph)
	run(t, "twin", twin.New(b, twin.Config{DevicesDir: dir, Lanes: 4}, nil))
	n.waitTopic(t, "$hw/events/node/edge-1/membership/updated", nil)
	n.devices = New(b, plugins(ph), ev, Config{DevicesDir: dir, CallTimeout: 3 * time.Second}, nil)
	run(t, "devices", n.devices)
	return n
}

// connect connects a real paho client that records every $hw/events
// publish.
func (n *node) connect(t *testing.T) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + n.addr).SetClientID("devices-test-" + strconv.Itoa(int(clientSeq.Add(1)))).
		SetAutoReconnect(false).SetConnectTimeout(waitFor)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("mqtt connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe("$hw/events/#", 1, func(_ paho.Client, m paho.Message) { n.got <- mqttMessage{m.Topic(), m.Payload()} })
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("mqtt subscribe: %v", tok.Error())
	}
	n.mqtt = &c
}

// publish publishes payload on topic at QoS 1.
func (n *node) publish(t *testing.T, topic, payload string) {
	t.Helper()
	if tok := (*n.mqtt).Publish(topic, 1, false, payload); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// waitTopic waits for a publish on topic that ok accepts (nil: any),
// since the client connected.
func (n *node) waitTopic(t *testing.T, topic string, ok func([]byte) bool) []byte {
	t.Helper()
	for _, m := range n.seen {
		if m.topic == topic && (ok == nil || ok(m.payload)) {
			return m.payload
		}
	}
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-n.got:
			n.seen = append(n.seen, m)
			if m.topic == topic && (ok == nil || ok(m.payload)) {
				return m.payload
			}
		case <-deadline:
			t.Fatalf("nothing on %s", topic)
		}
	}
}

// twinActual asks the twin for device id's document over MQTT and returns
// the actual value of each property.
func (n *node) twinActual(t *testing.T, id string) map[string]string {
	t.Helper()
	ev := "get-" + strconv.Itoa(int(clientSeq.Add(1)))
	n.publish(t, "$hw/events/device/"+id+"/twin/get", `{"event_id":"`+ev+`"}`)
	body := n.waitTopic(t, "$hw/events/device/"+id+"/twin/get/result", func(b []byte) bool { return strings.Contains(string(b), ev) })
	var doc struct {
		Twin map[string]struct {
			Actual *struct {
				Value string `json:"value"`
			} `json:"actual"`
		} `json:"twin"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("twin/get result %s: %v", body, err)
	}
	out := map[string]string{}
	for k, v := range doc.Twin {
		if v.Actual != nil {
			out[k] = v.Actual.Value
		}
	}
	return out
}

const simDevices = `apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: sim-model}
spec:
  protocol: virtual
  properties:
    - {name: count, type: INT, visitors: {protocolName: virtual, configData: {data: {kind: counter}}}}
    - {name: switch, type: STRING, visitors: {protocolName: virtual, configData: {data: {kind: echo, initial: "off"}}}}
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: sim-0}
spec:
  deviceModelRef: {name: sim-model}
  protocol: {protocolName: virtual}
  properties:
    - {name: count, collectCycle: 100, reportCycle: 100}
    - {name: switch, collectCycle: 100, reportCycle: 100}
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: broken}
spec:
  deviceModelRef: {name: sim-model}
  protocol: {protocolName: virtual, configData: {data: {fail: unplugged}}}
  properties:
    - {name: count, collectCycle: 100}
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: orphan}
spec:
  protocol: {protocolName: modbus}
  properties:
    - {name: reg}
`

// TestVirtualMapperThroughTheTwin: devices of the real virtual mapper are
// read on their cycles and their values reach the twin; a desired value
// set over MQTT is written to the mapper and comes back as the actual
// value; a device whose mapper fails goes offline while the others are
// served; a device of a protocol no plugin serves is listed as unbound.
func TestVirtualMapperThroughTheTwin(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sim.yaml"), []byte(simDevices), 0o644); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, dir)

	// The counter reaches the twin and goes up.
	first := -1
	until(t, "the counter to rise in the twin", func() bool {
		v, err := strconv.Atoi(n.twinActual(t, "default/sim-0")["count"])
		if err != nil {
			return false
		}
		if first < 0 {
			first = v
		}
		return v > first
	})
	if got := n.twinActual(t, "default/sim-0")["switch"]; got != "off" {
		t.Fatalf("switch actual = %q, want the echo's initial off", got)
	}

	// A desired value over MQTT becomes a write, and the echo's value
	// comes back as the actual one.
	n.publish(t, "$hw/events/device/default/sim-0/twin/update", `{"event_id":"set-1","twin":{"switch":{"expected":{"value":"on"}}}}`)
	until(t, "switch actual on", func() bool { return n.twinActual(t, "default/sim-0")["switch"] == "on" })
	d, err := n.devices.GetDevice("default/sim-0")
	if err != nil {
		t.Fatal(err)
	}
	if d.Writes != 1 || d.State != abi.StateOnline || d.Mapper != "virtual" {
		t.Fatalf("sim-0 = %+v, want one write, online, mapper virtual", d.DeviceInfo)
	}

	// The failing device is offline, with its errors counted, and the
	// twin has its state.
	n.waitTopic(t, "$hw/events/device/default/broken/state/update/result", func(b []byte) bool { return strings.Contains(string(b), `"offline"`) })
	b, err := n.devices.GetDevice("default/broken")
	if err != nil {
		t.Fatal(err)
	}
	if b.State != abi.StateOffline || b.Errors["device"] == 0 || b.LastError != "unplugged" {
		t.Fatalf("broken = %+v, want offline with device errors", b.DeviceInfo)
	}
	o, err := n.devices.GetDevice("default/orphan")
	if err != nil {
		t.Fatal(err)
	}
	if o.Mapper != "" || o.Reads != 0 || o.State != abi.StateUnknown {
		t.Fatalf("orphan = %+v, want unbound and unread", o.DeviceInfo)
	}
}

// TestStuckMapperGoesOffline: a mapper whose reads never return takes its
// device offline (the plugin's call timeout fails each read), and the
// virtual mapper's device keeps being read meanwhile.
func TestStuckMapperGoesOffline(t *testing.T) {
	stuckWasm, err := plugintest.Build("host/devices/testdata/plugins/stuck")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	devs := simDevices + `---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: stuck-0}
spec:
  protocol: {protocolName: stuck}
  properties:
    - {name: x, collectCycle: 100}
`
	if err := os.WriteFile(filepath.Join(dir, "sim.yaml"), []byte(devs), 0o644); err != nil {
		t.Fatal(err)
	}
	limits := config.Limits{MemoryPages: 256, CallTimeout: 300 * time.Millisecond, MaxMessageBytes: 1 << 20, Instances: 1}
	n := newNode(t, dir, config.Plugin{Name: "stuck", Path: stuckWasm, Limits: limits, Mapper: &config.Mapper{Protocols: []string{"stuck"}}})
	n.waitTopic(t, "$hw/events/device/default/stuck-0/state/update/result", func(b []byte) bool { return strings.Contains(string(b), `"offline"`) })
	s, err := n.devices.GetDevice("default/stuck-0")
	if err != nil {
		t.Fatal(err)
	}
	if s.State != abi.StateOffline || s.Errors["call"]+s.Errors["timeout"] == 0 || s.Mapper != "stuck" {
		t.Fatalf("stuck-0 = %+v, want offline with call errors", s.DeviceInfo)
	}
	before, _ := n.devices.GetDevice("default/sim-0")
	until(t, "sim-0 read on while stuck-0 fails", func() bool {
		now, _ := n.devices.GetDevice("default/sim-0")
		return now.Reads >= before.Reads+5 && now.State == abi.StateOnline
	})
}
