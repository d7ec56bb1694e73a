package wasm

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/plugins"
)

const httpPlugin = "httpc"

// httpCall sends a request through the httpc plugin: method as the
// operation, url as the resource, body as the content.
func httpCall(t *testing.T, p *Plugin, method, url string, body []byte) string {
	t.Helper()
	m := &abi.Message{Header: abi.Header{ID: "h1", Timestamp: 1}, Route: abi.Route{Source: "test", Group: "user", Operation: method, Resource: url},
		Content: body}
	reply, ok, err := p.Handle(context.Background(), m)
	if err != nil || !ok {
		t.Fatalf("%s %s: ok=%v err=%v", method, url, ok, err)
	}
	return string(reply.Content)
}

// TestHTTPRequestGranted: within its grant a plugin reaches a real server
// with its method, headers and a binary body, and gets status, headers and
// a binary body back, one larger than the SDK's first buffer (kept for
// http_reply). Outside the grant it gets denied, counted and logged; a
// server that does not answer gives timeout within the call, and the
// instance stays in service.
func TestHTTPRequestGranted(t *testing.T) {
	big := bytes.Repeat([]byte{0, 1, 2, 0xff, '\n'}, 20000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+"-"+r.Header.Get("X-Plugin")+"-"+strconv.Itoa(len(b)))
		switch r.URL.Path {
		case "/big":
			w.Write(big)
		case "/slow":
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusAccepted)
			w.Write(b)
		}
	}))
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	pol := plugins.NewPolicy(plugins.Capabilities{HTTP: []string{srv.URL + "/*"}}, nil)
	var logs logBuffer
	p := load(t, httpPlugin, PluginConfig{Grants: pol, Logger: newLogger(&logs), Limits: Limits{CallTimeout: time.Second}})

	body := []byte("\x00\x01binary\nbody\xff")
	if got, want := httpCall(t, p, "PUT", srv.URL+"/echo?x=1", body), "status 202 seen PUT-httpc-14 len 14 "+string(body); got != want {
		t.Errorf("echo: %q, want %q", got, want)
	}
	got := httpCall(t, p, "GET", srv.URL+"/big", nil)
	if prefix := "status 200 seen GET-httpc-0 len " + strconv.Itoa(len(big)) + " "; !strings.HasPrefix(got, prefix) ||
		!bytes.Equal([]byte(got[len(prefix):]), big) {
		t.Errorf("big: %.80q", got)
	}
	if got := httpCall(t, p, "GET", other.URL+"/x", nil); got != "code 5" {
		t.Errorf("another server: %q, want code 5 (denied)", got)
	}
	if got := httpCall(t, p, "GET", strings.Replace(srv.URL, "http:", "https:", 1)+"/x", nil); got != "code 5" {
		t.Errorf("another scheme: %q, want code 5", got)
	}
	start := time.Now()
	if got := httpCall(t, p, "GET", srv.URL+"/slow", nil); got != "code 6" {
		t.Errorf("slow server: %q, want code 6 (timeout)", got)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the timeout took %s, past the call's", time.Since(start))
	}
	for _, raw := range []string{"GET " + srv.URL + "/x\nHost: evil\n\n", "get " + srv.URL + "/x\n\n", "GET /x\n\n"} {
		if got := httpCall(t, p, "RAW", "", []byte(raw)); got != "raw -2" {
			t.Errorf("raw %q: %q, want raw -2 (malformed)", raw, got)
		}
	}
	st := p.Status()
	if st.Denied != 2 || st.Faults != 0 {
		t.Errorf("denied %d, faults %d; want 2, 0", st.Denied, st.Faults)
	}
	if !strings.Contains(logs.String(), "capability denied: import=http_request url="+other.URL+"/x") {
		t.Errorf("denial not logged:\n%s", logs.String())
	}
	if got := httpCall(t, p, "POST", srv.URL+"/after", []byte("ok")); got != "status 202 seen POST-httpc-2 len 2 ok" {
		t.Errorf("after the failures: %q", got)
	}
}

// TestHTTPImportNeedsGrantAndABI13: a module importing http_request is
// refused at install without an http grant, and with a manifest that
// declares an ABI before 1.3.
func TestHTTPImportNeedsGrantAndABI13(t *testing.T) {
	imports := []string{abi.ImportHTTPRequest, abi.ImportHTTPReply}
	if err := plugins.NewPolicy(plugins.Capabilities{TCP: []string{"127.0.0.1:1"}}, nil).CheckImports(imports); err == nil ||
		!strings.Contains(err.Error(), "http (for http_request)") {
		t.Errorf("no http grant: %v", err)
	}
	granted := plugins.NewPolicy(plugins.Capabilities{HTTP: []string{"http://127.0.0.1:8080/*"}}, nil)
	if err := granted.CheckImports(imports); err != nil {
		t.Errorf("granted: %v", err)
	}
	narrowed := plugins.NewPolicy(plugins.Capabilities{HTTP: []string{"http://127.0.0.1:8080/*"}}, &plugins.Capabilities{})
	if err := narrowed.CheckImports(imports); err == nil {
		t.Error("a ceiling without http still grants it")
	}
	m := plugins.Manifest{Name: "x", ABI: "1.2"}
	if err := m.CheckABI(imports); err == nil || !strings.Contains(err.Error(), `which ABI 1.3 added: declare abi "1.3"`) {
		t.Errorf("abi 1.2: %v", err)
	}
}
