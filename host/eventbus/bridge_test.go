package eventbus

import (
	"context"
	"errors"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/abi"
)

func TestBridge(t *testing.T) {
	for _, kind := range brokerKinds {
		t.Run(kind, func(t *testing.T) {
			s := newSetup(t, kind, nil)
			twin := register(t, s.bus, "twin", TwinGroup)
			hub := register(t, s.bus, "websocket", HubGroup)
			s.start()
			c := client(t, s.addr)

			// The twin's own result is not bridged back: the first twin
			// message is the update published after it.
			base := "$hw/events/device/default/dev1/twin/update"
			mustToken(t, c.Publish(base+"/result", 1, false, `{"event_id":"r"}`))
			update := `{"event_id":"e1","timestamp":1700000000000,"twin":{"temp":{"actual":{"value":"21"},"metadata":{"type":"Updated"}}}}`
			mustToken(t, c.Publish(base, 1, false, update))
			m := receive(t, twin)
			want := abi.Route{Source: "bus", Group: "user", Operation: "response", Resource: TwinResource(base)}
			if m.Route != want || string(m.Content) != update {
				t.Fatalf("twin got %+v %q, want %+v %q", m.Route, m.Content, want, update)
			}
			if topic, _ := TopicOfTwinResource(m.Route.Resource); topic != base {
				t.Fatalf("resource decodes to %q", topic)
			}

			// Single-level device ids (KubeEdge before v1.13) reach the
			// twin too, which answers them; their results do not come back.
			for _, topic := range []string{"$hw/events/device/thermo-0/twin/update", "$hw/events/device/thermo-0/state/update"} {
				mustToken(t, c.Publish(topic+"/result", 1, false, `{"event_id":"r"}`))
				mustToken(t, c.Publish(topic, 1, false, `{"event_id":"s"}`))
				if m := receive(t, twin); m.Route.Resource != TwinResource(topic) {
					t.Fatalf("twin got %+v, want the message on %s", m.Route, topic)
				}
			}

			for _, topic := range []string{"$hw/events/upload/records", "tenant/user/app/temp", "SYS/dis/upload_records"} {
				mustToken(t, c.Publish(topic, 1, false, "data of "+topic))
				m = receive(t, hub)
				want = abi.Route{Source: "bus", Group: "user", Operation: "upload", Resource: topic}
				if m.Route != want || string(m.Content) != "data of "+topic {
					t.Fatalf("hub got %+v %q, want %+v", m.Route, m.Content, want)
				}
			}

			// Downstream: a bus publish reaches an MQTT subscriber.
			got := make(chan paho.Message, 1)
			mustToken(t, c.Subscribe(base+"/result", 1, func(_ paho.Client, msg paho.Message) { got <- msg }))
			request(t, s.bus, abi.OpPublish, base+"/result", []byte(`{"event_id":"e1"}`))
			msg := <-got
			if msg.Topic() != base+"/result" || string(msg.Payload()) != `{"event_id":"e1"}` {
				t.Fatalf("subscriber got %q %q", msg.Topic(), msg.Payload())
			}
			// The bridge counts a message once the bus has taken it, which
			// may be just after the module has it.
			eventually(t, "the six messages are counted", func() bool { return s.mod.Stats().Bridged >= 6 })
			if st := s.mod.Stats(); st.Bridged != 6 || st.Published < 1 {
				t.Errorf("stats = %+v, want 6 bridged and a publish", st)
			}
		})
	}
}

