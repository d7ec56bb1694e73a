package daemon

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/pluginhost"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/supervisor"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/edgehost/edgehost/internal/plugintest"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"
)

// scrape GETs /metrics from the admin API serving d and returns the
// exposition, with a newline before its first line.
func scrape(t *testing.T, d *Daemon) string {
	t.Helper()
	srv := httptest.NewServer(api.New(d, "", nil))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v\n%s", resp.StatusCode, err, body)
	}
	return "\n" + string(body)
}

func TestMetrics(t *testing.T) {
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pluginDir, "echo.wasm"), plugintest.MustRead(t, "examples/echo"), 0o644); err != nil {
		t.Fatal(err)
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
	b := bus.New(bus.Options{QueueLen: 8})
	t.Cleanup(b.Close)

	limits := config.Limits{MemoryPages: 256, CallTimeout: time.Second, MaxMessageBytes: 1 << 20, Instances: 1}
	plugins := pluginhost.New(b, rt, st, nil, config.Plugins{Enable: true, Dir: pluginDir, Limits: limits,
		List: []config.Plugin{{Name: "echo", Limits: limits}, {Name: "missing", Limits: limits}}}, nil)
	// Generous: outside `make test`, whose precompile step fills the
	// cache first, the echo plugin is compiled here under -race, which
	// takes about a minute on a loaded 2-core machine.
	super := supervisor.New(supervisor.Options{StartTimeout: 5 * time.Minute}, plugins)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	if err := super.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := super.Stop(); err != nil {
			t.Error(err)
		}
	})
	// The eventbus is not run: its counters stay zero, which is enough to
	// show they are exported.
	events := eventbus.New(config.EventBus{SubscriberQueue: 4}, b, st, nil)
	unsub, err := events.Subscribe("metrics-test", "a/+", func(context.Context, string, []byte) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsub)
	d := &Daemon{log: hclog.NewNullLogger(), bus: b, store: st, events: events, plugins: plugins, super: super}

	// Bus: three messages to sink, two taken; one to nobody.
	sink, err := b.Register("sink", "test")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := b.Send(ctx, "sink", abi.Message{Route: abi.Route{Operation: "insert"}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := sink.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(ctx, "nobody", abi.Message{}); !errors.Is(err, bus.ErrNoModule) {
		t.Fatalf("send to nobody: %v", err)
	}
	// Plugins: two calls to echo.
	for range 2 {
		if _, err := b.Request(ctx, "echo", abi.Message{Route: abi.Route{Operation: "query"}, Content: []byte("hi")}); err != nil {
			t.Fatal(err)
		}
	}
	// Store: three updates, one commit each as they come one at a time.
	before := st.Stats()
	for i := range 3 {
		if err := st.Namespace("metrics-test").Update(func(bk *bolt.Bucket) error {
			return bk.Put([]byte(strconv.Itoa(i)), []byte("x"))
		}); err != nil {
			t.Fatal(err)
		}
	}

	exposition := scrape(t, d)
	for _, want := range []string{
		"# TYPE edgehost_bus_messages_sent_total counter",
		`edgehost_bus_messages_sent_total{group="test",module="sink"} 3`,
		`edgehost_bus_messages_received_total{group="test",module="sink"} 2`,
		`edgehost_bus_messages_failed_total{group="test",module="sink"} 0`,
		"# TYPE edgehost_bus_queue_depth gauge",
		`edgehost_bus_queue_depth{group="test",module="sink"} 1`,
		`edgehost_bus_queue_capacity{group="test",module="sink"} 8`,
		`edgehost_bus_messages_sent_total{group="plugins",module="echo"} 2`,
		"edgehost_bus_no_module_total 1",
		"edgehost_bus_requests_pending 0",
		`edgehost_plugin_calls_total{plugin="echo"} 2`,
		`edgehost_plugin_faults_total{plugin="echo"} 0`,
		`edgehost_plugin_denied_total{plugin="echo"} 0`,
		`edgehost_plugin_instances{plugin="echo"} 1`,
		`edgehost_plugin_io_handles{plugin="echo"} 0`,
		`edgehost_plugin_io_read_bytes_total{plugin="echo"} 0`,
		`edgehost_plugin_quarantined{plugin="echo"} 0`,
		`edgehost_plugin_state{plugin="echo",state="ready"} 1`,
		`edgehost_plugin_state{plugin="echo",state="failed"} 0`,
		`edgehost_plugin_state{plugin="missing",state="failed"} 1`,
		`edgehost_plugin_state{plugin="missing",state="ready"} 0`,
		"edgehost_eventbus_bridged_total 0",
		"edgehost_eventbus_external_connected 0",
		"edgehost_eventbus_client_inflight_dropped_total 0",
		"edgehost_eventbus_client_writes_dropped_total 0",
		"edgehost_eventbus_subscriber_refused_all_total 0",
		`edgehost_eventbus_subscriber_dropped_total{filter="a/+",subscriber="metrics-test"} 0`,
		`edgehost_eventbus_subscriber_refused_total{filter="a/+",subscriber="metrics-test"} 0`,
		`edgehost_eventbus_subscriber_queue_depth{filter="a/+",subscriber="metrics-test"} 0`,
		`edgehost_eventbus_subscriber_queue_capacity{filter="a/+",subscriber="metrics-test"} 4`,
		"edgehost_store_commits_total " + strconv.FormatUint(before.Commits+3, 10),
		"edgehost_store_updates_total " + strconv.FormatUint(before.Updates+3, 10),
		`edgehost_module_up{module="plugins"} 1`,
		`edgehost_module_restarts_total{module="plugins"} 0`,
	} {
		if !strings.Contains(exposition, "\n"+want+"\n") {
			t.Errorf("exposition lacks %q", want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if !strings.Contains(exposition, "\n"+name+" ") {
			t.Errorf("exposition lacks %s", name)
		}
	}
	if t.Failed() {
		t.Logf("exposition:%s", exposition)
	}

	if problems, err := testutil.CollectAndLint(collector{d}); err != nil || len(problems) != 0 {
		t.Errorf("lint of the daemon's metrics: %v %+v", err, problems)
	}
	if problems, err := testutil.GatherAndLint(d.registry()); err != nil || len(problems) != 0 {
		t.Errorf("lint of the registry: %v %+v", err, problems)
	}
}

// TestMetricsWithoutParts: a daemon without a plugin host, an eventbus, a
// store or a supervisor exports only what it has, from one registry.
func TestMetricsWithoutParts(t *testing.T) {
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	d := &Daemon{bus: b}
	exposition := scrape(t, d)
	if !strings.Contains(exposition, "\nedgehost_bus_no_module_total 0\n") {
		t.Error("no bus metrics")
	}
	for _, prefix := range []string{"edgehost_plugin_", "edgehost_eventbus_", "edgehost_store_", "edgehost_module_"} {
		if strings.Contains(exposition, "\n"+prefix) {
			t.Errorf("metrics %s* without that part", prefix)
		}
	}
	if d.registry() != d.registry() {
		t.Error("registry built twice")
	}
}
