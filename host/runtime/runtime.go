// Package runtime is the daemon's "edged" module (group "edged"), the
// container runtime: it runs the pods the cloud assigned to the node on a
// CRI runtime (containerd, CRI-O) and reports their status upstream.
//
// Desired state is the pods in the metamanager's store (written before
// the cloud's ACK, so it survives a restart without the cloud); actual
// state is the CRI sandboxes and containers this module labelled with a
// pod's uid. A sync loop drives one toward the other: on every pod,
// configmap or secret message from meta, and every SyncPeriod (kubelet's
// PLEG relists every second). docs/runtime.md describes the contract.
package runtime

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/meta"
	"github.com/hashicorp/go-hclog"
	v1 "k8s.io/api/core/v1"
)

// ModuleName and Group are KubeEdge's edged module and group, where the
// metamanager sends pods, configmaps and secrets (meta.RuntimeGroup).
const (
	ModuleName = "edged"
	Group      = meta.RuntimeGroup
)

// Defaults for the zero fields of Config: kubelet's.
const (
	DefaultSyncPeriod        = time.Second
	DefaultCallTimeout       = 2 * time.Minute
	DefaultRestartBackoff    = 10 * time.Second
	DefaultMaxRestartBackoff = 5 * time.Minute
	DefaultNodeLeaseDuration = 40 * time.Second
)

// podWorkers bounds how many pods one sync drives at once.
const podWorkers = 8

// Store is where the desired pods and the configmaps and secrets they
// reference are read: the metamanager's store (*meta.Module).
type Store interface {
	Get(key string) (meta.Object, bool, error)
	List(ns, typ string) ([]meta.Object, error)
}

// Config configures the module.
type Config struct {
	// Endpoint is the CRI socket, unix://PATH.
	Endpoint string
	// NodeName is the node's name: the pods' spec.nodeName when they have
	// none, and the Node the module registers and reports the status of
	// (none when empty).
	NodeName string
	// PodDir holds each pod's volumes and logs, under its uid.
	PodDir string
	// SyncPeriod, CallTimeout, RestartBackoff and MaxRestartBackoff:
	// config.Edged's; the Default* values when zero.
	SyncPeriod        time.Duration
	CallTimeout       time.Duration
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
	// NodeLeaseDuration is the node lease's duration, renewed every
	// quarter of it; DefaultNodeLeaseDuration when zero.
	NodeLeaseDuration time.Duration
	// Store is the desired state.
	Store Store
	// Connected reports whether the cloud is connected (the
	// metamanager's view); the lease is sent only then, as edgecore's is
	// remote-only. Nil: always.
	Connected func() bool
}

// Module is the runtime. Create it with New and run it under the
// supervisor.
type Module struct {
	bus *bus.Bus
	cfg Config
	log hclog.Logger

	kick   chan struct{} // a sync is wanted
	hostIP string        // the pods' status.hostIP
	probes *prober
	tokens *tokens

	mu        sync.Mutex
	pods      map[string]*podState // by uid
	cache     map[string]cachedPod // decoded pods by store key
	nodeConds map[v1.NodeConditionType]v1.NodeCondition

	warned [numProblems]atomic.Bool
	c      counters
}

