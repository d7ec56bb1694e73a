package runtime

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/meta"
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cachedPod is a stored pod decoded, kept while its stored bytes are the
// same.
type cachedPod struct {
	content []byte
	pod     *v1.Pod
	err     error
}

// podState is what the module remembers of one pod between syncs.
type podState struct {
	// lastPatch is the status last sent upstream, status its decoded
	// form, namespace and name the pod's.
	lastPatch       []byte
	status          v1.PodStatus
	namespace, name string
	// transitions are each condition's status and when it last changed.
	transitions map[v1.PodConditionType]v1.PodCondition
	// pullRetry is when a failed image pull of a container may be tried
	// again.
	pullRetry map[string]time.Time
	// deleteSent: the pod was killed for its deletion and the cloud told.
	deleteSent bool
	// refused: the pod's spec was refused and counted.
	refused bool
	// statuses caches CRI container statuses by id, and sandbox the
	// sandbox's: a steady pod costs the sync its two list calls only.
	statuses map[string]*runtimeapi.ContainerStatus
	sandbox  *runtimeapi.PodSandboxStatus
	// probeKills says, by container id, which failed probe killed a
	// container: its terminated status's message.
	probeKills map[string]string
}

// containerStatus is c's CRI status, from the cache while the list shows
// c in the state the cached status has (an exited container never
// changes; a running one changes only by exiting).
func (st *podState) containerStatus(ctx context.Context, cri *criClient, c *runtimeapi.Container) (*runtimeapi.ContainerStatus, error) {
	if cached, ok := st.statuses[c.Id]; ok && cached.State == c.State {
		return cached, nil
	}
	s, err := cri.containerStatus(ctx, c.Id)
	if err != nil {
		return nil, err
	}
	st.statuses[c.Id] = s
	return s, nil
}

// fresh reads the status of id, which was just changed, and caches it.
func (st *podState) fresh(ctx context.Context, cri *criClient, id string) *runtimeapi.ContainerStatus {
	s, err := cri.containerStatus(ctx, id)
	if err != nil {
		delete(st.statuses, id)
		return nil
	}
	st.statuses[id] = s
	return s
}

// sandboxStatus is sandbox sb's CRI status, from the cache while it is
// the same ready sandbox.
func (st *podState) sandboxStatus(ctx context.Context, cri *criClient, id string) (*runtimeapi.PodSandboxStatus, error) {
	if st.sandbox != nil && st.sandbox.Id == id && st.sandbox.State == runtimeapi.PodSandboxState_SANDBOX_READY {
		return st.sandbox, nil
	}
	s, err := cri.sandboxStatus(ctx, id)
	if err != nil {
		return nil, err
	}
	st.sandbox = s
	return s, nil
}

// prune keeps the cached statuses of ids only.
func (st *podState) prune(ids map[string]bool) {
	for id := range st.statuses {
		if !ids[id] {
			delete(st.statuses, id)
		}
	}
	for id := range st.probeKills {
		if !ids[id] {
			delete(st.probeKills, id)
		}
	}
}

// containerView is one spec container as the sync left it.
type containerView struct {
	spec *v1.Container
	// init: an init container; policy is the restart policy it runs
	// under (initPolicy for an init container, the pod's otherwise).
	init   bool
	policy v1.RestartPolicy
	// cur and prev are the newest container and the one before it.
	cur, prev *runtimeapi.ContainerStatus
	// waiting, when set, is why it does not run: kubelet's reasons
	// (ContainerCreating, CrashLoopBackOff, ErrImagePull,
	// ErrImageNeverPull, CreateContainerConfigError,
	// CreateContainerError, RunContainerError).
	waiting, message string
	restarts         int32
	// probes are the verdicts of a running container's probes.
	probes probeVerdicts
	// killedBy maps a container id to the failed probe that killed it.
	killedBy map[string]string
}

