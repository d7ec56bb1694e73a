package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/meta"
	edged "github.com/edgehost/edgehost/host/runtime"
	"github.com/hashicorp/go-hclog"
	v1 "k8s.io/api/core/v1"
)

// PodDir is where the runtime keeps the pods' volumes and logs unless
// modules.edged.podDir says otherwise.
func PodDir(dataDir string) string { return filepath.Join(dataDir, "pods") }

// edgedMetrics are the runtime module's (docs/api.md).
var edgedMetrics = []metric[edged.Stats]{
	gauge("edgehost_edged_pods", "Pods the runtime drove in its last sync.",
		func(s edged.Stats) float64 { return float64(s.Pods) }),
	counter("edgehost_edged_syncs_total", "Syncs of every stored pod against the CRI runtime.",
		func(s edged.Stats) float64 { return float64(s.Syncs) }),
	counter("edgehost_edged_containers_started_total", "Containers the runtime created and started.",
		func(s edged.Stats) float64 { return float64(s.Started) }),
	counter("edgehost_edged_container_restarts_total", "Containers started again per their pod's restartPolicy.",
		func(s edged.Stats) float64 { return float64(s.Restarted) }),
	counter("edgehost_edged_pods_killed_total", "Pods stopped and removed: deleted, being deleted, or owned by no stored pod.",
		func(s edged.Stats) float64 { return float64(s.Killed) }),
	counter("edgehost_edged_pods_refused_total", "Pods refused for a spec field edgehost does not support.",
		func(s edged.Stats) float64 { return float64(s.Refused) }),
	counter("edgehost_edged_status_patches_total", "Pod status patches queued for the cloud.",
		func(s edged.Stats) float64 { return float64(s.Patches) }),
	counter("edgehost_edged_probe_kills_total", "Containers killed for a failed liveness or startup probe.",
		func(s edged.Stats) float64 { return float64(s.ProbeKills) }),
	counter("edgehost_edged_node_leases_total", "Node lease renewals queued for the cloud.",
		func(s edged.Stats) float64 { return float64(s.Leases) }),
	counter("edgehost_edged_node_leases_skipped_total", "Node lease renewals not sent: the cloud was not connected.",
		func(s edged.Stats) float64 { return float64(s.LeasesSkipped) }),
	counter("edgehost_edged_node_status_patches_total", "Node status patches queued for the cloud.",
		func(s edged.Stats) float64 { return float64(s.NodePatches) }),
}

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
		CallTimeout: e.CallTimeout, RestartBackoff: e.RestartBackoff, MaxRestartBackoff: e.MaxRestartBackoff,
		NodeLeaseDuration: e.NodeLeaseDuration, Store: m, Connected: m.Connected}, log), nil
}

// Pods implements api.PodsBackend.
func (d *Daemon) Pods() ([]api.Pod, error) {
	if d.edged == nil {
		return nil, fmt.Errorf("the container runtime is not enabled (modules.edged.enable): %w", api.ErrConflict)
	}
	var out []api.Pod
	for _, p := range d.edged.Pods() {
		s := p.Status
		ap := api.Pod{Namespace: p.Namespace, Name: p.Name, UID: p.UID, Phase: string(s.Phase), Reason: s.Reason,
			Containers: len(s.ContainerStatuses), PodIP: s.PodIP, Message: s.Message}
		if ap.Reason == "" {
			ap.Reason = initReason(s.InitContainerStatuses)
		}
		for _, cs := range s.ContainerStatuses {
			if cs.Ready {
				ap.Ready++
			}
			ap.Restarts += cs.RestartCount
			if ap.Reason != "" {
				continue
			}
			switch {
			case cs.State.Waiting != nil:
				ap.Reason, ap.Message = cs.State.Waiting.Reason, cs.State.Waiting.Message
			case cs.State.Terminated != nil:
				ap.Reason = cs.State.Terminated.Reason
			}
		}
		out = append(out, ap)
	}
	return out, nil
}

// initReason is kubectl's STATUS of a pod still initializing: the first
// init container not completed, as Init:Error, Init:CrashLoopBackOff or
// Init:N/M; "" once they all completed.
func initReason(inits []v1.ContainerStatus) string {
	for i, cs := range inits {
		switch t, w := cs.State.Terminated, cs.State.Waiting; {
		case t != nil && t.ExitCode == 0:
			continue
		case t != nil:
			return "Init:" + t.Reason
		case w != nil && w.Reason != "PodInitializing":
			return "Init:" + w.Reason
		}
		return fmt.Sprintf("Init:%d/%d", i, len(inits))
	}
	return ""
}

// PodLog implements api.PodsBackend.
func (d *Daemon) PodLog(ns, name, container string, previous bool) (io.ReadCloser, error) {
	if d.edged == nil {
		return nil, fmt.Errorf("the container runtime is not enabled (modules.edged.enable): %w", api.ErrConflict)
	}
	rc, err := d.edged.Log(ns, name, container, previous)
	if errors.Is(err, edged.ErrNoPod) || errors.Is(err, edged.ErrNoLog) {
		return nil, fmt.Errorf("%w: %w", api.ErrNotFound, err)
	}
	return rc, err
}

// ImportImage implements api.ImagesBackend: the archive is written to a
// file under the data dir (ctr reads a file; an image may be larger than
// /tmp), imported, and removed.
func (d *Daemon) ImportImage(ctx context.Context, r io.Reader) ([]api.Image, error) {
	if d.edged == nil {
		return nil, fmt.Errorf("the container runtime is not enabled (modules.edged.enable): %w", api.ErrConflict)
	}
	f, err := os.CreateTemp(d.cfg.DataDir, "image-import-*.tar")
	if err != nil {
		return nil, fmt.Errorf("image import: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("image import: receive the archive: %w", err)
	}
	imgs, err := d.edged.ImportImage(ctx, f.Name())
	if errors.Is(err, edged.ErrBadArchive) {
		return nil, fmt.Errorf("%w: %w", api.ErrRefused, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]api.Image, len(imgs))
	for i, img := range imgs {
		out[i] = api.Image{Name: img.Name, ID: img.ID, Size: img.Size}
	}
	return out, nil
}

// podsSummary counts the runtime's pods by phase for /v1/status; nil
// when the runtime is off.
func (d *Daemon) podsSummary() *api.PodsSummary {
	if d.edged == nil {
		return nil
	}
	sum := &api.PodsSummary{Phases: map[string]int{}}
	for _, p := range d.edged.Pods() {
		sum.Total++
		sum.Phases[string(p.Status.Phase)]++
	}
	return sum
}
