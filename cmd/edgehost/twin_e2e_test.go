package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgehost/edgehost/internal/plugintest"
)

// twinRig is a daemon with the devicetwin plugin installed as a package
// (the built-in one turned off),
// a devices directory, and an MQTT client on its embedded broker.
type twinRig struct {
	t                  *testing.T
	bin, dataDir, cfg  string
	devicesDir, broker string
	work               string
	d                  *daemonProc
	client             mqtt.Client
	mu                 sync.Mutex
	got                map[string][]string // topic -> payloads, in arrival order
	arrived            chan struct{}
}

// needTwinWiring skips when the binary has no twin module (the daemon
// wiring of host/twin is not applied).
func needTwinWiring(t *testing.T, bin string) {
	out, code := edgehost(t, bin, "", "config", "default")
	if code != 0 || !strings.Contains(out, "\n  twin:") {
		t.Skip("this edgehost has no modules.twin: the host/twin daemon wiring is not applied")
	}
}

const twinManifest = `{"name":"devicetwin","version":%q,"kind":"twin","abi":"1","description":"KubeEdge device twin",` +
	`"capabilities":{"send":[{"group":"bus","operation":"publish"},{"group":"twin-upstream"}],"kv":{}},` +
	`"limits":{"instances":%d},"config":{"node_name":"edge-1"}}`

