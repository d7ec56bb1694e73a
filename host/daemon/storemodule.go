package daemon

import (
	"context"
	"io"
	"time"

	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/store"
	"github.com/hashicorp/go-hclog"
)

// storeModule is the store's supervised part: it writes the periodic
// snapshots and one at shutdown, and reports the store's failures as
// readiness (supervisor.Checker).
type storeModule struct {
	store *store.Store
	cfg   config.Store
	dir   string
	log   hclog.Logger
	// snapped is the store's commit count at the last snapshot, and taken
	// whether there was one: an unchanged store needs no new snapshot.
	snapped uint64
	taken   bool
}

func (m *storeModule) Name() string { return "store" }

// NotReady implements supervisor.Checker.
func (m *storeModule) NotReady() []string { return m.store.NotReady() }

func (m *storeModule) Run(ctx context.Context, ready func()) error {
	ready()
	var tick <-chan time.Time
	if m.cfg.SnapshotInterval > 0 {
		t := time.NewTicker(m.cfg.SnapshotInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			m.snapshot()
		case <-ctx.Done():
			m.snapshot()
			return nil
		}
	}
}

// snapshot writes one snapshot and logs the outcome; a failure is counted
// by the store and shows in readiness until a snapshot succeeds.
func (m *storeModule) snapshot() {
	commits := m.store.Stats().Commits
	if m.taken && commits == m.snapped {
		return
	}
	info, err := m.store.Snapshot(m.dir, m.cfg.SnapshotKeep)
	if err != nil {
		m.log.Error("store snapshot failed", "dir", m.dir, "error", err)
		return
	}
	m.snapped, m.taken = commits, true
	m.log.Info("store snapshot written", "path", info.Path, "bytes", info.Bytes, "elapsed_ms", info.Elapsed.Milliseconds())
}

// BackupStore implements api.StoreBackend: a consistent copy of the store,
// written while the daemon serves.
func (d *Daemon) BackupStore(w io.Writer) (int64, error) { return d.store.Backup(w) }