// syncAll drives every stored pod toward its spec and removes what no
// stored pod owns.
func (m *Module) syncAll(ctx context.Context, cri *criClient) {
	m.c.syncs.Add(1)
	objs, err := m.cfg.Store.List("", "pod")
	if err != nil {
		m.report(problemStore, "cannot read the stored pods", "error", err)
		return
	}
	sandboxes, err := cri.sandboxes(ctx)
	if err != nil {
		m.report(problemCRI, "the CRI runtime does not answer; retrying every sync", "endpoint", m.cfg.Endpoint, "error", err)
		return
	}
	containers, err := cri.containers(ctx)
	if err != nil {
		m.report(problemCRI, "the CRI runtime does not answer; retrying every sync", "endpoint", m.cfg.Endpoint, "error", err)
		return
	}
	m.warned[problemCRI].Store(false)
	m.probes.beginSync()
	byUID := map[string][]*runtimeapi.PodSandbox{}
	for _, sb := range sandboxes {
		uid := sb.Labels[labelPodUID]
		byUID[uid] = append(byUID[uid], sb)
	}
	bySandbox := map[string][]*runtimeapi.Container{}
	for _, c := range containers {
		bySandbox[c.PodSandboxId] = append(bySandbox[c.PodSandboxId], c)
	}

	desired := m.desired(objs)
	work := make(chan *v1.Pod)
	var wg sync.WaitGroup
	for range min(podWorkers, max(len(desired), 1)) {
		wg.Go(func() {
			for pod := range work {
				m.syncPod(ctx, cri, pod, byUID[string(pod.UID)], bySandbox)
			}
		})
	}
	for _, pod := range desired {
		work <- pod
	}
	close(work)
	wg.Wait()
	m.probes.endSync()

	uids := map[string]bool{}
	for _, p := range desired {
		uids[string(p.UID)] = true
	}
	m.tokens.prune(uids)
	m.mu.Lock()
	for uid := range m.pods {
		if !slices.ContainsFunc(desired, func(p *v1.Pod) bool { return string(p.UID) == uid }) {
			delete(m.pods, uid)
		}
	}
	m.mu.Unlock()
	for uid, sbs := range byUID {
		if slices.ContainsFunc(desired, func(p *v1.Pod) bool { return string(p.UID) == uid }) {
			continue
		}
		m.kill(ctx, cri, uid, sbs)
	}
}

// desired decodes the stored pods (a pod whose bytes did not change since
// the last sync is not decoded again). A pod that does not decode is
// logged once and left out.
func (m *Module) desired(objs []meta.Object) []*v1.Pod {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []*v1.Pod
	for _, o := range objs {
		seen[o.Key] = true
		c, ok := m.cache[o.Key]
		if !ok || !bytes.Equal(c.content, o.Content) {
			pod, err := decodePod(o.Content)
			if err == nil && pod.Spec.NodeName == "" {
				pod.Spec.NodeName = m.cfg.NodeName
			}
			c = cachedPod{content: o.Content, pod: pod, err: err}
			m.cache[o.Key] = c
			if err != nil {
				m.log.Warn("stored pod does not decode; not run", "key", o.Key, "error", err)
			}
		}
		if c.err == nil {
			out = append(out, c.pod)
		}
	}
	for k := range m.cache {
		if !seen[k] {
			delete(m.cache, k)
		}
	}
	return out
}

// state returns pod uid's state, made on first use.
func (m *Module) state(uid string) *podState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.pods[uid]
	if !ok {
		st = &podState{transitions: map[v1.PodConditionType]v1.PodCondition{}, pullRetry: map[string]time.Time{},
			statuses: map[string]*runtimeapi.ContainerStatus{}, probeKills: map[string]string{}}
		m.pods[uid] = st
	}
	return st
}

// kill stops and removes every sandbox of pod uid (and so its
// containers), and its volumes.
func (m *Module) kill(ctx context.Context, cri *criClient, uid string, sbs []*runtimeapi.PodSandbox) {
	for _, sb := range sbs {
		if err := cri.removeSandbox(ctx, sb.Id); err != nil {
			m.report(problemCRI, "cannot remove a sandbox", "pod_uid", uid, "sandbox", sb.Id, "error", err)
			return
		}
	}
	if len(sbs) > 0 {
		m.c.killed.Add(1)
		m.log.Info("pod stopped and removed", "pod_uid", uid, "sandboxes", len(sbs))
	}
	if uid != "" {
		if err := os.RemoveAll(m.podDir(uid)); err != nil {
			m.log.Warn("cannot remove the pod's dir", "pod_uid", uid, "error", err)
		}
	}
}

