package meta

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// tokenRequest is edged's TokenRequest for pod uid's token of audience aud.
func tokenRequest(uid, aud string) string {
	return `{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","spec":{"audiences":["` + aud + `"],"expirationSeconds":3607,
		"boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"web","uid":"` + uid + `"}}}`
}

// A token is stored under a key of its request, so two pods' tokens of one
// service account are two rows; offline the store answers for the
// request's own token; the pod's delete removes its tokens.
func TestServiceAccountTokens(t *testing.T) {
	r := newRig(t, Config{})
	r.connect(CloudConnected)
	ask := func(uid string) abi.Message {
		return abi.Message{Header: abi.Header{ID: "q-" + uid}, Route: abi.Route{Source: "edged", Group: Group, Operation: abi.OpQuery,
			Resource: "default/serviceaccounttoken/default"}, Content: []byte(tokenRequest(uid, "api"))}
	}
	for _, uid := range []string{"uid-a", "uid-b"} {
		replies := make(chan abi.Message, 1)
		go func() { replies <- r.request(ask(uid)) }()
		fwd := next(t, r.cloud)
		if fwd.Route.Resource != "default/serviceaccounttoken/default" || string(fwd.Content) != tokenRequest(uid, "api") {
			t.Fatalf("forwarded %s %s, want the query as edged sent it", fwd.Route.Resource, fwd.Content)
		}
		answer := strings.Replace(tokenRequest(uid, "api"), `}}}`, `}},"status":{"token":"jwt-`+uid+`","expirationTimestamp":"2030-01-01T00:00:00Z"}}`, 1)
		if err := r.bus.Respond(abi.Message{Header: abi.Header{ParentID: fwd.Header.ID}, Route: abi.Route{Source: "edgecontroller", Group: "resource",
			Operation: abi.OpResponse, Resource: fwd.Route.Resource}, Content: []byte(answer)}); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-replies:
			if string(got.Content) != answer {
				t.Fatalf("reply %s, want the cloud's answer", got.Content)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no reply")
		}
		next(t, r.cloud) // the ACK
		key, err := TokenKey("default", "default", []byte(tokenRequest(uid, "api")))
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := r.stored(key); !ok || !strings.Contains(string(o.Content), "jwt-"+uid) {
			t.Fatalf("token of %s not stored at %s: %s", uid, key, o.Content)
		}
	}
	otherAud, _ := TokenKey("default", "default", []byte(tokenRequest("uid-a", "vault")))
	if keyA, _ := TokenKey("default", "default", []byte(tokenRequest("uid-a", "api"))); otherAud == keyA || len(keyA) > 80 {
		t.Errorf("key %s for another audience is %s", keyA, otherAud)
	}

	// Offline the store answers for this request's token only.
	r.connect(CloudDisconnected)
	var values []string
	if err := json.Unmarshal(r.request(ask("uid-b")).Content, &values); err != nil || len(values) != 1 || !strings.Contains(values[0], "jwt-uid-b") {
		t.Errorf("offline answer %q %v, want uid-b's token", values, err)
	}
	none(t, r.cloud)
	edged := r.register("edged", RuntimeGroup)
	bad := ask("x")
	bad.Content = []byte(`["not a request"]`)
	r.send(bad)
	wantError(t, edged, bad, "token request for default/default: content is not a JSON object")

	// The pod's delete takes its token with it, and only its.
	pod := obj("edgecontroller", abi.OpInsert, "default/pod/web", "", `{"metadata":{"name":"web","uid":"uid-a"}}`)
	r.send(pod)
	r.wantAck(pod)
	del := obj("edgecontroller", abi.OpDelete, "default/pod/web", "", `{"metadata":{"name":"web","uid":"uid-a"}}`)
	r.send(del)
	r.wantAck(del)
	left, _, err := r.meta.objs.list(TokenType, "default/")
	if err != nil || len(left) != 1 || !strings.Contains(string(left[0].Content), "jwt-uid-b") {
		t.Errorf("tokens after uid-a's delete: %v %v, want uid-b's only", left, err)
	}
}
