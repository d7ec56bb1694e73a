package runtime

import (
	"context"
	"encoding/json"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/meta"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// leaseNamespace is where node leases live.
const leaseNamespace = "kube-node-lease"

// leaseLoop keeps the node's Lease (coordination.k8s.io/v1, namespace
// kube-node-lease, named after the node) renewed as kubelet's lease
// controller does through edgecore: `kube-node-lease/lease/{node}`
// insert first (kubelet's create), then update with a new renewTime
// every quarter of the lease's duration. A lease says "alive now": it is
// sent only while the cloud is connected (edgecore's lease is
// remote-only and fails offline), so none wait stale in the outbox.
func (m *Module) leaseLoop(ctx context.Context) {
	if m.cfg.NodeName == "" {
		return
	}
	tick := time.NewTicker(m.cfg.NodeLeaseDuration / 4)
	defer tick.Stop()
	created := false
	for {
		if m.cfg.Connected != nil && !m.cfg.Connected() {
			m.c.leasesSkipped.Add(1)
		} else {
			op := abi.OpUpdate
			if !created {
				op = abi.OpInsert
			}
			if err := m.send(ctx, abi.Message{Route: abi.Route{Source: ModuleName, Group: meta.Group, Operation: op,
				Resource: leaseNamespace + "/lease/" + m.cfg.NodeName}, Content: m.lease()}); err != nil {
				m.report(problemUpstream, "cannot queue the node lease for the cloud; retrying", "error", err)
			} else {
				created = true
				m.c.leases.Add(1)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// lease is the node's Lease renewed now.
func (m *Module) lease() []byte {
	node := m.cfg.NodeName
	secs := int32(m.cfg.NodeLeaseDuration / time.Second)
	now := metav1.NewMicroTime(time.Now())
	b, _ := json.Marshal(coordinationv1.Lease{
		TypeMeta:   metav1.TypeMeta{Kind: "Lease", APIVersion: "coordination.k8s.io/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: node, Namespace: leaseNamespace},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &node, LeaseDurationSeconds: &secs, RenewTime: &now},
	})
	return b
}