// syncPod drives one pod: refuses an unsupported spec, kills a pod being
// deleted, else makes its sandbox and containers and restarts them per
// its restartPolicy; then sends its status if it changed.
func (m *Module) syncPod(ctx context.Context, cri *criClient, pod *v1.Pod, sbs []*runtimeapi.PodSandbox, bySandbox map[string][]*runtimeapi.Container) {
	uid := string(pod.UID)
	st := m.state(uid)
	log := m.log.With("pod", pod.Namespace+"/"+pod.Name, "pod_uid", uid)
	if pod.DeletionTimestamp != nil {
		m.kill(ctx, cri, uid, sbs)
		if !st.deleteSent {
			st.deleteSent = m.sendDelete(ctx, pod) == nil
		}
		return
	}
	if bad := unsupported(pod); len(bad) > 0 {
		if !st.refused {
			st.refused = true
			m.c.refused.Add(1)
			log.Warn("pod refused: its spec uses what edgehost does not support", "fields", bad)
		}
		m.kill(ctx, cri, uid, sbs)
		m.sendStatus(ctx, st, pod, refusedStatus(pod, bad, st))
		return
	}
	st.refused = false

	var ready *runtimeapi.PodSandbox
	var attempt uint32
	wantSandbox := sandboxHash(pod)
	for _, sb := range sbs {
		attempt = max(attempt, sb.GetMetadata().GetAttempt()+1)
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY && !changed(sb.Annotations, annotationSandboxHash, wantSandbox) &&
			(ready == nil || sb.CreatedAt > ready.CreatedAt) {
			ready = sb
		}
	}
	// Init containers first, in order, then the app containers.
	views := make([]*containerView, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for i := range pod.Spec.InitContainers {
		views = append(views, &containerView{spec: &pod.Spec.InitContainers[i], init: true, policy: initPolicy(pod), killedBy: st.probeKills})
	}
	for i := range pod.Spec.Containers {
		views = append(views, &containerView{spec: &pod.Spec.Containers[i], policy: pod.Spec.RestartPolicy, killedBy: st.probeKills})
	}
	dir := m.podDir(uid)
	lookup := storeLookup(m.cfg.Store)
	paths, volErr := prepareVolumes(pod, dir, m.hostIP, lookup, m.tokens.token)
	if volErr != nil {
		// kubelet's: a container already running in the live sandbox keeps
		// running, and is reported so with its readiness; only what would
		// be made waits. (What a failed liveness probe would restart waits
		// for the volume too: the probe's kill is the full sync's.)
		var sbStatus *runtimeapi.PodSandboxStatus
		running := map[string]*runtimeapi.ContainerStatus{}
		probeHost := ""
		if ready != nil {
			sbStatus, _ = st.sandboxStatus(ctx, cri, ready.Id)
			probeHost = sbStatus.GetNetwork().GetIp()
			if pod.Spec.HostNetwork {
				probeHost = cmp.Or(m.hostIP, "127.0.0.1")
			}
			for _, c := range bySandbox[ready.Id] {
				if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
					continue
				}
				if cur, err := st.containerStatus(ctx, cri, c); err == nil {
					running[c.Labels[labelContainerName]] = cur
				}
			}
		}
		for _, v := range views {
			if cur := running[v.spec.Name]; cur != nil {
				v.cur, v.restarts = cur, int32(cur.GetMetadata().GetAttempt())
				if !v.init {
					v.probes = m.probes.ensure(ctx, probeTarget{cri: cri, container: cur.Id, host: probeHost, spec: v.spec, started: time.Unix(0, cur.StartedAt)})
				}
				continue
			}
			v.waiting, v.message = "CreateContainerConfigError", volErr.Error()
		}
		m.sendStatus(ctx, st, pod, m.podStatus(pod, st, sbStatus, views))
		return
	}
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		log.Warn("cannot make the pod's log dir", "error", err)
	}
	restartBase := map[string]uint32{}
	if ready == nil {
		// No live sandbox: a new pod, one whose sandbox died (after a
		// reboot every sandbox is NOTREADY) or one whose sandbox spec
		// changed. The old ones go, and the containers' restart counts
		// carry over.
		for _, sb := range sbs {
			for _, c := range bySandbox[sb.Id] {
				name := c.Labels[labelContainerName]
				restartBase[name] = max(restartBase[name], c.GetMetadata().GetAttempt()+1)
			}
			if err := cri.removeSandbox(ctx, sb.Id); err != nil {
				log.Warn("cannot remove a dead sandbox", "sandbox", sb.Id, "error", err)
			}
		}
		sc := sandboxConfig(pod, attempt, logDir)
		id, err := cri.runSandbox(ctx, sc)
		if err != nil {
			log.Warn("cannot start the pod's sandbox", "error", err)
			for _, v := range views {
				v.waiting, v.message = "ContainerCreating", err.Error()
			}
			m.sendStatus(ctx, st, pod, m.podStatus(pod, st, nil, views))
			return
		}
		log.Info("sandbox started", "sandbox", id, "attempt", attempt, "host_network", pod.Spec.HostNetwork)
		ready = &runtimeapi.PodSandbox{Id: id, Metadata: sc.Metadata, State: runtimeapi.PodSandboxState_SANDBOX_READY}
	}
	sc := sandboxConfig(pod, ready.GetMetadata().GetAttempt(), logDir)
	sbStatus, err := st.sandboxStatus(ctx, cri, ready.Id)
	if err != nil {
		log.Warn("cannot read the sandbox's status", "sandbox", ready.Id, "error", err)
	}
	byName := map[string][]*runtimeapi.Container{}
	ids := map[string]bool{}
	for _, c := range bySandbox[ready.Id] {
		name := c.Labels[labelContainerName]
		byName[name] = append(byName[name], c)
		ids[c.Id] = true
	}
	st.prune(ids)
	hostIP := m.hostIP
	probeHost := sbStatus.GetNetwork().GetIp()
	if pod.Spec.HostNetwork {
		probeHost = cmp.Or(hostIP, "127.0.0.1")
	}
	initialized := true
	for _, v := range views {
		if !initialized {
			// kubelet's: nothing after an init container that has not
			// completed is started.
			v.waiting = "PodInitializing"
			continue
		}
		old := byName[v.spec.Name]
		slices.SortFunc(old, func(a, b *runtimeapi.Container) int {
			return int(b.GetMetadata().GetAttempt()) - int(a.GetMetadata().GetAttempt())
		})
		if v.init && len(old) > 0 {
			// An init container that completed in this sandbox is done:
			// not run again, not replaced for a changed spec.
			if cur, err := st.containerStatus(ctx, cri, old[0]); err == nil && completed(cur) {
				v.cur, v.restarts = cur, int32(cur.GetMetadata().GetAttempt())
				if len(old) > 1 {
					v.prev, _ = st.containerStatus(ctx, cri, old[1])
				}
				continue
			}
		}
		m.syncContainer(ctx, cri, log, pod, st, v, old, restartBase[v.spec.Name], ready.Id, sc, paths, hostIP, probeHost, lookup)
		if v.init {
			initialized = v.waiting == "" && completed(v.cur)
			continue
		}
		if v.cur != nil && v.cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING && v.waiting == "" {
			v.probes = m.probes.ensure(ctx, probeTarget{cri: cri, container: v.cur.Id, host: probeHost, spec: v.spec, started: time.Unix(0, v.cur.StartedAt)})
		}
	}
	m.sendStatus(ctx, st, pod, m.podStatus(pod, st, sbStatus, views))
}

