package main

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/plugins/modbus/mbap"
	"github.com/edgehost/edgehost/sdk/jsonlite"
)

// Defaults of a device's protocol config.
const (
	defaultTimeout = 500 * time.Millisecond
	defaultSlaveID = 1
	defaultPort    = 502
)

// device is a device's protocol config, KubeEdge's Modbus TCP keys plus
// edgehost's own:
//
//	{"ip": "10.0.0.5", "port": 502, "slaveID": 1,      KubeEdge's
//	 "timeout": 500, "requestGap": 0}                  ms; edgehost's
type device struct {
	addr    string // host:port
	unit    byte
	timeout time.Duration
	gap     time.Duration
}

// parseDevice reads a device's protocol config. KubeEdge's older nested
// form {"tcp": {"ip", "port"}} is read too.
func parseDevice(cfg map[string]any) (device, error) {
	d := device{unit: defaultSlaveID, timeout: defaultTimeout}
	if tcp, ok := cfg["tcp"].(map[string]any); ok && cfg["ip"] == nil {
		cfg = mergedUnder(cfg, tcp)
	}
	ip := text(cfg["ip"])
	if ip == "" {
		return d, errors.New("protocol config: ip is required (the device's address, as in {ip: 10.0.0.5, port: 502})")
	}
	if strings.Contains(ip, ":") && !strings.HasPrefix(ip, "[") {
		// An IPv6 address (a name has no colon): bracketed for host:port.
		// Lexical, since net/netip would add ~100 KB to the module.
		ip = "[" + ip + "]"
	}
	port, err := integer(cfg, "port", defaultPort, 1, 65535)
	if err != nil {
		return d, err
	}
	d.addr = ip + ":" + strconv.Itoa(port)
	unit, err := integer(cfg, "slaveID", defaultSlaveID, 0, 255)
	if err != nil {
		return d, err
	}
	d.unit = byte(unit)
	ms, err := integer(cfg, "timeout", int(defaultTimeout/time.Millisecond), 1, 60000)
	if err != nil {
		return d, err
	}
	d.timeout = time.Duration(ms) * time.Millisecond
	gap, err := integer(cfg, "requestGap", 0, 0, 60000)
	if err != nil {
		return d, err
	}
	d.gap = time.Duration(gap) * time.Millisecond
	return d, nil
}

// mergedUnder returns cfg over base.
func mergedUnder(cfg, base map[string]any) map[string]any {
	out := make(map[string]any, len(cfg)+len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range cfg {
		if k != "tcp" {
			out[k] = v
		}
	}
	return out
}

// Register kinds of the visitor config, KubeEdge's names.
const (
	coilRegister          = "CoilRegister"
	discreteInputRegister = "DiscreteInputRegister"
	holdingRegister       = "HoldingRegister"
	inputRegister         = "InputRegister"
)

// point is a property's visitor config:
//
//	{"register": "HoldingRegister", "offset": 0, "limit": 1, "scale": 1,
//	 "isSwap": false, "isRegisterSwap": false, "dataType": "int16"}
type point struct {
	register string
	offset   uint16
	// count is the number of registers or bits read.
	count    uint16
	scale    float64
	byteSwap bool
	wordSwap bool
	dataType string
	twinType string
}

// bits reports whether the point is a coil or discrete input.
func (p *point) bits() bool { return p.register == coilRegister || p.register == discreteInputRegister }

// dataTypes maps each register data type to its size in registers (0:
// the limit's).
var dataTypes = map[string]int{
	"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
	"float32": 2, "float64": 4, "boolean": 1, "string": 0,
}

// parsePoint reads a property's visitor config, for a property of twin
// type twinType.
func parsePoint(v map[string]any, twinType string) (point, error) {
	p := point{register: text(v["register"]), twinType: twinType, scale: 1}
	switch p.register {
	case coilRegister, discreteInputRegister, holdingRegister, inputRegister:
	case "":
		return p, errors.New("visitor config: register is required (CoilRegister, DiscreteInputRegister, HoldingRegister, InputRegister)")
	default:
		return p, errors.New("visitor config: register " + strconv.Quote(p.register) + " is not CoilRegister, DiscreteInputRegister, HoldingRegister or InputRegister")
	}
	off, err := integer(v, "offset", 0, 0, 65535)
	if err != nil {
		return p, err
	}
	p.offset = uint16(off)
	limit, err := integer(v, "limit", 0, 0, mbap.MaxReadBits)
	if err != nil {
		return p, err
	}
	if s, ok := v["scale"]; ok {
		f, ok := float(s)
		if !ok || f == 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return p, errors.New("visitor config: scale " + show(s) + " is not a non-zero number")
		}
		p.scale = f
	}
	p.byteSwap, p.wordSwap = truth(v["isSwap"]), truth(v["isRegisterSwap"])
	if p.bits() {
		p.count = uint16(max(limit, 1))
		p.dataType = "boolean"
		if p.count > 1 {
			p.dataType = "bits"
		}
		return p, nil
	}
	p.dataType = strings.ToLower(text(v["dataType"]))
	if p.dataType == "" {
		p.dataType = defaultDataType(twinType, limit)
	}
	size, ok := dataTypes[p.dataType]
	switch {
	case !ok:
		return p, errors.New("visitor config: dataType " + strconv.Quote(p.dataType) + " is not int16, uint16, int32, uint32, int64, uint64, float32, float64, boolean or string")
	case size == 0 && limit == 0:
		return p, errors.New("visitor config: a string needs limit, its length in registers")
	case size == 0:
		size = limit
	case limit != 0 && limit != size:
		return p, errors.New("visitor config: limit " + strconv.Itoa(limit) + " does not fit dataType " + p.dataType + ", which is " + strconv.Itoa(size) + " registers")
	}
	if size > mbap.MaxReadRegisters {
		return p, errors.New("visitor config: limit " + strconv.Itoa(size) + " is over " + strconv.Itoa(mbap.MaxReadRegisters) + " registers")
	}
	p.count = uint16(size)
	return p, nil
}

// defaultDataType is the data type of a register property without one:
// from the twin type and the limit, as KubeEdge's mapper reads them.
func defaultDataType(twinType string, limit int) string {
	switch {
	case twinType == "string":
		return "string"
	case twinType == "boolean":
		return "boolean"
	case twinType == "float" && limit == 2:
		return "float32"
	case twinType == "float" && limit == 4:
		return "float64"
	case limit == 2:
		return "int32"
	case limit == 4:
		return "int64"
	}
	return "int16"
}

// text is a config value as text.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return show(v)
}

// show is a config value as JSON text, for errors.
func show(v any) string { return string(jsonlite.AppendValue(nil, v)) }

// float is a config value as a number (a number or its text).
func float(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

// truth is a config value as a boolean: true or "true".
func truth(v any) bool {
	b, _ := strconv.ParseBool(text(v))
	return b
}

// integer is the whole number at cfg[key] in [lo, hi], def when absent.
func integer(cfg map[string]any, key string, def, lo, hi int) (int, error) {
	v, ok := cfg[key]
	if !ok || v == nil || v == "" {
		return def, nil
	}
	f, ok := float(v)
	if !ok || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, errors.New("config " + key + ": " + show(v) + " is not a whole number in " + strconv.Itoa(lo) + "-" + strconv.Itoa(hi))
	}
	return int(f), nil
}
