package meta

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// seedConfigMap stores the configmap fixture through the cloud path.
func (r *rig) seedConfigMap() {
	r.t.Helper()
	m := toMessage(readFrame(r.t, "configmap-insert.json"))
	r.send(m)
	r.wantAck(m)
}

// Offline, a query for a remote kind is answered from the store with
// edgecore's reply: a JSON array of the stored values as strings, source
// metamanager, parent the query.
func TestQueryOffline(t *testing.T) {
	r := newRig(t, Config{})
	r.seedConfigMap()
	q := toMessage(readFrame(t, "configmap-query.json"))
	matchGolden(t, r.request(q), "configmap-query-local-reply.json")
	none(t, r.cloud)

	// After a disconnect, the same.
	r.connect(CloudConnected)
	r.connect(CloudDisconnected)
	q.Header.ID = "q-after-disconnect"
	if reply := r.request(q); reply.Header.ParentID != q.Header.ID || reply.Route.Source != ModuleName {
		t.Errorf("reply %+v", reply)
	}
	none(t, r.cloud)

	// A list names no object; missing objects give an empty array.
	for _, tc := range []struct{ resource, want string }{
		{"default/configmap", `[` + quote(t, `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config", "namespace": "default", "resourceVersion": "7", "uid": "0b7e4b52-3f0a-4a57-9a55-5d1a2c3e4f60"}, "data": {"mode": "edge"}}`) + `]`},
		{"default/configmap/missing", `[]`},
		{"default/secret", `[]`},
	} {
		q := abi.Message{Route: abi.Route{Source: "edged", Group: Group, Operation: abi.OpQuery, Resource: tc.resource}}
		if got := r.request(q); string(got.Content) != tc.want {
			t.Errorf("query %s = %s, want %s", tc.resource, got.Content, tc.want)
		}
	}
	if s := r.meta.Stats(); s.QueriesLocal != 5 || s.QueriesRemote != 0 {
		t.Errorf("stats = %+v", s)
	}
}

// A query that does not wait (no Sync) gets its reply sent to the module
// named by its source, as edgecore answers edged.
func TestQueryReplyBySend(t *testing.T) {
	r := newRig(t, Config{})
	edged := r.register("edged", RuntimeGroup)
	r.seedConfigMap()
	if m := next(t, edged); m.Route.Operation != abi.OpInsert {
		t.Fatalf("edged got %s, want the configmap insert", m.Route.Operation)
	}
	q := toMessage(readFrame(t, "configmap-query.json"))
	r.send(q)
	matchGolden(t, next(t, edged), "configmap-query-local-reply.json")
}

// While connected, a query for a remote kind goes to the cloud with a new
// id and the requester gets the cloud's object (stored, and acknowledged
// to the cloud), whether the hub hands the reply back through the bus's
// request matching or as a message to group meta.
func TestQueryRemote(t *testing.T) {
	for _, via := range []string{"respond", "group"} {
		t.Run(via, func(t *testing.T) {
			r := newRig(t, Config{})
			r.seedConfigMap()
			r.connect(CloudConnected)
			q := toMessage(readFrame(t, "configmap-query.json"))
			replies := make(chan abi.Message, 1)
			go func() { replies <- r.request(q) }()

			fwd := next(t, r.cloud)
			if fwd.Header.ID == q.Header.ID || fwd.Route != q.Route || !fwd.Header.Sync {
				t.Fatalf("forwarded %+v, want the query with a new id, same route, sync", fwd)
			}
			cloudReply := toMessage(readFrame(t, "configmap-query-cloud-reply.json"))
			cloudReply.Header.ParentID = fwd.Header.ID
			if via == "respond" {
				if err := r.bus.Respond(cloudReply); err != nil {
					t.Fatal(err)
				}
			} else {
				r.send(cloudReply)
			}
			var reply abi.Message
			select {
			case reply = <-replies:
			case <-time.After(10 * time.Second):
				t.Fatal("no reply to the query")
			}
			matchGolden(t, reply, "configmap-query-remote-reply.json")
			matchGolden(t, next(t, r.cloud), "configmap-query-remote-ack.json")
			if o, _ := r.stored("default/configmap/app-config"); o.ResourceVersion != "9" {
				t.Errorf("the cloud's answer was not stored: %+v", o)
			}
			if s := r.meta.Stats(); s.QueriesRemote != 1 || s.QueriesLocal != 0 {
				t.Errorf("stats = %+v", s)
			}
		})
	}
}