func newTwinRig(t *testing.T, instances int) *twinRig {
	bin := buildBinary(t)
	needTwinWiring(t, bin)
	module, err := plugintest.Build("plugins/devicetwin")
	if err != nil {
		t.Fatal(err)
	}
	r := &twinRig{t: t, bin: bin, dataDir: shortDataDir(t), work: t.TempDir(), broker: freeAddr(t),
		got: map[string][]string{}, arrived: make(chan struct{}, 1)}
	r.devicesDir = filepath.Join(r.work, "devices")
	if err := os.MkdirAll(r.devicesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var devices strings.Builder
	for i := range 64 {
		fmt.Fprintf(&devices, "---\napiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: sensor-%d, namespace: default}\n"+
			"spec:\n  properties:\n    - name: temp\n      desired: {value: \"20\", metadata: {type: int}}\n", i)
	}
	if err := os.WriteFile(filepath.Join(r.devicesDir, "sensors.yaml"), []byte(devices.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r.cfg = filepath.Join(r.dataDir, "edgehost.yaml")
	config := fmt.Sprintf("modules:\n  eventbus:\n    embedded:\n      address: %s\n  twin:\n    lanes: %d\n"+
		"  devices:\n    dir: %s\n  plugins:\n    builtin: false\n    trust:\n      policy:\n        local: allow-unsigned\n", r.broker, instances, r.devicesDir)
	if err := os.WriteFile(r.cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// Without its plugin the twin is not ready, and says why.
	r.d = launch(t, r.bin, "--config", r.cfg, "--data-dir", r.dataDir)
	r.d.awaitStatus(t, r.bin, r.dataDir, false, "the twin plugin devicetwin is not running")
	r.connect()
	r.install("install", "1.0.0", module, instances)
	// The twin hands the devices to the plugin once it is installed.
	r.await("$hw/events/node/edge-1/membership/updated", 1)
	return r
}

func (r *twinRig) start() {
	r.d = startDaemon(r.t, r.bin, r.cfg, r.dataDir)
}

// install packs the plugin module under version and installs or upgrades
// it through the CLI.
func (r *twinRig) install(verb, version, module string, instances int) {
	t := r.t
	man := filepath.Join(r.work, "manifest-"+version+".json")
	pkg := filepath.Join(r.work, "devicetwin-"+version+".wasm")
	if err := os.WriteFile(man, []byte(fmt.Sprintf(twinManifest, version, instances)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := edgehost(t, r.bin, "", "plugin", "pack", "--manifest", man, "--module", module, "-o", pkg); code != 0 {
		t.Fatalf("pack: %s", out)
	}
	if out, code := edgehost(t, r.bin, "", "plugin", verb, pkg, "--data-dir", r.dataDir); code != 0 {
		t.Fatalf("plugin %s %s: %s\nlogs:\n%s", verb, version, out, r.d.logs)
	}
}

func (r *twinRig) connect() {
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + r.broker).SetClientID("twin-e2e").SetAutoReconnect(true).
		SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond)
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		for _, f := range []string{"$hw/events/device/+/+/twin/update/+", "$hw/events/device/+/+/twin/get/result", "$hw/events/node/+/membership/+",
			"$hw/events/device/+/twin/update/result", "$hw/events/device/+/+/state/update/result"} {
			c.Subscribe(f, 1, r.record).Wait()
		}
	})
	r.client = mqtt.NewClient(opts)
	if tok := r.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		r.t.Fatalf("mqtt connect: %v", tok.Error())
	}
	r.t.Cleanup(func() { r.client.Disconnect(100) })
	time.Sleep(200 * time.Millisecond) // the subscriptions are made on connect
}

func (r *twinRig) record(_ mqtt.Client, m mqtt.Message) {
	r.mu.Lock()
	r.got[m.Topic()] = append(r.got[m.Topic()], string(m.Payload()))
	r.mu.Unlock()
	select {
	case r.arrived <- struct{}{}:
	default:
	}
}

func (r *twinRig) publish(topic, payload string) {
	if tok := r.client.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		r.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// await waits until topic has received n messages and returns them.
func (r *twinRig) await(topic string, n int) []string {
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		got := append([]string(nil), r.got[topic]...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-r.arrived:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("%s: %d messages, want %d\nlogs:\n%s", topic, len(got), n, r.d.logs)
		}
	}
}

// twinDoc is the part of a twin document the tests read.
type twinDoc struct {
	EventID string `json:"event_id"`
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Twin    map[string]*struct {
		Expected *struct{ Value string } `json:"expected"`
		Actual   *struct{ Value string } `json:"actual"`
	} `json:"twin"`
	Delta map[string]string `json:"delta"`
}

func decodeDoc(t *testing.T, s string) twinDoc {
	var d twinDoc
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	return d
}

const sensor0 = "$hw/events/device/default/sensor-0/twin/"

// TestTwinEndToEnd drives the twin over MQTT against the real daemon:
// results on the result, delta and document topics; the same state after
// a restart; and an upgrade of the plugin in the middle of a stream of
// updates that loses no state and answers no update twice.
func TestTwinEndToEnd(t *testing.T) {
	r := newTwinRig(t, 4)

	r.publish(sensor0+"update", `{"event_id":"e1","timestamp":1,"twin":{"temp":{"actual":{"value":"18"}}}}`)
	res := decodeDoc(t, r.await(sensor0+"update/result", 1)[0])
	if res.EventID != "e1" || res.Code != 0 || res.Twin["temp"].Actual.Value != "18" {
		t.Fatalf("result %+v", res)
	}
	doc := decodeDoc(t, r.await(sensor0+"update/document", 1)[0])
	if doc.EventID != "e1" {
		t.Fatalf("document %+v", doc)
	}
	if d := decodeDoc(t, r.await(sensor0+"update/delta", 1)[0]); d.Delta["temp"] != "20" {
		t.Fatalf("delta %+v", d)
	}
	r.publish("$hw/events/device/default/nope/twin/update", `{"event_id":"e2","twin":{"temp":{"actual":{"value":"1"}}}}`)
	if res := decodeDoc(t, r.await("$hw/events/device/default/nope/twin/update/result", 1)[0]); res.Code != 404 {
		t.Fatalf("unknown device: %+v", res)
	}
	// As edgecore: a body that is not JSON, or has a key outside the
	// character set, is answered 400 on the device topic with an empty
	// id; mapper-framework's state "ok" is taken.
	r.publish(sensor0+"update", `not json`)
	r.publish(sensor0+"update", `{"event_id":"e3","twin":{"te mp":{"actual":{"value":"1"}}}}`)
	bodyErrors := r.await("$hw/events/device//twin/update/result", 2)
	for i, want := range []string{"Unmarshal update request body failed", "The key of twin must only include"} {
		if res := decodeDoc(t, bodyErrors[i]); res.Code != 400 || res.EventID != "" || !strings.HasPrefix(res.Reason, want) {
			t.Fatalf("body error %d: %s", i, bodyErrors[i])
		}
	}
	r.publish("$hw/events/device/default/sensor-0/state/update", `{"event_id":"s1","state":"ok"}`)
	if st := r.await("$hw/events/device/default/sensor-0/state/update/result", 1)[0]; !strings.Contains(st, `"state":"ok","lastOnlineTime":"`) {
		t.Fatalf("state result %s", st)
	}
	// A single-level device id (KubeEdge before v1.13), which edgecore
	// never answers: a 400 naming the problem.
	r.publish("$hw/events/device/thermo-0/twin/update", `{"event_id":"e4","twin":{}}`)
	if res := decodeDoc(t, r.await("$hw/events/device/thermo-0/twin/update/result", 1)[0]); res.Code != 400 || res.EventID != "e4" ||
		!strings.Contains(res.Reason, "is not {namespace}/{name}") {
		t.Fatalf("single-level id: %+v", res)
	}

	// Restart: the same state.
	r.d.stop(t)
	r.client.Disconnect(100)
	r.start()
	r.connect()
	r.publish(sensor0+"get", `{"event_id":"g1"}`)
	get := decodeDoc(t, r.await(sensor0+"get/result", 1)[0])
	if get.EventID != "g1" || get.Twin["temp"].Actual.Value != "18" || get.Twin["temp"].Expected.Value != "20" {
		t.Fatalf("get after restart: %+v", get)
	}

	// Upgrade while updates stream in: each answered once, none lost.
	const updates = 300
	module, err := plugintest.Build("plugins/devicetwin")
	if err != nil {
		t.Fatal(err)
	}
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		for i := range updates {
			r.publish("$hw/events/device/default/sensor-1/twin/update",
				`{"event_id":"u`+strconv.Itoa(i)+`","twin":{"temp":{"actual":{"value":"`+strconv.Itoa(i)+`"}}}}`)
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(50 * time.Millisecond)
	r.install("upgrade", "1.1.0", module, 4)
	r.mu.Lock()
	answered := len(r.got["$hw/events/device/default/sensor-1/twin/update/result"])
	r.mu.Unlock()
	select {
	case <-streamed:
		t.Logf("the upgrade finished after the stream (%d of %d updates answered by then)", answered, updates)
	default:
		t.Logf("upgraded mid-stream: %d of %d updates answered when the upgrade returned", answered, updates)
	}
	<-streamed
	results := r.await("$hw/events/device/default/sensor-1/twin/update/result", updates)
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive now
	results = r.await("$hw/events/device/default/sensor-1/twin/update/result", updates)
	if len(results) != updates {
		t.Fatalf("%d results for %d updates", len(results), updates)
	}
	for i, s := range results {
		if d := decodeDoc(t, s); d.EventID != "u"+strconv.Itoa(i) || d.Code != 0 {
			t.Fatalf("result %d: %s", i, s)
		}
	}
	r.publish("$hw/events/device/default/sensor-1/twin/get", `{"event_id":"g2"}`)
	r.await("$hw/events/device/default/sensor-1/twin/get/result", 1)
	out, _ := edgehost(t, r.bin, "", "plugin", "info", "devicetwin", "--data-dir", r.dataDir)
	if !strings.Contains(out, `"version": "1.1.0"`) {
		t.Fatalf("after upgrade:\n%s", out)
	}
	if !bytes.Contains([]byte(r.await("$hw/events/device/default/sensor-1/twin/get/result", 1)[0]), []byte(`"value":"`+strconv.Itoa(updates-1)+`"`)) {
		t.Fatalf("get after upgrade: %v", r.got["$hw/events/device/default/sensor-1/twin/get/result"])
	}
	r.d.stop(t)
}
