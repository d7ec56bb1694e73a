package pluginhost

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/plugins"
	"github.com/edgehost/edgehost/internal/plugintest"
)

const mqttTestPlugin = "host/pluginhost/testdata/plugins/mqtttest"

func mqttTestManifest(mqtt string) string {
	return `{"name":"mqtttest","version":"0.1.0","kind":"handler","abi":"1.1",
		"capabilities":{"send":[{"group":"user"}],"kv":{}` + mqtt + `}}`
}

func mqttEchoManifest() string {
	return `{"name":"mqtt-echo","version":"1.0.0","kind":"handler","abi":"1.1",
		"capabilities":{"mqtt":{"publish":["examples/echo/out"],"subscribe":["examples/echo/#"]}},"limits":{"instances":2}}`
}

// denials counts the capability denials in name's log.
func denials(t *testing.T, m *Module, name string) int {
	t.Helper()
	lines, err := m.Logs(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range lines {
		if strings.Contains(l.Message, "capability denied") {
			n++
		}
	}
	return n
}

func TestMQTTGrantsDeniedLoggedAndCounted(t *testing.T) {
	dir := t.TempDir()
	cfg := testPluginsConfig(dir)
	// The operator's ceiling takes held/# away from what the manifest grants.
	cfg.Restrict = []config.PluginRestriction{{Plugin: "mqtttest", Send: []config.Pattern{{Group: "user"}}, KV: &config.KVCeiling{},
		MQTT: &config.MQTTCeiling{Publish: []string{"examples/#"}, Subscribe: []string{"#"}}}}
	var addr string
	h := startHostWith(t, dir, cfg, startEventBus(t, "embedded", &addr))
	ctx := context.Background()
	_, err := h.m.Install(ctx, pack(t, mqttTestPlugin, mqttTestManifest("")), SourceLocal)
	if !errors.Is(err, plugins.ErrMissingGrants) || !strings.Contains(err.Error(), "mqtt.publish (for mqtt_publish)") {
		t.Fatalf("install without the mqtt grant: %v", err)
	}
	grants := `,"mqtt":{"publish":["examples/echo/out","held/#"],"subscribe":["examples/echo/#"]}`
	if _, err := h.m.Install(ctx, pack(t, mqttTestPlugin, mqttTestManifest(grants)), SourceLocal); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ op, content, want string }{
		{"publish", "examples/echo/out", "ok"},
		{"publish", "examples/echo/in", "code 5"}, // not granted
		{"publish", "held/x", "code 5"},           // granted, but over the operator's ceiling
		{"publish", "examples/+", "code 1"},       // not a topic name
		{"subscribe", "examples/echo/+", "ok"},
		{"subscribe", "examples/echo/#", "ok"},
		{"subscribe", "examples/#", "code 5"}, // wider than the grant
		{"subscribe", "#", "code 5"},
		{"subscribe", "examples/#/x", "code 1"},
	}
	for _, c := range cases {
		r := request(t, h.bus, "mqtttest", abi.Message{Route: abi.Route{Operation: c.op}, Content: []byte(c.content)})
		if string(r.Content) != c.want {
			t.Errorf("%s %q: reply %q, want %q", c.op, c.content, r.Content, c.want)
		}
	}
	info, err := h.m.Info("mqtttest")
	if err != nil {
		t.Fatal(err)
	}
	if info.Denied != 4 || denials(t, h.m, "mqtttest") != 4 {
		t.Errorf("denied = %d, logged %d; want 4", info.Denied, denials(t, h.m, "mqtttest"))
	}
	if want := []string{"examples/echo/#", "examples/echo/+"}; !slices.Equal(info.Subscriptions, want) {
		t.Errorf("subscriptions = %q, want %q", info.Subscriptions, want)
	}
	// A message both filters match reaches the plugin once (as operation
	// publish, which makes mqtttest publish on the payload's topic: here
	// an invalid one, so it publishes nothing).
	calls := info.Calls
	if err := h.m.events.Publish(ctx, "examples/echo/x", []byte("bad/+"), 0, false); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "the plugin got the message", func() bool { i, _ := h.m.Info("mqtttest"); return i.Calls > calls })
	time.Sleep(100 * time.Millisecond)
	if info, _ = h.m.Info("mqtttest"); info.Calls != calls+1 || info.Denied != 4 {
		t.Errorf("calls after one message = %d, want %d (denied %d)", info.Calls, calls+1, info.Denied)
	}
	if _, err := h.m.SetEnabled(ctx, "mqtttest", false); err != nil {
		t.Fatal(err)
	}
	if info, _ := h.m.Info("mqtttest"); len(info.Subscriptions) != 0 {
		t.Errorf("subscriptions of a disabled plugin = %q", info.Subscriptions)
	}
}

