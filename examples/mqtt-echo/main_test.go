//go:build !wasip1

package main

import (
	"strings"
	"testing"

	"github.com/edgehost/edgehost/sdk/sdktest"
)

func TestRepublishes(t *testing.T) {
	h := sdktest.New()
	if err := h.Init(); err != nil {
		t.Fatal(err)
	}
	if subs := h.Subscriptions(); len(subs) != 1 || subs[0] != "examples/echo/in" {
		t.Fatalf("subscriptions = %v", subs)
	}
	if r, err := h.Deliver("examples/echo/in", []byte("ping")); err != nil || r != nil {
		t.Fatalf("deliver: reply %v, err %v", r, err)
	}
	pubs := h.Published()
	if len(pubs) != 1 || pubs[0].Topic != "examples/echo/out" || string(pubs[0].Payload) != "ping" {
		t.Fatalf("published = %+v", pubs)
	}
	r, err := h.Deliver("other/topic", []byte("x"))
	if err != nil || r == nil || r.Route.Operation != "error" || !strings.Contains(string(r.Content), "examples/echo/in") {
		t.Fatalf("a message on another topic: reply %+v, err %v", r, err)
	}
}

func TestConfigRenamesTopics(t *testing.T) {
	h := sdktest.New()
	h.Config = []byte(`{"in":"a/in","out":"a/out"}`)
	if err := h.Init(); err != nil {
		t.Fatal(err)
	}
	if subs := h.Subscriptions(); len(subs) != 1 || subs[0] != "a/in" {
		t.Fatalf("subscriptions = %v", subs)
	}
	bad := sdktest.New()
	bad.Config = []byte(`{"in":`)
	if err := bad.Init(); err == nil || !strings.Contains(err.Error(), "init") {
		t.Fatalf("bad config: %v", err)
	}
}
