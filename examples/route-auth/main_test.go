//go:build !wasip1

package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/sdktest"
)

// call sends a cloud request for {port}:{path} with the Authorization
// value auth, framed as the servicebus frames it, and returns the
// plugin's response.
func call(t *testing.T, h *sdktest.Host, port, path, auth string) abi.HTTPResponse {
	t.Helper()
	req := abi.HTTPRequest{Method: "GET", URL: "http://127.0.0.1:" + port + path}
	if auth != "" {
		req.Header = [][2]string{{"Authorization", auth}}
	}
	r, err := h.Call(&sdk.Message{Route: sdk.Route{Source: "servicebus", Group: "route", Operation: "GET", Resource: port + ":" + path},
		Content: abi.AppendHTTPRequest(nil, &req)})
	if err != nil {
		t.Fatal(err)
	}
	if r.Route.Operation != abi.OpResponse {
		t.Fatalf("reply %s: %s", r.Route.Operation, r.Content)
	}
	resp, err := abi.DecodeHTTPResponse(r.Content)
	if err != nil {
		t.Fatalf("reply %q: %v", r.Content, err)
	}
	return resp
}

// header returns the first value of name in resp.
func header(resp abi.HTTPResponse, name string) string { return sdk.HTTPHeader(resp.Header).Get(name) }

// TestRouteAuth: refused without a known token, rewritten and forwarded
// with the added header and without the token, and answered from the
// cache, marked stale, once the service is down.
func TestRouteAuth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", r.URL.Path+" "+r.Header.Get("X-Edge-Route")+" auth="+r.Header.Get("Authorization"))
		io.WriteString(w, "fresh "+r.URL.Path)
	}))
	u, _ := url.Parse(srv.URL)
	h := sdktest.New()
	h.HTTP = []string{"http://127.0.0.1:" + u.Port() + "/*"}
	h.Config = []byte(`{"tokens":["t1"],"strip_prefix":"/api/","add_prefix":"/v1/","add_header":{"X-Edge-Route":"route-auth"}}`)
	for _, auth := range []string{"", "Bearer nope", "t1"} {
		if r := call(t, h, u.Port(), "/api/x", auth); r.Status != 401 || header(r, "Www-Authenticate") != "Bearer" {
			t.Errorf("auth %q: %d %q", auth, r.Status, r.Body)
		}
	}
	r := call(t, h, u.Port(), "/api/x?q=1", "Bearer t1")
	if r.Status != 200 || string(r.Body) != "fresh /v1/x" || header(r, "X-Seen") != "/v1/x route-auth auth=" {
		t.Fatalf("accepted: %d %q %v", r.Status, r.Body, r.Header)
	}
	srv.Close()
	r = call(t, h, u.Port(), "/api/x?q=1", "Bearer t1")
	if r.Status != 200 || string(r.Body) != "fresh /v1/x" || header(r, "X-Edgehost-Cache") != "stale" || header(r, "X-Seen") == "" {
		t.Errorf("cached: %d %q %v", r.Status, r.Body, r.Header)
	}
	if r := call(t, h, u.Port(), "/api/never", "Bearer t1"); r.Status != 502 {
		t.Errorf("down, nothing cached: %d %q", r.Status, r.Body)
	}
}

func TestSplitURL(t *testing.T) {
	for u, want := range map[string][2]string{
		"http://127.0.0.1:8080/a/b?c": {"http://127.0.0.1:8080", "/a/b?c"},
		"http://127.0.0.1:8080":       {"http://127.0.0.1:8080", ""},
		"/x":                          {"", "/x"},
	} {
		if o, p := splitURL(u); o != want[0] || p != want[1] {
			t.Errorf("%s: %q %q", u, o, p)
		}
	}
}

// TestUpstream: an app's request to the cloud is refused by target prefix,
// rewritten by target prefix with its payload kept, or let through.
func TestUpstream(t *testing.T) {
	h := sdktest.New()
	h.Config = []byte(`{"upstream_deny":["http://deny/"],"upstream_rewrite":{"http://old/":"http://new/v2/"}}`)
	up := func(target string) (*sdk.Message, error) {
		return h.Call(&sdk.Message{Route: sdk.Route{Source: "servicebus", Group: "route", Operation: "upload", Resource: target},
			Content: []byte(`{"method":"POST","targetURL":"` + target + `","payload":{"a":1}}`)})
	}
	if r, err := up("http://deny/x"); err != nil || r.Route.Operation != abi.OpError || !strings.Contains(string(r.Content), "upstream_deny") {
		t.Errorf("denied: %+v %v", r, err)
	}
	if r, err := up("http://old/x"); err != nil || r.Route.Operation != abi.OpResponse ||
		string(r.Content) != `{"method":"POST","payload":{"a":1},"targetURL":"http://new/v2/x"}` {
		t.Errorf("rewritten: %s %v", r.Content, err)
	}
	if r, err := up("http://other/x"); err != nil || r.Route.Operation != abi.OpResponse || !strings.Contains(string(r.Content), `"targetURL":"http://other/x"`) {
		t.Errorf("through: %s %v", r.Content, err)
	}
}

// TestConfigErrorNamesTheField: a config value of the wrong kind fails the
// init with an error that names the field.
func TestConfigErrorNamesTheField(t *testing.T) {
	h := sdktest.New()
	h.Config = []byte(`{"tokens":"t1"}`)
	if err := h.Init(); err == nil {
		t.Fatal("init with tokens as a string succeeded")
	}
	// The SDK logs the init's error for the host, which reports it.
	for _, l := range h.Logs() {
		if strings.Contains(l.Text, "route-auth: config") && strings.Contains(l.Text, "tokens") {
			return
		}
	}
	t.Fatalf("no logged error names the field: %+v", h.Logs())
}