func TestMQTTWithoutEventBusIsUnavailable(t *testing.T) {
	dir := t.TempDir()
	h := startHost(t, dir, testPluginsConfig(dir))
	grants := `,"mqtt":{"publish":["#"],"subscribe":["#"]}`
	if _, err := h.m.Install(context.Background(), pack(t, mqttTestPlugin, mqttTestManifest(grants)), SourceLocal); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"publish", "subscribe"} {
		r := request(t, h.bus, "mqtttest", abi.Message{Route: abi.Route{Operation: op}, Content: []byte("a/b")})
		if string(r.Content) != "code 7" {
			t.Errorf("%s without an eventbus: reply %q, want code 7", op, r.Content)
		}
	}
}

// TestMQTTEchoRoundTrip runs examples/mqtt-echo, installed with its grants,
// between two external MQTT clients.
func TestMQTTEchoRoundTrip(t *testing.T) {
	for _, kind := range brokerKinds {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			var addr string
			h := startHostWith(t, dir, testPluginsConfig(dir), startEventBus(t, kind, &addr))
			if _, err := h.m.Install(context.Background(), pack(t, "examples/mqtt-echo", mqttEchoManifest()), SourceLocal); err != nil {
				t.Fatal(err)
			}
			got := make(chan string, 10)
			sub := mqttClient(t, addr)
			mustToken(t, sub.Subscribe("examples/echo/out", 0, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }))
			pub := mqttClient(t, addr)
			for _, payload := range []string{"ping 1", "ping 2"} {
				mustToken(t, pub.Publish("examples/echo/in", 0, false, payload))
				select {
				case p := <-got:
					if p != payload {
						t.Fatalf("echoed %q, want %q", p, payload)
					}
				case <-time.After(mqttWait):
					t.Fatalf("no echo of %q", payload)
				}
			}
			info, _ := h.m.Info("mqtt-echo")
			if !slices.Equal(info.Subscriptions, []string{"examples/echo/in"}) || info.MQTTDropped != 0 || info.Faults != 0 {
				t.Fatalf("info = %+v", info)
			}
		})
	}
}

// receiveWithin takes the next message of ep, or reports false after d.
func receiveWithin(ep *bus.Endpoint, d time.Duration) (abi.Message, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := ep.Receive(ctx)
	return m, err == nil
}

// TestOutboxHoldsSendsUntilCommit checks abi/SPEC.md section 5's outbox: a
// send after a kv_put goes out only once the put is committed, and never
// when the call then fails.
func TestOutboxHoldsSendsUntilCommit(t *testing.T) {
	dir := t.TempDir()
	h := startHost(t, dir, testPluginsConfig(dir))
	sink, err := h.bus.Register("sink", "user")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if _, err := h.m.Install(context.Background(), pack(t, mqttTestPlugin, mqttTestManifest(`,"mqtt":{"publish":["held/#"],"subscribe":["held/#"]}`)), SourceLocal); err != nil {
		t.Fatal(err)
	}
	kv := h.store.PluginKV("mqtttest")

	r := request(t, h.bus, "mqtttest", abi.Message{Route: abi.Route{Operation: "kvsend"}, Content: []byte("trap")})
	if r.Route.Operation != abi.OpError || !strings.Contains(string(r.Content), "fault") {
		t.Fatalf("reply to the trapping call = %s %q", r.Route.Operation, r.Content)
	}
	if m, ok := receiveWithin(sink, 300*time.Millisecond); ok {
		t.Fatalf("the failed call's held send arrived: %+v", m)
	}
	if _, found, _ := kv.Get("held"); found {
		t.Fatal("the failed call's kv_put was committed")
	}

	// The receiver reads the store the moment the message arrives.
	var seen []byte
	arrived := make(chan bool, 1)
	go func() {
		m, ok := receiveWithin(sink, mqttWait)
		if ok {
			seen, _, _ = kv.Get("held")
			ok = string(m.Content) == "v1" && m.Route.Source == "mqtttest"
		}
		arrived <- ok
	}()
	if r := request(t, h.bus, "mqtttest", abi.Message{Route: abi.Route{Operation: "kvsend"}, Content: []byte("v1")}); string(r.Content) != "ok" {
		t.Fatalf("kvsend reply %q", r.Content)
	}
	if !<-arrived {
		t.Fatal("the held send did not arrive after the call succeeded")
	}
	if string(seen) != "v1" {
		t.Fatalf("when the held send arrived the store had %q, want the committed v1", seen)
	}
	if info, _ := h.m.Info("mqtttest"); info.HeldFailed != 0 {
		t.Fatalf("held failed = %d", info.HeldFailed)
	}
}

