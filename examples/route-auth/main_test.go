//go:build !wasip1

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/sdktest"
)

// call sends a cloud request for {port}:{path} with the Authorization
// value auth and returns the plugin's HTTPResponse.
func call(t *testing.T, h *sdktest.Host, port, path, auth string) response {
	t.Helper()
	req := request{Header: http.Header{}, Method: "GET"}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	content, _ := json.Marshal(req)
	r, err := h.Call(&sdk.Message{Route: sdk.Route{Source: "servicebus", Group: "route", Operation: "GET", Resource: port + ":" + path},
		Content: content})
	if err != nil {
		t.Fatal(err)
	}
	var resp response
	if err := json.Unmarshal(r.Content, &resp); err != nil {
		t.Fatalf("reply %s: %v", r.Content, err)
	}
	return resp
}

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
		if r := call(t, h, u.Port(), "/api/x", auth); r.StatusCode != 401 {
			t.Errorf("auth %q: %d %q", auth, r.StatusCode, r.Body)
		}
	}
	r := call(t, h, u.Port(), "/api/x", "Bearer t1")
	if r.StatusCode != 200 || string(r.Body) != "fresh /v1/x" || r.Header.Get("X-Seen") != "/v1/x route-auth auth=" {
		t.Fatalf("accepted: %d %q %v", r.StatusCode, r.Body, r.Header)
	}
	srv.Close()
	r = call(t, h, u.Port(), "/api/x", "Bearer t1")
	if r.StatusCode != 200 || string(r.Body) != "fresh /v1/x" || r.Header.Get("X-Edgehost-Cache") != "stale" {
		t.Errorf("cached: %d %q %v", r.StatusCode, r.Body, r.Header)
	}
	if r := call(t, h, u.Port(), "/api/never", "Bearer t1"); r.StatusCode != 502 {
		t.Errorf("down, nothing cached: %d %q", r.StatusCode, r.Body)
	}
}
