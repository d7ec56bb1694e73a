package meta

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/hashicorp/go-hclog"
)

// The same resource version is acknowledged again but not applied or
// forwarded again; an older one is refused and changes nothing; a newer
// one is applied.
func TestResourceVersion(t *testing.T) {
	r := newRig(t, Config{})
	edged := r.register("edged", RuntimeGroup)
	const key = "default/configmap/cm"
	v5 := obj("edgecontroller", abi.OpInsert, key, "5", `{"data":{"v":"5"}}`)
	r.send(v5)
	r.wantAck(v5)
	next(t, edged)

	again := obj("edgecontroller", abi.OpUpdate, key, "5", `{"data":{"v":"5-again"}}`)
	r.send(again)
	r.wantAck(again)
	none(t, edged)
	if o, _ := r.stored(key); string(o.Content) != `{"data":{"v":"5"}}` {
		t.Errorf("a repeated resource version was applied: %s", o.Content)
	}

	old := obj("edgecontroller", abi.OpUpdate, key, "3", `{"data":{"v":"3"}}`)
	r.send(old)
	wantError(t, r.cloud, old, "stale_resourceversion")
	none(t, edged)
	if o, _ := r.stored(key); o.ResourceVersion != "5" {
		t.Errorf("a stale update was applied: %+v", o)
	}

	// The version may come in the object's metadata only.
	v7 := obj("edgecontroller", abi.OpUpdate, key, "", `{"metadata":{"resourceVersion":"7"},"data":{"v":"7"}}`)
	r.send(v7)
	r.wantAck(v7)
	if got := next(t, edged); got.Header.ID != v7.Header.ID {
		t.Errorf("edged got %s, want the update %s", got.Header.ID, v7.Header.ID)
	}
	if o, _ := r.stored(key); o.ResourceVersion != "7" {
		t.Errorf("stored %+v, want resource version 7", o)
	}

	staleDelete := obj("edgecontroller", abi.OpDelete, key, "6", `{"metadata":{"resourceVersion":"6"}}`)
	r.send(staleDelete)
	wantError(t, r.cloud, staleDelete, "stale_resourceversion")
	if _, found := r.stored(key); !found {
		t.Error("a stale delete removed the object")
	}

	eventually(t, "three ACKs counted", func() bool { return r.meta.Stats().Acks == 3 })
	if s := r.meta.Stats(); s.Stored != 2 || s.Duplicates != 1 || s.Refused[ReasonStaleResourceVersion] != 2 {
		t.Errorf("stats = %+v", s)
	}
}

// A pod delete removes the stored pod only if the uids match; the pod's
// podpatch row goes with it.
func TestPodDeleteUID(t *testing.T) {
	r := newRig(t, Config{})
	edged := r.register("edged", RuntimeGroup)
	pod := obj("edgecontroller", abi.OpInsert, "default/pod/web", "2", `{"metadata":{"name":"web","uid":"uid-new","resourceVersion":"2"}}`)
	patch := obj("edgecontroller", abi.OpUpdate, "default/podpatch/web", "", `{"status":{}}`)
	for _, m := range []abi.Message{pod, patch} {
		r.send(m)
		r.wantAck(m)
		next(t, edged)
	}

	oldPod := obj("edgecontroller", abi.OpDelete, "default/pod/web", "", `{"metadata":{"name":"web","uid":"uid-old"}}`)
	r.send(oldPod)
	r.wantAck(oldPod)
	none(t, edged)
	if _, found := r.stored("default/pod/web"); !found {
		t.Fatal("a delete for another uid removed the pod")
	}

	del := obj("edgecontroller", abi.OpDelete, "default/pod/web", "3", `{"metadata":{"name":"web","uid":"uid-new","resourceVersion":"3"}}`)
	r.send(del)
	r.wantAck(del)
	if got := next(t, edged); got.Route.Operation != abi.OpDelete {
		t.Errorf("edged got %s, want the delete", got.Route.Operation)
	}
	for _, key := range []string{"default/pod/web", "default/podpatch/web"} {
		if _, found := r.stored(key); found {
			t.Errorf("%s still stored after the pod's delete", key)
		}
	}
	// Deleting what is not there is acknowledged: the cloud's view holds.
	gone := obj("edgecontroller", abi.OpDelete, "default/configmap/never", "", "")
	r.send(gone)
	r.wantAck(gone)
	if s := r.meta.Stats(); s.UIDMismatch != 1 || s.Deleted != 1 {
		t.Errorf("stats = %+v", s)
	}
}

