package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// apiDo sends method path with body to the daemon's admin socket and
// returns the status, the headers and the body.
func apiDo(t *testing.T, dataDir, method, path string, body []byte) (int, http.Header, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", filepath.Join(dataDir, "admin.sock"))
		}}}
	req, err := http.NewRequest(method, "http://edgehost"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// checkAPIError checks an error reply: the status, a JSON body with the
// error's text and the stable code.
func checkAPIError(t *testing.T, what string, status int, header http.Header, body string, wantStatus int, wantCode string) {
	t.Helper()
	var e struct{ Error, Code string }
	if status != wantStatus || header.Get("Content-Type") != "application/json" ||
		json.Unmarshal([]byte(body), &e) != nil || e.Error == "" || e.Code != wantCode {
		t.Errorf("%s: %d %s %q, want %d with a JSON error of code %q", what, status, header.Get("Content-Type"), body, wantStatus, wantCode)
	}
}

// Every endpoint answers a wrong method with a JSON 405 and Allow, a body
// over the limit with a JSON 413, a malformed body with a JSON 400 (or 422
// for a package that is not one); unknown paths, modules, plugins and
// devices with a JSON 404.
func TestAPIContract(t *testing.T) {
	bin := buildBinary(t)
	dataDir := shortDataDir(t)
	devicesDir := filepath.Join(dataDir, "devices")
	if err := os.Mkdir(devicesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dataDir, "modules:\n  eventbus:\n    embedded:\n      address: "+freeAddr(t)+"\n  devices:\n    dir: "+devicesDir+"\n")
	d := startDaemon(t, bin, cfg, dataDir)
	defer d.stop(t)

	const maxBody, maxPackage = 8 << 20, 64 << 20
	endpoints := []struct {
		method, path string
		limit        int
	}{
		{"GET", "/healthz", maxBody},
		{"GET", "/readyz", maxBody},
		{"GET", "/v1/status", maxBody},
		{"POST", "/v1/messages", maxBody},
		{"GET", "/v1/plugins", maxPackage},
		{"POST", "/v1/plugins", maxPackage},
		{"PUT", "/v1/plugins", maxPackage},
		{"GET", "/v1/plugins/devicetwin", maxBody},
		{"DELETE", "/v1/plugins/nobody", maxBody},
		{"POST", "/v1/plugins/nobody/rollback", maxBody},
		{"POST", "/v1/plugins/nobody/enable", maxBody},
		{"POST", "/v1/plugins/nobody/disable", maxBody},
		{"GET", "/v1/plugins/devicetwin/logs", maxBody},
		{"POST", "/v1/plugins/reload", maxBody},
		{"POST", "/v1/devices/reload", maxBody},
		{"GET", "/v1/devices", maxBody},
		{"GET", "/v1/devices/default/none", maxBody},
		{"GET", "/v1/twins", maxBody},
		{"GET", "/v1/twins/default/none", maxBody},
		{"GET", "/v1/meta/objects", maxBody},
		{"GET", "/v1/meta/objects/default/pod/none", maxBody},
		{"GET", "/v1/store/backup", maxBody},
		{"GET", "/v1/pods", maxBody},
		{"GET", "/v1/pods/default/none/log", maxBody},
		{"GET", "/debug/pprof/", maxBody},
		{"GET", "/metrics", maxBody},
		{"GET", "/ui/", maxBody},
	}
	for _, e := range endpoints {
		what := e.method + " " + e.path
		status, h, body := apiDo(t, dataDir, "PATCH", e.path, nil)
		checkAPIError(t, "PATCH "+e.path, status, h, body, http.StatusMethodNotAllowed, "method_not_allowed")
		if !strings.Contains(h.Get("Allow"), e.method) {
			t.Errorf("PATCH %s: Allow %q lacks %s", e.path, h.Get("Allow"), e.method)
		}
		status, h, body = apiDo(t, dataDir, e.method, e.path, make([]byte, e.limit+1))
		checkAPIError(t, what+" with a body over the limit", status, h, body, http.StatusRequestEntityTooLarge, "too_large")
	}

	for _, c := range []struct {
		what, method, path, body string
		status                   int
		code                     string
	}{
		{"truncated JSON", "POST", "/v1/messages", `{"to":`, 400, "bad_request"},
		{"unknown field", "POST", "/v1/messages", `{"to":"x","bogus":1}`, 400, "bad_request"},
		{"no to", "POST", "/v1/messages", `{}`, 400, "bad_request"},
		{"bad timeout", "POST", "/v1/messages", `{"to":"x","timeout":"soon"}`, 400, "bad_request"},
		{"unknown module", "POST", "/v1/messages", `{"to":"nobody","wait":true}`, 404, "not_found"},
		{"not a package", "POST", "/v1/plugins", `not a plugin`, 422, "invalid"},
		{"unknown plugin", "GET", "/v1/plugins/nobody", ``, 404, "not_found"},
		{"bad logs n", "GET", "/v1/plugins/devicetwin/logs?n=x", ``, 400, "bad_request"},
		{"unknown device", "GET", "/v1/devices/default/none", ``, 404, "not_found"},
		{"unknown twin", "GET", "/v1/twins/default/none", ``, 404, "not_found"},
		{"unknown object", "GET", "/v1/meta/objects/default/pod/none", ``, 404, "not_found"},
		{"bad object key", "GET", "/v1/meta/objects/justone", ``, 422, "invalid"},
		{"pods with the container runtime off", "GET", "/v1/pods", ``, 409, "conflict"},
		{"an image with the container runtime off", "POST", "/v1/images", `not read`, 409, "conflict"},
		{"unknown path", "GET", "/v1/nothing", ``, 404, "not_found"},
		{"unknown path at the root", "GET", "/nothing", ``, 404, "not_found"},
	} {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		status, h, got := apiDo(t, dataDir, c.method, c.path, body)
		checkAPIError(t, c.what, status, h, got, c.status, c.code)
	}
}
