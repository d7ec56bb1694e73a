package pluginhost

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/config"
)

const faultyPkg = "host/wasm/testdata/plugins/faulty"

// startLoopers runs two faulty plugins, "a" receiving group "ga" and "b"
// receiving group "gb", which forward and relay messages between groups,
// and the echo example receiving group "ge".
func startLoopers(t *testing.T) (request func(to, content string) abi.Message, m *Module, send func(op, content string)) {
	t.Helper()
	b, m := startModules(t, map[string]string{"a": faultyPkg, "b": faultyPkg, "echo": "examples/echo"}, []config.Plugin{
		{Name: "a", Receives: []config.Pattern{{Group: "ga"}}},
		{Name: "b", Receives: []config.Pattern{{Group: "gb"}}},
		{Name: "echo", Receives: []config.Pattern{{Group: "ge"}}},
	})
	request = func(to, content string) abi.Message {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r, err := b.RequestGroup(ctx, to, abi.Message{Route: abi.Route{Group: to, Operation: "forward", Resource: "chain"},
			Content: []byte(content)})
		if err != nil {
			t.Fatalf("request %q: %v", content, err)
		}
		return r
	}
	send = func(op, content string) {
		t.Helper()
		if err := b.SendToGroup(context.Background(), content, abi.Message{Route: abi.Route{Group: content, Operation: op, Resource: "chain"},
			Content: []byte(content)}); err != nil {
			t.Fatalf("send %s %q: %v", op, content, err)
		}
	}
	return request, m, send
}

func info(t *testing.T, m *Module, name string) Info {
	t.Helper()
	in, err := m.Info(name)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// A plugin whose request reaches its own group would wait for itself: the
// host refuses the request at once with a named error, instead of the
// chain holding an instance per hop until the first request times out.
func TestSelfRequestIsRefused(t *testing.T) {
	request, m, _ := startLoopers(t)
	r := request("ga", "ga")
	// a relays the reply its request got: the host's failure.
	var f abi.Failure
	if json.Unmarshal(r.Content, &f) != nil || f.Reason != abi.FailureLoop || f.Code != abi.Loop || f.Plugin != "a" ||
		!strings.Contains(f.Error, "loops back into a plugin that waits for its reply") {
		t.Fatalf("reply = %s %q, want the host's loop failure naming plugin a", r.Route.Operation, r.Content)
	}
	a := info(t, m, "a")
	if a.Loops != 1 || a.Faults != 0 || a.Calls != 1 || a.State != "ready" {
		t.Fatalf("a: loops %d, faults %d, calls %d, state %s; want 1 loop, no fault, 1 call, ready", a.Loops, a.Faults, a.Calls, a.State)
	}
}

// The loop through another plugin (a asks b, b asks a) is refused where it
// would re-enter a, and the error travels back along the chain.
func TestRequestCycleIsRefused(t *testing.T) {
	request, m, _ := startLoopers(t)
	r := request("ga", "gb ga")
	if r.Route.Operation != abi.OpError || !strings.Contains(string(r.Content), "waiting: a -> b") {
		t.Fatalf("reply = %s %q, want the loop error with the waiting chain", r.Route.Operation, r.Content)
	}
	if a, b := info(t, m, "a"), info(t, m, "b"); a.Loops != 1 || b.Loops != 0 || a.Faults+b.Faults != 0 || a.Calls != 1 || b.Calls != 1 {
		t.Fatalf("a: loops %d calls %d faults %d; b: loops %d calls %d faults %d", a.Loops, a.Calls, a.Faults, b.Loops, b.Calls, b.Faults)
	}
	// A request chain that does not come back passes: a asks echo.
	if r := request("ga", "ge"); r.Route.Operation != abi.OpResponse || string(r.Content) != "ge" {
		t.Fatalf("reply through a to echo = %s %q, want echo's answer", r.Route.Operation, r.Content)
	}
}

// One-way messages a plugin sends itself on every message never hold an
// instance, but would go round for ever: the chain stops at abi.MaxHops.
func TestSendChainStopsAtMaxHops(t *testing.T) {
	_, m, send := startLoopers(t)
	send("relay", "ga")
	want := uint64(abi.MaxHops + 1) // hops 0 to MaxHops are handled
	deadline := time.Now().Add(30 * time.Second)
	for info(t, m, "a").Loops == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal after 30s: %+v", info(t, m, "a"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a further relay would show now
	if a := info(t, m, "a"); a.Calls != want || a.Loops != 1 || a.Faults != 0 {
		t.Fatalf("a: calls %d, loops %d, faults %d; want %d calls, 1 loop, no fault", a.Calls, a.Loops, a.Faults, want)
	}
}
