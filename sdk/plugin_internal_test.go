//go:build !wasip1

package sdk

import (
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk/internal/hostcall"
)

// stubHost serves only log and now; other imports would panic.
type stubHost struct {
	hostcall.Host
	logs []string
}

func (s *stubHost) Log(_ int32, msg string) { s.logs = append(s.logs, msg) }

func (s *stubHost) Now() int64 { return 1 }

// withStub runs f with a stub host installed.
func withStub(t *testing.T, f func(s *stubHost)) {
	s := &stubHost{}
	hostcall.Current = s
	t.Cleanup(func() { hostcall.Current = nil; handler = nil })
	f(s)
}

// load writes env into the exchange buffer as the host does.
func load(env []byte) int32 {
	copy(exchangeBuffer(int32(len(env))), env)
	return int32(len(env))
}

// TestEchoPathAllocations checks that the handle path of an echo allocates
// nothing: in a Go wasm plugin each allocated byte costs about as much as a
// whole call (garbage collection without background workers).
func TestEchoPathAllocations(t *testing.T) {
	withStub(t, func(*stubHost) {
		Handle(func(m *Message) (*Message, error) { return m.Reply(m.Content), nil })
		m := abi.Message{Header: abi.Header{ID: "0b3c4b1e-4a52-4f0e-9d7c-2f1c8a1d2e3f", Timestamp: 1},
			Route: abi.Route{Source: "app", Group: "user", Operation: "query", Resource: "echo/a"}, Content: make([]byte, 256)}
		env, err := abi.Append(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		n := load(env)
		allocs := testing.AllocsPerRun(1000, func() {
			if r, code := handleMessage(n); code != abi.OK || len(r) != len(env)-len("query")+len(abi.OpResponse) {
				t.Fatalf("handle: %d bytes, code %v", len(r), code)
			}
		})
		t.Logf("%.1f allocations per call", allocs)
		if allocs != 0 {
			t.Errorf("%.1f allocations per call, want none", allocs)
		}
	})
}

func TestHandleRefusesBadInput(t *testing.T) {
	withStub(t, func(s *stubHost) {
		Handle(func(m *Message) (*Message, error) { return m, nil })
		if _, code := handleMessage(load([]byte{2, 0, 0})); code != abi.Malformed {
			t.Errorf("malformed envelope: code %v", code)
		}
		if len(s.logs) != 1 {
			t.Errorf("logs = %q", s.logs)
		}
		if _, code := handleMessage(int32(len(exchange) + 1)); code != abi.InvalidArgument {
			t.Errorf("length past the buffer: code %v", code)
		}
		if exchangeBuffer(-1) != nil {
			t.Error("negative buffer size")
		}
	})
}
