package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func mustPoint(t *testing.T, v map[string]any, twinType string) point {
	t.Helper()
	p, err := parsePoint(v, twinType)
	if err != nil {
		t.Fatalf("parsePoint(%v, %s): %v", v, twinType, err)
	}
	return p
}

// TestDecodeAndEncode: each data type, with KubeEdge's scale, byte swap
// and word swap, decodes the registers a device holds into the twin's
// text, and encodes the text back into the same registers.
func TestDecodeAndEncode(t *testing.T) {
	hold := func(kv ...any) map[string]any {
		m := map[string]any{"register": "HoldingRegister"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		name     string
		visitor  map[string]any
		twinType string
		regs     []byte
		want     string
	}{
		{"int16 default", hold(), "int", []byte{0xFF, 0xFE}, "-2"},
		{"uint16", hold("dataType", "uint16"), "int", []byte{0xFF, 0xFE}, "65534"},
		{"int16 scaled to float", hold("scale", 0.1), "float", []byte{0x00, 0xD7}, "21.5"},
		{"scale as text", hold("scale", "0.01"), "float", []byte{0x08, 0x66}, "21.5"},
		{"byte swap", hold("dataType", "uint16", "isSwap", true), "int", []byte{0x34, 0x12}, "4660"},
		{"int32 from limit", hold("limit", 2.0), "int", []byte{0xFF, 0xFF, 0xFF, 0xFE}, "-2"},
		{"uint32", hold("dataType", "uint32"), "int", []byte{0x00, 0x01, 0x00, 0x00}, "65536"},
		{"uint32 word swap", hold("dataType", "uint32", "isRegisterSwap", true), "int", []byte{0x00, 0x00, 0x00, 0x01}, "65536"},
		{"uint32 both swaps", hold("dataType", "uint32", "isRegisterSwap", "true", "isSwap", true), "int", []byte{0x00, 0x00, 0x01, 0x00}, "65536"},
		{"float32", hold("dataType", "float32"), "float", []byte{0x41, 0xAC, 0x00, 0x00}, "21.5"},
		{"float32 from limit", hold("limit", 2.0), "float", []byte{0x3D, 0xCC, 0xCC, 0xCD}, "0.1"},
		{"float32 word swap", hold("dataType", "float32", "isRegisterSwap", true), "float", []byte{0x00, 0x00, 0x41, 0xAC}, "21.5"},
		{"float64", hold("dataType", "float64"), "float", []byte{0x40, 0x35, 0x80, 0, 0, 0, 0, 0}, "21.5"},
		{"float64 four-word swap", hold("dataType", "float64", "isRegisterSwap", true), "float", []byte{0, 0, 0, 0, 0x80, 0, 0x40, 0x35}, "21.5"},
		{"int64", hold("dataType", "int64"), "int", []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x85}, "-123"},
		{"boolean register", hold("dataType", "boolean"), "boolean", []byte{0x00, 0x01}, "true"},
		{"boolean from twin type", hold(), "boolean", []byte{0x00, 0x00}, "false"},
		{"string", hold("limit", 3.0), "string", []byte("OK\x00\x00\x00\x00"), "OK"},
		{"string with byte swap", hold("limit", 2.0, "dataType", "string", "isSwap", true), "string", []byte("EHOL"), "HELO"},
		{"float twin, no exponent", hold("dataType", "uint32", "scale", 1000.0), "float", []byte{0xFF, 0xFF, 0xFF, 0xFF}, "4294967295000"},
	} {
		p := mustPoint(t, c.visitor, c.twinType)
		got, err := p.decode(c.regs)
		if err != nil || got != c.want {
			t.Errorf("%s: decode % x = %q, %v; want %q", c.name, c.regs, got, err, c.want)
			continue
		}
		if strings.Contains(c.name, "string") && strings.Contains(string(c.regs), "\x00") {
			continue // the padding is not part of the value
		}
		regs, _, err := p.encode(got)
		if err != nil || !bytes.Equal(regs, c.regs) {
			t.Errorf("%s: encode %q = % x, %v; want % x", c.name, got, regs, err, c.regs)
		}
	}
}

