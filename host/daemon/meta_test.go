package daemon

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/meta"
	"github.com/edgehost/edgehost/host/store"
	"github.com/hashicorp/go-hclog"
)

// The metamanager's counters are on /metrics: objects stored, ACKs,
// refusals by reason, queries by where they were answered.
func TestMetaMetrics(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "edgehost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	cloud, err := b.Register("websocket", meta.HubGroup)
	if err != nil {
		t.Fatal(err)
	}
	m := meta.New(b, st, meta.Config{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- m.Run(ctx, func() { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	<-ready
	d := &Daemon{log: hclog.NewNullLogger(), bus: b, store: st, meta: m}

	for _, msg := range []abi.Message{
		{Route: abi.Route{Source: "edgecontroller", Group: "resource", Operation: abi.OpInsert, Resource: "default/pod/p"}, Content: []byte(`{}`)},
		{Route: abi.Route{Source: "edgecontroller", Group: "resource", Operation: abi.OpInsert, Resource: "default/pod"}, Content: []byte(`{}`)},
	} {
		if err := b.SendToGroup(ctx, meta.Group, msg); err != nil {
			t.Fatal(err)
		}
		if _, err := cloud.Receive(ctx); err != nil { // the ACK, then the error reply
			t.Fatal(err)
		}
	}
	if _, err := b.RequestGroup(ctx, meta.Group, abi.Message{Route: abi.Route{Source: "edged", Group: meta.Group, Operation: abi.OpQuery, Resource: "default/pod/p"}}); err != nil {
		t.Fatal(err)
	}

	// The ACK is counted once sent and the hand-over to edged comes after
	// it: wait for both before reading.
	for deadline := time.Now().Add(10 * time.Second); m.Stats().Acks != 1 || m.Stats().Unrouted != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stats = %+v", m.Stats())
		}
	}
	exposition := scrape(t, d)
	for _, want := range []string{
		"edgehost_meta_objects_stored_total 1",
		"edgehost_meta_acks_total 1",
		`edgehost_meta_refused_total{reason="bad_resource"} 1`,
		`edgehost_meta_refused_total{reason="stale_resourceversion"} 0`,
		`edgehost_meta_queries_total{answer="local"} 1`,
		`edgehost_meta_queries_total{answer="remote"} 0`,
		"edgehost_meta_unrouted_total 1",
		"edgehost_meta_cloud_connected 0",
	} {
		if !strings.Contains(exposition, "\n"+want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