// syncContainer drives one container of the pod: old are its containers
// in the sandbox, newest first; base is its restart count carried over
// from a dead sandbox.
func (m *Module) syncContainer(ctx context.Context, cri *criClient, log interface {
	Warn(string, ...any)
	Info(string, ...any)
}, pod *v1.Pod, st *podState, v *containerView, old []*runtimeapi.Container, base uint32, sandbox string,
	sc *runtimeapi.PodSandboxConfig, paths map[string]string, hostIP, probeHost string, lookup objectLookup) {
	next := base
	if len(old) > 0 {
		cur, err := st.containerStatus(ctx, cri, old[0])
		if err != nil {
			v.waiting, v.message = "ContainerStatusUnknown", err.Error()
			return
		}
		v.cur = cur
		v.restarts = int32(cur.GetMetadata().GetAttempt())
		if len(old) > 1 {
			v.prev, _ = st.containerStatus(ctx, cri, old[1])
		}
		// Keep the newest two (the current one and the last that ended,
		// for lastState); remove the rest.
		for _, c := range old[min(len(old), 2):] {
			if err := cri.removeContainer(ctx, c.Id); err != nil {
				log.Warn("cannot remove an old container", "container", c.Id, "error", err)
			}
		}
		if changed(old[0].Annotations, annotationContainerHash, specHash(v.spec)) {
			// The spec changed (the image, in Kubernetes): replace it.
			if cur.State != runtimeapi.ContainerState_CONTAINER_EXITED {
				if err := cri.stopContainer(ctx, cur.Id, gracePeriod(pod)); err != nil {
					v.waiting, v.message = "KillContainerError", err.Error()
					return
				}
				v.cur = st.fresh(ctx, cri, cur.Id)
			}
			log.Info("container spec changed; replacing it", "container", v.spec.Name)
			next = cur.GetMetadata().GetAttempt() + 1
			cur = nil
		}
		if cur != nil && cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			pv := m.probes.ensure(ctx, probeTarget{cri: cri, container: cur.Id, host: probeHost, spec: v.spec, started: time.Unix(0, cur.StartedAt)})
			if kind, vd, failed := pv.failed(); failed {
				// kubelet's: a failed liveness or startup probe kills
				// the container, which restartPolicy then restarts.
				why := fmt.Sprintf("Container %s failed %s probe, killed (restartPolicy %s): %s", v.spec.Name, kind, v.policy, vd.message)
				log.Info("container failed its probe; killing it", "container", v.spec.Name, "probe", kind.String(), "reason", vd.message)
				if err := cri.stopContainer(ctx, cur.Id, probeGrace(pod, v.spec, kind)); err != nil {
					v.waiting, v.message = "KillContainerError", err.Error()
					return
				}
				m.c.probeKills.Add(1)
				st.probeKills[cur.Id] = why
				if cur = st.fresh(ctx, cri, cur.Id); cur == nil {
					v.waiting, v.message = "ContainerStatusUnknown", "status of the killed container unknown"
					return
				}
				v.cur = cur
			}
		}
		switch {
		case cur == nil:
		case cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING:
			return
		case cur.State == runtimeapi.ContainerState_CONTAINER_CREATED:
			if err := cri.startContainer(ctx, cur.Id); err != nil {
				v.waiting, v.message = "RunContainerError", err.Error()
				return
			}
			m.c.started.Add(1)
			v.cur = st.fresh(ctx, cri, cur.Id)
			return
		case cur.State == runtimeapi.ContainerState_CONTAINER_EXITED:
			if !shouldRestart(v.policy, cur.ExitCode) {
				return
			}
			next = cur.GetMetadata().GetAttempt() + 1
			if wait := m.backoff(next); time.Since(time.Unix(0, cur.FinishedAt)) < wait {
				v.waiting = "CrashLoopBackOff"
				v.message = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", wait, v.spec.Name, pod.Name, pod.Namespace, pod.UID)
				return
			}
		default:
			return
		}
	}
	image, reason, msg := m.ensureImage(ctx, cri, st, pod, v.spec, sc)
	if reason != "" {
		v.waiting, v.message = reason, msg
		return
	}
	envs, err := env(pod, v.spec, hostIP, lookup)
	if err != nil {
		v.waiting, v.message = "CreateContainerConfigError", err.Error()
		return
	}
	mnts, err := mounts(pod, v.spec, paths)
	if err != nil {
		v.waiting, v.message = "CreateContainerConfigError", err.Error()
		return
	}
	id, err := cri.createContainer(ctx, sandbox, containerConfig(pod, v.spec, next, image, envs, mnts), sc)
	if err != nil {
		v.waiting, v.message = "CreateContainerError", err.Error()
		return
	}
	m.c.created.Add(1)
	if err := cri.startContainer(ctx, id); err != nil {
		v.waiting, v.message = "RunContainerError", err.Error()
		return
	}
	m.c.started.Add(1)
	if next > base || len(old) > 0 {
		m.c.restarted.Add(1)
		log.Info("container restarted", "container", v.spec.Name, "restart_count", next)
	}
	if v.cur != nil {
		v.prev = v.cur
	}
	v.cur = st.fresh(ctx, cri, id)
	v.restarts = int32(next)
}