// TestBitsDecodeAndEncode: coils and discrete inputs are booleans, or a
// whole number of bits with a limit over 1.
func TestBitsDecodeAndEncode(t *testing.T) {
	coil := mustPoint(t, map[string]any{"register": "CoilRegister", "offset": 3.0}, "boolean")
	if v, err := coil.decode([]byte{0x01}); err != nil || v != "true" {
		t.Fatalf("coil = %q, %v", v, err)
	}
	if _, bits, err := coil.encode("off"); err != nil || len(bits) != 1 || bits[0] {
		t.Fatalf("encode off = %v, %v", bits, err)
	}
	if v, _ := coil.decode([]byte{0x00}); v != "false" {
		t.Fatalf("coil off = %q", v)
	}
	asInt := mustPoint(t, map[string]any{"register": "DiscreteInputRegister"}, "int")
	if v, _ := asInt.decode([]byte{0x01}); v != "1" {
		t.Fatalf("discrete input as int = %q", v)
	}
	field := mustPoint(t, map[string]any{"register": "CoilRegister", "limit": 10.0}, "int")
	if v, err := field.decode([]byte{0xCD, 0x01}); err != nil || v != "461" {
		t.Fatalf("10 coils = %q, %v", v, err)
	}
	_, bits, err := field.encode("461")
	if err != nil || len(bits) != 10 || !bits[0] || bits[1] || !bits[8] || bits[9] {
		t.Fatalf("encode 461 = %v, %v", bits, err)
	}
	if _, _, err := field.encode("1024"); err == nil {
		t.Fatal("1024 fits 10 coils")
	}
}

// TestEncodeRefuses: values that do not fit their registers are named.
func TestEncodeRefuses(t *testing.T) {
	for _, c := range []struct {
		visitor  map[string]any
		twinType string
		value    string
	}{
		{map[string]any{"register": "HoldingRegister"}, "int", "40000"},
		{map[string]any{"register": "HoldingRegister", "dataType": "uint16"}, "int", "-1"},
		{map[string]any{"register": "HoldingRegister", "scale": 0.1}, "float", "4000"},
		{map[string]any{"register": "HoldingRegister"}, "int", "warm"},
		{map[string]any{"register": "HoldingRegister", "limit": 1.0, "dataType": "string"}, "string", "too long"},
		{map[string]any{"register": "CoilRegister"}, "boolean", "maybe"},
	} {
		p := mustPoint(t, c.visitor, c.twinType)
		if regs, bits, err := p.encode(c.value); err == nil {
			t.Errorf("%v: encode %q = % x %v, want an error", c.visitor, c.value, regs, bits)
		}
	}
	p := mustPoint(t, map[string]any{"register": "HoldingRegister", "scale": 0.1}, "float")
	if regs, _, err := p.encode("21.5"); err != nil || !bytes.Equal(regs, []byte{0, 215}) {
		t.Errorf("encode 21.5 at scale 0.1 = % x, %v", regs, err)
	}
}

// TestConfigErrors: bad protocol and visitor configs are refused with the
// key named.
func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		visitor map[string]any
		want    string
	}{
		{map[string]any{}, "register is required"},
		{map[string]any{"register": "Holding"}, `register "Holding"`},
		{map[string]any{"register": "HoldingRegister", "offset": -1.0}, "config offset"},
		{map[string]any{"register": "HoldingRegister", "offset": 70000.0}, "config offset"},
		{map[string]any{"register": "HoldingRegister", "scale": 0.0}, "scale"},
		{map[string]any{"register": "HoldingRegister", "dataType": "int8"}, `dataType "int8"`},
		{map[string]any{"register": "HoldingRegister", "dataType": "float32", "limit": 1.0}, "limit 1 does not fit dataType float32"},
		{map[string]any{"register": "HoldingRegister", "dataType": "string"}, "needs limit"},
	} {
		if _, err := parsePoint(c.visitor, "int"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.visitor, err, c.want)
		}
	}
	for _, c := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{}, "ip is required"},
		{map[string]any{"ip": "10.0.0.5", "port": 70000.0}, "config port"},
		{map[string]any{"ip": "10.0.0.5", "slaveID": 300.0}, "config slaveID"},
		{map[string]any{"ip": "10.0.0.5", "timeout": 0.0}, "config timeout"},
		{map[string]any{"ip": "10.0.0.5", "requestGap": "soon"}, "config requestGap"},
	} {
		if _, err := parseDevice(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.cfg, err, c.want)
		}
	}
	d, err := parseDevice(map[string]any{"ip": "fd00::5", "port": "1502", "slaveID": 7.0, "timeout": 250.0, "requestGap": 20.0})
	if err != nil || d.addr != "[fd00::5]:1502" || d.unit != 7 || d.timeout != 250*time.Millisecond || d.gap != 20*time.Millisecond {
		t.Errorf("parseDevice = %+v, %v", d, err)
	}
	d, err = parseDevice(map[string]any{"tcp": map[string]any{"ip": "10.0.0.5", "port": 1502.0}, "slaveID": 2.0})
	if err != nil || d.addr != "10.0.0.5:1502" || d.unit != 2 || d.timeout != defaultTimeout {
		t.Errorf("parseDevice of the nested form = %+v, %v", d, err)
	}
}
