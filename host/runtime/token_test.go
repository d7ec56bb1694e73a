package runtime

import (
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	authv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kubelet's refresh rule: at 80 % of the lifetime, or a day after issue.
func TestTokenRefreshDue(t *testing.T) {
	now := time.Now()
	tok := func(issuedAgo time.Duration, ttl int64) *authv1.TokenRequest {
		tr := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &ttl}}
		tr.Status.ExpirationTimestamp = metav1.NewTime(now.Add(-issuedAgo).Add(time.Duration(ttl) * time.Second))
		return tr
	}
	for _, c := range []struct {
		issuedAgo time.Duration
		ttl       int64
		due       bool
	}{
		{0, 3600, false}, {47 * time.Minute, 3600, false}, {49 * time.Minute, 3600, true},
		{23 * time.Hour, 7 * 24 * 3600, false}, {25 * time.Hour, 7 * 24 * 3600, true}, {2 * time.Hour, 3600, true},
	} {
		if got := refreshDue(tok(c.issuedAgo, c.ttl), now); got != c.due {
			t.Errorf("issued %s ago, ttl %ds: refresh due %v, want %v", c.issuedAgo, c.ttl, got, c.due)
		}
	}
}

// The request is kubelet's: the source's audience and expiry (the API
// server's 3600 s when unset), bound to the pod; the account defaults.
func TestTokenRequestShape(t *testing.T) {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-web"}}
	tr := tokenRequest(pod, &v1.ServiceAccountTokenProjection{Path: "token"})
	if *tr.Spec.ExpirationSeconds != 3600 || tr.Spec.Audiences != nil || tr.Spec.BoundObjectRef.UID != "uid-web" || tr.Spec.BoundObjectRef.Kind != "Pod" {
		t.Errorf("request %+v", tr.Spec)
	}
	exp := int64(7200)
	if tr := tokenRequest(pod, &v1.ServiceAccountTokenProjection{Audience: "vault", ExpirationSeconds: &exp}); tr.Spec.Audiences[0] != "vault" || *tr.Spec.ExpirationSeconds != 7200 {
		t.Errorf("request %+v", tr.Spec)
	}
	if serviceAccount(pod) != "default" {
		t.Errorf("service account %q", serviceAccount(pod))
	}
}

// meta's answers: the cloud's object, an ObjectResp, the store's array,
// errors, each read or named.
func TestTokenReply(t *testing.T) {
	good := `{"spec":{},"status":{"token":"jwt","expirationTimestamp":"2030-01-01T00:00:00Z"}}`
	for _, c := range []struct {
		op, content, want string
	}{
		{abi.OpResponse, good, ""},
		{abi.OpResponse, `{"Object":` + good + `,"Err":null}`, ""},
		{abi.OpResponse, `[` + quoteJSON(good) + `]`, ""},
		{abi.OpResponse, `[]`, "the cloud is not connected and no token is stored"},
		{abi.OpResponse, `{"Object":null,"Err":"serviceaccounts \"x\" not found"}`, `the cloud refused the token request: "serviceaccounts \"x\" not found"`},
		{abi.OpError, `remote query default/serviceaccounttoken/x: context deadline exceeded`, "context deadline exceeded"},
		{abi.OpResponse, `{"status":{}}`, "has no status.token"},
	} {
		tr, err := tokenReply(abi.Message{Route: abi.Route{Operation: c.op}, Content: []byte(c.content)})
		switch {
		case c.want == "" && (err != nil || tr.Status.Token != "jwt"):
			t.Errorf("%s: %v %v", c.content, tr, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.content, err, c.want)
		}
	}
}

func quoteJSON(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
