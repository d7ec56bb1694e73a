package cloud

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
)

// The cloud mints what a TokenRequest asks: a JWT signed by its CA with
// the requested audience, lifetime and bound pod; the API server's
// defaults and refusals.
func TestMintToken(t *testing.T) {
	srv, err := New(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	req := `{"spec":{"audiences":["vault"],"expirationSeconds":3607,"boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"web","uid":"uid-web"}}}`
	before := time.Now().Truncate(time.Second)
	out, err := srv.mintToken("edge-1", "default", "app", []byte(req))
	if err != nil {
		t.Fatal(err)
	}
	var tr authv1.TokenRequest
	if err := json.Unmarshal(out, &tr); err != nil {
		t.Fatal(err)
	}
	if exp := tr.Status.ExpirationTimestamp.Time; exp.Before(before.Add(3607*time.Second)) || exp.After(time.Now().Add(3607*time.Second)) {
		t.Errorf("expires %v, want 3607 s from now", exp)
	}
	payload, err := srv.CA().VerifyJWT(tr.Status.Token)
	if err != nil {
		t.Fatal(err)
	}
	var c tokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if c.Subject != "system:serviceaccount:default:app" || len(c.Audience) != 1 || c.Audience[0] != "vault" || c.Expiry-c.IssuedAt != 3607 ||
		c.K8s.Pod == nil || c.K8s.Pod.UID != "uid-web" || c.K8s.Node.Name != "edge-1" || c.Issuer != TokenIssuer {
		t.Errorf("claims %+v", c)
	}
	forged := tr.Status.Token[:len(tr.Status.Token)-4] + "AAAA"
	if _, err := srv.CA().VerifyJWT(forged); err == nil {
		t.Error("a changed signature verifies")
	}

	// Defaults: the API server's audience and an hour.
	out, _ = srv.mintToken("edge-1", "default", "app", []byte(`{"spec":{}}`))
	json.Unmarshal(out, &tr)
	if *tr.Spec.ExpirationSeconds != 3600 || tr.Spec.Audiences[0] != TokenIssuer {
		t.Errorf("defaults %+v", tr.Spec)
	}
	for body, want := range map[string]string{
		`{"spec":{"expirationSeconds":60}}`:                        "may not specify a duration less than 10 minutes",
		`{"spec":{"boundObjectRef":{"kind":"Secret","name":"x"}}}`: `boundObjectRef.kind "Secret"`,
		`[1]`: "token request for default/app",
	} {
		if _, err := srv.mintToken("edge-1", "default", "app", []byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}
