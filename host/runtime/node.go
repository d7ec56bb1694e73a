package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/meta"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Node status timing: kubelet's nodeStatusUpdateFrequency and
// nodeStatusReportFrequency.
const (
	nodeStatusPeriod = 10 * time.Second
	nodeReportPeriod = 5 * time.Minute
)

// KubeletVersion is the version the node reports, in edgecore's form
// (v1.32.10-kubeedge-{version}), so the cloud's version checks treat it as
// the kubelet edgecore embeds.
const KubeletVersion = "v1.32.10-kubeedge-edgehost"

// maxPods is the pods capacity the node reports (kubelet's default).
const maxPods = 110

// nodeLoop registers the node once (`null/node/{node}` insert, through
// the outbox, so it goes up when the link does) and sends its status as
// a `null/nodepatch/{node}` patch every nodeStatusPeriod when it changed
// and at least every nodeReportPeriod, as kubelet does.
func (m *Module) nodeLoop(ctx context.Context, cri *criClient) {
	if m.cfg.NodeName == "" {
		return
	}
	node := m.cfg.NodeName
	registered := false
	var last []byte
	var lastSent time.Time
	tick := time.NewTicker(nodeStatusPeriod)
	defer tick.Stop()
	for {
		status := m.nodeStatus(ctx, cri)
		if !registered {
			obj, _ := json.Marshal(v1.Node{TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
				ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{"kubernetes.io/hostname": node,
					"kubernetes.io/os": goruntime.GOOS, "kubernetes.io/arch": goruntime.GOARCH, "node-role.kubernetes.io/edge": ""}},
				Status: status})
			registered = m.send(ctx, abi.Message{Route: abi.Route{Source: ModuleName, Group: meta.Group, Operation: abi.OpInsert,
				Resource: "null/node/" + node}, Content: obj}) == nil
		}
		// Heartbeat times change every time; a change is a change of
		// anything else.
		cmp, _ := json.Marshal(withoutHeartbeats(status))
		if registered && (!bytes.Equal(cmp, last) || time.Since(lastSent) >= nodeReportPeriod) {
			patch, _ := json.Marshal(map[string]any{"status": status})
			err := m.send(ctx, abi.Message{Route: abi.Route{Source: ModuleName, Group: meta.Group, Operation: abi.OpPatch,
				Resource: "null/nodepatch/" + node}, Content: patch})
			if err == nil {
				last, lastSent = cmp, time.Now()
				m.c.nodePatches.Add(1)
			} else {
				m.report(problemUpstream, "cannot queue the node status for the cloud; retrying", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func withoutHeartbeats(s v1.NodeStatus) v1.NodeStatus {
	conds := make([]v1.NodeCondition, len(s.Conditions))
	for i, c := range s.Conditions {
		c.LastHeartbeatTime = metav1.Time{}
		conds[i] = c
	}
	s.Conditions = conds
	return s
}

// nodeStatus is the node's status: conditions (Ready while the CRI
// runtime answers; no memory, disk or PID pressure is measured yet, so
// those are False), addresses, capacity and allocatable from the machine,
// nodeInfo and the kubelet endpoint.
func (m *Module) nodeStatus(ctx context.Context, cri *criClient) v1.NodeStatus {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	runtimeVersion := ""
	ready, reason, msg := v1.ConditionTrue, "KubeletReady", "edgehost edged is posting ready status"
	if v, err := cri.version(ctx); err != nil {
		ready, reason, msg = v1.ConditionFalse, "ContainerRuntimeNotReady", "the CRI runtime does not answer: "+err.Error()
	} else {
		runtimeVersion = v.RuntimeName + "://" + v.RuntimeVersion
	}
	cond := func(t v1.NodeConditionType, s v1.ConditionStatus, reason, msg string) v1.NodeCondition {
		c := v1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
		m.mu.Lock()
		if old, ok := m.nodeConds[t]; ok && old.Status == s {
			c.LastTransitionTime = old.LastTransitionTime
		} else {
			m.nodeConds[t] = c
		}
		m.mu.Unlock()
		return c
	}
	capacity := v1.ResourceList{
		v1.ResourceCPU:    *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		v1.ResourceMemory: *resource.NewQuantity(memTotal(), resource.BinarySI),
		v1.ResourcePods:   *resource.NewQuantity(maxPods, resource.DecimalSI),
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	machineID, _ := os.ReadFile("/etc/machine-id")
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	addrs := []v1.NodeAddress{{Type: v1.NodeHostName, Address: m.cfg.NodeName}}
	if m.hostIP != "" {
		addrs = append([]v1.NodeAddress{{Type: v1.NodeInternalIP, Address: m.hostIP}}, addrs...)
	}
	return v1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Conditions: []v1.NodeCondition{
			cond(v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "not measured by edgehost yet"),
			cond(v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "not measured by edgehost yet"),
			cond(v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "not measured by edgehost yet"),
			cond(v1.NodeReady, ready, reason, msg),
		},
		Addresses:       addrs,
		DaemonEndpoints: v1.NodeDaemonEndpoints{KubeletEndpoint: v1.DaemonEndpoint{Port: 10350}},
		NodeInfo: v1.NodeSystemInfo{
			MachineID: strings.TrimSpace(string(machineID)), BootID: strings.TrimSpace(string(bootID)),
			KernelVersion: strings.TrimSpace(string(kernel)), OSImage: osImage(),
			ContainerRuntimeVersion: runtimeVersion, KubeletVersion: KubeletVersion, KubeProxyVersion: KubeletVersion,
			OperatingSystem: goruntime.GOOS, Architecture: goruntime.GOARCH,
		},
	}
}

// memTotal is the machine's memory in bytes, from /proc/meminfo.
func memTotal() int64 {
	data, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// osImage is PRETTY_NAME from /etc/os-release.
func osImage() string {
	data, _ := os.ReadFile("/etc/os-release")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return goruntime.GOOS
}
