package eventbus

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/internal/mosquitto"
)

// counter collects the distinct payloads a subscriber saw.
type counter struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (c *counter) handler(_ paho.Client, m paho.Message) {
	c.mu.Lock()
	c.seen[string(m.Payload())] = true
	c.mu.Unlock()
}

func (c *counter) has(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range n {
		if !c.seen[fmt.Sprint(i)] {
			return false
		}
	}
	return true
}

// passwd writes a mosquitto password file with one user.
func passwd(t *testing.T, file, user, pw string) {
	t.Helper()
	if out, err := exec.Command("mosquitto_passwd", "-c", "-b", file, user, pw).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
}

// TestExternalRestartQueuesAndDelivers kills mosquitto mid-stream, publishes
// QoS 1 while it is down, and checks that every queued message arrives at a
// subscriber once it is back. To make the order deterministic, mosquitto
// comes back refusing the eventbus's credentials until the subscriber is in
// place, then reloads (SIGHUP) a password file that lets the eventbus in.
func TestExternalRestartQueuesAndDelivers(t *testing.T) {
	mosquitto.Path(t)
	if _, err := exec.LookPath("mosquitto_passwd"); err != nil {
		t.Skip("mosquitto_passwd not installed")
	}
	pwfile := filepath.Join(t.TempDir(), "passwd")
	passwd(t, pwfile, "edge", "pw")
	mq := startMosquitto(t, "password_file "+pwfile)
	s := newSetup(t, "embedded", nil) // replaced below: external to this mosquitto
	s.cfg.Mode, s.cfg.External.URL = "external", "tcp://"+mq.Addr
	s.cfg.External.Username, s.cfg.External.Password = "edge", "pw"
	m := s.start()
	ctx := context.Background()

	const before, during = 20, 30
	got := &counter{seen: map[string]bool{}}
	sub := client(t, mq.Addr)
	mustToken(t, sub.Subscribe("stream/#", 1, got.handler))
	for i := range before {
		if err := m.Publish(ctx, "stream/a", []byte(fmt.Sprint(i)), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the first messages arrive", func() bool { return got.has(before) })

	mq.Kill()
	eventually(t, "the eventbus notices the broker is gone", func() bool { return !m.Stats().Connected })
	for i := before; i < before+during; i++ {
		if err := m.Publish(ctx, "stream/b", []byte(fmt.Sprint(i)), 1, false); err != nil {
			t.Fatalf("publish %d while down: %v", i, err)
		}
	}
	if st := m.Stats(); st.QueueDepth != during || st.Queued < during {
		t.Fatalf("stats while down = %+v, want %d queued", st, during)
	}

	passwd(t, pwfile, "edge", "not-yet")
	mq.Start()
	sub2 := client(t, mq.Addr) // mosquitto forgot the old session (persistence false)
	mustToken(t, sub2.Subscribe("stream/#", 1, got.handler))
	if m.Stats().Connected {
		t.Fatal("eventbus connected with refused credentials")
	}
	passwd(t, pwfile, "edge", "pw")
	mq.Reload()

	eventually(t, "every queued message arrives", func() bool { return got.has(before + during) })
	st := m.Stats()
	if st.QueueDepth != 0 || st.Reconnects < 1 || st.Published < before+during {
		t.Fatalf("stats after = %+v", st)
	}
}

func TestExternalQueueFull(t *testing.T) {
	s := newSetup(t, "embedded", nil)
	// Nothing listens there: the broker is down from the start.
	s.cfg.Mode, s.cfg.External.URL, s.cfg.External.QueueLen = "external", "tcp://"+freeAddr(t), 3
	m := New(s.cfg, s.bus, s.store, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- m.Run(ctx, func() { close(ready) }) }()
	<-ready
	defer func() { cancel(); <-done }()

	for i := range 3 {
		if err := m.Publish(ctx, "q", []byte{byte(i)}, 1, false); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	err := m.Publish(ctx, "q", []byte{3}, 0, false)
	if !errors.Is(err, ErrQueueFull) || !strings.Contains(err.Error(), "3 publishes waiting") {
		t.Fatalf("fourth publish = %v, want ErrQueueFull", err)
	}
	if st := m.Stats(); st.QueueFull != 1 || st.Rejected != 1 || st.QueueDepth != 3 || st.Connected {
		t.Fatalf("stats = %+v", st)
	}
}

func TestModeBoth(t *testing.T) {
	mq := startMosquitto(t)
	s := newSetup(t, "embedded", func(c *config.EventBus) { c.Mode = "both" })
	s.cfg.External.URL = "tcp://" + mq.Addr
	hub := register(t, s.bus, "websocket", HubGroup)
	m := s.start()
	eventually(t, "connected to mosquitto", func() bool { return m.Stats().Connected })
	for _, addr := range []string{s.addr, mq.Addr} {
		c := client(t, addr)
		mustToken(t, c.Publish("$hw/events/upload/from", 1, false, addr))
		if msg := receive(t, hub); string(msg.Content) != addr {
			t.Fatalf("hub got %q, want the message from %s", msg.Content, addr)
		}
	}
}
