package daemon

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/supervisor"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestHubMetricsAndReadiness: a hub that cannot reach its cloud queues
// upstream messages in the outbox, says so in NotReady, and exports its
// counters.
func TestHubMetricsAndReadiness(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "edgehost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Modules.Hub.Enable, cfg.Modules.Hub.Server, cfg.Modules.Hub.NodeName = true, "127.0.0.1:1", "edge-1"
	h, err := newHub(cfg, b, st, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	super := supervisor.New(supervisor.Options{StartTimeout: time.Minute}, h)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := super.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { super.Stop() })
	for range 3 {
		if err := b.SendToGroup(ctx, "hub", abi.Message{Route: abi.Route{Source: "bus", Group: "user", Operation: "upload", Resource: "t"}, Content: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	for h.Stats().Outbox.Depth < 3 || h.Stats().DialFailures == 0 {
		if ctx.Err() != nil {
			t.Fatalf("stats %+v", h.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if nr := super.NotReady(); len(nr) != 1 || !strings.Contains(nr[0], "hub: not connected to the cloud 127.0.0.1:1") ||
		!strings.Contains(nr[0], "3 messages wait in the outbox") {
		t.Errorf("not ready = %q", nr)
	}
	d := &Daemon{log: hclog.NewNullLogger(), hub: h}
	exposition := scrape(t, d)
	for _, want := range []string{
		"edgehost_hub_connected 0",
		"edgehost_hub_outbox_depth 3",
		"edgehost_hub_outbox_appended_total 3",
		"edgehost_hub_outbox_max_bytes 6.7108864e+07",
		`edgehost_hub_refused_total{reason="malformed"} 0`,
		`edgehost_hub_upstream_refused_total{reason="outbox_full"} 0`,
	} {
		if !strings.Contains(exposition, "\n"+want+"\n") {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if !strings.Contains(exposition, "\nedgehost_hub_dial_failures_total ") || strings.Contains(exposition, "\nedgehost_hub_dial_failures_total 0\n") {
		t.Error("no dial failure exported")
	}
	if problems, err := testutil.CollectAndLint(collector{d}); err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}
