package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxBody is the largest certificate service answer read, KubeEdge's.
const maxBody = 1 << 20

// ErrBadToken is wrapped by errors about the token's form or its CA hash.
var ErrBadToken = errors.New("bad bootstrap token")

// SplitToken splits a token into the CA hash and the bearer JWT.
func SplitToken(token string) (caHash, jwt string, err error) {
	parts := strings.Split(token, ".")
	if len(parts) != 4 {
		return "", "", fmt.Errorf("%w: want 4 dot-separated parts (hash.header.payload.signature), got %d", ErrBadToken, len(parts))
	}
	if _, err := hex.DecodeString(parts[0]); err != nil || len(parts[0]) != 64 {
		return "", "", fmt.Errorf("%w: the first part must be the CA's hex sha256", ErrBadToken)
	}
	return parts[0], strings.Join(parts[1:], "."), nil
}

// Bootstrap gets this node a client certificate from the cloud's
// certificate service at server (https://host:port): it fetches the CA,
// checks it against the token's hash, makes an ECDSA P-256 key and a CSR,
// has the CSR signed with the token, and stores CA, certificate and key in
// dir (0600).
func Bootstrap(ctx context.Context, server, token, node, dir string) error {
	caHash, jwt, err := SplitToken(token)
	if err != nil {
		return err
	}
	server = strings.TrimRight(server, "/")
	// The CA is not known yet: the token's hash is what authenticates it.
	insecure := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}}
	caDER, err := get(ctx, insecure, server+"/ca.crt", nil, nil)
	if err != nil {
		return fmt.Errorf("bootstrap: fetch CA: %w", err)
	}
	if sum := sha256.Sum256(caDER); hex.EncodeToString(sum[:]) != strings.ToLower(caHash) {
		return fmt.Errorf("bootstrap: %w: the CA from %s has sha256 %x, the token says %s", ErrBadToken, server, sum, caHash)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("bootstrap: CA from %s: %w", server, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	verified := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	if err := request(ctx, verified, server, node, dir, http.Header{"Authorization": {"Bearer " + jwt}}); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return writePEM(filepath.Join(dir, CAFile), "CERTIFICATE", caDER)
}

// Renew replaces the node's certificate in dir before it expires: a new
// key and CSR, signed by the certificate service at server on the
// strength of the current certificate (cfg, from LoadClient), as
// edgecore's rotation does.
func Renew(ctx context.Context, server, node, dir string, cfg *tls.Config) error {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: cfg.RootCAs, Certificates: cfg.Certificates, MinVersion: tls.VersionTLS12}}}
	if err := request(ctx, c, strings.TrimRight(server, "/"), node, dir, nil); err != nil {
		return fmt.Errorf("renew certificate: %w", err)
	}
	return nil
}

// request makes a key and a CSR for node, has the service sign it with
// the client c and the extra headers h, and stores key and certificate.
func request(ctx context.Context, c *http.Client, server, node, dir string, h http.Header) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{
		Country: []string{"CN"}, Organization: []string{NodeOrg}, Locality: []string{"Hangzhou"},
		Province: []string{"Zhejiang"}, CommonName: NodeCNPrefix + node}}, key)
	if err != nil {
		return fmt.Errorf("create CSR: %w", err)
	}
	if h == nil {
		h = http.Header{}
	}
	h.Set("NodeName", node)
	certDER, err := get(ctx, c, server+"/edge.crt", csr, h)
	if err != nil {
		return fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return fmt.Errorf("certificate from %s: %w", server, err)
	}
	if cert.Subject.CommonName != NodeCNPrefix+node {
		return fmt.Errorf("the cloud signed %q, want %q", cert.Subject.CommonName, NodeCNPrefix+node)
	}
	// The new certificate beside the old one, then the key, then the
	// certificate into place: a crash at any point leaves either the old
	// pair or the new key with the new certificate beside it, which
	// LoadClient puts in place.
	certPath := filepath.Join(dir, CertFile)
	if err := writePEM(certPath+nextSuffix, "CERTIFICATE", certDER); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, KeyFile), key); err != nil {
		return err
	}
	if err := os.Rename(certPath+nextSuffix, certPath); err != nil {
		return fmt.Errorf("install certificate: %w", err)
	}
	return nil
}

// RenewAt is when a certificate should be renewed: at a random point
// between 70 and 90 % of its lifetime, as edgecore's rotation deadline.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	frac := 0.7 + 0.2*mrand.Float64()
	return cert.NotBefore.Add(time.Duration(float64(life) * frac))
}

// get sends GET url with body and headers (the certificate service takes a
// body on GET) and returns the answer, which must be 200.
func get(ctx context.Context, c *http.Client, url string, body []byte, h http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(data)))
	}
	return data, nil
}
