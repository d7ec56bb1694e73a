package servicebus

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/store"
)

// rig is the module on a real bus with a stand-in hub endpoint that takes
// the replies.
type rig struct {
	t   testing.TB
	b   *bus.Bus
	m   *Module
	hub *bus.Endpoint
}

func newRig(t testing.TB, cfg Config) *rig {
	t.Helper()
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	hub, err := b.Register("websocket", HubGroup)
	if err != nil {
		t.Fatal(err)
	}
	m := New(b, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, func() { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	return &rig{t: t, b: b, m: m, hub: hub}
}

// port is the port of an httptest server.
func port(t testing.TB, srv *httptest.Server) string {
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// send sends a cloud request and returns its id.
func (r *rig) send(resource, method string, req HTTPRequest) string {
	r.t.Helper()
	content, _ := json.Marshal(req)
	msg := abi.Message{Header: abi.Header{ID: bus.NewID()},
		Route: abi.Route{Source: CloudSource, Group: UserGroup, Operation: method, Resource: resource}, Content: content}
	if err := r.b.Send(context.Background(), ModuleName, msg); err != nil {
		r.t.Fatal(err)
	}
	return msg.Header.ID
}

// replies collects n replies from the hub endpoint, by parent id.
func (r *rig) replies(n int) map[string]abi.Message {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]abi.Message{}
	for len(out) < n {
		msg, err := r.hub.Receive(ctx)
		if err != nil {
			r.t.Fatalf("%d of %d replies: %v", len(out), n, err)
		}
		out[msg.Header.ParentID] = msg
	}
	return out
}

func decodeResponse(t *testing.T, msg abi.Message) HTTPResponse {
	t.Helper()
	var resp HTTPResponse
	if err := json.Unmarshal(msg.Content, &resp); err != nil {
		t.Fatalf("reply content %s: %v", msg.Content, err)
	}
	return resp
}

// TestDefaultRouteForwards: a request reaches 127.0.0.1:{port}{path} with
// its method, headers and binary body, and the reply carries the
// service's status, headers and binary body byte for byte, with
// KubeEdge's route and parent id.
func TestDefaultRouteForwards(t *testing.T) {
	body := make([]byte, 300_000)
	rand.Read(body)
	answer := make([]byte, 200_000)
	rand.Read(answer)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.RequestURI() != "/api/v1/x?a=1" || r.Header.Get("X-Test") != "yes" || !bytes.Equal(got, body) {
			http.Error(w, fmt.Sprintf("got %s %s X-Test=%q body %d bytes equal=%v", r.Method, r.URL.RequestURI(), r.Header.Get("X-Test"),
				len(got), bytes.Equal(got, body)), http.StatusTeapot)
			return
		}
		w.Header().Set("X-Answer", "42")
		w.WriteHeader(http.StatusCreated)
		w.Write(answer)
	}))
	defer srv.Close()
	r := newRig(t, Config{})
	id := r.send(port(t, srv)+":/api/v1/x?a=1", "POST", HTTPRequest{Header: http.Header{"X-Test": {"yes"}}, Body: body, Method: "POST"})
	msg := r.replies(1)[id]
	if msg.Route != (abi.Route{Source: ModuleName, Group: UserGroup, Operation: abi.OpUpload}) {
		t.Errorf("route %+v", msg.Route)
	}
	resp := decodeResponse(t, msg)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Answer") != "42" || !bytes.Equal(resp.Body, answer) {
		t.Fatalf("status %d, X-Answer %q, body %d bytes (equal %v): %.200s", resp.StatusCode, resp.Header.Get("X-Answer"), len(resp.Body),
			bytes.Equal(resp.Body, answer), resp.Body)
	}
	if s := r.m.Stats(); s.Requests != 1 || s.Answered != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestFailuresAreNamedAndIsolated: a bad resource, bad content, a slow
