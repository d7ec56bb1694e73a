package daemon

import (
	"errors"
	"path/filepath"

	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/meta"
	edged "github.com/edgehost/edgehost/host/runtime"
	"github.com/hashicorp/go-hclog"
)

// PodDir is where the runtime keeps the pods' volumes and logs unless
// modules.edged.podDir says otherwise.
func PodDir(dataDir string) string { return filepath.Join(dataDir, "pods") }

// newEdged builds the container runtime over the metamanager's store, its
// desired state.
func newEdged(cfg *config.Config, b *bus.Bus, m *meta.Module, log hclog.Logger) (*edged.Module, error) {
	if m == nil {
		return nil, errors.New("modules.edged needs modules.meta.enable: the pods it runs are the metamanager's")
	}
	e := cfg.Modules.Edged
	dir := e.PodDir
	if dir == "" {
		dir = PodDir(cfg.DataDir)
	}
	return edged.New(b, edged.Config{Endpoint: e.CRIEndpoint, NodeName: nodeName(cfg), PodDir: dir, SyncPeriod: e.SyncPeriod,
		CallTimeout: e.CallTimeout, RestartBackoff: e.RestartBackoff, MaxRestartBackoff: e.MaxRestartBackoff, Store: m}, log), nil
}
