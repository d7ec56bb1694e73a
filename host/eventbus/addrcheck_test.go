package eventbus

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/host/config"
)

// A taken broker address fails at once, naming the address, the process
// holding it and mode: external.
func TestCheckEmbeddedAddressTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := config.Default().Modules.EventBus
	cfg.Embedded.Address = l.Addr().String()
	err = CheckEmbeddedAddress(cfg)
	for _, want := range []string{"address " + cfg.Embedded.Address, fmt.Sprintf("(pid %d)", os.Getpid()),
		"modules.eventbus.mode: external", "external.url: tcp://" + cfg.Embedded.Address} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckEmbeddedAddress on a taken port = %v, want it to say %q", err, want)
		}
	}
	cfg.Mode = "external"
	if err := CheckEmbeddedAddress(cfg); err != nil {
		t.Errorf("mode external: %v, want no check of the embedded address", err)
	}
	l.Close()
	cfg.Mode = "embedded"
	if err := CheckEmbeddedAddress(cfg); err != nil {
		t.Errorf("free port: %v", err)
	}
}

// syncBuffer is a log output the test reads while the module writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A connection refused for its credentials is logged: a WARN the first time
// for a username, then at debug.
func TestAuthRefusalsLogged(t *testing.T) {
	s := newSetup(t, "embedded", func(c *config.EventBus) {
		c.Embedded.Users = []config.MQTTUser{{Username: "mapper", Password: "pw"}}
	})
	logs := &syncBuffer{}
	s.logs = logs
	s.start()
	try := func(id, user, pw string) {
		o := paho.NewClientOptions().AddBroker("tcp://" + s.addr).SetClientID(id).SetUsername(user).SetPassword(pw).
			SetConnectRetry(false).SetAutoReconnect(false)
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() == nil {
			c.Disconnect(0)
			t.Fatalf("%s/%s accepted", user, pw)
		}
	}
	for i := range 3 {
		try(fmt.Sprintf("intruder-%d", i), "mapper", "wrong")
	}
	try("ghost-1", "ghost", "pw")
	deadline := time.Now().Add(waitFor)
	for strings.Count(logs.String(), "mqtt connection refused") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
	if n := strings.Count(out, "[WARN]  test.eventbus.broker: mqtt connection refused"); n != 2 {
		t.Fatalf("%d refusal WARNs, want 2 (one per username):\n%s", n, out)
	}
	for _, want := range []string{"reason=\"wrong password\" username=mapper client_id=intruder-0",
		"reason=\"unknown username\" username=ghost client_id=ghost-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