// New returns the runtime module.
func New(b *bus.Bus, cfg Config, log hclog.Logger) *Module {
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = DefaultSyncPeriod
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.RestartBackoff <= 0 {
		cfg.RestartBackoff = DefaultRestartBackoff
	}
	if cfg.NodeLeaseDuration < time.Second {
		cfg.NodeLeaseDuration = DefaultNodeLeaseDuration
	}
	if cfg.MaxRestartBackoff < cfg.RestartBackoff {
		cfg.MaxRestartBackoff = max(DefaultMaxRestartBackoff, cfg.RestartBackoff)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	m := &Module{bus: b, cfg: cfg, log: log.Named("edged"), kick: make(chan struct{}, 1), hostIP: nodeIP(),
		pods: map[string]*podState{}, cache: map[string]cachedPod{}, nodeConds: map[v1.NodeConditionType]v1.NodeCondition{}}
	m.probes = newProber(m.Kick)
	m.tokens = newTokens(m)
	return m
}

// Name implements supervisor.Module.
func (m *Module) Name() string { return ModuleName }

// Run implements supervisor.Module: it dials the CRI runtime, registers on
// the bus and syncs the pods until ctx ends. A runtime that does not
// answer is retried every sync (it may start after the daemon); the
// stored pods are restored as soon as it answers.
func (m *Module) Run(ctx context.Context, ready func()) error {
	cri, err := dialCRI(m.cfg.Endpoint, m.cfg.CallTimeout)
	if err != nil {
		return fmt.Errorf("edged: %w", err)
	}
	defer cri.close()
	ep, err := m.bus.Register(ModuleName, Group)
	if err != nil {
		return fmt.Errorf("edged: %w", err)
	}
	defer ep.Close()
	ctx, cancel := context.WithCancel(ctx)
	m.tokens.start(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { m.receive(ctx, ep) })
	wg.Go(func() { m.nodeLoop(ctx, cri) })
	wg.Go(func() { m.leaseLoop(ctx) })
	defer func() {
		cancel()
		wg.Wait()
		m.tokens.wait()
		m.probes.stop()
	}()
	ready()
	if v, err := cri.version(ctx); err != nil {
		m.report(problemCRI, "the CRI runtime does not answer yet; pods start when it does", "endpoint", m.cfg.Endpoint, "error", err)
	} else {
		m.log.Info("edged ready", "endpoint", m.cfg.Endpoint, "runtime", v.RuntimeName, "runtime_version", v.RuntimeVersion)
	}
	tick := time.NewTicker(m.cfg.SyncPeriod)
	defer tick.Stop()
	for {
		m.syncAll(ctx, cri)
		select {
		case <-ctx.Done():
			return nil
		case <-m.kick:
		case <-tick.C:
		}
	}
}

// receive takes meta's messages: any pod, configmap or secret change asks
// for a sync, which reads the store meta wrote before forwarding.
func (m *Module) receive(ctx context.Context, ep *bus.Endpoint) {
	for {
		msg, err := ep.Receive(ctx)
		if err != nil {
			return
		}
		r, err := meta.ParseResource(msg.Route.Resource, false)
		if err != nil {
			m.log.Debug("message with a resource that is not an object's ignored", "resource", msg.Route.Resource, "op", msg.Route.Operation)
			continue
		}
		switch r.Type {
		case "pod", "configmap", "secret":
			m.c.messages.Add(1)
			m.log.Debug("object changed", "resource", msg.Route.Resource, "op", msg.Route.Operation)
			m.Kick()
		}
	}
}

// Kick asks for a sync now.
func (m *Module) Kick() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// podDir is where pod uid's volumes and logs live.
func (m *Module) podDir(uid string) string { return filepath.Join(m.cfg.PodDir, uid) }

// send queues msg for the cloud through the hub's outbox.
func (m *Module) send(ctx context.Context, msg abi.Message) error {
	return m.bus.SendToGroup(ctx, meta.HubGroup, msg)
}

// problem is a failure that may repeat every sync: WARN once, debug after.
type problem int

const (
	problemCRI problem = iota
	problemStore
	problemUpstream
	problemToken
	numProblems
)

// report logs a problem at WARN the first time, at debug after.
func (m *Module) report(p problem, msg string, args ...any) {
	if m.warned[p].Swap(true) {
		m.log.Debug(msg, args...)
		return
	}
	m.log.Warn(msg, append(args, "note", "repeats are logged at debug")...)
}

// counters are the module's statistics.
type counters struct {
	messages, syncs, created, started, restarted, killed, patches, refused, nodePatches, probeKills, leases, leasesSkipped atomic.Uint64
}

// Stats is a snapshot of the module's counters.
type Stats struct {
	// Pods is how many pods the last sync drove.
	Pods int
	// Messages counts pod, configmap and secret messages from meta.
	Messages uint64
	// Syncs counts full syncs.
	Syncs uint64
	// Created and Started count containers; Restarted the restarts among
	// them; Killed the pods stopped and removed.
	Created, Started, Restarted, Killed uint64
	// Patches counts pod status patches sent upstream.
	Patches uint64
	// Refused counts pods refused for a spec edgehost does not support.
	Refused uint64
	// NodePatches counts node status patches sent upstream.
	NodePatches uint64
	// ProbeKills counts containers killed for a failed liveness or
	// startup probe.
	ProbeKills uint64
	// Leases counts node lease renewals sent upstream; LeasesSkipped
	// those not sent because the cloud was not connected.
	Leases, LeasesSkipped uint64
}

// Stats returns the module's counters.
func (m *Module) Stats() Stats {
	m.mu.Lock()
	n := len(m.pods)
	m.mu.Unlock()
	return Stats{Pods: n, Messages: m.c.messages.Load(), Syncs: m.c.syncs.Load(), Created: m.c.created.Load(),
		Started: m.c.started.Load(), Restarted: m.c.restarted.Load(), Killed: m.c.killed.Load(),
		Patches: m.c.patches.Load(), Refused: m.c.refused.Load(), NodePatches: m.c.nodePatches.Load(),
		ProbeKills: m.c.probeKills.Load(), Leases: m.c.leases.Load(), LeasesSkipped: m.c.leasesSkipped.Load()}
}

// Pod is one pod as the runtime last reported it.
type Pod struct {
	Namespace, Name, UID string
	// Status is the status last sent upstream.
	Status v1.PodStatus
}

// Pods returns the pods the runtime drives with the status it last sent,
// by namespace and name.
func (m *Module) Pods() []Pod {
	m.mu.Lock()
	out := make([]Pod, 0, len(m.pods))
	for uid, st := range m.pods {
		if st.name != "" {
			out = append(out, Pod{Namespace: st.namespace, Name: st.name, UID: uid, Status: *st.status.DeepCopy()})
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Pod) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return out
}