// service, a too-large request and a too-large response each get
// edgecore's error shape with a named error and a counted reason, while a
// good request sent with them is answered.
func TestFailuresAreNamedAndIsolated(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/big":
			w.Write(make([]byte, 2000))
		default:
			io.WriteString(w, "ok")
		}
	}))
	defer srv.Close()
	defer close(release)
	p := port(t, srv)
	r := newRig(t, Config{ClientTimeout: 300 * time.Millisecond, MaxBodyBytes: 1000})
	cases := []struct {
		resource string
		content  HTTPRequest
		status   int
		reason   Reason
		text     string
	}{
		{"no-colon", HTTPRequest{}, 400, ReasonBadResource, "exactly one colon"},
		{"99999:/x", HTTPRequest{}, 400, ReasonBadResource, "not 1..65535"},
		{p + ":/slow", HTTPRequest{}, 504, ReasonTimeout, ErrTimeout.Error()},
		{p + ":/post", HTTPRequest{Body: make([]byte, 1001)}, 413, ReasonRequestTooLarge, "cap 1000"},
		{p + ":/big", HTTPRequest{}, 500, ReasonResponseTooLarge, "more than 1000 bytes"},
	}
	ids := map[string]int{}
	for i, c := range cases {
		ids[r.send(c.resource, "GET", c.content)] = i
	}
	good := r.send(p+":/ok", "GET", HTTPRequest{})
	bad := abi.Message{Header: abi.Header{ID: bus.NewID()}, Route: abi.Route{Source: CloudSource, Group: UserGroup, Operation: "GET", Resource: p + ":/x"},
		Content: []byte("not json")}
	r.b.Send(context.Background(), ModuleName, bad)
	got := r.replies(len(cases) + 2)
	if resp := decodeResponse(t, got[good]); resp.StatusCode != 200 || string(resp.Body) != "ok" {
		t.Errorf("good request: %d %q", resp.StatusCode, resp.Body)
	}
	if resp := decodeResponse(t, got[bad.Header.ID]); resp.StatusCode != 400 || !strings.Contains(string(resp.Body), ErrBadRequest.Error()) {
		t.Errorf("bad content: %d %q", resp.StatusCode, resp.Body)
	}
	for id, i := range ids {
		c, msg := cases[i], got[id]
		resp := decodeResponse(t, msg)
		if msg.Route.Operation != "" || msg.Route.Resource != "" || resp.Header.Get("Server") != "kubeedge-edgecore" {
			t.Errorf("%s: not edgecore's error shape: route %+v header %v", c.resource, msg.Route, resp.Header)
		}
		if resp.StatusCode != c.status || !strings.Contains(string(resp.Body), c.text) {
			t.Errorf("%s: %d %q, want %d containing %q", c.resource, resp.StatusCode, resp.Body, c.status, c.text)
		}
	}
	s := r.m.Stats()
	for _, c := range cases {
		if s.Refused[c.reason] == 0 {
			t.Errorf("reason %s not counted: %v", c.reason, s.Refused)
		}
	}
	if s.Answered != 1 {
		t.Errorf("answered %d, want 1", s.Answered)
	}
}

// TestConcurrencyLimit: with every slot taken, one more request is
// answered 503 at once and counted as busy.
func TestConcurrencyLimit(t *testing.T) {
	started, release := make(chan struct{}, 2), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	}))
	defer srv.Close()
	r := newRig(t, Config{Concurrency: 2})
	p := port(t, srv)
	slow := []string{r.send(p+":/a", "GET", HTTPRequest{}), r.send(p+":/b", "GET", HTTPRequest{})}
	<-started
	<-started
	busy := r.send(p+":/c", "GET", HTTPRequest{})
	if resp := decodeResponse(t, r.replies(1)[busy]); resp.StatusCode != 503 || !strings.Contains(string(resp.Body), ErrBusy.Error()) {
		t.Errorf("busy: %d %q", resp.StatusCode, resp.Body)
	}
	close(release)
	got := r.replies(2)
	for _, id := range slow {
		if resp := decodeResponse(t, got[id]); resp.StatusCode != 200 {
			t.Errorf("slow request: %d %q", resp.StatusCode, resp.Body)
		}
	}
	if s := r.m.Stats(); s.Refused[ReasonBusy] != 1 {
		t.Errorf("busy count %d", s.Refused[ReasonBusy])
	}
}

