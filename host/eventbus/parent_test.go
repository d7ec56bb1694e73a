package eventbus

import (
	"context"
	"testing"
	"time"
)

// TestMultiLevelWildcardMatchesTheParent: a subscription to "a/b/#" gets a
// message published on "a/b" itself, MQTT's rule (3.1.1 section 4.7.1.2),
// on every broker kind, through the module's own Subscribe as plugins use
// it.
func TestMultiLevelWildcardMatchesTheParent(t *testing.T) {
	for _, kind := range brokerKinds {
		t.Run(kind, func(t *testing.T) {
			m := newSetup(t, kind, nil).start()
			got := make(chan string, 4)
			unsub, err := m.Subscribe("test", "a/b/#", func(_ context.Context, topic string, _ []byte) { got <- topic })
			if err != nil {
				t.Fatal(err)
			}
			defer unsub()
			for _, topic := range []string{"a/b", "a/b/c"} {
				deadline := time.Now().Add(10 * time.Second)
				for {
					if err := m.Publish(context.Background(), topic, []byte("x"), 1, false); err != nil {
						t.Fatal(err)
					}
					select {
					case g := <-got:
						if g != topic {
							t.Fatalf("got %q, want %q", g, topic)
						}
					case <-time.After(200 * time.Millisecond):
						if time.Now().After(deadline) {
							t.Fatalf("a/b/# never received %q", topic)
						}
						continue
					}
					break
				}
			}
		})
	}
}

// TestCloudLinkStateIsNotRejected: the cloud link's node/connection news,
// which edgecore's edgehub sends to group bus too, is taken quietly, not
// refused and counted as a bad request at every reconnect.
func TestCloudLinkStateIsNotRejected(t *testing.T) {
	s := newSetup(t, "embedded", nil)
	m := s.start()
	for _, state := range []string{"cloud_connected", "cloud_disconnected"} {
		request(t, s.bus, OpConnect, "node/connection", []byte(state))
	}
	if st := m.Stats(); st.Rejected != 0 {
		t.Fatalf("rejected %d, want 0: %+v", st.Rejected, st)
	}
}
