package plugins

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Signature is the edgehost.signature section: who signed, what digests
// they signed, and the ed25519 signature over those digests.
type Signature struct {
	// PublicKey is the signer's ed25519 public key, base64.
	PublicKey string `json:"publicKey"`
	// Module and Manifest are the hex sha256 digests the signer saw.
	Module   string `json:"module"`
	Manifest string `json:"manifest"`
	// Sig is the ed25519 signature of signedMessage, base64.
	Sig string `json:"signature"`
}

// signedMessage is what a signature covers: a domain tag and both digests.
func signedMessage(module, manifest [sha256.Size]byte) []byte {
	msg := []byte("edgehost-plugin-v1\x00")
	msg = append(msg, module[:]...)
	return append(msg, manifest[:]...)
}

// Sign signs a package file with key and returns it with its signature
// section replaced. Signing the same package twice gives the same bytes.
func Sign(file []byte, key ed25519.PrivateKey) ([]byte, error) {
	p, err := Parse(file)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	pub := key.Public().(ed25519.PublicKey)
	p.Signature = &Signature{
		PublicKey: base64.StdEncoding.EncodeToString(pub),
		Module:    hex.EncodeToString(p.ModuleDigest[:]),
		Manifest:  hex.EncodeToString(p.ManifestDigest[:]),
		Sig:       base64.StdEncoding.EncodeToString(ed25519.Sign(key, signedMessage(p.ModuleDigest, p.ManifestDigest))),
	}
	return p.Bytes(), nil
}

// Errors wrapped by Verify's, one per reason a signature is refused.
var (
	ErrUnsigned         = errors.New("package is not signed")
	ErrBadSignature     = errors.New("signature is invalid")
	ErrModuleTampered   = errors.New("module was changed after signing (digest mismatch)")
	ErrManifestTampered = errors.New("manifest was changed after signing (digest mismatch)")
)

// verify checks p's signature cryptographically and against p's digests,
// and returns the signer's public key. It says which part was changed.
func (p *Package) verify() (ed25519.PublicKey, error) {
	s := p.Signature
	if s == nil {
		return nil, ErrUnsigned
	}
	pub, err := base64.StdEncoding.DecodeString(s.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: bad public key", ErrBadSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(s.Sig)
	mod, err1 := hex.DecodeString(s.Module)
	man, err2 := hex.DecodeString(s.Manifest)
	if err != nil || err1 != nil || err2 != nil || len(mod) != sha256.Size || len(man) != sha256.Size {
		return nil, fmt.Errorf("%w: malformed signature section", ErrBadSignature)
	}
	if !ed25519.Verify(pub, signedMessage([sha256.Size]byte(mod), [sha256.Size]byte(man)), sig) {
		return nil, fmt.Errorf("%w: it does not match the digests it claims", ErrBadSignature)
	}
	if !bytes.Equal(mod, p.ModuleDigest[:]) {
		return nil, ErrModuleTampered
	}
	if !bytes.Equal(man, p.ManifestDigest[:]) {
		return nil, ErrManifestTampered
	}
	return pub, nil
}

// GenerateKey writes a new ed25519 key pair: the private key (base64 of the
// 64-byte key, mode 0600) to privPath and the public key (base64) to
// pubPath. It refuses to overwrite either file.
func GenerateKey(privPath, pubPath string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{privPath, priv, 0o600}, {pubPath, pub, 0o644}} {
		fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return nil, fmt.Errorf("generate key: %w", err)
		}
		_, err = fh.WriteString(base64.StdEncoding.EncodeToString(f.data) + "\n")
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("generate key: write %s: %w", f.path, err)
		}
	}
	return pub, nil
}

// ReadPrivateKey reads a private key file written by GenerateKey.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read private key %s: not base64: %w", path, err)
	case len(raw) == ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case len(raw) != ed25519.PrivateKeySize:
		return nil, fmt.Errorf("read private key %s: %d bytes, want %d", path, len(raw), ed25519.PrivateKeySize)
	}
	return ed25519.PrivateKey(raw), nil
}

// ParsePublicKey decodes a base64 ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %q: want base64 of %d bytes", s, ed25519.PublicKeySize)
	}
	return raw, nil
}

// Fingerprint is a short, stable name for a public key: the first 8 bytes
// of its sha256, hex.
func Fingerprint(pub ed25519.PublicKey) string {
	d := sha256.Sum256(pub)
	return hex.EncodeToString(d[:8])
}
