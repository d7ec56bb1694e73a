package wasm

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

func TestKVWritesAreAtomic(t *testing.T) {
	kv := NewMemKV()
	p := load(t, "faulty", PluginConfig{KV: kv})
	keys := func() []string {
		k, _ := kv.List("")
		return k
	}
	var fe *FaultError
	if _, _, err := p.Handle(context.Background(), message("kvtrap", "")); !errors.As(err, &fe) {
		t.Fatalf("kvtrap: %v", err)
	}
	if k := keys(); len(k) != 0 {
		t.Fatalf("a trapped call committed %v", k)
	}
	if _, _, err := p.Handle(context.Background(), message("kvfail", "")); !errors.Is(err, abi.Internal) {
		t.Fatalf("kvfail: %v", err)
	}
	if k := keys(); len(k) != 0 {
		t.Fatalf("a call that returned a failure code committed %v", k)
	}
	if _, got := call(t, p, "kvseq", ""); got != "ok" {
		t.Fatalf("kvseq: %s", got)
	}
	if k := keys(); len(k) != 1 || k[0] != "s2" {
		t.Fatalf("after kvseq: %v, want [s2]", k)
	}
}

func TestKVImports(t *testing.T) {
	kv := NewMemKV()
	p := load(t, "faulty", PluginConfig{KV: kv})
	for _, kvp := range []string{"p/1=one", "p/2=two", "q=other"} {
		if _, got := call(t, p, "kvput", kvp); got != "0" {
			t.Fatalf("kvput %s: %s", kvp, got)
		}
	}
	if op, got := call(t, p, "kvget", "p/2"); op != abi.OpResponse || got != "two" {
		t.Fatalf("kvget: %s %q", op, got)
	}
	if op, got := call(t, p, "kvget", "missing"); op != abi.OpError || got != "-4" {
		t.Fatalf("kvget missing: %s %q", op, got)
	}
	if _, got := call(t, p, "kvlist", "p/"); got != "\x03\x00p/1\x03\x00p/2" {
		t.Fatalf("kvlist: %q", got)
	}
	if _, got := call(t, p, "kvdel", "p/1"); got != "0" {
		t.Fatalf("kvdel: %s", got)
	}
	if k, _ := kv.List(""); strings.Join(k, ",") != "p/2,q" {
		t.Fatalf("keys = %v", k)
	}
	if op, got := call(t, p, "kvget", strings.Repeat("k", MaxKeyLen+1)); op != abi.OpError || got != "-1" {
		t.Fatalf("over-long key: %s %q", op, got)
	}
	noKV := load(t, "faulty", PluginConfig{Name: "nokv"})
	if _, got := call(t, noKV, "kvput", "a=b"); got != "-7" {
		t.Fatalf("kvput without a KV: %s, want -7 (unavailable)", got)
	}
}

func TestSendAndRequest(t *testing.T) {
	host := &fakeHost{}
	p := load(t, "faulty", PluginConfig{Host: host})
	if _, got := call(t, p, "send", "payload"); got != "0" {
		t.Fatalf("send: %s", got)
	}
	if len(host.sent) != 1 {
		t.Fatalf("sent %d messages", len(host.sent))
	}
	m := host.sent[0]
	if m.Route.Source != "faulty" || m.Header.ID == "" || m.Header.Timestamp == 0 ||
		m.Route.Operation != "publish" || string(m.Content) != "payload" {
		t.Fatalf("sent %+v", m)
	}
	host.sendErr = abi.Denied
	if _, got := call(t, p, "send", "x"); got != "-5" {
		t.Fatalf("denied send: %s", got)
	}
	host.sendErr = errors.New("bus down")
	if _, got := call(t, p, "send", "x"); got != "-7" {
		t.Fatalf("failed send: %s", got)
	}
	// The reply (20 x "ping") does not fit the plugin's 4-byte first buffer:
	// it is kept for request_reply.
	if op, got := call(t, p, "request", "ping"); op != abi.OpResponse || got != strings.Repeat("ping", 20) {
		t.Fatalf("request: %s %q", op, got)
	}
	if op, got := call(t, p, "request", "timeout"); op != abi.OpError || got != "-6" {
		t.Fatalf("request timeout: %s %q", op, got)
	}
	noHost := load(t, "faulty", PluginConfig{Name: "nohost"})
	if _, got := call(t, noHost, "send", "x"); got != "-7" {
		t.Fatalf("send without a host: %s", got)
	}
}

func TestHostPanicIsContained(t *testing.T) {
	var logs logBuffer
	p := load(t, "faulty", PluginConfig{Host: &fakeHost{panics: true}, Logger: newLogger(&logs)})
	if _, got := call(t, p, "send", "x"); got != "-8" {
		t.Fatalf("send with a panicking host: %s, want -8 (internal)", got)
	}
	if !strings.Contains(logs.String(), "send exploded") {
		t.Fatalf("panic not logged:\n%s", logs.String())
	}
	mustEcho(t, p, "fine")
}

func TestLogNowConfigAndBadArguments(t *testing.T) {
	var logs logBuffer
	p := load(t, "faulty", PluginConfig{Config: []byte(`{"answer":42}`), Logger: newLogger(&logs)})
	if _, ok, err := p.Handle(context.Background(), message("log", "hello from the guest")); ok || err != nil {
		t.Fatalf("log: %v %v", ok, err)
	}
	if out := logs.String(); !strings.Contains(out, "[WARN]  hello from the guest") || !strings.Contains(out, "faulty: init") {
		t.Fatalf("log lines missing:\n%s", out)
	}
	if _, got := call(t, p, "config", ""); got != `{"answer":42}` {
		t.Fatalf("config: %q", got)
	}
	_, got := call(t, p, "now", "")
	ns, err := strconv.ParseInt(got, 10, 64)
	if err != nil || time.Since(time.Unix(0, ns)).Abs() > time.Minute {
		t.Fatalf("now: %q", got)
	}
	want := strings.TrimSuffix(strings.Repeat("-1,", 11), ",")
	if _, got := call(t, p, "badargs", ""); got != want {
		t.Fatalf("bad arguments: %s, want %s", got, want)
	}
	mustEcho(t, p, "fine")
}
