package runtime

import (
	"net"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerIDPrefix is the scheme of status containerIDs, kubelet's
// "<runtime>://<id>".
const containerIDPrefix = "containerd://"

// podStatus is the pod's status as kubelet reports it: phase, conditions,
// IPs, start time, QoS class and a status per container. sb is nil when
// the pod has no live sandbox.
func (m *Module) podStatus(pod *v1.Pod, st *podState, sb *runtimeapi.PodSandboxStatus, views []*containerView) v1.PodStatus {
	s := v1.PodStatus{Phase: phase(pod, views), HostIP: m.hostIP, QOSClass: qosClass(pod)}
	if m.hostIP != "" {
		s.HostIPs = []v1.HostIP{{IP: m.hostIP}}
	}
	if sb != nil {
		ip := sb.GetNetwork().GetIp()
		if pod.Spec.HostNetwork {
			ip = m.hostIP
		}
		if ip != "" {
			s.PodIP, s.PodIPs = ip, []v1.PodIP{{IP: ip}}
		}
		start := metav1.NewTime(time.Unix(0, sb.CreatedAt).Truncate(time.Second))
		s.StartTime = &start
	}
	var unready, incomplete []string
	for _, v := range views {
		cs := containerStatus(v)
		if v.init {
			// kubelet's: an init container is ready once it completed.
			done := v.waiting == "" && completed(v.cur)
			cs.Ready = done
			if !done {
				incomplete = append(incomplete, cs.Name)
			}
			s.InitContainerStatuses = append(s.InitContainerStatuses, cs)
			continue
		}
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
	}
	cond := func(t v1.PodConditionType, ok bool, reason, msg string) v1.PodCondition {
		status := v1.ConditionFalse
		if ok {
			status, reason, msg = v1.ConditionTrue, "", ""
		}
		return transition(st, v1.PodCondition{Type: t, Status: status, Reason: reason, Message: msg})
	}
	allReady := len(unready) == 0
	notReady := ""
	if !allReady {
		notReady = "containers with unready status: [" + strings.Join(unready, " ") + "]"
	}
	s.Conditions = []v1.PodCondition{
		cond(v1.PodReadyToStartContainers, sb != nil && sb.State == runtimeapi.PodSandboxState_SANDBOX_READY, "", ""),
		cond(v1.PodInitialized, len(incomplete) == 0, "ContainersNotInitialized", "containers with incomplete status: ["+strings.Join(incomplete, " ")+"]"),
		cond(v1.PodReady, allReady, "ContainersNotReady", notReady),
		cond(v1.ContainersReady, allReady, "ContainersNotReady", notReady),
		cond(v1.PodScheduled, true, "", ""),
	}
	return s
}

// refusedStatus is the status of a pod refused for its spec: Failed, with
// the fields named, as kubelet reports a pod it does not admit.
func refusedStatus(pod *v1.Pod, fields []string, st *podState) v1.PodStatus {
	return v1.PodStatus{Phase: v1.PodFailed, Reason: "UnsupportedPodSpec",
		Message:  "edgehost does not support " + strings.Join(fields, ", "),
		QOSClass: qosClass(pod),
		Conditions: []v1.PodCondition{transition(st, v1.PodCondition{Type: v1.PodScheduled, Status: v1.ConditionTrue}),
			transition(st, v1.PodCondition{Type: v1.PodReady, Status: v1.ConditionFalse, Reason: "UnsupportedPodSpec"})}}
}

// transition stamps c with when its status last changed.
func transition(st *podState, c v1.PodCondition) v1.PodCondition {
	if old, ok := st.transitions[c.Type]; ok && old.Status == c.Status {
		c.LastTransitionTime = old.LastTransitionTime
	} else {
		c.LastTransitionTime = metav1.NewTime(time.Now().Truncate(time.Second))
		st.transitions[c.Type] = c
	}
	return c
}

// containerStatus is one container's status.
func containerStatus(v *containerView) v1.ContainerStatus {
	cs := v1.ContainerStatus{Name: v.spec.Name, Image: v.spec.Image, RestartCount: v.restarts}
	started := false
	if c := v.cur; c != nil {
		cs.ImageID = c.ImageRef
		cs.ContainerID = containerIDPrefix + c.Id
		switch c.State {
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			cs.State.Running = &v1.ContainerStateRunning{StartedAt: stamp(c.StartedAt)}
			started = true
		case runtimeapi.ContainerState_CONTAINER_EXITED:
			cs.State.Terminated = v.terminated(c)
		case runtimeapi.ContainerState_CONTAINER_CREATED:
			cs.State.Waiting = &v1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
	}
	if v.waiting != "" {
		cs.State = v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: v.waiting, Message: v.message}}
		started = false
		if v.cur != nil && v.cur.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			cs.LastTerminationState.Terminated = v.terminated(v.cur)
		}
	} else if cs.State.Running == nil && cs.State.Terminated == nil && cs.State.Waiting == nil {
		cs.State.Waiting = &v1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	if v.prev != nil && v.prev.State == runtimeapi.ContainerState_CONTAINER_EXITED && cs.LastTerminationState.Terminated == nil {
		cs.LastTerminationState.Terminated = v.terminated(v.prev)
	}
	// A startup probe holds started back until it succeeds; a readiness
	// probe holds ready back until it succeeds.
	started = started && v.probes.started()
	ready := started && v.probes.ready()
	cs.Started = &started
	cs.Ready = ready
	return cs
}

