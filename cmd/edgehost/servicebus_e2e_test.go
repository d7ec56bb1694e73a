package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/plugintest"
)

// pythonServer is `python3 -m http.server` serving dir, a separate
// process started and stopped by PID.
type pythonServer struct {
	cmd  *exec.Cmd
	port string
	done chan struct{}
}

func startPythonServer(t *testing.T, dir string) *pythonServer {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	p := &pythonServer{cmd: exec.Command(py, "-m", "http.server", port, "--bind", "127.0.0.1", "--directory", dir), port: port, done: make(chan struct{})}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("python3 http.server on %s did not come up", addr)
		}
	}
}

// stop kills the server by its PID and waits for it to exit.
func (p *pythonServer) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// hubHTTP runs `edgehost hub http` and returns its output and exit code.
func (r *hubRig) hubHTTP(args ...string) (string, int) {
	r.t.Helper()
	return edgehost(r.t, r.bin, "", append([]string{"hub", "http", "--data-dir", r.hub.dir, "--node", "peer-node"}, args...)...)
}

func portOf(t *testing.T, srv *httptest.Server) string {
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// TestServicebusEndToEnd: the real binary joined to `edgehost hub serve`;
// cloud requests through `edgehost hub http` reach a python3 http.server
// (a separate process) and Go net/http servers through the default
// route; binary bodies round-trip byte for byte both ways; a slow service
// gets the named timeout and a 6 MB body is refused with a clear error,
// while a request made alongside is answered; a stopped service gets
// edgecore's 404. Edge → cloud: an app's request for a target the cloud
// started gets the cloud's answer, one for another target edgecore's 400
// JSON. `edgehost send` injects a request and prints the service's answer.
func TestServicebusEndToEnd(t *testing.T) {
	work := t.TempDir()
	blob := make([]byte, 256<<10)
	rand.Read(blob)
	if err := os.WriteFile(filepath.Join(work, "blob.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	py := startPythonServer(t, work)

	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Test"))
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, r.Body)
	}))
	defer echo.Close()
	slowRelease := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-slowRelease:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(slowRelease)
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 6<<20))
	}))
	defer big.Close()
	cloudTarget := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "cloud got %s %s", r.Method, b)
	}))
	defer cloudTarget.Close()

	listener := freeAddr(t)
	r := newHubRigWith(t, rigOptions{modules: fmt.Sprintf("  servicebus:\n    clientTimeout: 2s\n    server:\n      enable: true\n      address: %s\n", listener)})
	r.start()
	r.awaitFrames(route("websocket", "resource", "keepalive", "node"), 1)

	// A file from the python server, byte for byte.
	got := filepath.Join(work, "got.bin")
	out, code := r.hubHTTP("--port", py.port, "-o", got, "/blob.bin")
	if code != 0 || !strings.HasPrefix(out, "HTTP 200 OK\n") {
		t.Fatalf("python GET: exit %d\n%s\ndaemon logs:\n%s", code, out, r.d.logs)
	}
	if b, _ := os.ReadFile(got); !bytes.Equal(b, blob) {
		t.Errorf("python GET: %d bytes, not the %d served", len(b), len(blob))
	}

	// A binary body to a Go server and back, with method, path and header.
	sent := filepath.Join(work, "sent.bin")
	body := make([]byte, 512<<10)
	rand.Read(body)
	os.WriteFile(sent, body, 0o644)
	echoed := filepath.Join(work, "echoed.bin")
	out, code = r.hubHTTP("--port", portOf(t, echo), "-X", "PUT", "-H", "X-Test: yes", "--data", "@"+sent, "-o", echoed, "/up?x=1")
	if code != 0 || !strings.HasPrefix(out, "HTTP 200 OK\n") || !strings.Contains(out, "X-Seen: PUT /up?x=1 yes\n") {
		t.Fatalf("echo PUT: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(echoed); !bytes.Equal(b, body) {
		t.Errorf("echo PUT: %d bytes back, not the %d sent", len(b), len(body))
	}

	// The same request injected with `edgehost send`, no cloud involved:
	// the answer comes back to send, which prints it.
	out, code = edgehost(t, r.bin, "", "send", "--data-dir", r.dataDir, "--to", "servicebus", "--source", "router_servicebus",
		"--group", "user", "--operation", "PUT", "--resource", portOf(t, echo)+":/sent?y=2",
		"--content", `{"method":"PUT","header":{"X-Test":["send"]},"body":"AAH+/w=="}`)
	var sentReply struct {
		Header struct {
			ParentID string `json:"parent_msg_id"`
		} `json:"header"`
		Content struct {
			Header     http.Header `json:"header"`
			StatusCode int         `json:"status_code"`
			Body       []byte      `json:"body"`
		} `json:"content"`
	}
	if err := json.Unmarshal([]byte(out), &sentReply); code != 0 || err != nil || sentReply.Header.ParentID == "" ||
		sentReply.Content.StatusCode != 200 || sentReply.Content.Header.Get("X-Seen") != "PUT /sent?y=2 send" ||
		!bytes.Equal(sentReply.Content.Body, []byte{0, 1, 0xfe, 0xff}) {
		t.Errorf("edgehost send to the servicebus: exit %d (%v)\n%s", code, err, out)
	}

	// A slow service times out with the named error while a request made
	// alongside it is answered.
	var wg sync.WaitGroup
	var slowOut string
	var slowCode int
	wg.Go(func() { slowOut, slowCode = r.hubHTTP("--port", portOf(t, slow), "/slow") })
	out, code = r.hubHTTP("--port", portOf(t, echo), "-d", "alongside", "-X", "POST", "/side")
	if code != 0 || !strings.HasSuffix(out, "\nalongside") {
		t.Errorf("request alongside the slow one: exit %d\n%s", code, out)
	}
	wg.Wait()
	if slowCode != 0 || !strings.HasPrefix(slowOut, "HTTP 504 ") || !strings.Contains(slowOut, "local service timed out after 2s") {
		t.Errorf("slow service: exit %d\n%s", slowCode, slowOut)
	}

	// 6 MB: an answer that big is refused by the edge, a request that big
	// by `hub http`, each with a clear error.
	out, code = r.hubHTTP("--port", portOf(t, big), "/big")
	if code != 0 || !strings.HasPrefix(out, "HTTP 500 ") || !strings.Contains(out, "response body over the cap: more than 5000000 bytes") {
		t.Errorf("6 MB answer: exit %d\n%.400s", code, out)
	}
	huge := filepath.Join(work, "huge.bin")
	os.WriteFile(huge, make([]byte, 6<<20), 0o644)
	out, code = r.hubHTTP("--port", portOf(t, echo), "-X", "POST", "--data", "@"+huge, "/x")
	if code == 0 || !strings.Contains(out, "6291456 bytes is over the servicebus body cap of 5000000 bytes") {
		t.Errorf("6 MB request: exit %d\n%s", code, out)
	}

	// The python server stopped by its PID: edgecore's 404.
	py.stop()
	out, code = r.hubHTTP("--port", py.port, "/blob.bin")
	if code != 0 || !strings.HasPrefix(out, "HTTP 404 ") || !strings.Contains(out, "Server: kubeedge-edgecore") ||
		!strings.Contains(out, "error to call service") {
		t.Errorf("stopped service: exit %d\n%s", code, out)
	}

	// Edge → cloud.
	target := cloudTarget.URL + "/rule"
	app := func(targetURL string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post("http://"+listener, "application/json",
			strings.NewReader(`{"method":"POST","targetURL":"`+targetURL+`","payload":{"reading":21.5}}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	if status, got := app(target); status != 400 || got["code"] != 400.0 || !strings.Contains(fmt.Sprint(got["msg"]), "url "+target+" is not allowed") {
		t.Errorf("before start: %d %v", status, got)
	}
	if out, code := edgehost(t, r.bin, "", "hub", "target", "start", target, "--node", "peer-node", "--data-dir", r.hub.dir); code != 0 {
		t.Fatalf("hub target start: %s", out)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, m := adminGet(t, r.dataDir, "/metrics"); strings.Contains(m, "edgehost_servicebus_targets 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the start never reached the node")
		}
	}
	want := map[string]any{"code": 200.0, "msg": "receive response from cloud successfully", "body": `cloud got POST {"reading":21.5}`}
	if status, got := app(target); status != 200 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("allowed target: %d %v, want %v\nhub logs:\n%s", status, got, want, r.hub.logs)
	}
	other := cloudTarget.URL + "/other"
	if status, got := app(other); status != 400 || !strings.Contains(fmt.Sprint(got["msg"]), "url "+other+" is not allowed") {
		t.Errorf("disallowed target: %d %v", status, got)
	}
	_, m := adminGet(t, r.dataDir, "/metrics")
	for _, line := range []string{
		`edgehost_servicebus_refused_total{reason="timeout"} 1`,
		`edgehost_servicebus_refused_total{reason="response_too_large"} 1`,
		`edgehost_servicebus_refused_total{reason="call_failed"} 1`,
		`edgehost_servicebus_refused_total{reason="not_allowed"} 2`,
		"edgehost_servicebus_upstream_answered_total 1",
		// The built-in route-default plugin is not loaded by default.
		"edgehost_servicebus_routed_total 0\n",
	} {
		if !strings.Contains(m, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

// TestServicebusRouteAuthEndToEnd: the cloud's requests for the ports
// examples/route-auth receives go through it (a real wasm plugin in the
// real daemon): refused without a known bearer token, rewritten
// (/api/x to /x) with its added header and without the token, a binary
// body from python3 http.server byte for byte, and the same answer from
// its KV cache, marked stale, once that server is stopped by PID. A port
// route-auth does not receive takes the default route, here the built-in
// route-default plugin (modules.servicebus.defaultRoute: plugin).
func TestServicebusRouteAuthEndToEnd(t *testing.T) {
	wasm, err := plugintest.Build("examples/route-auth")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	blob := make([]byte, 200<<10)
	rand.Read(blob)
	os.WriteFile(filepath.Join(work, "blob.bin"), blob, 0o644)
	py := startPythonServer(t, work)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", r.URL.Path+" "+r.Header.Get("X-Edge-Route")+" auth="+r.Header.Get("Authorization"))
		io.WriteString(w, "echo "+r.URL.Path)
	}))
	defer echo.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "plain "+r.URL.Path) }))
	defer plain.Close()
	cloudTarget := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "cloud got %s %s", r.URL.Path, b)
	}))
	defer cloudTarget.Close()
	listener := freeAddr(t)
	modules := fmt.Sprintf("  plugins:\n    list:\n      - name: route-auth\n        path: %s\n"+
		"        config: {tokens: [t1], strip_prefix: /api/, add_prefix: /, add_header: {X-Edge-Route: route-auth},\n"+
		"                 upstream_deny: [\"%s/secret\"], upstream_rewrite: {\"%s/old/\": \"%s/\"}}\n"+
		"        receives:\n          - {group: route, resource: \"%s:/#\"}\n          - {group: route, resource: \"%s:/#\"}\n"+
		"          - {group: route, operation: upload}\n"+
		"  servicebus:\n    defaultRoute: plugin\n    server:\n      enable: true\n      address: %s\n",
		wasm, cloudTarget.URL, cloudTarget.URL, cloudTarget.URL, py.port, portOf(t, echo), listener)
	r := newHubRigWith(t, rigOptions{modules: modules})
	r.start()
	r.awaitFrames(route("websocket", "resource", "keepalive", "node"), 1)
	auth := "Authorization: Bearer t1"

	if out, code := r.hubHTTP("--port", portOf(t, echo), "/api/x"); code != 0 || !strings.HasPrefix(out, "HTTP 401 ") ||
		!strings.Contains(out, "missing or unknown bearer token") {
		t.Errorf("no token: exit %d\n%s\ndaemon logs:\n%s", code, out, r.d.logs)
	}
	if out, code := r.hubHTTP("--port", portOf(t, echo), "-H", "Authorization: Bearer wrong", "/api/x"); code != 0 || !strings.HasPrefix(out, "HTTP 401 ") {
		t.Errorf("unknown token: exit %d\n%s", code, out)
	}
	if out, code := r.hubHTTP("--port", portOf(t, echo), "-H", auth, "/api/x"); code != 0 || !strings.HasPrefix(out, "HTTP 200 ") ||
		!strings.Contains(out, "X-Seen: /x route-auth auth=\n") || !strings.HasSuffix(out, "\necho /x") {
		t.Errorf("accepted and rewritten: exit %d\n%s", code, out)
	}
	got := filepath.Join(work, "got.bin")
	if out, code := r.hubHTTP("--port", py.port, "-H", auth, "-o", got, "/api/blob.bin"); code != 0 || !strings.HasPrefix(out, "HTTP 200 ") {
		t.Fatalf("python through the plugin: exit %d\n%s\ndaemon logs:\n%s", code, out, r.d.logs)
	}
	if b, _ := os.ReadFile(got); !bytes.Equal(b, blob) {
		t.Errorf("python through the plugin: %d bytes, not the %d served", len(b), len(blob))
	}
	py.stop()
	cached := filepath.Join(work, "cached.bin")
	if out, code := r.hubHTTP("--port", py.port, "-H", auth, "-o", cached, "/api/blob.bin"); code != 0 || !strings.HasPrefix(out, "HTTP 200 ") ||
		!strings.Contains(out, "X-Edgehost-Cache: stale\n") {
		t.Errorf("cached while down: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(cached); !bytes.Equal(b, blob) {
		t.Errorf("cached: %d bytes, not the %d served", len(b), len(blob))
	}
	if out, code := r.hubHTTP("--port", portOf(t, plain), "/p"); code != 0 || !strings.HasSuffix(out, "\nplain /p") {
		t.Errorf("default route beside the plugin: exit %d\n%s", code, out)
	}

	// Edge → cloud through route-auth before the allow-list: a target
	// rewritten onto the started one reaches the cloud, a denied one is
	// refused by the plugin, and the allow-list still holds for the rest.
	target := cloudTarget.URL + "/rule"
	if out, code := edgehost(t, r.bin, "", "hub", "target", "start", target, "--node", "peer-node", "--data-dir", r.hub.dir); code != 0 {
		t.Fatalf("hub target start: %s", out)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, m := adminGet(t, r.dataDir, "/metrics"); strings.Contains(m, "edgehost_servicebus_targets 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the start never reached the node")
		}
	}
	app := func(targetURL string) (int, string) {
		t.Helper()
		resp, err := http.Post("http://"+listener, "application/json", strings.NewReader(`{"method":"POST","targetURL":"`+targetURL+`","payload":"p1"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := app(cloudTarget.URL + "/old/rule"); status != 200 || !strings.Contains(body, `"body":"cloud got /rule p1"`) {
		t.Errorf("rewritten onto the started target: %d %s\nhub logs:\n%s", status, body, r.hub.logs)
	}
	if status, body := app(cloudTarget.URL + "/secret"); status != 403 || !strings.Contains(body, "upstream_deny") {
		t.Errorf("denied by the plugin: %d %s", status, body)
	}
	if status, body := app(cloudTarget.URL + "/other"); status != 400 || !strings.Contains(body, "is not allowed") {
		t.Errorf("not started, passed by the plugin: %d %s", status, body)
	}
	_, m := adminGet(t, r.dataDir, "/metrics")
	for _, line := range []string{
		// 5 through route-auth, 1 through route-default, 2 edge → cloud.
		"edgehost_servicebus_routed_total 8\n",
		`edgehost_servicebus_refused_total{reason="route_refused"} 1`,
		"edgehost_servicebus_upstream_answered_total 1",
	} {
		if !strings.Contains(m, line) {
			t.Errorf("/metrics lacks %s:\n%s", line, grepLines(m, "edgehost_servicebus"))
		}
	}
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