// TestOutboxHoldsPublishesUntilCommit is the outbox test for mqtt_publish,
// like the one for sends: the subscriber reads the store when a message
// arrives, and each call's publish is awaited before the next call, so the
// value read is the one committed by the call that published (or a trap's
// rolled-back publish would show up first, in order).
func TestOutboxHoldsPublishesUntilCommit(t *testing.T) {
	dir := t.TempDir()
	var addr string
	h := startHostWith(t, dir, testPluginsConfig(dir), startEventBus(t, "embedded", &addr))
	if _, err := h.m.Install(context.Background(), pack(t, mqttTestPlugin, mqttTestManifest(`,"mqtt":{"publish":["held/#"],"subscribe":["held/#"]}`)), SourceLocal); err != nil {
		t.Fatal(err)
	}
	kv := h.store.PluginKV("mqtttest")
	var mu sync.Mutex
	var seen []string // payload=store value at delivery
	unsub, err := h.m.events.Subscribe("test", "held/x", func(_ context.Context, _ string, payload []byte) {
		v, _, _ := kv.Get("held")
		mu.Lock()
		seen = append(seen, string(payload)+"="+string(v))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	delivered := 0
	for _, content := range []string{"trap", "v1", "v2"} {
		request(t, h.bus, "mqtttest", abi.Message{Route: abi.Route{Operation: "kvpublish"}, Content: []byte(content)})
		if content == "trap" {
			continue
		}
		delivered++
		eventuallyTrue(t, "the publish of "+content+" arrives", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(seen) >= delivered
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"v1=v1", "v2=v2"}; !slices.Equal(seen, want) {
		t.Fatalf("deliveries (payload=store value) = %q, want %q", seen, want)
	}
}

// TestConfigPluginTopicsAndTicks checks a config plugin's topics and
// tickInterval.
func TestConfigPluginTopicsAndTicks(t *testing.T) {
	dir := t.TempDir()
	cfg := testPluginsConfig(dir)
	path, err := plugintest.Build(mqttTestPlugin)
	if err != nil {
		t.Fatal(err)
	}
	cfg.List = []config.Plugin{{Name: "mqtttest", Path: path, Limits: cfg.Limits,
		Topics: []string{"cfg/in", "cfg/+/x"}, TickInterval: 20 * time.Millisecond}}
	var addr string
	h := startHostWith(t, dir, cfg, startEventBus(t, "embedded", &addr))
	sink, err := h.bus.Register("sink", "user")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	for range 3 {
		m, ok := receiveWithin(sink, mqttWait)
		if !ok || m.Route.Resource != "tick/x" {
			t.Fatalf("tick message: %+v %v", m, ok)
		}
	}
	info, _ := h.m.Info("mqtttest")
	if !slices.Equal(info.Subscriptions, []string{"cfg/+/x", "cfg/in"}) || info.TickFailed != 0 {
		t.Fatalf("info = %+v", info)
	}
}

// TestPublisherNotFaultedBySlowSubscriber is finding 3 of issue 18 through
// a real plugin: mqtttest publishes on a topic whose other subscriber is
// stuck (as a plugin is whose queue stays full). Before, the embedded
// broker delivered to it during the publish, so the plugin's call timed out
// and counted as its fault; now each call returns at once, the plugin has
// no fault, and the stuck subscriber's messages wait in its own queue.
func TestPublisherNotFaultedBySlowSubscriber(t *testing.T) {
	const n = 10
	dir := t.TempDir()
	var addr string
	h := startHostWith(t, dir, testPluginsConfig(dir), startEventBus(t, "embedded", &addr))
	if _, err := h.m.Install(context.Background(), pack(t, mqttTestPlugin, mqttTestManifest(`,"mqtt":{"publish":["slow/#"],"subscribe":["slow/#"]}`)), SourceLocal); err != nil {
		t.Fatal(err)
	}
	stuck, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	unsub, err := h.m.events.Subscribe("stuck", "slow/x", func(ctx context.Context, _ string, _ []byte) {
		select {
		case stuck <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	for i := range n {
		if r := request(t, h.bus, "mqtttest", abi.Message{Route: abi.Route{Operation: "publish"}, Content: []byte("slow/x")}); string(r.Content) != "ok" {
			t.Fatalf("publish %d: reply %q", i, r.Content)
		}
	}
	<-stuck
	if info, _ := h.m.Info("mqtttest"); info.Faults != 0 || info.Calls != n {
		t.Fatalf("publisher: %d calls, %d faults; want %d, 0", info.Calls, info.Faults, n)
	}
	var row eventbus.SubscriberStats
	for _, r := range h.m.events.(*eventbus.Module).Stats().Subscribers {
		if r.Owner == "stuck" {
			row = r
		}
	}
	if row.Delivered != 0 || row.Depth != n-1 || row.Dropped != 0 {
		t.Fatalf("stuck subscriber: %+v; want its first message in hand and %d queued", row, n-1)
	}
}
