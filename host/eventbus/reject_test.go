package eventbus

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/host/config"
)

func TestRejectsAndKeepsServing(t *testing.T) {
	for _, kind := range brokerKinds {
		t.Run(kind, func(t *testing.T) {
			s := newSetup(t, kind, func(c *config.EventBus) { c.MaxPayloadBytes = 1024 })
			hub := register(t, s.bus, "websocket", HubGroup)
			twin := register(t, s.bus, "twin", TwinGroup)
			m := s.start()
			ctx := context.Background()

			if err := m.Publish(ctx, "big", make([]byte, 1025), 0, false); !errors.Is(err, ErrPayloadTooLarge) {
				t.Fatalf("oversized Publish = %v", err)
			}
			if err := m.Publish(ctx, "bad/+", nil, 0, false); !errors.Is(err, ErrInvalidTopic) {
				t.Fatalf("wildcard Publish = %v", err)
			}
			if err := m.Publish(ctx, "q2", nil, 2, false); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("qos 2 Publish = %v", err)
			}
			if got := m.Stats().Rejected; got != 3 {
				t.Fatalf("Rejected = %d, want 3", got)
			}

			// A twin payload that is not JSON is not the bridge's to
			// refuse: it goes to the twin, which answers it 400 as
			// edgecore does.
			c := client(t, s.addr)
			mustToken(t, c.Publish("$hw/events/device/default/d/twin/update", 1, false, "{not json"))
			if msg := receive(t, twin); string(msg.Content) != "{not json" || msg.Route.Resource != TwinResource("$hw/events/device/default/d/twin/update") {
				t.Fatalf("twin got %+v %q", msg.Route, msg.Content)
			}

			// An oversized MQTT message from a client: the embedded broker
			// drops it and disconnects that client; from mosquitto the
			// bridge drops it. Both count it.
			big := client(t, s.addr)
			big.Publish("$hw/events/upload/big", 0, false, strings.Repeat("x", 2048)).WaitTimeout(waitFor)
			eventually(t, "the oversized message is counted", func() bool { return m.Stats().Rejected == 4 })

			// Garbage bytes on the MQTT port.
			if conn, err := net.Dial("tcp", s.addr); err == nil {
				conn.Write([]byte("\xff\xff\xff\xff\xffGET / HTTP/1.1\r\n\r\n"))
				conn.Close()
			}

			// The broker and the bridge still serve.
			c2 := client(t, s.addr)
			mustToken(t, c2.Publish("$hw/events/upload/ok", 1, false, "fine"))
			if msg := receive(t, hub); msg.Route.Resource != "$hw/events/upload/ok" {
				t.Fatalf("hub got %+v", msg.Route)
			}
			// The bridge counts a message once the bus has taken it, which
			// may be just after the hub has it.
			eventually(t, "the good messages are counted", func() bool { return m.Stats().Bridged >= 2 })
			if st := m.Stats(); st.Bridged != 2 {
				t.Errorf("stats = %+v, want only the twin message and the good one bridged", st)
			}
		})
	}
}

func TestEmbeddedUsersAndACL(t *testing.T) {
	s := newSetup(t, "embedded", func(c *config.EventBus) {
		c.Embedded.Users = []config.MQTTUser{{Username: "mapper", Password: "pw"}, {Username: "app", Password: "pw2"}}
		c.Embedded.ACL = []config.ACLRule{
			{Username: "mapper", Topic: "$hw/events/device/#", Read: true, Write: true},
			{Topic: "public/#", Read: true},
		}
	})
	s.start()
	cred := func(user, pw string) func(*paho.ClientOptions) {
		return func(o *paho.ClientOptions) { o.SetUsername(user).SetPassword(pw) }
	}
	o := paho.NewClientOptions().AddBroker("tcp://" + s.addr).SetClientID("intruder").SetUsername("mapper").SetPassword("wrong")
	bad := paho.NewClient(o)
	if tok := bad.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() == nil {
		t.Fatal("wrong password accepted")
	}

	mapper := client(t, s.addr, cred("mapper", "pw"))
	app := client(t, s.addr, cred("app", "pw2"))
	// app may read public/# but not the device topics.
	tok := app.Subscribe("$hw/events/device/#", 1, nil)
	mustToken(t, tok)
	if code := tok.(*paho.SubscribeToken).Result()["$hw/events/device/#"]; code != 0x80 {
		t.Fatalf("app subscribed to device topics: code %#x", code)
	}
	got := make(chan string, 1)
	mustToken(t, app.Subscribe("public/#", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }))
	mustToken(t, mapper.Publish("$hw/events/device/default/d/twin/update", 1, false, "{}"))
	if err := s.mod.Publish(context.Background(), "public/news", []byte("hello"), 1, false); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != "hello" {
		t.Fatalf("app got %q", g)
	}
}
