// Package certs holds the cloud link's certificates: the edge's client
// certificate and its bootstrap with a token (Bootstrap, LoadClient), and
// the reference cloud's CA that signs them (CA). The wire details are
// KubeEdge's (kubeedge-contract.md section 1.2): DER bodies, a token
// "hex(sha256(CA DER)).jwt", a CSR for CN=system:node:{node},
// O=system:nodes with an ECDSA P-256 key.
package certs

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The files in a node's certificate dir.
const (
	CAFile   = "ca.crt"
	CertFile = "server.crt"
	KeyFile  = "server.key"
)

// NodeOrg and NodeCNPrefix make a node's certificate subject.
const (
	NodeOrg      = "system:nodes"
	NodeCNPrefix = "system:node:"
)

// ErrNoCert is wrapped by LoadClient's error when there is no usable
// client certificate: missing, expired, or for another node.
var ErrNoCert = errors.New("no usable client certificate")

// LoadClient returns the TLS config for the link from the certificates in
// dir: the CA as the only root, the client certificate and key. A missing
// file, an expired certificate or one whose CN is not
// system:node:{node} is ErrNoCert.
func LoadClient(dir, node string) (*tls.Config, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		// A renewal cut short after the new key replaced the old one: the
		// new certificate waits beside it.
		if next, nerr := tls.LoadX509KeyPair(certPath+nextSuffix, keyPath); nerr == nil {
			if rerr := os.Rename(certPath+nextSuffix, certPath); rerr == nil {
				pair, err = next, nil
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w in %s: %v", ErrNoCert, dir, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoCert, filepath.Join(dir, CertFile), err)
	}
	if leaf.Subject.CommonName != NodeCNPrefix+node {
		return nil, fmt.Errorf("%w: %s is for %q, not %q", ErrNoCert, filepath.Join(dir, CertFile), leaf.Subject.CommonName, NodeCNPrefix+node)
	}
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("%w: %s is valid from %s to %s", ErrNoCert, filepath.Join(dir, CertFile), leaf.NotBefore, leaf.NotAfter)
	}
	pool, err := loadPool(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoCert, err)
	}
	pair.Leaf = leaf
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// loadPool reads a PEM CA file into a pool.
func loadPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// nextSuffix marks a renewed certificate not yet in place.
const nextSuffix = ".next"

// writePEM writes one PEM block to path, mode 0600, atomically and
// durably.
func writePEM(path, typ string, der []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeKey writes an ECDSA key as an "EC PRIVATE KEY" PEM file, as
// edgecore does.
func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	return writePEM(path, "EC PRIVATE KEY", der)
}

// readPEM reads the first PEM block of type typ in path.
func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%s: no %s PEM block", path, typ)
		}
		if b.Type == typ {
			return b.Bytes, nil
		}
	}
}
