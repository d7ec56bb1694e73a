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
	"net/http"
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
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("bootstrap: generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{
		Country: []string{"CN"}, Organization: []string{NodeOrg}, Locality: []string{"Hangzhou"},
		Province: []string{"Zhejiang"}, CommonName: NodeCNPrefix + node}}, key)
	if err != nil {
		return fmt.Errorf("bootstrap: create CSR: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	verified := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	certDER, err := get(ctx, verified, server+"/edge.crt", csr, http.Header{
		"Authorization": {"Bearer " + jwt}, "NodeName": {node}})
	if err != nil {
		return fmt.Errorf("bootstrap: sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return fmt.Errorf("bootstrap: certificate from %s: %w", server, err)
	}
	if cert.Subject.CommonName != NodeCNPrefix+node {
		return fmt.Errorf("bootstrap: the cloud signed %q, want %q", cert.Subject.CommonName, NodeCNPrefix+node)
	}
	if err := writePEM(filepath.Join(dir, CAFile), "CERTIFICATE", caDER); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, KeyFile), key); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, CertFile), "CERTIFICATE", certDER)
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
