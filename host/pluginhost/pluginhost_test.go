package pluginhost

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/edgehost/edgehost/internal/plugintest"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, value string
		want           bool
	}{
		{"", "anything", true},
		{"*", "a/b/c", true},
		{"#", "a/b/c", true},
		{"#", "8080:/x?y=1", true},
		{"echo/*", "echo/x", true},
		{"echo/*", "echo/x/y", false},
		{"echo/#", "echo", true},
		{"echo/#", "echo/x/y", true},
		{"echo/#", "echoes/x", false},
		{"*/pod/#", "default/pod/nginx", true},
		{"*/pod/#", "default/configmap/x", false},
		{"update", "update", true},
		{"update", "insert", false},
	}
	for _, c := range cases {
		if got := match(c.pattern, c.value); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.pattern, c.value, got, c.want)
		}
	}
}

// start runs the plugin host with the echo example under the given specs
// and returns the bus; the host stops at the end of the test.
func start(t *testing.T, specs []config.Plugin) (*bus.Bus, *Module) {
	t.Helper()
	return startModules(t, map[string]string{"echo": "examples/echo"}, specs)
}

// startModules runs the plugin host under the given specs with a plugin
// dir holding, for each name, the plugin built from its package dir.
func startModules(t *testing.T, modules map[string]string, specs []config.Plugin) (*bus.Bus, *Module) {
	t.Helper()
	dir := t.TempDir()
	for name, pkg := range modules {
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), plugintest.MustRead(t, pkg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(filepath.Join(dir, "edgehost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rt, err := wasm.NewRuntime(context.Background(), wasm.RuntimeConfig{CacheDir: plugintest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	limits := config.Limits{MemoryPages: 256, CallTimeout: time.Second, MaxMessageBytes: 1 << 20, Instances: 2}
	for i := range specs {
		specs[i].Limits = limits
	}
	m := New(b, rt, st, nil, config.Plugins{Enable: true, Dir: dir, Limits: limits, List: specs}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	readyc := make(chan struct{})
	go func() { done <- m.Run(ctx, func() { close(readyc) }) }()
	select {
	case <-readyc:
	case err := <-done:
		t.Fatalf("plugin host ended before ready: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return b, m
}

func request(t *testing.T, b *bus.Bus, to string, m abi.Message) abi.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := b.Request(ctx, to, m)
	if err != nil {
		t.Fatalf("request to %q: %v", to, err)
	}
	return r
}

func TestRoutesByNameAndByPattern(t *testing.T) {
	b, m := start(t, []config.Plugin{
		{Name: "echo", Receives: []config.Pattern{{Group: "user", Resource: "echo/#"}}},
		{Name: "missing"},
	})
	r := request(t, b, "echo", abi.Message{Route: abi.Route{Operation: "query"}, Content: []byte("by name")})
	if string(r.Content) != "by name" || r.Route.Operation != abi.OpResponse {
		t.Fatalf("reply by name = %+v", r)
	}
	in := abi.Message{Route: abi.Route{Group: "user", Operation: "query", Resource: "echo/a/b"}, Content: []byte("routed")}
	r = request(t, b, "plugins:user", in)
	if string(r.Content) != "routed" || r.Route.Resource != "echo/a/b" {
		t.Fatalf("reply by pattern = %+v", r)
	}
	in.Route.Resource = "other/x"
	r = request(t, b, "plugins:user", in)
	if f, ok := abi.ParseFailure(r); !ok || f.Reason != abi.FailureNoReceiver || !strings.Contains(f.Error, `no plugin receives group "user"`) {
		t.Fatalf("reply to an unmatched message = %+v", r)
	}
	st := m.List()
	if len(st) != 2 || st[0].Name != "echo" || st[0].Calls != 2 || len(st[0].Receives) != 1 || st[0].Origin != OriginConfig {
		t.Fatalf("status = %+v", st)
	}
	if st[1].Name != "missing" || st[1].State != "failed" || !strings.Contains(st[1].LastError, "missing.wasm") {
		t.Fatalf("failures = %+v", st[1])
	}
}
