package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/plugintest"
	"github.com/hashicorp/go-hclog"
)

// testRuntime is shared by the tests so each test plugin compiles once per
// test binary; testCacheDir is its on-disk cache.
var (
	testRuntime  *Runtime
	testCacheDir string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	ctx := context.Background()
	// make test's run-wide cache (internal/plugintest), else one of ours.
	dir := os.Getenv(plugintest.CacheEnv)
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "edgehost-wasm-cache-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
	}
	testCacheDir = dir
	var err error
	testRuntime, err = NewRuntime(ctx, RuntimeConfig{CacheDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer testRuntime.Close(ctx)
	return m.Run()
}

const pluginDir = "host/wasm/testdata/plugins/"

// compile builds and compiles a test plugin in the shared runtime.
func compile(tb testing.TB, name string) *Module {
	tb.Helper()
	m, err := testRuntime.Compile(context.Background(), plugintest.MustRead(tb, pluginDir+name))
	if err != nil {
		tb.Fatalf("compile %s: %v", name, err)
	}
	return m
}

// load loads a test plugin and closes it when the test ends.
func load(tb testing.TB, name string, cfg PluginConfig) *Plugin {
	tb.Helper()
	if cfg.Name == "" {
		cfg.Name = name
	}
	p, err := testRuntime.Load(context.Background(), compile(tb, name), cfg)
	if err != nil {
		tb.Fatalf("load %s: %v", name, err)
	}
	tb.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// message returns a request with the given operation and content.
func message(op, content string) *abi.Message {
	return &abi.Message{
		Header:  abi.Header{ID: "id-" + op, Timestamp: 1700000000000},
		Route:   abi.Route{Source: "test", Group: "user", Operation: op, Resource: "demo/x"},
		Content: []byte(content),
	}
}

// call sends op/content and returns the reply's operation and content.
func call(t *testing.T, p *Plugin, op, content string) (string, string) {
	t.Helper()
	reply, ok, err := p.Handle(context.Background(), message(op, content))
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	if !ok {
		t.Fatalf("%s: no reply", op)
	}
	return reply.Route.Operation, string(reply.Content)
}

// mustEcho checks that p answers an echo correctly.
func mustEcho(t *testing.T, p *Plugin, content string) {
	t.Helper()
	reply, ok, err := p.Handle(context.Background(), message("echo", content))
	if err != nil || !ok {
		t.Fatalf("echo after fault: ok=%v err=%v", ok, err)
	}
	if reply.Header.ParentID != "id-echo" || reply.Route.Operation != abi.OpResponse ||
		reply.Route.Resource != "demo/x" || string(reply.Content) != content {
		t.Fatalf("echo reply = %+v", reply)
	}
}

// logBuffer collects log output, safe for concurrent writers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger(out *logBuffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: out, Level: hclog.Trace})
}

// fakeHost records what plugins send and answers requests.
type fakeHost struct {
	mu      sync.Mutex
	sent    []abi.Message
	sendErr error
	panics  bool
}

func (h *fakeHost) Send(ctx context.Context, plugin string, m *abi.Message) error {
	if h.panics {
		panic("fake host: send exploded")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sent = append(h.sent, *m)
	return h.sendErr
}

func (h *fakeHost) Request(ctx context.Context, plugin string, m *abi.Message) (abi.Message, error) {
	if string(m.Content) == "slow" {
		time.Sleep(2 * time.Millisecond)
	}
	if string(m.Content) == "timeout" {
		<-ctx.Done()
		return abi.Message{}, ctx.Err()
	}
	if !m.Header.Sync || m.Route.Source != plugin {
		return abi.Message{}, errors.New("request not marked sync or wrong source")
	}
	r := m.Reply(abi.OpResponse, bytes.Repeat(m.Content, 20))
	r.Header.ID = "reply-1"
	return r, nil
}
