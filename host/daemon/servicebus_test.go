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

// TestServiceBusLeavesGroupBus: with the servicebus running, every
// message plugins send to group "bus" (the devicetwin's MQTT publishes)
// still reaches the eventbus; edgehost's SendToGroup picks one member, so
// the servicebus must not be one. Its metrics are exported and lint
// clean.
func TestServiceBusLeavesGroupBus(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "edgehost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	events, err := b.Register("eventbus", "bus")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	sb := newServiceBus(cfg, b, st, hclog.NewNullLogger())
	super := supervisor.New(supervisor.Options{StartTimeout: time.Minute}, sb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := super.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { super.Stop() })
	const n = 10
	for range n {
		msg := abi.Message{Route: abi.Route{Source: "devicetwin", Group: "bus", Operation: "publish", Resource: "$hw/events/x"}, Content: []byte("{}")}
		if err := b.SendToGroup(ctx, "bus", msg); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := events.Receive(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("the eventbus got %d of %d publishes: %v", i, n, err)
		}
	}
	d := &Daemon{log: hclog.NewNullLogger(), servicebus: sb}
	exposition := scrape(t, d)
	for _, want := range []string{"edgehost_servicebus_requests_total 0", `edgehost_servicebus_refused_total{reason="wrong_source"} 0`} {
		if !strings.Contains(exposition, "\n"+want+"\n") {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if problems, err := testutil.CollectAndLint(collector{d}); err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}
