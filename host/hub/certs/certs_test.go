package certs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/hub/certs"
	"github.com/edgehost/edgehost/host/hub/cloud"
)

// certServer runs the reference cloud's certificate service and returns
// its URL and CA.
func certServer(t *testing.T) (string, *certs.CA) {
	t.Helper()
	srv, err := cloud.New(cloud.Options{Dir: t.TempDir(), Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeCertificates(ctx, ln)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "https://" + ln.Addr().String(), srv.CA()
}

func TestBootstrap(t *testing.T) {
	url, ca := certServer(t)
	dir := t.TempDir()
	ctx := context.Background()
	if err := certs.Bootstrap(ctx, url, ca.Token(time.Hour), "edge-1", dir); err != nil {
		t.Fatal(err)
	}
	cfg, err := certs.LoadClient(dir, "edge-1")
	if err != nil {
		t.Fatal(err)
	}
	leaf := cfg.Certificates[0].Leaf
	if leaf.Subject.CommonName != "system:node:edge-1" || leaf.Subject.Organization[0] != "system:nodes" ||
		leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("certificate %s, EKU %v", leaf.Subject, leaf.ExtKeyUsage)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("key %T, want ECDSA", leaf.PublicKey)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: cfg.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("certificate does not verify against the stored CA: %v", err)
	}
	if _, err := certs.LoadClient(dir, "edge-2"); !errors.Is(err, certs.ErrNoCert) {
		t.Errorf("certificate for another node: %v, want ErrNoCert", err)
	}
}

func TestBootstrapRefusals(t *testing.T) {
	url, ca := certServer(t)
	ctx := context.Background()
	good := ca.Token(time.Hour)
	hash, jwt, _ := certs.SplitToken(good)
	parts := strings.Split(jwt, ".")
	cases := map[string]struct {
		token string
		want  string
	}{
		"wrong CA hash": {strings.Repeat("a", 64) + "." + jwt, "bad bootstrap token"},
		"three parts":   {jwt, "want 4 dot-separated parts"},
		"forged":        {hash + "." + parts[0] + "." + parts[1] + ".AAAA", "401"},
		"expired":       {ca.Token(-time.Minute), "token expired"},
		"hash not hex":  {strings.Repeat("z", 64) + "." + jwt, "the CA's hex sha256"},
	}
	for name, c := range cases {
		dir := t.TempDir()
		err := certs.Bootstrap(ctx, url, c.token, "edge-1", dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
		if _, err := os.Stat(filepath.Join(dir, certs.CertFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a certificate was written", name)
		}
	}
}

func TestSignNodeChecksSubject(t *testing.T) {
	ca, err := certs.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := func(cn, org string) []byte {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: []string{org}}}, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	if _, err := ca.SignNode(csr("system:node:a", "system:nodes"), "a", time.Hour); err != nil {
		t.Fatalf("good CSR: %v", err)
	}
	for name, c := range map[string]struct {
		der  []byte
		node string
	}{
		"other org":      {csr("system:node:a", "KubeEdge"), "a"},
		"not a node":     {csr("admin", "system:nodes"), ""},
		"header differs": {csr("system:node:a", "system:nodes"), "b"},
	} {
		if _, err := ca.SignNode(c.der, c.node, time.Hour); !errors.Is(err, certs.ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", name, err)
		}
	}
	if _, err := ca.SignNode([]byte("junk"), "", time.Hour); err == nil || !strings.Contains(err.Error(), "parse CSR") {
		t.Errorf("junk CSR: %v", err)
	}
}

func TestCAIsKeptAcrossLoads(t *testing.T) {
	dir := t.TempDir()
	a, err := certs.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := certs.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.DER()) != string(b.DER()) {
		t.Fatal("a second load made a new CA")
	}
	_, jwt, _ := certs.SplitToken(a.Token(time.Hour))
	if err := b.CheckToken(jwt); err != nil {
		t.Errorf("token of the first load refused by the second: %v", err)
	}
	for _, name := range []string{certs.CAFile, certs.CAKeyFile, certs.SecretFile} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", name, err, fi.Mode())
		}
	}
}

func FuzzCheckToken(f *testing.F) {
	ca, err := certs.LoadOrCreateCA(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	_, jwt, _ := certs.SplitToken(ca.Token(time.Hour))
	f.Add(jwt)
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		if token == jwt {
			return
		}
		if err := ca.CheckToken(token); err == nil {
			t.Fatalf("token %q accepted", token)
		}
	})
}

// TestLoadClientFinishesACutRenewal: a renewal that stopped after the new
// key replaced the old one is completed by the next load.
func TestLoadClientFinishesACutRenewal(t *testing.T) {
	url, ca := certServer(t)
	dir := t.TempDir()
	ctx := context.Background()
	if err := certs.Bootstrap(ctx, url, ca.Token(time.Hour), "edge-1", dir); err != nil {
		t.Fatal(err)
	}
	cfg, err := certs.LoadClient(dir, "edge-1")
	if err != nil {
		t.Fatal(err)
	}
	oldCert, _ := os.ReadFile(filepath.Join(dir, certs.CertFile))
	if err := certs.Renew(ctx, url, "edge-1", dir, cfg); err != nil {
		t.Fatal(err)
	}
	// Roll back to the state just before the last rename.
	cert := filepath.Join(dir, certs.CertFile)
	if err := os.Rename(cert, cert+".next"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, oldCert, 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := certs.LoadClient(dir, "edge-1")
	if err != nil {
		t.Fatalf("load after a cut renewal: %v", err)
	}
	if again.Certificates[0].Leaf.SerialNumber.Cmp(cfg.Certificates[0].Leaf.SerialNumber) == 0 {
		t.Error("the old certificate was kept")
	}
	if _, err := os.Stat(cert + ".next"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the renewed certificate was not put in place: %v", err)
	}
}
