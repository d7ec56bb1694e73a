package pluginhost

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/store"
	"github.com/hashicorp/go-hclog"
)

// The MQTT tests run against the embedded broker and a real mosquitto, as
// the eventbus's own tests do (host/eventbus/harness_test.go).

// mqttWait bounds every wait of the MQTT tests: a hang guard, not a speed
// claim.
const mqttWait = 15 * time.Second

// brokerKinds are the two brokers every MQTT end-to-end test runs against.
var brokerKinds = []string{"embedded", "mosquitto"}

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

// startMosquitto runs mosquitto on a free loopback port with a temporary
// config and returns its address; cleanup kills it by PID. It skips when
// mosquitto is missing, except under CI=true, where that is a failure.
func startMosquitto(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/mosquitto"); statErr == nil {
			bin = "/usr/sbin/mosquitto"
		} else if os.Getenv("CI") == "true" {
			tb.Fatal("mosquitto is not installed and CI=true: run scripts/deps.sh")
		} else {
			tb.Skip("mosquitto is not installed (scripts/deps.sh installs it)")
		}
	}
	addr := freeAddr(tb)
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(tb.TempDir(), "mosquitto.conf")
	lines := []string{"listener " + port + " 127.0.0.1", "allow_anonymous true", "persistence false", "user root"}
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	deadline := time.Now().Add(mqttWait)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-done:
			tb.Fatalf("mosquitto exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mosquitto did not listen on %s: %s", addr, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var clientSeq atomic.Int64

// startEventBus returns a func for startHostWith that runs an eventbus on
// the host's bus and store: the embedded broker on a free port, or a client
// of a fresh mosquitto. *addr is where MQTT clients connect.
func startEventBus(tb testing.TB, kind string, addr *string) func(*bus.Bus, *store.Store) (EventBus, func()) {
	return func(b *bus.Bus, st *store.Store) (EventBus, func()) {
		tb.Helper()
		cfg := config.Default().Modules.EventBus
		cfg.QoS = 0
		switch kind {
		case "embedded":
			*addr = freeAddr(tb)
			cfg.Mode, cfg.Embedded.Address = "embedded", *addr
		case "mosquitto":
			*addr = startMosquitto(tb)
			cfg.Mode, cfg.External.URL = "external", "tcp://"+*addr
			cfg.External.ReconnectMax = 300 * time.Millisecond
			cfg.External.ClientID = fmt.Sprintf("edgehost-pluginhost-test-%d-%d", os.Getpid(), clientSeq.Add(1))
		default:
			tb.Fatalf("unknown broker kind %q", kind)
		}
		log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Warn, Output: os.Stderr})
		m := eventbus.New(cfg, b, st, log)
		ctx, cancel := context.WithCancel(context.Background())
		ready, done := make(chan struct{}), make(chan error, 1)
		go func() { done <- m.Run(ctx, func() { close(ready) }) }()
		select {
		case <-ready:
		case err := <-done:
			tb.Fatalf("eventbus Run: %v", err)
		case <-time.After(mqttWait):
			tb.Fatal("eventbus not ready")
		}
		stop := func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("eventbus Run returned %v", err)
			}
		}
		if kind == "mosquitto" {
			eventuallyTrue(tb, "connected to mosquitto", func() bool { return m.Stats().Connected })
		}
		return m, stop
	}
}

// eventuallyTrue polls cond until it holds or mqttWait passes.
func eventuallyTrue(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(mqttWait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mqttClient connects a paho client to addr.
func mqttClient(tb testing.TB, addr string) paho.Client {
	tb.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).
		SetClientID(fmt.Sprintf("pluginhost-test-%d-%d", os.Getpid(), clientSeq.Add(1))).
		SetAutoReconnect(false).SetConnectTimeout(mqttWait)
	c := paho.NewClient(o)
	mustToken(tb, c.Connect())
	tb.Cleanup(func() { c.Disconnect(50) })
	return c
}

// mustToken waits for a paho token and fails the test on its error.
func mustToken(tb testing.TB, tok paho.Token) {
	tb.Helper()
	if !tok.WaitTimeout(mqttWait) {
		tb.Fatal("paho token timed out")
	}
	if err := tok.Error(); err != nil {
		tb.Fatal(err)
	}
}
