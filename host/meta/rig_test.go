package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/store"
	"github.com/hashicorp/go-hclog"
)

// rig runs the metamanager over a real store file (real fsync) and a real
// bus, with a module in group hub playing the cloud: it sends downstream
// messages to group meta, as the hub does, and takes what meta sends up.
type rig struct {
	t      testing.TB
	path   string
	store  *store.Store
	bus    *bus.Bus
	meta   *Module
	cloud  *bus.Endpoint
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func newRig(t testing.TB, cfg Config) *rig {
	t.Helper()
	return newRigLog(t, cfg, nil)
}

// newRigLog is newRig with the module logging to log.
func newRigLog(t testing.TB, cfg Config, log hclog.Logger) *rig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "edgehost.db")
	st, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := bus.New(bus.Options{})
	r := &rig{t: t, path: path, store: st, bus: b, meta: New(b, st, cfg, log), done: make(chan error, 1)}
	r.cloud = r.register("websocket", HubGroup)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	ready := make(chan struct{})
	go func() { r.done <- r.meta.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-r.done:
		t.Fatalf("meta did not start: %v", err)
	}
	t.Cleanup(r.stop)
	return r
}

// stop ends the module, then closes the bus and the store.
func (r *rig) stop() {
	r.once.Do(func() {
		r.cancel()
		if err := <-r.done; err != nil {
			r.t.Errorf("meta Run: %v", err)
		}
		r.bus.Close()
		if err := r.store.Close(); err != nil {
			r.t.Errorf("close store: %v", err)
		}
	})
}

func (r *rig) register(name, group string) *bus.Endpoint {
	r.t.Helper()
	ep, err := r.bus.Register(name, group)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(ep.Close)
	return ep
}

// send sends m to group meta, as the hub delivers a cloud message.
func (r *rig) send(m abi.Message) {
	r.t.Helper()
	if err := r.bus.SendToGroup(context.Background(), Group, m); err != nil {
		r.t.Fatal(err)
	}
}

// next takes the next message of ep, failing after 10 s.
func next(t testing.TB, ep *bus.Endpoint) abi.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := ep.Receive(ctx)
	if err != nil {
		t.Fatalf("nothing reached %s: %v", ep.Name(), err)
	}
	return m
}

// none checks that nothing reaches ep for a short while.
func none(t testing.TB, ep *bus.Endpoint) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if m, err := ep.Receive(ctx); err == nil {
		t.Fatalf("%s got %s %s %q, want nothing", ep.Name(), m.Route.Operation, m.Route.Resource, m.Content)
	}
}

// connect broadcasts the hub's connection state to group meta and waits
// until meta has it.
func (r *rig) connect(state string) {
	r.t.Helper()
	m := abi.Message{Route: abi.Route{Source: "websocket", Group: "resource", Operation: "connect", Resource: ConnectionResource}, Content: []byte(state)}
	if err := r.bus.Broadcast(context.Background(), Group, m); err != nil {
		r.t.Fatal(err)
	}
	want := state == CloudConnected
	for deadline := time.Now().Add(10 * time.Second); r.meta.Connected() != want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("meta did not take %s", state)
		}
	}
}

// stored reads key from the running store.
func (r *rig) stored(key string) (Object, bool) {
	r.t.Helper()
	o, found, err := r.meta.Get(key)
	if err != nil {
		r.t.Fatal(err)
	}
	return o, found
}

// wireFrame is KubeEdge's JSON envelope, as the captures hold it.
type wireFrame struct {
	Header struct {
		MsgID           string `json:"msg_id"`
		ParentMsgID     string `json:"parent_msg_id,omitempty"`
		Timestamp       int64  `json:"timestamp"`
		ResourceVersion string `json:"resourceversion,omitempty"`
		Sync            bool   `json:"sync,omitempty"`
	} `json:"header"`
	Route struct {
		Source    string `json:"source,omitempty"`
		Group     string `json:"group,omitempty"`
		Operation string `json:"operation,omitempty"`
		Resource  string `json:"resource,omitempty"`
	} `json:"route"`
	Content json.RawMessage `json:"content"`
}

// readFrame reads a frame fixture from testdata/golden.
func readFrame(t testing.TB, name string) wireFrame {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	var f wireFrame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}

// toMessage converts a frame to a bus message by the house convention
// (docs/meta.md): a JSON string content becomes the string's bytes, any
// other content its JSON, null nothing.
func toMessage(f wireFrame) abi.Message {
	m := abi.Message{
		Header: abi.Header{ID: f.Header.MsgID, ParentID: f.Header.ParentMsgID, Timestamp: f.Header.Timestamp,
			ResourceVersion: f.Header.ResourceVersion, Sync: f.Header.Sync},
		Route: abi.Route{Source: f.Route.Source, Group: f.Route.Group, Operation: f.Route.Operation, Resource: f.Route.Resource},
	}
	var s string
	switch {
	case json.Unmarshal(f.Content, &s) == nil:
		m.Content = []byte(s)
	case string(f.Content) != "null":
		m.Content = f.Content
	}
	return m
}