// TestEdgeToCloud: an app's request for a started target goes upstream
// as edgecore's upload and gets the cloud's answer in edgecore's reply;
// before the start, and after the stop, it gets edgecore's 400 JSON; the
// allow-list survives a restart through the store.
func TestEdgeToCloud(t *testing.T) {
	st, err := store.Open(t.TempDir()+"/s.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	addr := freeAddr(t)
	cfg := Config{Server: ServerConfig{Enable: true, Address: addr, Timeout: 5 * time.Second}, Store: st}
	r := newRig(t, cfg)
	target := "http://cloud.example/api"
	app := `{"method":"POST","targetURL":"` + target + `","payload":{"v":1}}`
	post := func() AppReply {
		t.Helper()
		resp, err := http.Post("http://"+addr, "application/json", strings.NewReader(app))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out AppReply
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != out.Code {
			t.Errorf("HTTP status %d, code %d", resp.StatusCode, out.Code)
		}
		return out
	}
	if got := post(); got.Code != 400 || !strings.Contains(got.Msg, "url "+target+" is not allowed") {
		t.Fatalf("before start: %+v", got)
	}
	control := func(op string) {
		r.b.Send(context.Background(), ModuleName, abi.Message{Route: abi.Route{Source: CloudSource, Group: UserGroup, Operation: op, Resource: target}})
		deadline := time.Now().Add(10 * time.Second)
		for want := map[string]int{OpStart: 1, OpStop: 0}[op]; r.m.Stats().Targets != want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s not applied", op)
			}
		}
	}
	control(OpStart)
	cloud := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		msg, err := r.hub.Receive(ctx)
		if err != nil {
			cloud <- err
			return
		}
		if msg.Route != (abi.Route{Source: ModuleName, Group: UserGroup, Operation: abi.OpUpload, Resource: target}) || !msg.Header.Sync ||
			string(msg.Content) != app {
			cloud <- fmt.Errorf("upstream %+v sync %v content %s", msg.Route, msg.Header.Sync, msg.Content)
			return
		}
		cloud <- r.b.Respond(msg.Reply(abi.OpResponse, []byte(`{"answer":"from cloud"}`)))
	}()
	if got := post(); got.Code != 200 || got.Msg != ReplyOK || got.Body != `{"answer":"from cloud"}` {
		t.Errorf("allowed: %+v", got)
	}
	if err := <-cloud; err != nil {
		t.Fatal(err)
	}
	// The allow-list is persisted.
	if again := newTargets(st); again.load() != nil || !again.allowed(target) {
		t.Error("started target not persisted")
	}
	control(OpStop)
	if got := post(); got.Code != 400 {
		t.Errorf("after stop: %+v", got)
	}
	if s := r.m.Stats(); s.Upstream != 1 || s.UpstreamAnswered != 1 || s.Refused[ReasonNotAllowed] != 2 {
		t.Errorf("stats %+v", s)
	}
}

