package hub

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/hub/cloud"
	"github.com/edgehost/edgehost/host/hub/outbox"
	"github.com/edgehost/edgehost/host/store"
	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testCloud is a real reference cloud on loopback ports.
type testCloud struct {
	*cloud.Server
	wsAddr, certAddr string
	cancel           func()
	wg               sync.WaitGroup
}

func startCloud(t testing.TB, dir string, opts cloud.Options) *testCloud {
	t.Helper()
	opts.Dir = dir
	opts.Hosts = []string{"127.0.0.1", "localhost"}
	srv, err := cloud.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &testCloud{Server: srv, wsAddr: ws.Addr().String(), certAddr: cs.Addr().String(), cancel: cancel}
	c.wg.Go(func() { srv.ServeWebsocket(ctx, ws) })
	c.wg.Go(func() { srv.ServeCertificates(ctx, cs) })
	t.Cleanup(c.stop)
	return c
}

func (c *testCloud) stop() {
	c.cancel()
	c.wg.Wait()
}

// next returns the next message a node sent that match accepts.
func (c *testCloud) next(t testing.TB, match func(cloud.Received) bool) cloud.Received {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case r := <-c.Received():
			if match(r) {
				return r
			}
		case <-timeout:
			t.Fatal("no matching message from the edge within 20s")
		}
	}
}

func notKeepalive(r cloud.Received) bool { return r.Message.Route.Operation != abi.OpKeepalive }

// testEdge is a hub module on a real store and bus, with probes in the
// groups it talks to.
type testEdge struct {
	bus    *bus.Bus
	store  *store.Store
	box    *outbox.Outbox
	hub    *Module
	probes map[string]chan abi.Message
	cancel func()
	wg     sync.WaitGroup
}

func testConfig(c *testCloud, dir string) Config {
	return Config{Server: c.wsAddr, NodeName: "edge-1", ProjectID: "e632aba927ea4ac2b575ec1603d56f10",
		CertServer: "https://" + c.certAddr, Token: c.CA().Token(time.Hour), CertDir: filepath.Join(dir, "certs"),
		Heartbeat: 300 * time.Millisecond, ReconnectBase: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		HandshakeTimeout: time.Second}
}

// probeGroups are the bus groups a test edge listens in, with module names.
var probeGroups = map[string]string{"twin": "twin", "meta": "metamanager", "bus": "eventbus", "taskmanager": "taskmanager"}

func startEdge(t testing.TB, dir string, cfg Config, boxOpts ...outbox.Options) *testEdge {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "edgehost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	box, err := outbox.Open(st.Namespace("hub", "outbox"), append(boxOpts, outbox.Options{})[0])
	if err != nil {
		t.Fatal(err)
	}
	e := &testEdge{bus: bus.New(bus.Options{}), store: st, box: box, probes: map[string]chan abi.Message{}}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	for group, name := range probeGroups {
		ep, err := e.bus.Register(name, group)
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan abi.Message, 1024)
		e.probes[group] = ch
		e.wg.Go(func() {
			for {
				m, err := ep.Receive(ctx)
				if err != nil {
					return
				}
				select {
				case ch <- m:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	log := hclog.New(&hclog.LoggerOptions{Output: io.Discard})
	if testing.Verbose() {
		log = hclog.New(&hclog.LoggerOptions{Level: hclog.Debug})
	}
	e.hub = New(e.bus, box, cfg, log)
	ready := make(chan struct{})
	e.wg.Go(func() {
		if err := e.hub.Run(ctx, func() { close(ready) }); err != nil {
			t.Errorf("hub run: %v", err)
		}
	})
	<-ready
	t.Cleanup(e.stop)
	return e
}

func (e *testEdge) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.wg.Wait()
	e.bus.Close()
	e.store.Close()
	e.cancel = nil
}

// expect returns the next message in group's probe that match accepts.
func (e *testEdge) expect(t testing.TB, group string, match func(abi.Message) bool) abi.Message {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-e.probes[group]:
			if match(m) {
				return m
			}
		case <-timeout:
			t.Fatalf("no matching message in group %s within 20s", group)
		}
	}
}

func connEvent(state string) func(abi.Message) bool {
	return func(m abi.Message) bool {
		return m.Route.Resource == ConnectionResource && string(m.Content) == state
	}
}

// send puts an upstream message on the bus for the hub.
func (e *testEdge) send(t testing.TB, m abi.Message) {
	t.Helper()
	if err := e.bus.SendToGroup(context.Background(), Group, m); err != nil {
		t.Fatal(err)
	}
}

// proxy forwards TCP between the edge and the cloud and can stop
// forwarding without closing anything: a half-open link.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	paused bool
	resume chan struct{}
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, resume: make(chan struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(u, c) })
		p.wg.Go(func() { p.pipe(c, u) })
	}
}

// pipe copies src to dst, holding what it read while paused.
func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			dst.Close()
			return
		}
		p.mu.Lock()
		for p.paused {
			ch := p.resume
			p.mu.Unlock()
			<-ch
			p.mu.Lock()
		}
		p.mu.Unlock()
		if _, err := dst.Write(buf[:n]); err != nil {
			src.Close()
			return
		}
	}
}

// pause stops forwarding; connections stay open.
func (p *proxy) pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
}

// heal resumes forwarding and drops the connections that were stalled,
// as a network that comes back finds the old flows reset.
func (p *proxy) heal() {
	p.mu.Lock()
	p.paused = false
	close(p.resume)
	p.resume = make(chan struct{})
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
}

func (p *proxy) close() {
	p.ln.Close()
	p.heal()
	p.wg.Wait()
}
