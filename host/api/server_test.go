package api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// echoBackend replies to every waited-for message with its content, and
// fails for module "missing".
type echoBackend struct{ ready bool }

func (b *echoBackend) Status() Status {
	return Status{Version: "test", Ready: b.ready, Modules: []ModuleStatus{{Name: "bus", State: "running"}}}
}

func (b *echoBackend) Inject(_ context.Context, req InjectRequest) (*abi.Message, error) {
	if req.To == "missing" {
		return nil, errors.Join(errors.New(`no module "missing"`), abi.Unavailable)
	}
	if !req.Wait {
		return nil, nil
	}
	r := req.Parsed.Reply(abi.OpResponse, req.Parsed.Content)
	r.Header.ID = "reply-1"
	return &r, nil
}

func serve(t *testing.T, b Backend, token string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "admin.sock")
	l, err := ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(b, token, nil).Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return sock
}

func TestSocketModeAndStaleSocket(t *testing.T) {
	sock := serve(t, &echoBackend{ready: true}, "")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := ListenUnix(sock); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Fatalf("second listener: %v", err)
	}
	stale := filepath.Join(t.TempDir(), "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l, err = ListenUnix(stale)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l.Close()
}

func TestStatusAndInject(t *testing.T) {
	c := NewClient(serve(t, &echoBackend{ready: true}, ""), "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil || !st.Ready || st.Version != "test" {
		t.Fatalf("status = %+v, %v", st, err)
	}
	req := InjectRequest{To: "echo", Wait: true, Message: MessageJSON{
		Header:  HeaderJSON{ID: "m1"},
		Route:   RouteJSON{Operation: "query", Resource: "x"},
		Content: []byte(`{"a":1}`),
	}}
	resp, err := c.Inject(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Reply == nil || resp.Reply.Header.ParentID != "m1" || string(resp.Reply.Content) != `{"a":1}` {
		t.Fatalf("reply = %+v", resp.Reply)
	}
	req.To = "missing"
	if _, err := c.Inject(ctx, req); err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), `no module "missing"`) {
		t.Fatalf("inject to a missing module: %v", err)
	}
	req.Timeout = "soon"
	req.To = "echo"
	if _, err := c.Inject(ctx, req); err == nil || !strings.Contains(err.Error(), `timeout "soon"`) {
		t.Fatalf("bad timeout: %v", err)
	}
}

func TestTokenRequired(t *testing.T) {
	sock := serve(t, &echoBackend{ready: false}, "s3cret")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := NewClient(sock, "").Status(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("no token: %v", err)
	}
	st, err := NewClient(sock, "s3cret").Status(ctx)
	if err != nil || st.Ready {
		t.Fatalf("with token: %+v, %v", st, err)
	}
}

func TestContentEncodings(t *testing.T) {
	for _, content := range [][]byte{nil, []byte(`{"x":[1,2]}`), []byte("plain text"), {0xff, 0x00, 0x01}} {
		m := abi.Message{Content: content}
		j := ToJSON(&m)
		back, err := FromJSON(&j)
		if err != nil || string(back.Content) != string(content) {
			t.Fatalf("content %q came back as %q (%v)", content, back.Content, err)
		}
	}
	bad := MessageJSON{Content: []byte(`"a"`), ContentBase64: []byte("b")}
	if _, err := FromJSON(&bad); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Fatalf("both contents: %v", err)
	}
}

// metricsBackend is an echoBackend that also serves metrics.
type metricsBackend struct{ echoBackend }

func (metricsBackend) Metrics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "edgehost_test 1\n") })
}

func TestMetricsRoute(t *testing.T) {
	get := func(b Backend, token string) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		New(b, "s3cret", nil).ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := get(&metricsBackend{}, "s3cret"); code != http.StatusOK || body != "edgehost_test 1\n" {
		t.Errorf("with token: %d %q", code, body)
	}
	if code, _ := get(&metricsBackend{}, ""); code != http.StatusUnauthorized {
		t.Errorf("without token: %d", code)
	}
	if code, _ := get(&echoBackend{}, "s3cret"); code != http.StatusNotFound {
		t.Errorf("backend without metrics: %d", code)
	}
}
