//go:build !wasip1

package main

import (
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/sdktest"
)

func TestEcho(t *testing.T) {
	h := sdktest.New()
	in := &sdk.Message{
		Header:  sdk.Header{ID: "m1", Timestamp: 1700000000000, Sync: true},
		Route:   sdk.Route{Source: "app", Group: "user", Operation: "echo", Resource: "echo/x"},
		Content: []byte("hi"),
	}
	for _, content := range []string{"hi", "hi", "", "a longer content than the first"} {
		in.Content = []byte(content)
		r, err := h.Call(in)
		if err != nil {
			t.Fatal(err)
		}
		want := sdk.Route{Source: "app", Group: "user", Operation: abi.OpResponse, Resource: "echo/x"}
		if string(r.Content) != content || r.Route != want || r.Header.Sync ||
			r.Header.ParentID != "m1" || r.Header.ID == "" || r.Header.ID == "m1" {
			t.Fatalf("reply = %+v", r)
		}
	}
}

func BenchmarkEchoNative(b *testing.B) {
	h := sdktest.New()
	in := &sdk.Message{Header: sdk.Header{ID: "m1"}, Route: sdk.Route{Operation: "echo"}, Content: make([]byte, 256)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Call(in); err != nil {
			b.Fatal(err)
		}
	}
}
