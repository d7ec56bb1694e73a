//go:build !wasip1

package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/sdktest"
)

func newHost() *sdktest.Host {
	h := sdktest.New()
	h.Clock = func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }
	return h
}

func send(t *testing.T, h *sdktest.Host, content string) *sdk.Message {
	t.Helper()
	r, err := h.Call(&sdk.Message{
		Route:   sdk.Route{Group: "user", Operation: abi.OpUpdate, Resource: "sensors/d1"},
		Content: []byte(content),
	})
	if err != nil {
		t.Fatalf("call %s: %v", content, err)
	}
	return r
}

func TestReadingsAreEnrichedAndCounted(t *testing.T) {
	h := newHost()
	var got Enriched
	for _, c := range []string{"19", "21.5", "20"} {
		r := send(t, h, `{"device":"d1","temperature_c":`+c+`}`)
		if r.Route.Operation != abi.OpResponse {
			t.Fatalf("reply %s: %s", r.Route.Operation, r.Content)
		}
		if err := json.Unmarshal(r.Content, &got); err != nil {
			t.Fatal(err)
		}
	}
	if *got.TemperatureC != 20 || *got.TemperatureF != 68 || got.Count != 3 || got.MinC != 19 ||
		got.MaxC != 21.5 || got.MeanC != 20.17 || !got.Updated.Equal(h.Clock()) {
		t.Fatalf("enriched = %+v", got)
	}
	if r := send(t, h, `{"device":"d1","temperature_c":21.5}`); !strings.Contains(string(r.Content), `"temperature_f":70.7,`) {
		t.Fatalf("fahrenheit not rounded: %s", r.Content)
	}
	if logs := h.Logs(); len(logs) != 1 || logs[0].Text != "new device device=d1" {
		t.Fatalf("logs = %q", logs)
	}

	// Another instance sees the same statistics through KV.
	h2 := newHost()
	h2.KV = h.KV
	r := send(t, h2, `{"device":"d1"}`)
	got = Enriched{}
	if err := json.Unmarshal(r.Content, &got); err != nil || got.Count != 4 || got.TemperatureC != nil {
		t.Fatalf("query = %s (%v)", r.Content, err)
	}
	send(t, h2, `{"device":"d0","temperature_c":5}`)
	if r := send(t, h2, ``); string(r.Content) != `{"devices":["d0","d1"]}` {
		t.Fatalf("list = %s", r.Content)
	}
}

func TestBadInputIsAnErrorReply(t *testing.T) {
	h := newHost()
	for content, want := range map[string]string{
		`{"device":"d1","temperature_c":"warm"}`: "not a reading",
		`[1,2]`:                                  "not a reading",
		`{"temperature_c":20}`:                   "needs a device name",
		`{"device":"d1","temperature_c":900}`:    "out of the plausible range",
		`{"device":"nobody"}`:                    `unknown device "nobody"`,
	} {
		r := send(t, h, content)
		if r.Route.Operation != abi.OpError || !strings.Contains(string(r.Content), want) {
			t.Errorf("%s: reply %s %q, want an error containing %q", content, r.Route.Operation, r.Content, want)
		}
	}
	if len(h.KV) != 0 {
		t.Fatalf("bad input was stored: %q", h.KV)
	}
}

func TestConfig(t *testing.T) {
	defer func() { config = defaultConfig }()
	h := newHost()
	h.Config = []byte(`{"valid_min_c":0,"valid_max_c":50}`)
	if r := send(t, h, `{"device":"d1","temperature_c":-5}`); r.Route.Operation != abi.OpError {
		t.Fatalf("-5 °C accepted with a 0..50 range: %s", r.Content)
	}
	h = newHost()
	h.Config = []byte(`{"valid_min_c":10,"valid_max_c":0}`)
	if err := h.Init(); !errors.Is(err, abi.Internal) {
		t.Fatalf("init with an empty range: %v", err)
	}
}
