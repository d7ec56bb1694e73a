package plugins

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
)

// SignaturePolicy says whether packages from a source must be signed.
type SignaturePolicy string

// Signature policies.
const (
	// RequireSignature accepts only packages signed by a trusted key that
	// is not revoked.
	RequireSignature SignaturePolicy = "require-signature"
	// AllowUnsigned also accepts unsigned packages and packages signed by
	// an unknown key. A signature that is present must still verify, and a
	// revoked signer is still refused.
	AllowUnsigned SignaturePolicy = "allow-unsigned"
)

// Errors wrapped by Trust.Verify's, besides those of the signature itself.
var (
	ErrUnknownSigner = errors.New("signed by a key that is not in the trust store")
	ErrRevokedKey    = errors.New("signed by a revoked key")
)

// TrustedKey is one public key of the trust store.
type TrustedKey struct {
	Name      string
	PublicKey ed25519.PublicKey
}

// Trust is the trust store: the keys whose signatures are accepted, and
// revoked keys, named by key name, fingerprint or base64 public key.
type Trust struct {
	keys    []TrustedKey
	revoked map[string]bool
}

// NewTrust returns a trust store.
func NewTrust(keys []TrustedKey, revoked []string) *Trust {
	t := &Trust{keys: keys, revoked: map[string]bool{}}
	for _, r := range revoked {
		t.revoked[r] = true
	}
	return t
}

// Verify checks p against the trust store under policy and returns the
// signer's name ("" when unsigned or signed by an unknown key under
// allow-unsigned). Its error says why a package is refused: unsigned, an
// invalid signature, a changed module or manifest, an unknown or a revoked
// key.
func (t *Trust) Verify(p *Package, policy SignaturePolicy) (string, error) {
	if p.Signature == nil {
		if policy == AllowUnsigned {
			return "", nil
		}
		return "", fmt.Errorf("%w, and the policy is %s", ErrUnsigned, policy)
	}
	pub, err := p.verify()
	if err != nil {
		return "", err
	}
	fp := Fingerprint(pub)
	b64 := base64.StdEncoding.EncodeToString(pub)
	name := ""
	for _, k := range t.keys {
		if k.PublicKey.Equal(pub) {
			name = k.Name
			break
		}
	}
	if t.revoked[fp] || t.revoked[b64] || (name != "" && t.revoked[name]) {
		return "", fmt.Errorf("%w: %s (fingerprint %s)", ErrRevokedKey, or(name, "unnamed"), fp)
	}
	if name == "" {
		if policy == AllowUnsigned {
			return "", nil
		}
		return "", fmt.Errorf("%w: fingerprint %s", ErrUnknownSigner, fp)
	}
	return name, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
