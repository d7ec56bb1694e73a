package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/plugins"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// The tests below run the three examples of every SDK (Go, C, Rust,
// AssemblyScript) in the real plugin host, installed as packages with
// their grants, and check that each language's example does what the Go
// one does: the same replies to the same messages, byte for byte where the
// content is deterministic.

// packExample builds the example name in lang and packs it with manifest.
func packExample(t *testing.T, lang, name, manifest string) []byte {
	t.Helper()
	file, err := plugins.Pack(plugintest.MustReadExample(t, lang, name), []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	return file
}

// eachLanguage runs f as a subtest per SDK language.
func eachLanguage(t *testing.T, f func(t *testing.T, lang string)) {
	for _, lang := range plugintest.Languages {
		t.Run(lang, func(t *testing.T) { f(t, lang) })
	}
}

// TestSDKEcho checks every SDK's echo: the reply is the request's route
// with operation response, its resource version, parent_id = its id, and
// its content unchanged, for contents from empty to over the SDKs' first
// exchange buffer (80001 bytes, not a power of two: the host asks the
// guest for buffers of exactly the size it needs).
func TestSDKEcho(t *testing.T) {
	contents := [][]byte{nil, []byte("hi"), bytes.Repeat([]byte("x"), 256), bytes.Repeat([]byte("é"), 40000), []byte("z")}
	contents[3] = append(contents[3], 'y')
	eachLanguage(t, func(t *testing.T, lang string) {
		dir := t.TempDir()
		h := startHost(t, dir, testPluginsConfig(dir))
		if _, err := h.m.Install(context.Background(), packExample(t, lang, "echo", echoManifest("1.0.0")), SourceLocal); err != nil {
			t.Fatal(err)
		}
		for _, content := range contents {
			in := abi.Message{
				Header:  abi.Header{ID: "m-" + lang, ResourceVersion: "42", Timestamp: 1700000000000},
				Route:   abi.Route{Group: "user", Operation: "echo", Resource: "echo/ünï"},
				Content: content,
			}
			r := request(t, h.bus, "echo", in)
			want := abi.Route{Source: in.Route.Source, Group: "user", Operation: abi.OpResponse, Resource: "echo/ünï"}
			if r.Route.Group != want.Group || r.Route.Operation != want.Operation || r.Route.Resource != want.Resource ||
				r.Header.ResourceVersion != "42" || r.Header.ParentID != in.Header.ID || r.Header.ID == "" ||
				r.Header.ID == in.Header.ID || !bytes.Equal(r.Content, content) {
				t.Fatalf("reply to %d bytes: %+v (%d bytes)", len(content), r.Header, len(r.Content))
			}
		}
		if info, _ := h.m.Info("echo"); info.Faults != 0 {
			t.Fatalf("faults: %+v", info)
		}
	})
}

// kvManifest is kvcounter's manifest, with config when not empty.
func kvManifest(config string) string {
	c := ""
	if config != "" {
		c = `,"config":` + config
	}
	return `{"name":"kvcounter","version":"1.0.0","kind":"handler","abi":"1","capabilities":{"kv":{"prefixes":["device/"]}},
		"limits":{"instances":2}` + c + `}`
}

// updated matches kvcounter's timestamp, the one part of its replies that
// differs from run to run.
var updated = regexp.MustCompile(`"updated":"([^"]*)"`)

// kvExchange is one message to kvcounter and what to check of its reply:
// an error reply containing errText, or a reply whose content, without
// its timestamp, every language must give alike.
type kvExchange struct {
	content, errText string
}

var kvExchanges = []kvExchange{
	{content: `{"device":"d1","temperature_c":19}`},
	{content: `{"device":"d1","temperature_c":21.5}`},
	{content: ` {"device" : "d1", "temperature_c" : 20, "unit": ["c", {"x": null}]} `},
	{content: `{"device":"d1","temperature_c":21.5}`},
	{content: `{"device":"d0","temperature_c":-3.25e0}`},
	{content: `{"DEVICE":"d0","temperature_c":0.1}`},
	{content: `{"device":"d\u00e9\"<x>","temperature_c":null}`, errText: `unknown device`},
	{content: `{"device":"d1"}`},
	{content: "  \n"},
	{content: `{"device":"d1","temperature_c":"warm"}`, errText: "not a reading"},
	{content: `[1,2]`, errText: "not a reading"},
	{content: `{"device":"d1","temperature_c":20`, errText: "not a reading"},
	{content: `{"device":"d1"} x`, errText: "not a reading"},
	{content: `{"temperature_c":20}`, errText: "needs a device name"},
	{content: `{"device":"` + strings.Repeat("d", 257) + `","temperature_c":20}`, errText: "needs a device name"},
	{content: `{"device":"d1","temperature_c":900}`, errText: "out of the plausible range"},
	{content: `{"device":"nobody"}`, errText: `unknown device "nobody"`},
	{content: `{"device":"d2","temperature_c":100.125}`},
	{content: ``},
}

// runKV sends kvExchanges to kvcounter and returns the contents of the
// replies that are not errors, their timestamps replaced by "T", after
// checking each timestamp is an RFC 3339 time between start and now.
func runKV(t *testing.T, h *host, start time.Time) []string {
	t.Helper()
	var out []string
	for _, x := range kvExchanges {
		r := request(t, h.bus, "kvcounter", abi.Message{Route: abi.Route{Group: "user", Operation: abi.OpUpdate, Resource: "sensors/d1"},
			Content: []byte(x.content)})
		if x.errText != "" {
			if r.Route.Operation != abi.OpError || !strings.Contains(string(r.Content), x.errText) {
				t.Errorf("%s: reply %s %q, want an error containing %q", x.content, r.Route.Operation, r.Content, x.errText)
			}
			continue
		}
		if r.Route.Operation != abi.OpResponse || !json.Valid(r.Content) {
			t.Fatalf("%s: reply %s %q", x.content, r.Route.Operation, r.Content)
		}
		for _, m := range updated.FindAllSubmatch(r.Content, -1) {
			ts, err := time.Parse(time.RFC3339Nano, string(m[1]))
			if err != nil || ts.Before(start.Truncate(time.Second)) || ts.After(time.Now()) || ts.Location() != time.UTC {
				t.Errorf("%s: updated %q (%v), want a UTC time since the test started", x.content, m[1], err)
			}
		}
		out = append(out, updated.ReplaceAllString(string(r.Content), `"updated":"T"`))
	}
	return out
}

// TestSDKKVCounter checks every SDK's kvcounter against the Go one: the
// same replies to the same readings, queries and bad input, statistics
// that count across calls and survive a restart of the host (fresh
// instances, the state in KV), its config's range, and init failing on a
// bad config.
func TestSDKKVCounter(t *testing.T) {
	var goReplies []string
	eachLanguage(t, func(t *testing.T, lang string) {
		dir := t.TempDir()
		cfg := testPluginsConfig(dir)
		h := startHost(t, dir, cfg)
		ctx := context.Background()
		start := time.Now()
		if _, err := h.m.Install(ctx, packExample(t, lang, "kvcounter", kvManifest("")), SourceLocal); err != nil {
			t.Fatal(err)
		}
		replies := runKV(t, h, start)
		if lang == plugintest.Go {
			goReplies = replies
		} else if goReplies == nil {
			t.Log("the Go example did not run; checking the known figures only")
		} else if !slices.Equal(replies, goReplies) {
			t.Fatalf("replies differ from the Go example's:\n%s\nGo:\n%s", strings.Join(replies, "\n"), strings.Join(goReplies, "\n"))
		}
		if want := `{"device":"d1","temperature_c":21.5,"temperature_f":70.7,"count":4,"min_c":19,"max_c":21.5,"mean_c":20.5,"updated":"T"}`; replies[3] != want {
			t.Errorf("4th reading: %s, want %s", replies[3], want)
		}
		if want := `{"devices":["d0","d1","d2"]}`; replies[len(replies)-1] != want {
			t.Errorf("list: %s, want %s", replies[len(replies)-1], want)
		}
		kv := h.store.PluginKV("kvcounter")
		if _, found, _ := kv.Get("device/nobody"); found {
			t.Error("a query stored a device")
		}
		lines, err := h.m.Logs("kvcounter", 0)
		if err != nil {
			t.Fatal(err)
		}
		var news []string
		for _, l := range lines {
			if strings.HasPrefix(l.Message, "new device ") {
				news = append(news, strings.TrimSuffix(l.Message, " source=guest"))
			}
		}
		if want := []string{"new device device=d1", "new device device=d0", "new device device=d2"}; !slices.Equal(news, want) {
			t.Errorf("logged %q, want %q", news, want)
		}

		// Fresh instances after a restart read the same statistics.
		h.stop()
		h = startHost(t, dir, cfg)
		r := request(t, h.bus, "kvcounter", abi.Message{Content: []byte(`{"device":"d1","temperature_c":23.5}`)})
		if !strings.Contains(string(r.Content), `"count":5,"min_c":19,"max_c":23.5,"mean_c":21.1,`) {
			t.Fatalf("after a restart: %s", r.Content)
		}

		// The config narrows the plausible range; a bad one refuses init.
		if _, err := h.m.Upgrade(ctx, packExample(t, lang, "kvcounter", kvManifest(`{"valid_min_c":0,"valid_max_c":50}`)), SourceLocal); err != nil {
			t.Fatal(err)
		}
		if r := request(t, h.bus, "kvcounter", abi.Message{Content: []byte(`{"device":"d1","temperature_c":-5}`)}); r.Route.Operation != abi.OpError {
			t.Fatalf("-5 °C accepted with a 0..50 range: %s", r.Content)
		}
		bad := strings.Replace(kvManifest(`{"valid_min_c":10,"valid_max_c":0}`), `"1.0.0"`, `"1.0.1"`, 1)
		if _, err := h.m.Upgrade(ctx, packExample(t, lang, "kvcounter", bad), SourceLocal); err == nil {
			t.Fatal("an upgrade whose config has an empty range was accepted")
		}
	})
}

// mqttEchoManifestWith is mqtt-echo's manifest with a config and grants
// under prefix.
func mqttEchoManifestWith(config, prefix string) string {
	return `{"name":"mqtt-echo","version":"1.0.0","kind":"handler","abi":"1.1","config":` + config + `,
		"capabilities":{"mqtt":{"publish":["` + prefix + `/#"],"subscribe":["` + prefix + `/#"]}},"limits":{"instances":2}}`
}

// TestSDKMQTTEcho runs every SDK's mqtt-echo between two MQTT clients of
// the embedded broker: it subscribes at init, republishes each payload on
// its output topic, answers a message that is not from its topic with an
// error reply, and takes its topics from its config.
func TestSDKMQTTEcho(t *testing.T) {
	eachLanguage(t, func(t *testing.T, lang string) {
		for _, c := range []struct{ manifest, in, out string }{
			{mqttEchoManifest(), "examples/echo/in", "examples/echo/out"},
			{mqttEchoManifestWith(`{"in":"a/in","out":"a/out"}`, "a"), "a/in", "a/out"},
		} {
			dir := t.TempDir()
			var addr string
			h := startHostWith(t, dir, testPluginsConfig(dir), startEventBus(t, "embedded", &addr))
			if _, err := h.m.Install(context.Background(), packExample(t, lang, "mqtt-echo", c.manifest), SourceLocal); err != nil {
				t.Fatal(err)
			}
			got := make(chan string, 10)
			sub := mqttClient(t, addr)
			mustToken(t, sub.Subscribe(c.out, 0, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }))
			pub := mqttClient(t, addr)
			for _, payload := range []string{"ping 1", "", strings.Repeat("p", 5000)} {
				mustToken(t, pub.Publish(c.in, 0, false, payload))
				select {
				case p := <-got:
					if p != payload {
						t.Fatalf("echoed %q, want %q", p, payload)
					}
				case <-time.After(mqttWait):
					t.Fatalf("no echo of %q on %s", payload, c.out)
				}
			}
			r := request(t, h.bus, "mqtt-echo", abi.Message{Route: abi.Route{Group: "user", Operation: "publish", Resource: c.in}, Content: []byte("x")})
			if r.Route.Operation != abi.OpError || string(r.Content) != "mqtt-echo handles only MQTT messages on "+c.in {
				t.Fatalf("a bus message: reply %s %q", r.Route.Operation, r.Content)
			}
			info, _ := h.m.Info("mqtt-echo")
			if !slices.Equal(info.Subscriptions, []string{c.in}) || info.MQTTDropped != 0 || info.Faults != 0 {
				t.Fatalf("info = %+v", info)
			}
		}
		// A config whose topic is not a string refuses init.
		dir := t.TempDir()
		var addr string
		h := startHostWith(t, dir, testPluginsConfig(dir), startEventBus(t, "embedded", &addr))
		bad := mqttEchoManifestWith(`{"in":5}`, "a")
		_, err := h.m.Install(context.Background(), packExample(t, lang, "mqtt-echo", bad), SourceLocal)
		if err == nil {
			t.Fatal(`a config with "in": 5 was accepted`)
		}
		t.Logf("install with a bad config: %v", err)
	})
}