// Pods are always answered locally, and so is every kind while no hub is
// on the bus to take the query.
func TestQueryLocalKinds(t *testing.T) {
	r := newRig(t, Config{})
	pod := obj("edgecontroller", abi.OpInsert, "default/pod/p", "", `{"kind":"Pod"}`)
	r.send(pod)
	r.wantAck(pod)
	r.connect(CloudConnected)
	q := abi.Message{Route: abi.Route{Source: "edged", Group: Group, Operation: abi.OpQuery, Resource: "default/pod/p"}}
	if got := r.request(q); string(got.Content) != `["{\"kind\":\"Pod\"}"]` {
		t.Errorf("pod query = %s", got.Content)
	}
	none(t, r.cloud)

	r.cloud.Close()
	q.Route.Resource = "default/secret/s"
	if got := r.request(q); got.Route.Operation != abi.OpResponse || string(got.Content) != `[]` {
		t.Errorf("secret query with no hub = %s %s", got.Route.Operation, got.Content)
	}
	if s := r.meta.Stats(); s.QueriesLocal != 2 || s.QueriesRemote != 0 {
		t.Errorf("stats = %+v", s)
	}
}

// A remote query the cloud does not answer in time is an error to the
// requester, not a stale answer from the store (edgecore's rule), and an
// ObjectResp error is passed through.
func TestQueryRemoteFailures(t *testing.T) {
	r := newRig(t, Config{RemoteQueryTimeout: 50 * time.Millisecond})
	r.seedConfigMap()
	r.connect(CloudConnected)
	q := abi.Message{Route: abi.Route{Source: "edged", Group: Group, Operation: abi.OpQuery, Resource: "default/configmap/app-config"}}
	reply := r.request(q)
	if reply.Route.Operation != abi.OpError || reply.Header.ParentID == "" {
		t.Errorf("timed-out query got %s %q, want an error", reply.Route.Operation, reply.Content)
	}
	next(t, r.cloud) // the forwarded query nobody answered

	q.Header.ID = "q-err"
	replies := make(chan abi.Message, 1)
	go func() { replies <- r.request(q) }()
	fwd := next(t, r.cloud)
	errResp := abi.Message{Header: abi.Header{ParentID: fwd.Header.ID}, Route: abi.Route{Source: "edgecontroller", Group: "resource", Operation: abi.OpResponse, Resource: q.Route.Resource},
		Content: []byte(`{"Object":null,"Err":"configmaps \"app-config\" is forbidden"}`)}
	if err := r.bus.Respond(errResp); err != nil {
		t.Fatal(err)
	}
	select {
	case reply = <-replies:
	case <-time.After(10 * time.Second):
		t.Fatal("no reply")
	}
	if string(reply.Content) != string(errResp.Content) || reply.Header.ParentID != "q-err" {
		t.Errorf("ObjectResp error reached the requester as %q parent %s", reply.Content, reply.Header.ParentID)
	}
	none(t, r.cloud) // no ACK for an error
	if o, _ := r.stored("default/configmap/app-config"); o.ResourceVersion != "7" {
		t.Errorf("a failed remote query changed the store: %+v", o)
	}
	if s := r.meta.Stats(); s.QueryFailed != 2 || s.QueriesRemote != 2 {
		t.Errorf("stats = %+v", s)
	}
}

func quote(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// With no hub on the bus at all, cloud objects injected locally are still
// stored (their ACK counted unsent) and queries answered from the store.
func TestNoHub(t *testing.T) {
	r := newRig(t, Config{})
	r.cloud.Close()
	m := obj("edgecontroller", abi.OpInsert, "default/secret/s", "3", `{"data":{}}`)
	r.send(m)
	eventually(t, "the unsent ACK counted", func() bool { return r.meta.Stats().AckUnsent == 1 })
	q := abi.Message{Route: abi.Route{Source: "edged", Group: Group, Operation: abi.OpQuery, Resource: "default/secret/s"}}
	if got := r.request(q); string(got.Content) != `["{\"data\":{}}"]` {
		t.Errorf("query = %s", got.Content)
	}
	if s := r.meta.Stats(); s.Stored != 1 || s.Acks != 0 {
		t.Errorf("stats = %+v", s)
	}
}
