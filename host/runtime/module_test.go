package runtime

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/meta"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/internal/containerd"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// rig is the real metamanager, store and bus, a real containerd, and an
// endpoint in group hub standing where the cloud link is.
type rig struct {
	tb    testing.TB
	ctrd  *containerd.Containerd
	bus   *bus.Bus
	meta  *meta.Module
	cloud *bus.Endpoint
	dir   string
	stop  []func()
	// answerToken, when set, answers the token queries that reach the
	// cloud while the test waits for a status; false leaves one
	// unanswered. tokenQueries counts them.
	answerToken  func(q abi.Message) (abi.Message, bool)
	tokenQueries int
}

func newRig(tb testing.TB) *rig {
	tb.Helper()
	ctrd := containerd.Start(tb)
	ctrd.ImportTestImages(tb)
	st, err := store.Open(filepath.Join(tb.TempDir(), "edgehost.db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	b := bus.New(bus.Options{})
	r := &rig{tb: tb, ctrd: ctrd, bus: b, meta: meta.New(b, st, meta.Config{RemoteQueryTimeout: 3 * time.Second}, nil), dir: tb.TempDir()}
	if r.cloud, err = b.Register("websocket", meta.HubGroup); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for i := len(r.stop) - 1; i >= 0; i-- {
			r.stop[i]()
		}
		b.Close()
		st.Close()
	})
	r.run(r.meta)
	return r
}

// run starts mod and returns its stop, which cancels it and waits.
func (r *rig) run(mod interface {
	Run(context.Context, func()) error
}) func() {
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- mod.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		r.tb.Fatalf("module did not start: %v", err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			r.tb.Errorf("module Run: %v", err)
		}
	}
	r.stop = append(r.stop, stop)
	return stop
}

func (r *rig) edged() *Module {
	return New(r.bus, Config{Endpoint: r.ctrd.Endpoint, PodDir: r.dir, Store: r.meta, RestartBackoff: time.Second}, nil)
}

// cloudTook answers msg if it is a token query the cloud should answer,
// reporting whether it was a token query.
func (r *rig) cloudTook(msg abi.Message) bool {
	if msg.Route.Operation != abi.OpQuery || !strings.Contains(msg.Route.Resource, "/"+meta.TokenType+"/") {
		return false
	}
	r.tokenQueries++
	if r.answerToken == nil {
		return true
	}
	if reply, ok := r.answerToken(msg); ok {
		reply.Header.ParentID = msg.Header.ID
		if err := r.bus.Respond(reply); err != nil {
			r.tb.Errorf("token answer: %v", err)
		}
	}
	return true
}

// connect tells meta the cloud is connected or not, as the hub does.
func (r *rig) connect(connected bool) {
	r.tb.Helper()
	state := meta.CloudDisconnected
	if connected {
		state = meta.CloudConnected
	}
	m := abi.Message{Route: abi.Route{Source: "websocket", Group: "resource", Operation: "connect", Resource: meta.ConnectionResource}, Content: []byte(state)}
	if err := r.bus.Broadcast(context.Background(), meta.Group, m); err != nil {
		r.tb.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); r.meta.Connected() != connected; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			r.tb.Fatalf("meta did not take %s", state)
		}
	}
}

// insert sends a pod to meta as the cloud's edgecontroller does.
func (r *rig) insert(name, pod string) { r.send(abi.OpInsert, "default/pod/"+name, pod) }

// send sends an object to meta as the cloud's edgecontroller does.
func (r *rig) send(op, resource, content string) {
	msg := abi.Message{Route: abi.Route{Source: "edgecontroller", Group: "resource", Operation: op, Resource: resource}, Content: []byte(content)}
	if err := r.bus.SendToGroup(context.Background(), meta.Group, msg); err != nil {
		r.tb.Fatal(err)
	}
}

// awaitPhase waits for a status patch of default/name in phase.
func (r *rig) awaitPhase(name, phase string) {
	r.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		msg, err := r.cloud.Receive(ctx)
		if err != nil {
			r.tb.Fatalf("no %s status of %s: %v", phase, name, err)
		}
		if r.cloudTook(msg) || msg.Route.Operation != abi.OpPatch || msg.Route.Resource != "default/podpatch/"+name {
			continue
		}
		var p struct{ Status struct{ Phase string } }
		if err := json.Unmarshal(msg.Content, &p); err != nil {
			r.tb.Fatalf("status patch: %v", err)
		}
		if p.Status.Phase == phase {
			return
		}
	}
}

// TestRestartedModuleAdoptsRunningPods: stopping the module leaves the
// pods running (as stopping edgecore does), and a new module over the
// same store takes them over from CRI without creating anything, and
// reports them Running again.
func TestRestartedModuleAdoptsRunningPods(t *testing.T) {
	r := newRig(t)
	stop := r.run(r.edged())
	r.insert("keep", `{"metadata":{"name":"keep","namespace":"default","uid":"uid-keep"},"spec":{"hostNetwork":true,"containers":[{"name":"c","image":"`+containerd.BusyboxImage+`","command":["sleep","3600"]}]}}`)
	r.awaitPhase("keep", "Running")
	stop()

	cri := r.ctrd.CRI()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	running := func() int {
		cs, err := cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
			State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}, LabelSelector: map[string]string{labelPodUID: "uid-keep"}}})
		if err != nil {
			t.Fatal(err)
		}
		return len(cs.Containers)
	}
	if n := running(); n != 1 {
		t.Fatalf("%d containers of keep run after the module stopped, want 1", n)
	}
	again := r.edged()
	r.run(again)
	r.awaitPhase("keep", "Running")
	if s := again.Stats(); s.Created != 0 || s.Killed != 0 || s.Pods != 1 {
		t.Errorf("the restarted module changed what ran: %+v", s)
	}
	if n := running(); n != 1 {
		t.Errorf("%d containers of keep run, want 1", n)
	}
}

// TestRunningContainerStaysRunningWhenItsVolumeFails: once a pod runs, a
// volume that can no longer be prepared (its configmap deleted) leaves the
// running container running and reported so, as kubelet does; before, the
// next sync reported it waiting with CreateContainerConfigError.
func TestRunningContainerStaysRunningWhenItsVolumeFails(t *testing.T) {
	r := newRig(t)
	mod := r.edged()
	r.run(mod)
	r.send(abi.OpInsert, "default/configmap/site", `{"metadata":{"name":"site","namespace":"default"},"data":{"mode":"eco"}}`)
	r.insert("vol", `{"metadata":{"name":"vol","namespace":"default","uid":"uid-vol"},"spec":{"hostNetwork":true,"containers":[{"name":"c","image":"`+
		containerd.BusyboxImage+`","command":["sleep","3600"],"volumeMounts":[{"name":"cfg","mountPath":"/cfg"}]}],"volumes":[{"name":"cfg","configMap":{"name":"site"}}]}}`)
	r.awaitPhase("vol", "Running")
	r.send(abi.OpDelete, "default/configmap/site", `{"metadata":{"name":"site","namespace":"default"}}`)
	after := mod.Stats().Syncs
	r.until("two syncs after the configmap's delete", func() bool { return mod.Stats().Syncs >= after+2 })
	for _, p := range mod.Pods() {
		if p.Name != "vol" {
			continue
		}
		cs := p.Status.ContainerStatuses
		if p.Status.Phase != "Running" || len(cs) != 1 || cs[0].State.Running == nil || !cs[0].Ready {
			t.Fatalf("with its configmap gone, the running pod is reported %s: %+v", p.Status.Phase, cs)
		}
		return
	}
	t.Fatal("pod vol is not listed")
}
