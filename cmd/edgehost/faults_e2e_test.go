package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/host/api"
)

const faultyPlugin = "host/wasm/testdata/plugins/faulty"

// pluginInfo reads one plugin's document from the admin API.
func pluginInfo(t *testing.T, dataDir, name string) api.PluginInfo {
	t.Helper()
	code, body := adminGet(t, dataDir, "/v1/plugins/"+name)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/plugins/%s = %d %s", name, code, body)
	}
	var in api.PluginInfo
	if err := json.Unmarshal([]byte(body), &in); err != nil {
		t.Fatalf("plugin %s: %v in %s", name, err, body)
	}
	return in
}

// TestFaultSuiteEndToEnd runs the fault plugins against the real daemon:
// each fault fails its own call with an error naming the plugin and the
// cause, the plugin answers the next message, and the daemon keeps serving
// throughout: a trap, an endless loop, a memory bomb, an endless
// recursion, a bad reply pointer, a malformed and a huge reply, a request
// loop, an init that never returns, a tick that never returns, and an MQTT
// flood.
func TestFaultSuiteEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	dataDir := shortDataDir(t)
	copyPlugin(t, faultyPlugin, filepath.Join(dataDir, "plugins", "faulty.wasm"))
	copyPlugin(t, "examples/mqtt-echo", filepath.Join(dataDir, "plugins", "mqtt-echo.wasm"))
	other := filepath.Join(dataDir, "modules", "faulty.wasm")
	copyPlugin(t, faultyPlugin, other)
	broker := freeAddr(t)
	cfg := writeConfig(t, dataDir, fmt.Sprintf(`modules:
  eventbus:
    embedded: {address: %q}
  plugins:
    builtin: false
    limits: {callTimeout: 500ms, memoryPages: 128}
    list:
      - name: looper
        path: %q
        receives: [{group: loops}]
      - name: initloop
        path: %q
        config: loop
      - name: tickloop
        path: %q
        config: tickloop
        tickInterval: 100ms
`, broker, other, other, other))
	d := launch(t, bin, "--config", cfg, "--data-dir", dataDir)
	// The plugin whose init never returns is the one reason not to be ready.
	notReadyFor(t, bin, dataDir, d, "plugin initloop (config) failed to load")
	if !strings.Contains(pluginInfo(t, dataDir, "initloop").LastError, "ran past") {
		t.Fatalf("initloop's error does not name the timeout: %+v", pluginInfo(t, dataDir, "initloop"))
	}

	sendExit := func(to, op, content string, more ...string) (string, int) {
		t.Helper()
		args := append([]string{"send", "--data-dir", dataDir, "--to", to, "--operation", op, "--content", content}, more...)
		return edgehost(t, bin, "", args...)
	}
	send := func(to, op, content string, more ...string) string {
		t.Helper()
		out, _ := sendExit(to, op, content, more...)
		return out
	}
	echo := func(to, after string) {
		t.Helper()
		if out := send(to, "echo", "still here"); !strings.Contains(out, `"operation": "response"`) {
			t.Fatalf("%s does not answer after %s: %s\nlogs:\n%s", to, after, out, d.logs)
		}
	}
	faults := []struct{ op, arg, cause, kind string }{
		{"panic", "", "unreachable", "trap"},
		{"loop", "", "ran past", "timeout"},
		{"oom", "", "out of memory", "memory"},
		// A Go stack lives in linear memory: the depth bound or the page
		// limit ends it, whichever comes first.
		{"recurse", "", "fault (stack)|fault (memory)", "stack|memory"},
		{"badptr", "", "outside memory", "malformed-reply"},
		{"malformed", "", "malformed envelope", "malformed-reply"},
		{"oversized", "1100000", "over the limit", "reply-too-large"},
	}
	for i, f := range faults {
		out, code := sendExit("faulty", f.op, f.arg)
		named := slices.ContainsFunc(strings.Split(f.cause, "|"), func(c string) bool { return strings.Contains(out, c) })
		kind := slices.ContainsFunc(strings.Split(f.kind, "|"), func(k string) bool { return strings.Contains(out, `"fault": "`+k+`"`) })
		if code != exitHostFailure || !strings.Contains(out, `"source": "edgehost"`) || !strings.Contains(out, "the host failed the message (502 Bad Gateway): fault") ||
			!strings.Contains(out, `"plugin": "faulty"`) || !named || !kind {
			t.Fatalf("%s: exit %d, reply %s; want exit %d and a host failure naming the plugin, fault %s and %q", f.op, code, out, exitHostFailure, f.kind, f.cause)
		}
		echo("faulty", f.op)
		if in := pluginInfo(t, dataDir, "faulty"); in.Faults != uint64(i+1) || in.State != "ready" {
			t.Fatalf("after %s: faults %d, state %s; want %d, ready", f.op, in.Faults, in.State, i+1)
		}
	}

	// A request back into the plugin that waits for it is refused at once.
	if out := send("plugins:loops", "forward", "loops", "--group", "loops"); !strings.Contains(out, "loops back into a plugin that waits for its reply") {
		t.Fatalf("self request: %s", out)
	}
	// A failure code from the plugin is the host's failure too; the
	// plugin's own error reply is not: exit 2, the plugin's source.
	if out, code := sendExit("faulty", "fail", "10"); code != exitHostFailure || !strings.Contains(out, `"reason": "code"`) || !strings.Contains(out, `"code": 10`) ||
		!strings.Contains(out, "404 Not Found") {
		t.Fatalf("fail 10: exit %d, want %d with reason code 10 and 404:\n%s", code, exitHostFailure, out)
	}
	if out, code := sendExit("faulty", "kvget", "no-such-key"); code != exitErrorReply || strings.Contains(out, `"source": "edgehost"`) || !strings.Contains(out, "faulty answered with operation error") {
		t.Fatalf("kvget of a missing key: exit %d, want %d and the plugin's own error reply:\n%s", code, exitErrorReply, out)
	}
	if in := pluginInfo(t, dataDir, "looper"); in.Loops != 1 || in.Faults != 0 {
		t.Fatalf("looper: loops %d, faults %d; want 1, 0", in.Loops, in.Faults)
	}

	// A tick that never returns stops the ticks, not the messages.
	notReadyFor(t, bin, dataDir, d, "plugin tickloop's ticks are quarantined")
	echo("tickloop", "its ticks were quarantined")

	floodMQTT(t, dataDir, broker, d)

	if code, body := adminGet(t, dataDir, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	d.stop(t)
}

