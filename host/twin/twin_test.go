package twin

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/pluginhost"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/edgehost/edgehost/internal/plugintest"
)

func testMessage(source, resource string) abi.Message {
	return abi.Message{Route: abi.Route{Source: source, Group: Group, Operation: abi.OpUpdate, Resource: resource}}
}

// rig is the twin module with the real devicetwin plugin on a real bus and
// store, and stand-ins for the eventbus and the cloud link that record
// what reaches them.
type rig struct {
	bus       *bus.Bus
	store     *store.Store
	twin      *Module
	stopTwin  func()
	published chan abi.Message // to the eventbus
	upstream  chan abi.Message // to the cloud link
}

// run starts a module of the rig under the test and returns once it is
// ready, with a function that stops it; it stops at the end of the test
// at the latest.
func run(t *testing.T, name string, mod interface {
	Run(context.Context, func()) error
}) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- mod.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("%s ended before ready: %v", name, err)
	case <-time.After(5 * time.Minute):
		t.Fatalf("%s not ready", name)
	}
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
	t.Cleanup(stop)
	return stop
}

func newRig(t *testing.T, devicesDir string) *rig {
	t.Helper()
	return newRigWith(t, rigOptions{devicesDir: devicesDir, callTimeout: 5 * time.Second})
}

// rigOptions vary the rig: the plugin's call timeout, and a module put
// between the twin and the plugin (named by plugin, started by front).
type rigOptions struct {
	devicesDir  string
	callTimeout time.Duration
	plugin      string
	front       func(b *bus.Bus)
}

func newRigWith(t *testing.T, o rigOptions) *rig {
	t.Helper()
	dir := t.TempDir()
	wasmFile, err := plugintest.Build("plugins/devicetwin")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "edgehost.db"), nil)
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
	r := &rig{bus: b, published: make(chan abi.Message, 10000), upstream: make(chan abi.Message, 10000)}
	r.collect(t, eventbus.ModuleName, eventbus.ModuleGroup, r.published)
	r.collect(t, "hub", eventbus.HubGroup, r.upstream)

	limits := config.Limits{MemoryPages: 256, CallTimeout: o.callTimeout, MaxMessageBytes: 1 << 20, Instances: 4}
	ph := pluginhost.New(b, rt, st, nil, config.Plugins{Enable: true, Dir: dir, Limits: limits, List: []config.Plugin{{
		Name: DefaultPlugin, Path: wasmFile, Config: config.JSON(`{"node_name":"edge-1"}`), Limits: limits,
	}}}, nil)
	run(t, "plugins", ph)
	if o.front != nil {
		o.front(b)
	}
	r.store = st
	r.startTwin(t, o.devicesDir, o.plugin)
	return r
}

// startTwin starts (or, after stopTwin, restarts) the twin module.
func (r *rig) startTwin(t *testing.T, devicesDir, plugin string) {
	t.Helper()
	r.twin = New(r.bus, Config{DevicesDir: devicesDir, Lanes: 4, Store: r.store, Plugin: plugin, NodeName: "edge-1"}, nil)
	r.stopTwin = run(t, "twin", r.twin)
}

// collect registers a module that records every message it receives.
func (r *rig) collect(t *testing.T, name, group string, into chan abi.Message) {
	ep, err := r.bus.Register(name, group)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ep.Close)
	go func() {
		for {
			m, err := ep.Receive(context.Background())
			if err != nil {
				return
			}
			into <- m
		}
	}()
}

// mqtt puts a message on the bus as the eventbus bridges an MQTT publish.
func (r *rig) mqtt(t *testing.T, topic, payload string) {
	t.Helper()
	m := abi.Message{Route: abi.Route{Source: eventbus.ModuleGroup, Group: eventbus.UserGroup, Operation: abi.OpResponse,
		Resource: eventbus.TwinResource(topic)}, Content: []byte(payload)}
	if err := r.bus.SendToGroup(context.Background(), eventbus.TwinGroup, m); err != nil {
		t.Fatal(err)
	}
}

func next(t *testing.T, c chan abi.Message) abi.Message {
	t.Helper()
	select {
	case m := <-c:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
		return abi.Message{}
	}
}

func TestDevicesDirAndUpstream(t *testing.T) {
	r := newRig(t, "testdata/devices")
	// One membership/updated per device of the directory, as edgecore
	// announces them.
	for range 2 {
		m := next(t, r.published)
		if m.Route.Resource != "$hw/events/node/edge-1/membership/updated" || m.Route.Operation != abi.OpPublish {
			t.Fatalf("first publishes: %+v %s", m.Route, m.Content)
		}
	}
	r.mqtt(t, "$hw/events/device/default/thermo-0/twin/update", `{"event_id":"u1","timestamp":1,"twin":{"temp":{"actual":{"value":"19"}}}}`)
	want := []string{"result", "document", "delta"}
	for _, w := range want {
		m := next(t, r.published)
		if m.Route.Resource != "$hw/events/device/default/thermo-0/twin/update/"+w {
			t.Fatalf("publish %s: %+v %s", w, m.Route, m.Content)
		}
	}
	up := next(t, r.upstream)
	if up.Route != (abi.Route{Source: "twin", Group: "resource", Operation: "update", Resource: "device/default/thermo-0/twin/edge_updated"}) {
		t.Fatalf("upstream route %+v", up.Route)
	}
	var doc struct {
		Twin map[string]struct {
			Actual struct {
				Value string `json:"value"`
			} `json:"actual"`
			ActualVersion struct{ Cloud, Edge int64 } `json:"actual_version"`
		} `json:"twin"`
	}
	if err := json.Unmarshal(up.Content, &doc); err != nil || doc.Twin["temp"].Actual.Value != "19" || doc.Twin["temp"].ActualVersion.Edge != 1 {
		t.Fatalf("edge_updated %s: %v", up.Content, err)
	}
}

