//go:build !wasip1

package sdk_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/sdktest"
)

func request(content string) *sdk.Message {
	return &sdk.Message{
		Header:  sdk.Header{ID: "req-1", Sync: true, Timestamp: 1700000000000},
		Route:   sdk.Route{Source: "app", Group: "user", Operation: "query", Resource: "demo/x"},
		Content: []byte(content),
	}
}

func TestReplyIsCompletedLikeTheHostDoes(t *testing.T) {
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) { return m.Reply(m.Content), nil })
	h := sdktest.New()
	h.Clock = func() time.Time { return time.UnixMilli(1800000000000) }
	seen := map[string]bool{}
	for range 50 {
		r, err := h.Call(request("hi"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Header.ID == "" || r.Header.ID == "req-1" || seen[r.Header.ID] {
			t.Fatalf("reply ID %q is not fresh", r.Header.ID)
		}
		seen[r.Header.ID] = true
		if r.Header.ParentID != "req-1" || r.Header.Sync || r.Header.Timestamp != 1800000000000 {
			t.Fatalf("reply header = %+v", r.Header)
		}
		if r.Route != (sdk.Route{Source: "app", Group: "user", Operation: abi.OpResponse, Resource: "demo/x"}) ||
			string(r.Content) != "hi" {
			t.Fatalf("reply = %+v", r)
		}
	}
}

func TestHandlerOutcomes(t *testing.T) {
	h := sdktest.New()
	cases := []struct {
		name    string
		handler sdk.HandlerFunc
		check   func(t *testing.T, r *sdk.Message, err error)
	}{
		{"error becomes an error reply", func(*sdk.Message) (*sdk.Message, error) {
			return nil, errors.New("device offline")
		}, func(t *testing.T, r *sdk.Message, err error) {
			if err != nil || r.Route.Operation != abi.OpError || string(r.Content) != "device offline" ||
				r.Header.ParentID != "req-1" || r.Route.Resource != "demo/x" {
				t.Fatalf("reply %+v, err %v", r, err)
			}
		}},
		{"a bare code fails the call", func(*sdk.Message) (*sdk.Message, error) {
			return nil, abi.NoHandler
		}, func(t *testing.T, r *sdk.Message, err error) {
			if r != nil || !errors.Is(err, abi.NoHandler) {
				t.Fatalf("reply %+v, err %v", r, err)
			}
		}},
		{"nil, nil is no reply", func(*sdk.Message) (*sdk.Message, error) {
			return nil, nil
		}, func(t *testing.T, r *sdk.Message, err error) {
			if r != nil || err != nil {
				t.Fatalf("reply %+v, err %v", r, err)
			}
		}},
		{"a panic traps", func(*sdk.Message) (*sdk.Message, error) {
			if err := sdk.KVPut("k", []byte("v")); err != nil {
				return nil, err
			}
			panic("boom")
		}, func(t *testing.T, r *sdk.Message, err error) {
			if r != nil || !errors.Is(err, sdktest.ErrTrap) || !strings.Contains(err.Error(), "boom") {
				t.Fatalf("reply %+v, err %v", r, err)
			}
			if _, ok := h.KV["k"]; ok {
				t.Fatal("a trapped call's KV write was committed")
			}
		}},
		{"the request itself may be the reply", func(m *sdk.Message) (*sdk.Message, error) {
			m.Route.Operation = abi.OpResponse
			return m, nil
		}, func(t *testing.T, r *sdk.Message, err error) {
			if err != nil || r.Header.ParentID != "req-1" || r.Header.ID == "req-1" || r.Header.Sync ||
				r.Header.Timestamp != 1700000000000 || string(r.Content) != "hello" {
				t.Fatalf("reply %+v, err %v", r, err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sdk.Handle(c.handler)
			r, err := h.Call(request("hello"))
			c.check(t, r, err)
		})
	}
}

// TestRequestIsOnlyValidDuringTheCall checks the rule of HandlerFunc:
// what a handler keeps of its request without cloning it is overwritten
// (sdktest scribbles over the exchange buffer), what it clones is kept.
func TestRequestIsOnlyValidDuringTheCall(t *testing.T) {
	var kept, cloned *sdk.Message
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) {
		kept, cloned = m, m.Clone()
		return nil, nil
	})
	if _, err := sdktest.New().Call(request("content")); err != nil {
		t.Fatal(err)
	}
	if kept.Route.Resource == "demo/x" || string(kept.Content) == "content" {
		t.Fatalf("the request kept past the call is intact: %+v", kept)
	}
	if cloned.Route.Resource != "demo/x" || cloned.Header.ID != "req-1" || string(cloned.Content) != "content" {
		t.Fatalf("clone = %+v", cloned)
	}
}

func TestLargeMessagesGrowBuffers(t *testing.T) {
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) {
		return m.Reply(bytes.Repeat(m.Content, 3)), nil
	})
	h := sdktest.New()
	for _, n := range []int{10, 100_000, 50, 300_000} {
		in := bytes.Repeat([]byte{'x'}, n)
		r, err := h.Call(&sdk.Message{Content: in})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Content) != 3*n {
			t.Fatalf("content %d bytes, want %d", len(r.Content), 3*n)
		}
	}
}