// floodMQTT publishes 10,000 QoS 0 messages back to back to mqtt-echo's
// topic: the daemon keeps serving, and every message either reached the
// plugin or is counted as dropped, by mqtt-echo's subscriber queue in the
// eventbus or on the way to the plugin.
func floodMQTT(t *testing.T, dataDir, broker string, d *daemonProc) {
	t.Helper()
	const n = 10000
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("flood"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	payload := strings.Repeat("x", 256)
	for range n {
		c.Publish("examples/echo/in", 0, false, payload)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		in := pluginInfo(t, dataDir, "mqtt-echo")
		if in.Faults != 0 {
			t.Fatalf("mqtt-echo faulted under the flood: %+v", in)
		}
		queueDropped := subscriberDropped(t, dataDir, "mqtt-echo")
		if in.Calls+in.MQTTDropped+queueDropped == n {
			t.Logf("flood of %d: %d handled, %d dropped by the subscriber queue, %d on the way to the plugin, all counted",
				n, in.Calls, queueDropped, in.MQTTDropped)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the flood of %d: %d handled + %d dropped by the queue + %d on the way\nlogs:\n%s",
				n, in.Calls, queueDropped, in.MQTTDropped, d.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// subscriberDropped is what the eventbus counted as dropped or refused by
// the subscriber queues of plugin.
func subscriberDropped(t *testing.T, dataDir, plugin string) uint64 {
	t.Helper()
	code, body := adminGet(t, dataDir, "/v1/status")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/status = %d %s", code, body)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status: %v in %s", err, body)
	}
	if st.EventBus == nil {
		t.Fatalf("status has no eventbus section: %s", body)
	}
	var n uint64
	for _, s := range st.EventBus.Subscribers {
		if s.Subscriber == plugin {
			n += s.Dropped + s.Refused
		}
	}
	return n
}