// probeGrace is how long a container killed for its failed probe may
// take to stop: the probe's terminationGracePeriodSeconds, else the
// pod's.
func probeGrace(pod *v1.Pod, c *v1.Container, kind probeKind) int64 {
	p := c.LivenessProbe
	if kind == startup {
		p = c.StartupProbe
	}
	if p != nil && p.TerminationGracePeriodSeconds != nil {
		return *p.TerminationGracePeriodSeconds
	}
	return gracePeriod(pod)
}

// gracePeriod is how long a container being replaced may take to stop:
// the pod's terminationGracePeriodSeconds, kubelet's 30 s when unset.
func gracePeriod(pod *v1.Pod) int64 {
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return *g
	}
	return 30
}

// initPolicy is the restart policy of the pod's init containers,
// kubelet's: one that fails is run again unless the pod's policy is
// Never; one that succeeded is done.
func initPolicy(pod *v1.Pod) v1.RestartPolicy {
	if pod.Spec.RestartPolicy == v1.RestartPolicyNever {
		return v1.RestartPolicyNever
	}
	return v1.RestartPolicyOnFailure
}

// completed reports whether c exited with 0.
func completed(c *runtimeapi.ContainerStatus) bool {
	return c != nil && c.State == runtimeapi.ContainerState_CONTAINER_EXITED && c.ExitCode == 0
}