func TestKV(t *testing.T) {
	h := sdktest.New()
	h.KV["seeded"] = []byte("s")
	big := bytes.Repeat([]byte("v"), 20_000)
	err := h.Run(func() {
		must(t, sdk.KVPut("a/1", []byte("one")))
		must(t, sdk.KVPut("a/2", big))
		must(t, sdk.KVPut("b/1", nil))
		must(t, sdk.KVDelete("seeded"))
		must(t, sdk.KVDelete("never-existed"))
		if v, ok, err := sdk.KVGet("a/2"); err != nil || !ok || !bytes.Equal(v, big) {
			t.Errorf("get a/2 in the same call: %d bytes, %v, %v", len(v), ok, err)
		}
		if v, ok, err := sdk.KVGet("seeded"); err != nil || ok || v != nil {
			t.Errorf("get deleted key: %q, %v, %v", v, ok, err)
		}
		if v, ok, err := sdk.KVGet("b/1"); err != nil || !ok || len(v) != 0 {
			t.Errorf("get empty value: %q, %v, %v", v, ok, err)
		}
		keys, err := sdk.KVList("a/")
		if err != nil || !slices.Equal(keys, []string{"a/1", "a/2"}) {
			t.Errorf("list a/ = %q, %v", keys, err)
		}
		if err := sdk.KVPut("", []byte("x")); !errors.Is(err, abi.InvalidArgument) ||
			!strings.Contains(err.Error(), "kv_put") {
			t.Errorf("put empty key: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.KV) != 3 || string(h.KV["a/1"]) != "one" || h.KV["seeded"] != nil {
		t.Fatalf("committed KV = %q", h.KV)
	}
	var many []string
	err = h.Run(func() {
		for i := range 600 { // a key list longer than the SDK's first buffer
			must(t, sdk.KVPut("many/"+strings.Repeat("k", 20)+string(rune('A'+i%26))+string(rune('a'+i/26)), nil))
		}
		many, err = sdk.KVList("many/")
	})
	if err != nil || len(many) != 600 || !slices.IsSorted(many) {
		t.Fatalf("list of 600 keys: %d keys, sorted %v, %v", len(many), slices.IsSorted(many), err)
	}
}

func TestKVWritesAreAtomicPerCall(t *testing.T) {
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) {
		if err := sdk.KVPut(string(m.Content), []byte("x")); err != nil {
			return nil, err
		}
		if string(m.Content) == "fail" {
			return nil, abi.Internal
		}
		return nil, errors.New("application error: still a successful call")
	})
	h := sdktest.New()
	if _, err := h.Call(&sdk.Message{Content: []byte("fail")}); !errors.Is(err, abi.Internal) {
		t.Fatalf("err = %v", err)
	}
	if _, err := h.Call(&sdk.Message{Content: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	if _, failed := h.KV["fail"]; failed || h.KV["ok"] == nil {
		t.Fatalf("KV = %q: want only the successful call's write", h.KV)
	}
}

func TestSendAndRequest(t *testing.T) {
	h := sdktest.New()
	h.Name = "myplugin"
	var got *sdk.Message
	h.Responder = func(req *sdk.Message) (*sdk.Message, error) {
		got = req.Clone()
		switch string(req.Content) {
		case "slow":
			return nil, abi.Timeout
		case "big":
			return req.Reply(bytes.Repeat([]byte("b"), 10_000)), nil
		}
		return req.Reply([]byte("pong")), nil
	}
	err := h.Run(func() {
		m := &sdk.Message{Route: sdk.Route{Group: "twin", Operation: "update", Resource: "device/d1"}, Content: []byte("ping")}
		must(t, sdk.Send(m))
		r, err := sdk.Request(m, 1500*time.Microsecond)
		if err != nil || string(r.Content) != "pong" || r.Header.ParentID != got.Header.ID {
			t.Errorf("request: %+v, %v", r, err)
		}
		if !got.Header.Sync || got.Route.Source != "myplugin" || m.Header.Sync {
			t.Errorf("the request the host saw: %+v; the caller's message: %+v", got.Header, m.Header)
		}
		m.Content = []byte("big")
		if r, err := sdk.Request(m, 0); err != nil || len(r.Content) != 10_000 {
			t.Errorf("big reply: %v", err)
		}
		m.Content = []byte("slow")
		if _, err := sdk.Request(m, time.Second); !errors.Is(err, abi.Timeout) ||
			err.Error() != "edgehost request: timeout" {
			t.Errorf("slow request: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	sent := h.Sent()
	if len(sent) != 1 || sent[0].Route.Source != "myplugin" || sent[0].Header.ID == "" ||
		sent[0].Header.Timestamp == 0 || string(sent[0].Content) != "ping" {
		t.Fatalf("sent = %+v", sent)
	}
	h.Responder = nil
	err = h.Run(func() {
		if _, err := sdk.Request(&sdk.Message{}, 0); !errors.Is(err, abi.Unavailable) {
			t.Errorf("request without a responder: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLogNowConfig(t *testing.T) {
	h := sdktest.New()
	h.Config = []byte(`{"k":1}`)
	h.Clock = func() time.Time { return time.Unix(1700000000, 5) }
	err := h.Run(func() {
		sdk.LogInfo("started", "plugin", "x", "note", `two words "q"`, "empty", "", "odd")
		sdk.LogWarn("w")
		sdk.Log(sdk.LevelTrace, "t")
		if now := sdk.Now(); !now.Equal(time.Unix(1700000000, 5)) {
			t.Errorf("Now = %v", now)
		}
		if c, err := sdk.Config(); err != nil || string(c) != `{"k":1}` {
			t.Errorf("Config = %q, %v", c, err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []sdktest.LogLine{
		{Level: sdk.LevelInfo, Text: `started plugin=x note="two words \"q\"" empty="" !BADKEY=odd`},
		{Level: sdk.LevelWarn, Text: "w"},
		{Level: sdk.LevelTrace, Text: "t"},
	}
	if !slices.Equal(h.Logs(), want) {
		t.Fatalf("logs = %q\nwant %q", h.Logs(), want)
	}
}

func TestInitTickStop(t *testing.T) {
	defer sdk.OnInit(nil)
	defer sdk.OnTick(nil)
	defer sdk.OnStop(nil)
	var config string
	sdk.OnInit(func(c []byte) error {
		config = string(c)
		if config == "bad" {
			return errors.New("config is bad")
		}
		return nil
	})
	ticks, stopped := 0, false
	sdk.OnTick(func() error {
		ticks++
		if ticks == 2 {
			return abi.Unavailable
		}
		return nil
	})
	sdk.OnStop(func() { stopped = true })
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) { return nil, nil })

	h := sdktest.New()
	h.Config = []byte("bad")
	if _, err := h.Call(&sdk.Message{}); !errors.Is(err, abi.Internal) || config != "bad" {
		t.Fatalf("call with a bad config: %v (init saw %q)", err, config)
	}
	if l := h.Logs(); len(l) != 1 || l[0].Level != sdk.LevelError || l[0].Text != `init failed error="config is bad"` {
		t.Fatalf("logs = %q", l)
	}
	h.Config = []byte("good")
	if err := h.Init(); err != nil || config != "good" {
		t.Fatalf("init: %v (saw %q)", err, config)
	}
	if err := h.Tick(); err != nil {
		t.Fatal(err)
	}
	if err := h.Tick(); !errors.Is(err, abi.Unavailable) {
		t.Fatalf("second tick: %v", err)
	}
	if err := h.Stop(); err != nil || !stopped {
		t.Fatalf("stop: %v, stopped %v", err, stopped)
	}
}

func TestNoHandler(t *testing.T) {
	sdk.Handle(nil)
	if _, err := sdktest.New().Call(&sdk.Message{}); !errors.Is(err, abi.NoHandler) {
		t.Fatalf("err = %v", err)
	}
}

func TestCloneOwnsContent(t *testing.T) {
	m := request("abc")
	c := m.Clone()
	m.Content[0] = 'X'
	if string(c.Content) != "abc" || c.Header != m.Header {
		t.Fatalf("clone = %+v", c)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Error(err)
	}
}
