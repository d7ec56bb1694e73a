package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The files of a CA dir.
const (
	CAKeyFile   = "ca.key"
	SecretFile  = "token.secret"
	caLifetime  = 10 * 365 * 24 * time.Hour
	serverLife  = 365 * 24 * time.Hour
	secretBytes = 32
)

// DefaultNodeCertLifetime is KubeEdge's edgeCertSigningDuration.
const DefaultNodeCertLifetime = 365 * 24 * time.Hour

// ErrUnauthorized is wrapped by CheckToken's and SignNode's refusals.
var ErrUnauthorized = errors.New("unauthorized")

// CA is the reference cloud's certificate authority: it signs node
// certificates and the cloud's server certificate, and issues bootstrap
// tokens (HS256 JWTs keyed by a secret kept beside the CA).
type CA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	secret []byte
}

// LoadOrCreateCA reads the CA in dir, creating a new one (key, self-signed
// certificate, token secret; files 0600) when there is none. A lock file
// keeps two processes (hub serve and hub token) from creating two.
func LoadOrCreateCA(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("CA dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".ca.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("CA lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("CA lock: %w", err)
	}
	return loadOrCreateCA(dir)
}

func loadOrCreateCA(dir string) (*CA, error) {
	certDER, certErr := readPEM(filepath.Join(dir, CAFile), "CERTIFICATE")
	keyDER, keyErr := readPEM(filepath.Join(dir, CAKeyFile), "EC PRIVATE KEY")
	secretHex, secretErr := os.ReadFile(filepath.Join(dir, SecretFile))
	if errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist) && errors.Is(secretErr, os.ErrNotExist) {
		return createCA(dir)
	}
	if err := errors.Join(certErr, keyErr, secretErr); err != nil {
		return nil, fmt.Errorf("load CA in %s: %w", dir, err)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("load CA %s: %w", filepath.Join(dir, CAFile), err)
	}
	key, err := x509.ParseECPrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("load CA key %s: %w", filepath.Join(dir, CAKeyFile), err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(secretHex)))
	if err != nil || len(secret) < 16 {
		return nil, fmt.Errorf("load token secret %s: want at least 16 hex-encoded bytes", filepath.Join(dir, SecretFile))
	}
	return &CA{cert: cert, key: key, secret: secret}, nil
}

func createCA(dir string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "edgehost-hub-ca"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(caLifetime),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		IsCA:     true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	secret := make([]byte, secretBytes)
	rand.Read(secret)
	if err := writeKey(filepath.Join(dir, CAKeyFile), key); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, SecretFile), []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write token secret: %w", err)
	}
	if err := writePEM(filepath.Join(dir, CAFile), "CERTIFICATE", der); err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, secret: secret}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// DER returns the CA certificate, as /ca.crt serves it.
func (ca *CA) DER() []byte { return ca.cert.Raw }

// Pool returns a pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// ServerCert issues the cloud's server certificate for hosts (IPs or DNS
// names).
func (ca *CA) ServerCert(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("server key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "edgehost-hub"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(serverLife),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// SignNode signs a node's DER CSR for lifetime. The CSR must carry a
// valid signature, CN system:node:{name} and O system:nodes; node, if not
// empty (the NodeName header), must be that name.
func (ca *CA) SignNode(csrDER []byte, node string, lifetime time.Duration) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature: %w", err)
	}
	name, ok := strings.CutPrefix(csr.Subject.CommonName, NodeCNPrefix)
	if !ok || name == "" || !slices.Contains(csr.Subject.Organization, NodeOrg) {
		return nil, fmt.Errorf("%w: CSR subject %q, want CN=%s{node}, O=%s", ErrUnauthorized, csr.Subject, NodeCNPrefix, NodeOrg)
	}
	if node != "" && node != name {
		return nil, fmt.Errorf("%w: CSR is for %q, the NodeName header says %q", ErrUnauthorized, name, node)
	}
	now := time.Now()
	// Backdated for clock skew, by at most a tenth of a short lifetime.
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: csr.Subject,
		NotBefore: now.Add(-min(time.Minute, lifetime/10)), NotAfter: now.Add(lifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:    csr.DNSNames, IPAddresses: csr.IPAddresses,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign node certificate: %w", err)
	}
	return der, nil
}

// Token returns a bootstrap token valid for ttl:
// hex(sha256(CA DER)).header.payload.signature, the JWT HS256 with the
// CA's secret.
func (ca *CA) Token(ttl time.Duration) string {
	sum := sha256.Sum256(ca.cert.Raw)
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]int64{"exp": time.Now().Add(ttl).Unix()})
	signed := header + "." + enc.EncodeToString(claims)
	return hex.EncodeToString(sum[:]) + "." + signed + "." + enc.EncodeToString(ca.mac(signed))
}

func (ca *CA) mac(s string) []byte {
	h := hmac.New(sha256.New, ca.secret)
	h.Write([]byte(s))
	return h.Sum(nil)
}

// CheckToken verifies a bearer JWT made by Token: its signature and
// expiry.
func (ca *CA) CheckToken(jwt string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return fmt.Errorf("%w: token has %d parts, want 3", ErrUnauthorized, len(parts))
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, ca.mac(parts[0]+"."+parts[1])) {
		return fmt.Errorf("%w: token signature does not verify", ErrUnauthorized)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		return fmt.Errorf("%w: token payload is not JSON", ErrUnauthorized)
	}
	if time.Now().Unix() > claims.Exp {
		return fmt.Errorf("%w: token expired at %s", ErrUnauthorized, time.Unix(claims.Exp, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// SignJWT returns claims as a JWT signed ES256 with the CA's key, which
// the CA's certificate verifies (VerifyJWT).
func (ca *CA) SignJWT(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("JWT claims: %w", err)
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, ca.key, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign JWT: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + enc.EncodeToString(sig), nil
}

// VerifyJWT checks a JWT made by SignJWT against the CA's certificate and
// returns its payload.
func (ca *CA) VerifyJWT(jwt string) ([]byte, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: JWT has %d parts, want 3", ErrUnauthorized, len(parts))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	pub, ok := ca.cert.PublicKey.(*ecdsa.PublicKey)
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || !ok || len(sig) != 64 ||
		!ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, fmt.Errorf("%w: JWT signature does not verify", ErrUnauthorized)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: JWT payload: %v", ErrUnauthorized, err)
	}
	return payload, nil
}
