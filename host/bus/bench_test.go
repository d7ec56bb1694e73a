package bus

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// benchMessage is a fully formed message, the same value in every benchmark.
func benchMessage() abi.Message {
	return abi.Message{
		Header:  abi.Header{ID: NewID(), Timestamp: time.Now().UnixMilli()},
		Route:   abi.Route{Source: "eventbus", Group: "twin", Operation: abi.OpUpdate, Resource: "device/ns/d1/twin/update"},
		Content: []byte(`{"twin":{"temperature":{"actual":{"value":"21.5"}}}}`),
	}
}

// BenchmarkChanBaseline is the floor Send is measured against: a bare
// buffered channel of the same capacity handing the same value to a
// draining goroutine.
func BenchmarkChanBaseline(b *testing.B) {
	m := benchMessage()
	ch := make(chan abi.Message, 1024)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range ch {
		}
	})
	b.ReportAllocs()
	for b.Loop() {
		ch <- m
	}
	close(ch)
	wg.Wait()
}

// BenchmarkBusSend is Send to a module whose Receive loop drains it.
func BenchmarkBusSend(b *testing.B) {
	m := benchMessage()
	bus := New(Options{})
	ep := mustRegister(b, bus, "twin", "twin")
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if _, err := ep.Receive(context.Background()); err != nil {
				return
			}
		}
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := bus.Send(ctx, "twin", m); err != nil {
			b.Fatal(err)
		}
	}
	bus.Close()
	wg.Wait()
}

// BenchmarkBusRequest is one Request round trip to a module whose loop
// echoes each request with Respond. As a real caller, the benchmark leaves
// ID empty, so the bus draws a fresh id for the request and for the reply:
// those two strings are the round trip's allocations.
func BenchmarkBusRequest(b *testing.B) {
	req := benchMessage()
	req.Header.ID = ""
	bus := New(Options{})
	ep := mustRegister(b, bus, "twin", "twin")
	var wg sync.WaitGroup
	wg.Go(func() { // echoes the content back, allocating nothing itself
		for {
			m, err := ep.Receive(context.Background())
			if err != nil {
				return
			}
			if err := bus.Respond(m.Reply(abi.OpResponse, m.Content)); err != nil {
				b.Error(err)
			}
		}
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bus.Request(ctx, "twin", req); err != nil {
			b.Fatal(err)
		}
	}
	bus.Close()
	wg.Wait()
}