func TestSubscribePersistedAcrossRestart(t *testing.T) {
	for _, kind := range brokerKinds {
		t.Run(kind, func(t *testing.T) {
			s := newSetup(t, kind, nil)
			hub := register(t, s.bus, "websocket", HubGroup)
			s.start()
			request(t, s.bus, abi.OpSubscribe, "plant/+/alarm", nil)
			c := client(t, s.addr)
			mustToken(t, c.Publish("plant/p1/alarm", 1, false, "hot"))
			if m := receive(t, hub); m.Route.Resource != "plant/p1/alarm" || string(m.Content) != "hot" {
				t.Fatalf("hub got %+v %q", m.Route, m.Content)
			}

			s.stop()
			s.start() // same bus and store: the subscription comes back
			c = client(t, s.addr)
			mustToken(t, c.Publish("plant/p2/alarm", 1, false, "hotter"))
			m := receive(t, hub)
			if string(m.Content) == "hot" {
				// QoS 1 is at least once: mosquitto redelivers the first
				// message when the stop came before its acknowledgement.
				m = receive(t, hub)
			}
			if m.Route.Resource != "plant/p2/alarm" || string(m.Content) != "hotter" {
				t.Fatalf("after restart hub got %+v %q", m.Route, m.Content)
			}

			request(t, s.bus, OpUnsubscribe, "plant/+/alarm", nil)
			s.stop()
			s.start()
			if got, err := s.mod.loadTopics(); err != nil || len(got) != 0 {
				t.Fatalf("persisted after unsubscribe: %q, %v", got, err)
			}
		})
	}
}

func TestAPIPublishSubscribe(t *testing.T) {
	for _, kind := range brokerKinds {
		t.Run(kind, func(t *testing.T) {
			s := newSetup(t, kind, nil)
			m := s.start()
			got := make(chan string, 4)
			unsub, err := m.Subscribe("test", "app/+/cmd", func(_ context.Context, topic string, payload []byte) { got <- topic + "=" + string(payload) })
			if err != nil {
				t.Fatal(err)
			}
			c := client(t, s.addr)
			mustToken(t, c.Publish("app/a1/cmd", 1, false, "on"))
			if g := <-got; g != "app/a1/cmd=on" {
				t.Fatalf("handler got %q", g)
			}

			ext := make(chan string, 1)
			mustToken(t, c.Subscribe("out/#", 1, func(_ paho.Client, msg paho.Message) { ext <- msg.Topic() + "=" + string(msg.Payload()) }))
			for _, qos := range []byte{0, 1} {
				if err := m.Publish(context.Background(), "out/x", []byte("v"), qos, false); err != nil {
					t.Fatalf("Publish qos %d: %v", qos, err)
				}
				if g := <-ext; g != "out/x=v" {
					t.Fatalf("subscriber got %q", g)
				}
			}
			unsub()
			unsub()
			// After unsubscribing, the handler sees nothing: a message on
			// a still-subscribed topic, published after, is the barrier.
			barrier := make(chan struct{}, 1)
			if _, err := m.Subscribe("test", "barrier", func(context.Context, string, []byte) { barrier <- struct{}{} }); err != nil {
				t.Fatal(err)
			}
			mustToken(t, c.Publish("app/a2/cmd", 1, false, "off"))
			mustToken(t, c.Publish("barrier", 1, false, "b"))
			<-barrier
			if len(got) != 0 {
				t.Fatalf("handler called after unsubscribe: %q", <-got)
			}
			if err := m.Publish(context.Background(), "a/+", nil, 0, false); !errors.Is(err, ErrInvalidTopic) {
				t.Fatalf("Publish on a wildcard = %v", err)
			}
			if _, err := m.Subscribe("test", "a/#/b", func(context.Context, string, []byte) {}); !errors.Is(err, ErrInvalidTopic) {
				t.Fatalf("Subscribe bad filter = %v", err)
			}
		})
	}
}

func TestNoModuleIsCountedNotFatal(t *testing.T) {
	s := newSetup(t, "embedded", nil)
	m := s.start()
	c := client(t, s.addr)
	mustToken(t, c.Publish("$hw/events/device/default/d/twin/get", 1, false, `{"event_id":"g"}`))
	eventually(t, "the unroutable message is counted", func() bool { return m.Stats().Unrouted == 1 })
	if s.bus.Stats().NoModule == 0 {
		t.Error("bus did not count ErrNoModule")
	}
	hub := register(t, s.bus, "websocket", HubGroup)
	mustToken(t, c.Publish("$hw/events/upload/x", 1, false, "after"))
	if msg := receive(t, hub); string(msg.Content) != "after" {
		t.Fatalf("hub got %q", msg.Content)
	}
}
