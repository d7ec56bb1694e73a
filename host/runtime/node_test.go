package runtime

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// TestNodeStatusWithoutRuntime: with no CRI runtime answering, the node
// reports Ready False with the reason, the machine's capacity still, and
// a second status differs from the first only in heartbeat times, so it
// is not sent again.
func TestNodeStatusWithoutRuntime(t *testing.T) {
	cri, err := dialCRI("unix://"+filepath.Join(t.TempDir(), "none.sock"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cri.close()
	m := New(nil, Config{NodeName: "edge-1"}, nil)
	s := m.nodeStatus(context.Background(), cri)
	ready := s.Conditions[len(s.Conditions)-1]
	if ready.Type != v1.NodeReady || ready.Status != v1.ConditionFalse || ready.Reason != "ContainerRuntimeNotReady" {
		t.Errorf("Ready condition without a runtime: %+v", ready)
	}
	if s.Capacity.Cpu().Value() < 1 || s.Capacity.Memory().Value() <= 0 || s.Capacity.Pods().Value() != maxPods || s.NodeInfo.KubeletVersion != KubeletVersion {
		t.Errorf("status: %+v", s)
	}
	time.Sleep(1100 * time.Millisecond) // heartbeat times are in seconds
	s2 := m.nodeStatus(context.Background(), cri)
	a, _ := json.Marshal(withoutHeartbeats(s))
	b, _ := json.Marshal(withoutHeartbeats(s2))
	if string(a) != string(b) {
		t.Errorf("an unchanged node's status differs beyond heartbeats:\n%s\n%s", a, b)
	}
	if s2.Conditions[0].LastHeartbeatTime.Equal(&s.Conditions[0].LastHeartbeatTime) {
		t.Error("the heartbeat time did not move")
	}
}
