package cloud

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/hub/certs"
	"github.com/gorilla/websocket"
)

// rig is a Server on loopback and a node certificate for edge-1.
type rig struct {
	srv      *Server
	ws, cert string
	client   *tls.Config
}

func newRig(t *testing.T, opts Options) *rig {
	t.Helper()
	opts.Dir, opts.Hosts = t.TempDir(), []string{"127.0.0.1"}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ws, _ := net.Listen("tcp", "127.0.0.1:0")
	cs, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.ServeWebsocket(ctx, ws) })
	wg.Go(func() { srv.ServeCertificates(ctx, cs) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	dir := filepath.Join(t.TempDir(), "certs")
	if err := certs.Bootstrap(ctx, "https://"+cs.Addr().String(), srv.CA().Token(time.Hour), "edge-1", dir); err != nil {
		t.Fatal(err)
	}
	client, err := certs.LoadClient(dir, "edge-1")
	if err != nil {
		t.Fatal(err)
	}
	return &rig{srv: srv, ws: ws.Addr().String(), cert: cs.Addr().String(), client: client}
}

func (r *rig) dial(node, use string, withCert bool) (*websocket.Conn, *http.Response, error) {
	cfg := r.client.Clone()
	if !withCert {
		cfg.Certificates = nil
	}
	h := http.Header{}
	h.Set("node_id", node)
	h.Set("ConnectionUse", use)
	d := websocket.Dialer{TLSClientConfig: cfg, HandshakeTimeout: 5 * time.Second}
	return d.Dial("wss://"+r.ws+"/p/"+node+"/events", h)
}

func TestLinkRefusals(t *testing.T) {
	r := newRig(t, Options{})
	cases := map[string]struct {
		node, use string
		cert      bool
		status    int
	}{
		"certificate for another node": {"edge-2", "msg", true, http.StatusUnauthorized},
		"ConnectionUse not msg":        {"edge-1", "stream", true, http.StatusBadRequest},
		"no node_id":                   {"", "msg", true, http.StatusBadRequest},
	}
	for name, c := range cases {
		conn, resp, err := r.dial(c.node, c.use, c.cert)
		if err == nil {
			conn.Close()
			t.Errorf("%s: connected", name)
			continue
		}
		if resp == nil || resp.StatusCode != c.status {
			t.Errorf("%s: %v, want HTTP %d", name, err, c.status)
		}
	}
	if conn, _, err := r.dial("edge-1", "msg", false); err == nil {
		conn.Close()
		t.Error("connected without a client certificate")
	}
	conn, _, err := r.dial("edge-1", "msg", true)
	if err != nil {
		t.Fatalf("the right node: %v", err)
	}
	conn.Close()
}

// TestKeepaliveTimeoutEndsSession: a node that sends nothing is dropped
// after the keepalive timeout, as CloudCore's KeepAliveCheck does.
func TestKeepaliveTimeoutEndsSession(t *testing.T) {
	r := newRig(t, Options{KeepaliveTimeout: 300 * time.Millisecond})
	conn, _, err := r.dial("edge-1", "msg", true)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := conn.ReadMessage(); err == nil {
		t.Fatal("read a message from a silent session")
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(r.srv.Nodes()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nodes %v: the silent session was kept", r.srv.Nodes())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestObjectMessage(t *testing.T) {
	for obj, want := range map[string]string{
		`{"kind":"ConfigMap","metadata":{"name":"c","namespace":"ns"}}`: "edgecontroller ns/configmap/c 1",
		`{"kind":"Node","metadata":{"name":"n","resourceVersion":"9"}}`: "edgecontroller null/node/n 9",
		`{"kind":"Device","metadata":{"name":"d"}}`:                     "devicecontroller default/device/d 1",
	} {
		m, err := ObjectMessage([]byte(obj), "update")
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Route.Source + " " + m.Route.Resource + " " + m.Header.ResourceVersion; got != want || m.Route.Group != "resource" {
			t.Errorf("%s: %s (group %s), want %s", obj, got, m.Route.Group, want)
		}
	}
	if _, err := ObjectMessage([]byte(`{"metadata":{}}`), "update"); err == nil {
		t.Error("object without kind accepted")
	}
}