// toFrame converts a bus message back to a frame: JSON object or array
// content as it is, anything else as a JSON string.
func toFrame(m abi.Message) wireFrame {
	var f wireFrame
	f.Header.MsgID, f.Header.ParentMsgID, f.Header.Timestamp = m.Header.ID, m.Header.ParentID, m.Header.Timestamp
	f.Header.ResourceVersion, f.Header.Sync = m.Header.ResourceVersion, m.Header.Sync
	f.Route.Source, f.Route.Group, f.Route.Operation, f.Route.Resource = m.Route.Source, m.Route.Group, m.Route.Operation, m.Route.Resource
	c := bytes.TrimSpace(m.Content)
	if len(c) > 0 && (c[0] == '{' || c[0] == '[') && json.Valid(c) {
		f.Content = m.Content
	} else {
		f.Content, _ = json.Marshal(string(m.Content))
	}
	return f
}

// matchGolden compares m with the golden frame name: every field but the
// generated msg_id and timestamp, and parent_msg_id unless the golden has
// "*" there. Content is compared as JSON.
func matchGolden(t testing.TB, m abi.Message, name string) {
	t.Helper()
	want, got := readFrame(t, name), toFrame(m)
	if got.Header.MsgID == "" || got.Header.Timestamp == 0 {
		t.Errorf("%s: the message has no id or timestamp: %+v", name, got.Header)
	}
	if want.Header.ParentMsgID != "*" && got.Header.ParentMsgID != want.Header.ParentMsgID {
		t.Errorf("%s: parent_msg_id = %q, want %q", name, got.Header.ParentMsgID, want.Header.ParentMsgID)
	}
	if got.Header.ResourceVersion != want.Header.ResourceVersion || got.Header.Sync != want.Header.Sync {
		t.Errorf("%s: resourceversion, sync = %q, %v, want %q, %v", name, got.Header.ResourceVersion, got.Header.Sync, want.Header.ResourceVersion, want.Header.Sync)
	}
	if got.Route != want.Route {
		t.Errorf("%s: route = %+v, want %+v", name, got.Route, want.Route)
	}
	var gc, wc any
	if err := json.Unmarshal(got.Content, &gc); err != nil {
		t.Fatalf("%s: content %s: %v", name, got.Content, err)
	}
	if err := json.Unmarshal(want.Content, &wc); err != nil {
		t.Fatalf("%s: golden content: %v", name, err)
	}
	gj, _ := json.Marshal(gc)
	wj, _ := json.Marshal(wc)
	if !bytes.Equal(gj, wj) {
		t.Errorf("%s: content =\n%s\nwant\n%s", name, gj, wj)
	}
}

// obj builds a cloud message for resource with content.
func obj(source, op, resource, rv, content string) abi.Message {
	return abi.Message{Header: abi.Header{ID: bus.NewID(), ResourceVersion: rv},
		Route: abi.Route{Source: source, Group: "resource", Operation: op, Resource: resource}, Content: []byte(content)}
}

// wantAck checks that the next message at the cloud is the OK
// acknowledgement of m.
func (r *rig) wantAck(m abi.Message) {
	r.t.Helper()
	a := next(r.t, r.cloud)
	if a.Route.Operation != abi.OpResponse || string(a.Content) != "OK" || a.Header.ParentID != m.Header.ID {
		r.t.Fatalf("cloud got %s %s parent %s %q, want the OK acknowledgement of %s", a.Route.Operation, a.Route.Resource, a.Header.ParentID, a.Content, m.Header.ID)
	}
}

// wantError checks that the next message at ep is an error reply to m
// whose text contains want.
func wantError(t testing.TB, ep *bus.Endpoint, m abi.Message, want ...string) {
	t.Helper()
	e := next(t, ep)
	if e.Route.Operation != abi.OpError || e.Header.ParentID != m.Header.ID {
		t.Fatalf("%s got %s parent %s %q, want an error reply to %s", ep.Name(), e.Route.Operation, e.Header.ParentID, e.Content, m.Header.ID)
	}
	for _, w := range want {
		if !bytes.Contains(e.Content, []byte(w)) {
			t.Errorf("error reply %q does not say %q", e.Content, w)
		}
	}
}

// eventually waits up to 10 s for cond.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// request sends q to meta as a waiting local module would and returns the
// reply.
func (r *rig) request(q abi.Message) abi.Message {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := r.bus.RequestGroup(ctx, Group, q)
	if err != nil {
		r.t.Fatal(err)
	}
	return reply
}