// terminated is c's terminated state; a container a failed probe killed
// says so in its message.
func (v *containerView) terminated(c *runtimeapi.ContainerStatus) *v1.ContainerStateTerminated {
	t := terminated(c)
	if why, ok := v.killedBy[c.Id]; ok && t.Message == "" {
		t.Message = why
	}
	return t
}

func terminated(c *runtimeapi.ContainerStatus) *v1.ContainerStateTerminated {
	reason := c.Reason
	if reason == "" {
		reason = "Completed"
		if c.ExitCode != 0 {
			reason = "Error"
		}
	}
	return &v1.ContainerStateTerminated{ExitCode: c.ExitCode, Reason: reason, Message: c.Message,
		StartedAt: stamp(c.StartedAt), FinishedAt: stamp(c.FinishedAt), ContainerID: containerIDPrefix + c.Id}
}

// stamp is a CRI nanosecond time as the API's second-precision time.
func stamp(ns int64) metav1.Time {
	if ns == 0 {
		return metav1.Time{}
	}
	return metav1.NewTime(time.Unix(0, ns).Truncate(time.Second))
}

// phase is kubelet's pod phase from its containers: Failed when an init
// container failed under restartPolicy Never; Pending while an init
// container has not completed or any container has not started; Running
// while any runs or will be restarted; Succeeded when all ended with 0
// and none restarts; Failed otherwise.
func phase(pod *v1.Pod, views []*containerView) v1.PodPhase {
	var pending, running, succeeded, failed int
	initializing := false
	for _, v := range views {
		if !v.init {
			continue
		}
		failedForGood := v.cur != nil && v.cur.State == runtimeapi.ContainerState_CONTAINER_EXITED && v.cur.ExitCode != 0 &&
			v.policy == v1.RestartPolicyNever && v.waiting == ""
		switch {
		case failedForGood:
			return v1.PodFailed
		case initializing:
		case v.waiting != "" || !completed(v.cur):
			initializing = true
		}
	}
	if initializing {
		return v1.PodPending
	}
	for _, v := range views {
		if v.init {
			continue
		}
		switch {
		case v.cur != nil && v.cur.State == runtimeapi.ContainerState_CONTAINER_RUNNING && v.waiting == "":
			running++
		case v.cur != nil && v.cur.State == runtimeapi.ContainerState_CONTAINER_EXITED:
			if v.cur.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
		default:
			pending++
		}
	}
	switch {
	case pending > 0:
		return v1.PodPending
	case running > 0:
		return v1.PodRunning
	case pod.Spec.RestartPolicy == v1.RestartPolicyAlways:
		return v1.PodRunning
	case failed == 0:
		return v1.PodSucceeded
	case pod.Spec.RestartPolicy == v1.RestartPolicyOnFailure:
		return v1.PodRunning
	}
	return v1.PodFailed
}

// qosClass is the pod's QoS class from its containers' resources.
func qosClass(pod *v1.Pod) v1.PodQOSClass {
	any, guaranteed := false, true
	for _, c := range pod.Spec.Containers {
		for _, r := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
			l, hasL := c.Resources.Limits[r]
			q, hasQ := c.Resources.Requests[r]
			if hasL || hasQ {
				any = true
			}
			if !hasL || (hasQ && q.Cmp(l) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return v1.PodQOSBestEffort
	case guaranteed:
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}

// nodeIP is the first global unicast IPv4 address of the machine, the
// pods' hostIP; "" when it has none.
func nodeIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}