// shouldRestart applies a pod's restartPolicy to a container that exited
// with code.
func shouldRestart(policy v1.RestartPolicy, code int32) bool {
	switch policy {
	case v1.RestartPolicyNever:
		return false
	case v1.RestartPolicyOnFailure:
		return code != 0
	}
	return true
}

// backoff is how long after the previous exit restart number n (1 for
// the first) waits: the first restart is at once, then RestartBackoff,
// doubling up to MaxRestartBackoff, as kubelet's crash-loop back-off.
func (m *Module) backoff(n uint32) time.Duration {
	if n <= 1 {
		return 0
	}
	d := m.cfg.RestartBackoff
	for i := uint32(2); i < n && d < m.cfg.MaxRestartBackoff; i++ {
		d *= 2
	}
	return min(d, m.cfg.MaxRestartBackoff)
}

// ensureImage finds c's image, pulling it when its pull policy says so.
// It returns the image to create the container from, or kubelet's
// waiting reason and a message.
func (m *Module) ensureImage(ctx context.Context, cri *criClient, st *podState, pod *v1.Pod, c *v1.Container, sc *runtimeapi.PodSandboxConfig) (image, reason, msg string) {
	id, err := cri.image(ctx, c.Image)
	if err != nil {
		return "", "ImageInspectError", err.Error()
	}
	switch {
	case c.ImagePullPolicy == v1.PullNever && id == "":
		return "", "ErrImageNeverPull", fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
	case c.ImagePullPolicy == v1.PullNever, c.ImagePullPolicy == v1.PullIfNotPresent && id != "":
		return id, "", ""
	}
	if t, ok := st.pullRetry[c.Name]; ok && time.Now().Before(t) {
		return "", "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q", c.Image)
	}
	ref, err := m.pull(ctx, cri, pod, c.Image, sc)
	if err != nil {
		st.pullRetry[c.Name] = time.Now().Add(m.cfg.RestartBackoff)
		return "", "ErrImagePull", fmt.Sprintf("pull image %q: %v", c.Image, err)
	}
	delete(st.pullRetry, c.Name)
	return ref, "", ""
}

