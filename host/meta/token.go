package meta

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
)

// TokenType is the resource type of a service account token: edged asks
// for `{ns}/serviceaccounttoken/{serviceaccount}` with a TokenRequest as
// the content, and the cloud answers with the TokenRequest and its
// status (the token, its expiry).
const TokenType = "serviceaccounttoken"

// tokenSpec is the part of a TokenRequest that tells one token from
// another of the same service account.
type tokenSpec struct {
	Spec struct {
		Audiences         []string `json:"audiences"`
		ExpirationSeconds *int64   `json:"expirationSeconds"`
		BoundObjectRef    *struct {
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
			Name       string `json:"name"`
			UID        string `json:"uid"`
		} `json:"boundObjectRef"`
	} `json:"spec"`
}

// TokenKey is where the token that request (a TokenRequest's JSON) asks
// for is stored: `{ns}/serviceaccounttoken/{serviceaccount}/{hash}`, the
// hash over the request's audiences, expiry and bound object. edgecore
// keys its rows the same way (client.KeyFunc), with the fields spelled
// out; a hash keeps the key within MaxKeyLen whatever the names. Tokens
// of one account for two pods are two rows; a refreshed token replaces
// the one it refreshes.
func TokenKey(namespace, serviceAccount string, request []byte) (string, error) {
	var tr tokenSpec
	if err := decodeObject(request, &tr); err != nil {
		return "", fmt.Errorf("token request for %s/%s: %w", namespace, serviceAccount, err)
	}
	aud := slices.Clone(tr.Spec.Audiences)
	slices.Sort(aud)
	var exp int64
	if tr.Spec.ExpirationSeconds != nil {
		exp = *tr.Spec.ExpirationSeconds
	}
	b, _ := json.Marshal([]any{aud, exp, tr.Spec.BoundObjectRef}) // plain values always marshal
	sum := sha256.Sum256(b)
	return namespace + "/" + TokenType + "/" + serviceAccount + "/" + hex.EncodeToString(sum[:12]), nil
}

// tokenBoundTo reports whether content, a stored TokenRequest, is bound
// to the pod uid.
func tokenBoundTo(content []byte, uid string) bool {
	var tr tokenSpec
	return json.Unmarshal(content, &tr) == nil && tr.Spec.BoundObjectRef != nil && tr.Spec.BoundObjectRef.UID == uid
}
