package eventbus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/host/config"
)

// connectPacket is an MQTT 3.1.1 CONNECT with a clean session, a 60 s
// keepalive and an empty client id (the broker assigns one).
var connectPacket = []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 0}

// The daemon closes the embedded broker on shutdown while clients may be
// connecting. Close returns, even with a connection that never sent CONNECT,
// and (under -race) does not race with the connections being set up.
func TestEmbeddedCloseWhileClientsConnect(t *testing.T) {
	s := newSetup(t, "embedded", nil)
	s.start()

	idle, err := net.Dial("tcp", s.addr) // connected, never sends CONNECT
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	quit := make(chan struct{})
	var dialed atomic.Int64
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-quit:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", s.addr, waitFor)
				if err != nil {
					continue // the broker is closing or closed
				}
				dialed.Add(1)
				if i%2 == 0 { // half go on to a full CONNECT and its CONNACK
					c.SetDeadline(time.Now().Add(waitFor))
					if _, err := c.Write(connectPacket); err == nil {
						c.Read(make([]byte, 4))
					}
				}
				c.Close()
			}
		})
	}
	defer func() { close(quit); wg.Wait() }()
	eventually(t, "clients are connecting", func() bool { return dialed.Load() >= 20 })

	closed := make(chan struct{})
	go func() { s.stop(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(waitFor):
		idle.Close() // let the broker finish closing before the test ends
		<-closed
		t.Fatal("closing the broker waited on a connection that never sent CONNECT")
	}
	if c, err := net.Dial("tcp", s.addr); err == nil {
		c.Close()
		t.Error("the broker still accepts connections after Close")
	}
}

// The embedded broker serves MQTT over TLS with the configured certificate,
// and closes with a connection that never finished its TLS handshake.
func TestEmbeddedTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	s := newSetup(t, "embedded", func(c *config.EventBus) {
		c.Embedded.TLS = &config.TLSFiles{CertFile: certFile, KeyFile: keyFile}
	})
	hub := register(t, s.bus, "websocket", HubGroup)
	s.start()

	c := client(t, s.addr, func(o *paho.ClientOptions) {
		o.Servers = nil
		o.AddBroker("tls://" + s.addr).SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	})
	mustToken(t, c.Publish("$hw/events/upload/tls", 1, false, "sealed"))
	if m := receive(t, hub); m.Route.Resource != "$hw/events/upload/tls" || string(m.Content) != "sealed" {
		t.Fatalf("hub got %+v %q", m.Route, m.Content)
	}

	idle, err := net.Dial("tcp", s.addr) // no TLS handshake
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	closed := make(chan struct{})
	go func() { s.stop(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(waitFor):
		idle.Close()
		<-closed
		t.Fatal("closing the broker waited on a connection that never finished its TLS handshake")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their files and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
