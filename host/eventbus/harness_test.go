package eventbus

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/internal/mosquitto"
	"github.com/hashicorp/go-hclog"
)

// waitFor bounds every wait in these tests; it is a hang guard, not a
// speed claim.
const waitFor = 15 * time.Second

// freeAddr returns a loopback address with a port free at the time of the
// call.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startMosquitto runs a real mosquitto on a free loopback port, extra
// config lines appended; Cleanup stops it by PID.
func startMosquitto(tb testing.TB, extra ...string) *mosquitto.Broker {
	tb.Helper()
	mq := mosquitto.New(tb, freeAddr(tb), extra...)
	mq.Start()
	return mq
}

// brokerKinds are the two brokers every end-to-end test runs against.
var brokerKinds = []string{"embedded", "mosquitto"}

// setup is one module under test with its bus and store.
type setup struct {
	tb    testing.TB
	bus   *bus.Bus
	store *store.Store
	cfg   config.EventBus
	addr  string // where MQTT clients connect
	mod   *Module
	stop  func()
	// quiet logs errors only, for a benchmark whose expected WARNs would
	// break its result line.
	quiet bool
	// logs, when set, takes the module's log instead of stderr.
	logs io.Writer
}

var clientSeq atomic.Int64

// newSetup prepares a module for kind: its own embedded broker, or an
// external-mode module on a fresh mosquitto. It does not start it.
func newSetup(tb testing.TB, kind string, change func(*config.EventBus)) *setup {
	tb.Helper()
	st, err := store.Open(filepath.Join(tb.TempDir(), "edgehost.db"), &store.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	b := bus.New(bus.Options{})
	tb.Cleanup(func() { b.Close(); st.Close() })
	s := &setup{tb: tb, bus: b, store: st, cfg: config.Default().Modules.EventBus}
	s.cfg.External.ReconnectMax = 300 * time.Millisecond
	s.cfg.External.ClientID = fmt.Sprintf("edgehost-test-%d-%d", os.Getpid(), clientSeq.Add(1))
	switch kind {
	case "embedded":
		s.addr = freeAddr(tb)
		s.cfg.Mode, s.cfg.Embedded.Address = "embedded", s.addr
	case "mosquitto":
		s.addr = startMosquitto(tb).Addr
		s.cfg.Mode, s.cfg.External.URL = "external", "tcp://"+s.addr
	default:
		tb.Fatalf("unknown broker kind %q", kind)
	}
	if change != nil {
		change(&s.cfg)
	}
	return s
}

// start runs a new Module on the setup's bus and store until the test ends
// or stop is called, and waits for it to be ready and, with an external
// broker, connected.
func (s *setup) start() *Module {
	s.tb.Helper()
	level := hclog.Warn
	if s.quiet {
		level = hclog.Error
	}
	var out io.Writer = os.Stderr
	if s.logs != nil {
		out = s.logs
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: level, Output: out})
	m := New(s.cfg, s.bus, s.store, log)
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- m.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		s.tb.Fatalf("Run: %v", err)
	case <-time.After(waitFor):
		s.tb.Fatal("module not ready")
	}
	var stopped bool
	s.mod = m
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			s.tb.Errorf("Run returned %v", err)
		}
	}
	s.tb.Cleanup(s.stop)
	if s.cfg.Mode == "external" {
		eventually(s.tb, "connected to the external broker", func() bool { return m.Stats().Connected })
	}
	return m
}

// eventually polls cond until it holds or waitFor passes.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// client connects a paho MQTT client to addr.
func client(tb testing.TB, addr string, opts ...func(*paho.ClientOptions)) paho.Client {
	tb.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID(fmt.Sprintf("test-client-%d-%d", os.Getpid(), clientSeq.Add(1))).
		SetAutoReconnect(false).SetConnectTimeout(waitFor)
	for _, f := range opts {
		f(o)
	}
	c := paho.NewClient(o)
	mustToken(tb, c.Connect())
	tb.Cleanup(func() { c.Disconnect(50) })
	return c
}

// mustToken waits for a paho token and fails the test on its error.
func mustToken(tb testing.TB, tok paho.Token) {
	tb.Helper()
	if !tok.WaitTimeout(waitFor) {
		tb.Fatal("paho token timed out")
	}
	if err := tok.Error(); err != nil {
		tb.Fatal(err)
	}
}

// receive takes the next message of a bus endpoint.
func receive(tb testing.TB, ep *bus.Endpoint) abi.Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	m, err := ep.Receive(ctx)
	if err != nil {
		tb.Fatalf("receive on %s: %v", ep.Name(), err)
	}
	return m
}

// register adds a bus module that the test reads from.
func register(tb testing.TB, b *bus.Bus, name, group string) *bus.Endpoint {
	tb.Helper()
	ep, err := b.Register(name, group)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ep.Close)
	return ep
}

// request sends a bus request to the eventbus and checks its reply.
func request(tb testing.TB, b *bus.Bus, op, resource string, content []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	r, err := b.Request(ctx, ModuleName, abi.Message{
		Route:   abi.Route{Source: "test", Group: ModuleGroup, Operation: op, Resource: resource},
		Content: content,
	})
	if err != nil {
		tb.Fatalf("%s %q: %v", op, resource, err)
	}
	if r.Route.Operation != abi.OpResponse || string(r.Content) != "OK" {
		tb.Fatalf("%s %q: reply %s %q", op, resource, r.Route.Operation, r.Content)
	}
}
