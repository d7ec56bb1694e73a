//go:build !wasip1

package sdk

import (
	"strconv"
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
	t.Cleanup(func() { hostcall.Current = nil; Handle(nil) })
	f(s)
}

// load writes env into the exchange buffer as the host does.
func load(env []byte) int32 {
	copy(exchangeBuffer(int32(len(env))), env)
	return int32(len(env))
}

// echoRequest is the envelope of a typical request with 256 bytes of
// content.
func echoRequest(t *testing.T) []byte {
	t.Helper()
	m := abi.Message{Header: abi.Header{ID: "0b3c4b1e-4a52-4f0e-9d7c-2f1c8a1d2e3f", Timestamp: 1},
		Route: abi.Route{Source: "app", Group: "user", Operation: "query", Resource: "echo/a"}, Content: make([]byte, 256)}
	env, err := abi.Append(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestHandlePathAllocations checks that the handle path allocates nothing
// for a handler that replies with a view of its request, or, through a
// ReplyWriter, with a copy of it or with content it builds: in a Go wasm
// plugin each allocated byte costs about as much as a whole call (garbage
// collection without background workers). The path is the whole of
// edgehost_handle but for the export's packing of the result.
func TestHandlePathAllocations(t *testing.T) {
	env := echoRequest(t)
	replyLen := len(env) - len("query") + len(abi.OpResponse)
	cases := []struct {
		name     string
		register func()
		len      int
	}{
		{"HandlerFunc, m.Reply(m.Content)", func() {
			Handle(func(m *Message) (*Message, error) { return m.Reply(m.Content), nil })
		}, replyLen},
		{"ReplyHandlerFunc, w.Write(m.Content)", func() {
			HandleReply(func(m *Message, w *ReplyWriter) error {
				w.Write(m.Content)
				return nil
			})
		}, replyLen},
		{"ReplyHandlerFunc, content built with AvailableBuffer", func() {
			HandleReply(func(m *Message, w *ReplyWriter) error {
				w.WriteString(`{"bytes":`)
				w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(len(m.Content)), 10))
				w.WriteString("}")
				w.SetOperation(abi.OpUpdate)
				return nil
			})
		}, replyLen - 256 + len(`{"bytes":256}`) - len(abi.OpResponse) + len(abi.OpUpdate)},
		{"ReplyHandlerFunc, route and version set", func() {
			HandleReply(func(m *Message, w *ReplyWriter) error {
				w.SetRoute(Route{Group: "twin", Operation: abi.OpUpdate, Resource: "device/d1"})
				w.SetResourceVersion("7")
				return nil
			})
		}, replyLen - 256 - len("app"+"user"+abi.OpResponse+"echo/a") + len("7"+"twin"+abi.OpUpdate+"device/d1")},
	}
	withStub(t, func(*stubHost) {
		n := load(env)
		for _, c := range cases {
			c.register()
			allocs := testing.AllocsPerRun(1000, func() {
				if r, code := handleMessage(n); code != abi.OK || len(r) != c.len {
					t.Fatalf("%s: %d bytes, code %v, want %d bytes", c.name, len(r), code, c.len)
				}
			})
			t.Logf("%s: %.1f allocations per call", c.name, allocs)
			if allocs != 0 {
				t.Errorf("%s: %.1f allocations per call, want none", c.name, allocs)
			}
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