// sdkcheckManifest grants the sdkcheck test plugin what it uses.
// sdkcheckManifest is sdkcheck's, granted HTTP to the URLs of granted.
func sdkcheckManifest(granted string) string {
	return `{"name":"sdkcheck","version":"1.0.0","kind":"handler","abi":"1.3","tick":"50ms",
	"config":{"answer":42},"capabilities":{"send":[{"group":"svc"},{"group":"sink"}],"kv":{},"http":["` + granted + `"]},
	"limits":{"instances":1}}`
}

// TestSDKSurface runs testdata/sdkcheck in each non-Go SDK: request (a
// reply larger than the SDKs' first buffer, so fetched with
// request_reply), send, every KV import, config, now, log, a failure code,
// a trap (AssemblyScript's through the SDK's abort, which logs), ticks,
// and http_request with the route helpers against a real HTTP server: a
// route request parsed, forwarded with a header added (a binary answer
// larger than the first buffer, so fetched with http_reply), and answered
// in the response framing; a URL outside the grant denied.
func TestSDKSurface(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Test")+" via "+r.Header.Get("X-Via"))
		w.WriteHeader(http.StatusCreated)
		w.Write(b)
	}))
	defer srv.Close()
	body := make([]byte, 100_000)
	for i := range body {
		body[i] = byte(i * 7)
	}
	for _, lang := range plugintest.Languages[1:] {
		t.Run(lang, func(t *testing.T) {
			dir := t.TempDir()
			h := startHost(t, dir, testPluginsConfig(dir))
			sink, err := h.bus.Register("sink", "sink")
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			svc, err := h.bus.Register("svc", "svc")
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			// svc answers a query with as many bytes as its content says.
			go func() {
				for {
					m, err := svc.Receive(context.Background())
					if err != nil {
						return
					}
					n, _ := strconv.Atoi(string(m.Content))
					_ = h.bus.Respond(abi.Message{Header: abi.Header{ParentID: m.Header.ID},
						Route: abi.Route{Group: "svc", Operation: abi.OpResponse, Resource: m.Route.Resource}, Content: bytes.Repeat([]byte("r"), n)})
				}
			}()
			file, err := plugins.Pack(plugintest.MustReadLang(t, lang, "host/pluginhost/testdata/sdkcheck/"+lang), []byte(sdkcheckManifest(srv.URL+"/ok/*")))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.m.Install(context.Background(), file, SourceLocal); err != nil {
				t.Fatal(err)
			}
			call := func(op, content string) abi.Message {
				return request(t, h.bus, "sdkcheck", abi.Message{Route: abi.Route{Group: "user", Operation: op, Resource: "sdk"}, Content: []byte(content)})
			}
			before := time.Now().UnixNano()
			for op, want := range map[string]string{
				"request": "response 100000",
				"send":    "ok",
				"config":  `{"answer":42}`,
				"log":     "ok",
			} {
				content := map[string]string{"request": "100000", "send": "sent by " + lang, "log": "logged by " + lang}[op]
				if r := call(op, content); string(r.Content) != want || r.Route.Operation != abi.OpResponse {
					t.Errorf("%s: reply %s %q, want %q", op, r.Route.Operation, r.Content, want)
				}
			}
			if r := call("request", "7"); string(r.Content) != "response 7" {
				t.Errorf("small request: reply %q", r.Content)
			}
			// Each call deletes its key at the end, after listing the keys.
			for content, want := range map[string]string{"a=1": "1|a|absent", "b/ü=vé": "vé|b/ü|absent", "c=": "|c|absent"} {
				if r := call("kv", content); string(r.Content) != want {
					t.Errorf("kv %s: reply %q, want %q", content, r.Content, want)
				}
			}
			if r := call("now", ""); r.Route.Operation != abi.OpResponse {
				t.Errorf("now: %s %q", r.Route.Operation, r.Content)
			} else if ns, err := strconv.ParseInt(string(r.Content), 10, 64); err != nil || ns < before || ns > time.Now().UnixNano() {
				t.Errorf("now = %q (%v), want a time since the test started", r.Content, err)
			}
			route := func(url string) abi.Message {
				req := abi.HTTPRequest{Method: "PUT", URL: url, Header: [][2]string{{"X-Test", "yes"}}, Body: body}
				return call("route", string(abi.AppendHTTPRequest(nil, &req)))
			}
			r := route(srv.URL + "/ok/x?y=1")
			resp, err := abi.DecodeHTTPResponse(r.Content)
			if r.Route.Operation != abi.OpResponse || err != nil {
				t.Errorf("route: reply %s %.200q (%v)", r.Route.Operation, r.Content, err)
			}
			header := http.Header{}
			for _, kv := range resp.Header {
				header.Add(kv[0], kv[1])
			}
			if resp.Status != 201 || header.Get("X-Seen") != "PUT /ok/x?y=1 yes via "+lang || header.Get("X-Lang") != lang ||
				!bytes.Equal(resp.Body, body) {
				t.Errorf("route: %d %v, body %d bytes (equal %v)", resp.Status, header, len(resp.Body), bytes.Equal(resp.Body, body))
			}
			if r := route(srv.URL + "/denied"); r.Route.Operation != abi.OpError || string(r.Content) != "http_request: denied" {
				t.Errorf("route outside the grant: reply %s %q", r.Route.Operation, r.Content)
			}
			if r := call("fail", ""); r.Route.Operation != abi.OpError || !strings.Contains(string(r.Content), "no handler") {
				t.Errorf("fail: reply %s %q, want an error naming code no handler", r.Route.Operation, r.Content)
			}
			if r := call("trap", ""); r.Route.Operation != abi.OpError || !strings.Contains(string(r.Content), "fault") {
				t.Errorf("trap: reply %s %q, want a fault", r.Route.Operation, r.Content)
			}
			if r := call("send", "after the trap"); string(r.Content) != "ok" {
				t.Errorf("after a trap: reply %q", r.Content)
			}
			got := map[string]bool{}
			for len(got) < 3 {
				m, ok := receiveWithin(sink, 5*time.Second)
				if !ok {
					t.Fatalf("sink got %v; want sent by %s, after the trap and a tick", got, lang)
				}
				got[m.Route.Resource+" "+string(m.Content)] = true
			}
			for _, want := range []string{"sdk/s sent by " + lang, "sdk/s after the trap", "sdk/tick tick"} {
				if !got[want] {
					t.Errorf("sink got %v, not %q", got, want)
				}
			}
			lines, err := h.m.Logs("sdkcheck", 0)
			if err != nil {
				t.Fatal(err)
			}
			var logged, aborted bool
			for _, l := range lines {
				logged = logged || strings.HasPrefix(l.Message, "logged by "+lang+" ")
				aborted = aborted || strings.Contains(l.Message, "abort: sdkcheck: trap at ")
			}
			if !logged || (lang == plugintest.AssemblyScript && !aborted) {
				t.Errorf("log has the line logged: %v, the abort: %v; log: %+v", logged, aborted, lines)
			}
			if info, _ := h.m.Info("sdkcheck"); info.Faults != 1 {
				t.Errorf("faults = %d, want 1 (the trap)", info.Faults)
			}
		})
	}
}
