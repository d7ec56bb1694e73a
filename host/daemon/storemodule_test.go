package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/store"
	"github.com/hashicorp/go-hclog"
)

// TestStoreModuleSnapshotsAndMetrics: the store module writes a snapshot
// at shutdown, and /metrics and readiness report the store's snapshots and
// failures.
func TestStoreModuleSnapshotsAndMetrics(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(StorePath(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.PluginKV("p").Apply([]store.KVOp{{Key: "k", Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	m := &storeModule{store: st, cfg: config.Default().Store, dir: SnapshotDir(dir), log: hclog.NewNullLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	readyc := make(chan struct{})
	go func() { done <- m.Run(ctx, func() { close(readyc) }) }()
	<-readyc
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	snaps, err := store.ListSnapshots(SnapshotDir(dir))
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots after shutdown: %+v, %v", snaps, err)
	}
	if nr := m.NotReady(); len(nr) != 0 {
		t.Errorf("NotReady = %q", nr)
	}

	// An unchanged store is not snapshotted again.
	m.snapshot()
	if snaps, _ := store.ListSnapshots(SnapshotDir(dir)); len(snaps) != 1 {
		t.Errorf("a snapshot of an unchanged store was written: %d snapshots", len(snaps))
	}

	// A snapshot that cannot be written is counted and shows in readiness.
	st.PluginKV("p").Apply([]store.KVOp{{Key: "k2", Value: []byte("v")}})
	blocker := filepath.Join(dir, "blocker")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m.dir = filepath.Join(blocker, "snapshots")
	m.snapshot()
	if nr := m.NotReady(); len(nr) != 1 || !strings.Contains(nr[0], "the last snapshot failed") {
		t.Errorf("NotReady after a failed snapshot = %q", nr)
	}

	exposition := scrape(t, &Daemon{log: hclog.NewNullLogger(), store: st})
	for _, want := range []string{
		"edgehost_store_snapshots_total 1",
		"edgehost_store_snapshot_failures_total 1",
		`edgehost_store_errors_total{op="read"} 0`,
		`edgehost_store_errors_total{op="write"} 0`,
		"edgehost_store_panics_total 0",
		"edgehost_store_check_complete 0", // a new store is not checked
	} {
		if !strings.Contains(exposition, "\n"+want+"\n") {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if !strings.Contains(exposition, "\nedgehost_store_last_snapshot_age_seconds ") {
		t.Error("exposition lacks edgehost_store_last_snapshot_age_seconds")
	}
	if t.Failed() {
		t.Log(exposition)
	}
}