// pull pulls image with the credentials of the pod's imagePullSecrets
// that cover its registry, most specific first, until one works (kubelet's
// keyring); with none, anonymously. A secret that could not be used is
// named in the error.
func (m *Module) pull(ctx context.Context, cri *criClient, pod *v1.Pod, image string, sc *runtimeapi.PodSandboxConfig) (string, error) {
	creds, notes := pullSecrets(pod, m.cfg.Store)
	auths := matchCreds(creds, image)
	if len(auths) == 0 {
		auths = []*runtimeapi.AuthConfig{nil}
	}
	var errs []string
	for _, a := range auths {
		ref, err := cri.pull(ctx, image, a, sc)
		if err == nil {
			return ref, nil
		}
		if a != nil {
			errs = append(errs, fmt.Sprintf("with the credentials for %s: %v", a.ServerAddress, err))
		} else {
			errs = append(errs, err.Error())
		}
	}
	return "", fmt.Errorf("%s", strings.Join(append(errs, notes...), "; "))
}

// sendStatus sends the pod's status upstream as edgecore does,
// `{ns}/podpatch/{name}` op patch with the patch as a string, when it
// differs from the last one sent.
func (m *Module) sendStatus(ctx context.Context, st *podState, pod *v1.Pod, status v1.PodStatus) {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]string{"uid": string(pod.UID)}, "status": status})
	if err != nil {
		m.log.Error("cannot encode a pod status", "pod", pod.Namespace+"/"+pod.Name, "error", err)
		return
	}
	m.mu.Lock()
	same := bytes.Equal(patch, st.lastPatch)
	m.mu.Unlock()
	if same {
		return
	}
	msg := abi.Message{Route: abi.Route{Source: ModuleName, Group: meta.Group, Operation: abi.OpPatch,
		Resource: pod.Namespace + "/podpatch/" + pod.Name}, Content: patch}
	if err := m.send(ctx, msg); err != nil {
		m.report(problemUpstream, "cannot queue a pod status for the cloud; retrying next sync", "pod", pod.Namespace+"/"+pod.Name, "error", err)
		return
	}
	m.mu.Lock()
	st.lastPatch, st.status, st.namespace, st.name = patch, status, pod.Namespace, pod.Name
	m.mu.Unlock()
	m.c.patches.Add(1)
	m.log.Debug("pod status sent", "pod", pod.Namespace+"/"+pod.Name, "phase", status.Phase)
}

// sendDelete is the edge's half of the pod delete handshake: once a pod
// marked for deletion is killed, `{ns}/pod/{name}` delete with
// DeleteOptions (grace 0, the uid as precondition) goes to the cloud,
// which finalises the pod; its own delete then removes the stored row.
func (m *Module) sendDelete(ctx context.Context, pod *v1.Pod) error {
	content, _ := json.Marshal(map[string]any{"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
		"preconditions": map[string]string{"uid": string(pod.UID)}})
	msg := abi.Message{Route: abi.Route{Source: ModuleName, Group: meta.Group, Operation: abi.OpDelete,
		Resource: pod.Namespace + "/pod/" + pod.Name}, Content: content}
	if err := m.send(ctx, msg); err != nil {
		m.report(problemUpstream, "cannot queue a pod delete for the cloud; retrying next sync", "pod", pod.Namespace+"/"+pod.Name, "error", err)
		return err
	}
	m.log.Info("pod killed for its deletion; the cloud told", "pod", pod.Namespace+"/"+pod.Name)
	return nil
}