// Objects go to their owners by edgecore's routes; an owner group with
// no module is counted, the object still stored and acknowledged.
func TestForwarding(t *testing.T) {
	r := newRig(t, Config{})
	twin := r.register("twin", TwinGroup)
	devices := r.register("devices", DevicesGroup)

	pod := obj("edgecontroller", abi.OpInsert, "default/pod/p", "", `{}`)
	r.send(pod)
	r.wantAck(pod)
	// The ACK goes before the hand-over to the owner.
	eventually(t, "the pod counted unrouted", func() bool { return r.meta.Stats().Unrouted == 1 })
	if s := r.meta.Stats(); s.Stored != 1 || s.Forwarded != 0 {
		t.Errorf("pod with no runtime module: stats = %+v", s)
	}

	edged := r.register("edged", RuntimeGroup)
	dev := obj("devicecontroller", abi.OpInsert, "default/device/d1", "", `{"kind":"Device"}`)
	r.send(dev)
	r.wantAck(dev)
	for _, ep := range []string{"twin", "devices"} {
		got := next(t, map[string]*bus.Endpoint{"twin": twin, "devices": devices}[ep])
		if got.Header.ID != dev.Header.ID || got.Route != dev.Route || string(got.Content) != string(dev.Content) {
			t.Errorf("%s got %+v, want the device message as the cloud sent it", ep, got)
		}
	}
	none(t, edged)

	node := obj("edgecontroller", abi.OpUpdate, "null/node/n1", "", `{"kind":"Node"}`)
	r.send(node)
	r.wantAck(node)
	none(t, edged)

	policy := obj("policycontroller", abi.OpInsert, "default/serviceaccountaccess/x", "", `{}`)
	r.send(policy)
	r.wantAck(policy)
	none(t, edged)

	// edgehost's plugin objects go to pluginsync, not to edged.
	plugins := r.register("pluginsync", PluginGroup)
	plugin := obj("edgecontroller", abi.OpInsert, "default/edgehostplugin/echo", "", `{"kind":"EdgehostPlugin"}`)
	r.send(plugin)
	r.wantAck(plugin)
	if got := next(t, plugins); got.Header.ID != plugin.Header.ID {
		t.Errorf("pluginsync got %+v, want the plugin object", got)
	}
	none(t, edged)

	// Membership is the twin's: forwarded, neither stored nor acknowledged.
	mem := toMessage(readFrame(t, "membership-update.json"))
	r.send(mem)
	if got := next(t, twin); got.Header.ID != mem.Header.ID || got.Route.Resource != "membership" {
		t.Errorf("twin got %+v, want the membership update", got)
	}
	none(t, r.cloud)
}

// Bad input is refused with an error naming it, counted by reason, and
// leaves what was stored as it was.
func TestBadInput(t *testing.T) {
	r := newRig(t, Config{})
	good := obj("edgecontroller", abi.OpInsert, "default/configmap/keep", "4", `{"data":{"keep":"me"}}`)
	r.send(good)
	r.wantAck(good)

	long := "default/configmap/" + strings.Repeat("x", MaxKeyLen)
	cases := []struct {
		m      abi.Message
		reason Reason
		want   string
	}{
		{obj("edgecontroller", abi.OpInsert, "default/configmap/keep", "5", `{"data":`), ReasonMalformedContent, "not valid JSON"},
		{obj("edgecontroller", abi.OpInsert, "default/configmap/keep", "5", `["a"]`), ReasonMalformedContent, "not a JSON object"},
		{obj("edgecontroller", abi.OpUpdate, "default/configmap/keep", "5", `plain text`), ReasonMalformedContent, "not a JSON object"},
		{obj("edgecontroller", abi.OpInsert, "default/configmap/keep", "5", ``), ReasonMalformedContent, "not a JSON object"},
		{obj("edgecontroller", abi.OpInsert, "default/configmap", "5", `{}`), ReasonBadResource, "names no object"},
		{obj("edgecontroller", abi.OpInsert, "/configmap/keep", "5", `{}`), ReasonBadResource, "empty namespace"},
		{obj("edgecontroller", abi.OpInsert, "default//keep", "5", `{}`), ReasonBadResource, "empty type"},
		{obj("edgecontroller", abi.OpInsert, "default/configmap/", "5", `{}`), ReasonBadResource, "empty name"},
		{obj("edgecontroller", abi.OpInsert, "default/configmap/a\x00b", "5", `{}`), ReasonBadResource, "NUL"},
		{obj("edgecontroller", abi.OpInsert, long, "5", `{}`), ReasonBadResource, "longer than 256"},
		{obj("edgecontroller", abi.OpInsert, "default/configmap/keep", "v5", `{}`), ReasonBadResourceVersion, "not an unsigned integer"},
		{obj("edgecontroller", abi.OpInsert, "default/configmap/keep", "", `{"metadata":{"resourceVersion":"-1"}}`), ReasonBadResourceVersion, "not an unsigned integer"},
		{obj("edgecontroller", "frobnicate", "default/configmap/keep", "5", `{}`), ReasonUnknownOperation, `"frobnicate"`},
		{obj("edgecontroller", abi.OpDelete, "default/configmap/keep", "5", `[1]`), ReasonMalformedContent, "not a JSON object"},
	}
	for i, tc := range cases {
		before := r.meta.Stats().Refused[tc.reason]
		r.send(tc.m)
		wantError(t, r.cloud, tc.m, tc.reason.String(), tc.want)
		e := r.meta.Stats().Refused[tc.reason]
		if e != before+1 {
			t.Errorf("case %d: refused[%s] = %d, want %d", i, tc.reason, e, before+1)
		}
	}
	if o, found := r.stored("default/configmap/keep"); !found || o.ResourceVersion != "4" || string(o.Content) != `{"data":{"keep":"me"}}` {
		t.Errorf("bad input changed the stored object: %+v %v", o, found)
	}

	// A local module's write is refused back to it, not sent to the cloud.
	edged := r.register("edged", RuntimeGroup)
	local := abi.Message{Route: abi.Route{Source: "edged", Group: Group, Operation: abi.OpInsert, Resource: "default/pod/x"}, Content: []byte(`{}`)}
	local.Header.ID = "local-1"
	r.send(local)
	wantError(t, edged, local, "local module")
	none(t, r.cloud)
	// Nor is a local module's message in the twin's group passed on, or
	// a local response stored.
	twin := r.register("twin", TwinGroup)
	localTwin := abi.Message{Header: abi.Header{ID: "local-2"}, Route: abi.Route{Source: "edged", Group: TwinGroup, Operation: abi.OpUpdate, Resource: "membership"}, Content: []byte(`{}`)}
	r.send(localTwin)
	wantError(t, edged, localTwin, "local module")
	none(t, twin)
	localResp := abi.Message{Header: abi.Header{ID: "local-3", ParentID: "nobody"}, Route: abi.Route{Source: "edged", Group: Group, Operation: abi.OpResponse, Resource: "default/configmap/keep"}, Content: []byte(`{"data":{"keep":"no"}}`)}
	r.send(localResp)
	none(t, edged)

	// A connection state that is neither is refused; the state stays.
	r.connect(CloudConnected)
	bad := abi.Message{Header: abi.Header{ID: "conn-1"}, Route: abi.Route{Source: "websocket", Operation: "connect", Resource: ConnectionResource}, Content: []byte("maybe")}
	before := r.meta.Stats().Refused[ReasonMalformedContent]
	r.send(bad)
	eventually(t, "the connection state's refusal", func() bool { return r.meta.Stats().Refused[ReasonMalformedContent] == before+1 })
	if !r.meta.Connected() {
		t.Error("a malformed connection state changed the state")
	}
	none(t, r.cloud)
	if o, _ := r.stored("default/configmap/keep"); string(o.Content) != `{"data":{"keep":"me"}}` {
		t.Errorf("a local response was stored: %s", o.Content)
	}
}