// TestOrderPerDevice sends interleaved updates for many devices at once:
// each device's results come back in order and its edge version counts
// every update, so no two calls raced on one device's state.
func TestOrderPerDevice(t *testing.T) {
	const devices, updates = 8, 40
	dir := t.TempDir()
	var yaml string
	for d := range devices {
		yaml += "---\napiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: d" + strconv.Itoa(d) + "}\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "d.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, dir)
	next(t, r.published) // membership/updated
	var wg sync.WaitGroup
	for d := range devices {
		wg.Go(func() {
			for u := range updates {
				r.mqtt(t, "$hw/events/device/default/d"+strconv.Itoa(d)+"/twin/update",
					`{"event_id":"`+strconv.Itoa(u)+`","twin":{"v":{"actual":{"value":"`+strconv.Itoa(u)+`"}}}}`)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for range devices * updates {
		var m abi.Message
		for m = next(t, r.published); !isResult(m.Route.Resource); m = next(t, r.published) {
		}
		var res struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(m.Content, &res); err != nil {
			t.Fatal(err)
		}
		if want := strconv.Itoa(seen[m.Route.Resource]); res.EventID != want {
			t.Fatalf("%s: result of %s, want %s", m.Route.Resource, res.EventID, want)
		}
		seen[m.Route.Resource]++
	}
	versions := map[string]int64{}
	for range devices * updates {
		up := next(t, r.upstream)
		var doc struct {
			Twin map[string]struct {
				ActualVersion struct{ Edge int64 } `json:"actual_version"`
			} `json:"twin"`
		}
		if err := json.Unmarshal(up.Content, &doc); err != nil {
			t.Fatal(err)
		}
		v := doc.Twin["v"].ActualVersion.Edge
		if v != versions[up.Route.Resource]+1 {
			t.Fatalf("%s: edge version %d after %d", up.Route.Resource, v, versions[up.Route.Resource])
		}
		versions[up.Route.Resource] = v
	}
}

func isResult(topic string) bool {
	return len(topic) > 7 && topic[len(topic)-7:] == "/result"
}

// TestCloudConnectedRequestsMembership: when the cloud link comes up the
// twin asks for membership/detail as KubeEdge's twin does, its content the
// event as a JSON string naming the node.
func TestCloudConnectedRequestsMembership(t *testing.T) {
	r := newRig(t, "")
	ctx := context.Background()
	ev := abi.Message{Route: abi.Route{Source: "edgehub", Group: "twin", Operation: "connect", Resource: "node/connection"}, Content: []byte("cloud_connected")}
	if err := r.bus.Broadcast(ctx, Group, ev); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-r.upstream:
		if m.Route != (abi.Route{Source: "twin", Group: "resource", Operation: "get", Resource: "membership/detail"}) {
			t.Fatalf("upstream route %+v", m.Route)
		}
		var detail map[string]any
		if err := json.Unmarshal(m.Content, &detail); err != nil {
			t.Fatalf("content %q: %v", m.Content, err)
		}
		if detail["event_type"] != "group_membership_event" || detail["group_id"] != "edge-1" || detail["operation"] != "detail" ||
			detail["event_id"] == "" || detail["timestamp"] == nil {
			t.Errorf("content %s", m.Content)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no membership request upstream")
	}
}

// TestCloudConfirmsAreCounted: the cloud's confirm of an upstream message
// is counted by the module and never costs the plugin a call, while the
// upstream message itself is counted as handed to the cloud link.
func TestCloudConfirmsAreCounted(t *testing.T) {
	seen := make(chan abi.Message, 100)
	r := newRigWith(t, rigOptions{callTimeout: 5 * time.Second, plugin: "front", front: func(b *bus.Bus) {
		ep, err := b.Register("front", "front")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ep.Close)
		go func() {
			for {
				msg, err := ep.Receive(context.Background())
				if err != nil {
					return
				}
				seen <- msg
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				reply, err := b.Request(ctx, DefaultPlugin, msg)
				cancel()
				if err == nil {
					reply.Header.ParentID = msg.Header.ID
					b.Respond(reply)
				}
			}
		}()
	}})
	ctx := context.Background()
	confirm := abi.Message{Header: abi.Header{ParentID: "up-1"}, Route: abi.Route{Source: "devicecontroller", Group: "twin", Operation: abi.OpResponse, Resource: "twin"}, Content: []byte("OK")}
	if err := r.bus.Send(ctx, ModuleName, confirm); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.twin.Stats().Confirms != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want 1 confirm", r.twin.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case m := <-seen:
		t.Fatalf("the plugin was handed %+v", m.Route)
	case <-time.After(100 * time.Millisecond):
	}
	// An upstream message of the plugin is counted as handed on.
	if err := r.bus.Send(ctx, UpstreamName, abi.Message{Route: abi.Route{Group: UpstreamGroup, Operation: abi.OpUpdate, Resource: "device/default/x/twin/edge_updated"}, Content: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	<-r.upstream
	for r.twin.Stats().Upstream != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want 1 upstream", r.twin.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
