package twin

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
)

// TestBusyDeviceHoldsUpNoOther runs the router against a plugin stand-in
// on the bus that keeps device "a"'s messages until released: the other
// devices' messages are answered meanwhile, each device's in its order,
// even with fewer lanes than devices.
func TestBusyDeviceHoldsUpNoOther(t *testing.T) {
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	ep, err := b.Register(DefaultPlugin, "plugins")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var mu sync.Mutex
	seen := map[string][]string{} // device -> contents in the order handled
	go func() {
		for {
			msg, err := ep.Receive(context.Background())
			if err != nil {
				return
			}
			dev, _, _ := strings.Cut(strings.TrimPrefix(msg.Route.Resource, "device/"), "/")
			go func() {
				if dev == "a" {
					<-release
				}
				mu.Lock()
				seen[dev] = append(seen[dev], string(msg.Content))
				mu.Unlock()
				r := msg.Reply(abi.OpResponse, nil)
				r.Header.ParentID = msg.Header.ID
				b.Respond(r)
			}()
		}
	}()
	m := New(b, Config{Lanes: 2}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var workers sync.WaitGroup
	r := newRouter(ctx, m, 2, &workers)
	defer func() { close(release); r.close(); workers.Wait() }()
	lanes := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.running
	}
	if n := lanes(); n != 0 {
		t.Fatalf("%d lanes run before any message", n)
	}
	send := func(dev string, i int) {
		msg := testMessage("cloud", "device/"+dev+"/twin/update")
		msg.Content = []byte(fmt.Sprint(i))
		r.route(ctx, msg)
	}
	for i := range 5 {
		send("a", i) // the first takes a lane and waits; the rest queue behind it
	}
	for i := range 20 {
		for _, dev := range []string{"b", "c", "d"} {
			send(dev, i)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		done := len(seen["b"]) == 20 && len(seen["c"]) == 20 && len(seen["d"]) == 20
		mu.Unlock()
		if done {
			if n := lanes(); n != 2 {
				t.Fatalf("%d lanes ran for 4 devices with a limit of 2", n)
			}
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("other devices held up behind a busy one: handled %v", seen)
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, dev := range []string{"b", "c", "d"} {
		for i, c := range seen[dev] {
			if c != fmt.Sprint(i) {
				t.Fatalf("device %s handled out of order: %v", dev, seen[dev])
			}
		}
	}
	if len(seen["a"]) != 0 {
		t.Fatalf("device a handled %v while its first message was still held", seen["a"])
	}
}