// A cloud response nobody waits for is stored if it carries an object and
// goes to edged if it is the edge controller's; it is not acknowledged.
func TestUnsolicitedResponse(t *testing.T) {
	r := newRig(t, Config{})
	edged := r.register("edged", RuntimeGroup)
	resp := obj("edgecontroller", abi.OpResponse, "null/node/edge-1", "", `{"kind":"Node","metadata":{"resourceVersion":"40"}}`)
	resp.Header.ParentID = "an-old-request"
	r.send(resp)
	if got := next(t, edged); got.Header.ID != resp.Header.ID {
		t.Errorf("edged got %+v", got)
	}
	if o, found := r.stored("null/node/edge-1"); !found || o.ResourceVersion != "40" {
		t.Errorf("stored %+v %v", o, found)
	}
	ok := obj("edgecontroller", abi.OpResponse, "null/node/edge-1", "", "OK")
	r.send(ok)
	none(t, r.cloud)
	none(t, edged)
	if o, _ := r.stored("null/node/edge-1"); o.ResourceVersion != "40" {
		t.Errorf("an OK response changed the stored node: %+v", o)
	}
	// A package chunk that came after its query gave up is not an object.
	chunk := obj("cloudhub", abi.OpResponse, "default/edgehostpluginpackage/echo", "", `{"digest":"ab","offset":0,"data":"AAAA"}`)
	chunk.Header.ParentID = "a-query-that-timed-out"
	r.send(chunk)
	none(t, edged)
	if o, found := r.stored("default/edgehostpluginpackage/echo"); found {
		t.Errorf("a late package chunk was stored: %+v", o)
	}
}

// A refusal that repeats is logged at WARN once per reason, then at debug.
func TestRepeatedRefusalsWarnOnce(t *testing.T) {
	var logs syncBuffer
	r := newRigLog(t, Config{}, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn}))
	for i := range 3 {
		bad := obj("edgecontroller", abi.OpInsert, "default/configmap", strconv.Itoa(i), `{}`)
		r.send(bad)
		wantError(t, r.cloud, bad, "bad_resource")
	}
	bad := obj("edgecontroller", abi.OpInsert, "default/configmap/x", "", `nope`)
	r.send(bad)
	wantError(t, r.cloud, bad, "malformed_content")
	out := logs.String()
	if n := strings.Count(out, "[WARN]"); n != 2 || !strings.Contains(out, "reason=bad_resource") || !strings.Contains(out, "reason=malformed_content") {
		t.Errorf("want one WARN per reason, got %d:\n%s", n, out)
	}
}

// syncBuffer is a bytes.Buffer safe for the module's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
