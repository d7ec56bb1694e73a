package bus

import (
	"context"
	"errors"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/edgehost/edgehost/abi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// responder runs a module loop that answers every request with its content
// prefixed by the module's name, until the bus or module closes. The
// Respond may meet ErrClosed when the bus closes meanwhile. The
// returned func waits for the loop to end.
func responder(t testing.TB, b *Bus, ep *Endpoint) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			m, err := ep.Receive(context.Background())
			if err != nil {
				return
			}
			content := append([]byte(ep.Name()+":"), m.Content...)
			if err := b.Respond(m.Reply(abi.OpResponse, content)); err != nil && !errors.Is(err, ErrClosed) {
				t.Errorf("respond: %v", err)
			}
		}
	})
	return wg.Wait
}

func mustRegister(t testing.TB, b *Bus, name, group string) *Endpoint {
	t.Helper()
	ep, err := b.Register(name, group)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}
