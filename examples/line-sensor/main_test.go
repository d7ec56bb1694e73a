//go:build !wasip1

package main

import (
	"bufio"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/sdktest"
)

// fakeSensor is the harness device: a real TCP server speaking the line
// protocol, with channels the test sets.
type fakeSensor struct {
	mu       sync.Mutex
	channels map[string]string
	ln       net.Listener
}

func startSensor(t *testing.T, channels map[string]string) *fakeSensor {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSensor{channels: channels, ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(c) })
		}
	})
	return s
}

func (s *fakeSensor) serve(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		s.mu.Lock()
		answer := "ERR bad request"
		switch {
		case len(f) == 2 && f[0] == "READ" && s.channels[f[1]] != "":
			answer = f[1] + " " + s.channels[f[1]]
		case len(f) == 2 && f[0] == "READ":
			answer = "ERR no channel " + f[1]
		case len(f) == 3 && f[0] == "SET":
			s.channels[f[1]], answer = f[2], "OK"
		}
		s.mu.Unlock()
		c.Write([]byte(answer + "\n"))
	}
}

func message(op string, content any) *sdk.Message {
	b, _ := json.Marshal(content)
	return &sdk.Message{Route: abi.Route{Source: abi.MapperSource, Group: abi.MapperGroup, Operation: op}, Content: b}
}

// TestReadAndWrite: the mapper reads each property's channel, writes a
// desired value with SET, fails an unknown channel alone, connects again
// when its connection went away, and fails an unreachable sensor as a
// whole device.
func TestReadAndWrite(t *testing.T) {
	s := startSensor(t, map[string]string{"temp": "21.5", "fan": "off"})
	h := sdktest.New()
	h.TCP = []string{"127.0.0.1:*"}
	dev := abi.MapperDevice{ID: "default/line-0", Protocol: "line-sensor",
		ProtocolConfig: map[string]any{"address": s.ln.Addr().String()},
		Properties: []abi.MapperProperty{{Name: "temp", Type: "float"}, {Name: "speed", Type: "string",
			Visitor: map[string]any{"channel": "fan"}}, {Name: "hum", Type: "float"}}}
	read := func() abi.MapperDeviceValues {
		t.Helper()
		r, err := h.Call(message(abi.MapperOpRead, abi.MapperRead{Devices: []abi.MapperDevice{dev}}))
		if err != nil {
			t.Fatal(err)
		}
		var out abi.MapperReadReply
		if err := json.Unmarshal(r.Content, &out); err != nil || len(out.Devices) != 1 {
			t.Fatalf("read reply %s: %v", r.Content, err)
		}
		return out.Devices[0]
	}
	got := read()
	if p := got.Properties; len(p) != 3 || p[0].Value != "21.5" || p[1].Value != "off" || p[2].Value != "" ||
		!strings.Contains(p[2].Error, "no channel hum") {
		t.Fatalf("read = %+v", got)
	}
	w := dev
	w.Properties = dev.Properties[1:2]
	if r, err := h.Call(message(abi.MapperOpWrite, abi.MapperWrite{Device: w, Value: "high"})); err != nil || r.Route.Operation != abi.OpResponse {
		t.Fatalf("write: %+v, %v", r, err)
	}
	if got := read(); got.Properties[1].Value != "high" {
		t.Fatalf("after the write: %+v", got)
	}
	h.CloseHandles() // the connection goes, as when an instance ends
	if got := read(); got.Error != "" || got.Properties[0].Value != "21.5" {
		t.Fatalf("after the handle went stale: %+v", got)
	}
	s.ln.Close()
	h.CloseHandles()
	if got := read(); got.State != abi.StateOffline || got.Error == "" {
		t.Fatalf("with the sensor gone: %+v", got)
	}
}