// TestEdgeToCloudNoAnswer: a cloud that does not answer within the
// timeout gets the app a 500 naming ErrUpstream.
func TestEdgeToCloudNoAnswer(t *testing.T) {
	addr := freeAddr(t)
	r := newRig(t, Config{Server: ServerConfig{Enable: true, Address: addr, Timeout: 200 * time.Millisecond}})
	r.m.tgts.add("http://t")
	resp, err := http.Post("http://"+addr, "application/json", strings.NewReader(`{"method":"GET","targetURL":"http://t"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out AppReply
	json.NewDecoder(resp.Body).Decode(&out)
	if out.Code != 500 || !strings.Contains(out.Msg, ErrUpstream.Error()) {
		t.Errorf("%+v", out)
	}
	if !errors.Is(fmt.Errorf("x: %w", ErrUpstream), ErrUpstream) || r.m.Stats().Refused[ReasonUpstream] != 1 {
		t.Errorf("upstream refusal not counted: %v", r.m.Stats().Refused)
	}
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

// TestRoutePluginTakesRequest: with a module in group route, a request is
// handed to it (route group route, the cloud's operation and resource, the
// request framed as SPEC 5.3's for the default route's URL, without the
// headers the host sets) and its framed response answers the cloud; a
// failure reply no_receiver sends the request on to the default route; a
// failure with code unreachable or timeout is answered as the default
// route answers those; another failure is a 502 counted as route_failed,
// and a header the framing cannot carry a 400.
func TestRoutePluginTakesRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "default route") }))
	defer srv.Close()
	r := newRig(t, Config{})
	route, err := r.b.Register("route-plugin", RouteGroup)
	if err != nil {
		t.Fatal(err)
	}
	p := port(t, srv)
	want := "POST http://127.0.0.1:" + p + "/mine?q=1\nX-A: 1\nX-A: 2\nX-B: \xc3\xa9\n\nbody"
	go func() {
		for {
			msg, err := route.Receive(context.Background())
			if err != nil {
				return
			}
			var reply abi.Message
			switch msg.Route.Resource {
			case p + ":/mine?q=1":
				if msg.Route.Group != RouteGroup || msg.Route.Operation != "POST" || string(msg.Content) != want {
					reply = msg.Reply(abi.OpError, []byte(fmt.Sprintf("unexpected %+v %q", msg.Route, msg.Content)))
					break
				}
				reply = msg.Reply(abi.OpResponse, []byte("203\nX-Route: yes\nX-Route: again\n\nfrom the plugin"))
			case p + ":/other":
				reply = msg.FailureReply(abi.Failure{Reason: abi.FailureNoReceiver, Error: "no plugin"})
			case p + ":/down":
				reply = msg.FailureReply(abi.Failure{Reason: abi.FailureCode, Code: abi.Unreachable, Error: "connection refused"})
			case p + ":/slow":
				reply = msg.FailureReply(abi.Failure{Reason: abi.FailureCode, Code: abi.Timeout, Error: "timed out"})
			case p + ":/json":
				reply = msg.Reply(abi.OpResponse, []byte(`{"status_code":200}`))
			default:
				reply = msg.FailureReply(abi.Failure{Reason: "fault", Error: "plugin trapped"})
			}
			r.b.Respond(reply)
		}
	}()
	header := http.Header{"X-A": {"1", "2"}, "X-B": {"é"}, "Content-Length": {"4"}, "Host": {"elsewhere"}, "Connection": {"close"}}
	ids := map[string]string{
		"mine":   r.send(p+":/mine?q=1", "POST", HTTPRequest{Method: "POST", Header: header, Body: []byte("body")}),
		"other":  r.send(p+":/other", "GET", HTTPRequest{}),
		"down":   r.send(p+":/down", "GET", HTTPRequest{}),
		"slow":   r.send(p+":/slow", "GET", HTTPRequest{}),
		"json":   r.send(p+":/json", "GET", HTTPRequest{}),
		"broken": r.send(p+":/broken", "GET", HTTPRequest{}),
		"ctl":    r.send(p+":/mine", "GET", HTTPRequest{Header: http.Header{"X-Bad": {"a\x01b"}}}),
	}
	got := r.replies(len(ids))
	resp := func(name string) HTTPResponse { return decodeResponse(t, got[ids[name]]) }
	if resp := resp("mine"); resp.StatusCode != 203 || string(resp.Body) != "from the plugin" || fmt.Sprint(resp.Header["X-Route"]) != "[yes again]" {
		t.Errorf("routed: %d %q %v", resp.StatusCode, resp.Body, resp.Header)
	}
	if resp := resp("other"); resp.StatusCode != 200 || string(resp.Body) != "default route" {
		t.Errorf("no receiver: %d %q", resp.StatusCode, resp.Body)
	}
	for name, c := range map[string]struct {
		status int
		text   string
	}{
		"down": {404, "error to call service: connection refused"}, "slow": {504, "local service timed out: timed out"},
		"json": {502, "answered no HTTP response"}, "broken": {502, "plugin trapped"}, "ctl": {400, `header X-Bad: value "a\x01b" holds a control character`},
	} {
		if resp := resp(name); resp.StatusCode != c.status || !strings.Contains(string(resp.Body), c.text) || resp.Header.Get("Server") != "kubeedge-edgecore" {
			t.Errorf("%s: %d %q, want %d %q", name, resp.StatusCode, resp.Body, c.status, c.text)
		}
	}
	if s := r.m.Stats(); s.Routed != 6 || s.Refused[ReasonRoute] != 2 || s.Refused[ReasonCallFailed] != 1 || s.Refused[ReasonTimeout] != 1 ||
		s.Refused[ReasonBadRequest] != 1 {
		t.Errorf("routed %d, refused %v", s.Routed, s.Refused)
	}
}

// TestRouteDefaultPlugin: plugins/route-default, a real wasm plugin in the
// real plugin host, answers as the native default route does: method,
// path with query, headers and a binary body reach the service and its
// answer comes back byte for byte; a port nothing listens on gets
// edgecore's 404.
func TestRouteDefaultPlugin(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Test"))
		w.Write(b)
	}))
	defer srv.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downPort := port(t, down)
	down.Close()
	r := newRig(t, Config{})
	startRoutePlugin(t, r.b, "plugins/route-default", "", "#")
	body := make([]byte, 64<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	ok := r.send(port(t, srv)+":/up?x=1", "PUT", HTTPRequest{Method: "PUT", Header: http.Header{"X-Test": {"yes"}}, Body: body})
	refused := r.send(downPort+":/x", "GET", HTTPRequest{})
	got := r.replies(2)
	if resp := decodeResponse(t, got[ok]); resp.StatusCode != 200 || !bytes.Equal(resp.Body, body) || resp.Header.Get("X-Seen") != "PUT /up?x=1 yes" {
		t.Errorf("forwarded: %d %d bytes %v", resp.StatusCode, len(resp.Body), resp.Header)
	}
	if resp := decodeResponse(t, got[refused]); resp.StatusCode != 404 || !strings.Contains(string(resp.Body), "error to call service") ||
		resp.Header.Get("Server") != "kubeedge-edgecore" {
		t.Errorf("refused: %d %q %v", resp.StatusCode, resp.Body, resp.Header)
	}
	if s := r.m.Stats(); s.Routed != 2 || s.Refused[ReasonCallFailed] != 1 {
		t.Errorf("routed %d, refused %v", s.Routed, s.Refused)
	}
}

// TestLocalRequester: a request a caller on the bus waits for (`edgehost
// send`) is answered to that caller, its errors too, and nothing of it
// reaches the hub; a cloud request, sync as CloudCore sends it, is still
// answered through the hub; a local one from another source is told it
// is ignored rather than left waiting.
func TestLocalRequester(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI())
		fmt.Fprintf(w, "got %s", b)
	}))
	defer srv.Close()
	r := newRig(t, Config{})
	request := func(source, resource string) abi.Message {
		t.Helper()
		content, _ := json.Marshal(HTTPRequest{Method: "POST", Body: []byte("local body")})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reply, err := r.b.Request(ctx, ModuleName, abi.Message{
			Route: abi.Route{Source: source, Group: UserGroup, Operation: "POST", Resource: resource}, Content: content})
		if err != nil {
			t.Fatalf("request %s from %s: %v", resource, source, err)
		}
		return reply
	}
	reply := request(CloudSource, port(t, srv)+":/local?x=1")
	if resp := decodeResponse(t, reply); reply.Route.Operation != abi.OpUpload || resp.StatusCode != 200 ||
		string(resp.Body) != "got local body" || resp.Header.Get("X-Seen") != "POST /local?x=1" {
		t.Errorf("local request: route %+v, response %d %v %q", reply.Route, resp.StatusCode, resp.Header, resp.Body)
	}
	reply = request(CloudSource, "no-port")
	if resp := decodeResponse(t, reply); resp.StatusCode != 400 || !strings.Contains(string(resp.Body), "bad servicebus resource") {
		t.Errorf("local bad resource: %d %q", resp.StatusCode, resp.Body)
	}
	reply = request("cli", port(t, srv)+":/x")
	if reply.Route.Operation != abi.OpError || !strings.Contains(string(reply.Content), "takes requests from source router_servicebus") {
		t.Errorf("local request from source cli: %+v %q", reply.Route, reply.Content)
	}

	content, _ := json.Marshal(HTTPRequest{Method: "GET"})
	cloud := abi.Message{Header: abi.Header{ID: bus.NewID(), Sync: true},
		Route: abi.Route{Source: CloudSource, Group: UserGroup, Operation: "GET", Resource: port(t, srv) + ":/cloud"}, Content: content}
	if err := r.b.Send(context.Background(), ModuleName, cloud); err != nil {
		t.Fatal(err)
	}
	// The hub gets the cloud's reply and only that: the local ones would
	// come first.
	for parent, msg := range r.replies(1) {
		if resp := decodeResponse(t, msg); parent != cloud.Header.ID || resp.Header.Get("X-Seen") != "GET /cloud" {
			t.Errorf("hub got a reply to %s (cloud request %s): %d %v", parent, cloud.Header.ID, resp.StatusCode, resp.Header)
		}
	}
	if s := r.m.Stats(); s.Answered != 2 || s.Refused[ReasonUndelivered] != 0 || s.Refused[ReasonWrongSource] != 1 {
		t.Errorf("stats %+v", s)
	}
}
