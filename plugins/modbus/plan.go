package main

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/edgehost/edgehost/abi"
)

// plan is a read request decoded and its configs parsed: what to read
// from which device. Decoding the JSON and the configs costs more in wasm
// than the poll itself, and the host sends the same bytes every cycle for
// devices that fall due together (it marshals a device's entry once), so
// plans are kept by their request's bytes.
type plan struct {
	devices []target
}

// target is one device of a read.
type target struct {
	id     string
	cfg    device
	cfgErr error
	props  []prop
}

// prop is one property of a read.
type prop struct {
	name  string
	pt    point
	ptErr error
}

// maxPlans bounds the plans kept; the oldest goes first.
const maxPlans = 32

var (
	plans     = map[string]*plan{}
	planOrder []string
)

// planFor returns the plan of a read request's content, decoding it
// unless an identical request was seen.
func planFor(content []byte) (*plan, error) {
	if p := plans[string(content)]; p != nil {
		return p, nil
	}
	var req abi.MapperRead
	if err := json.Unmarshal(content, &req); err != nil {
		return nil, fmt.Errorf("modbus: read: %w", err)
	}
	p := &plan{devices: make([]target, len(req.Devices))}
	for i := range req.Devices {
		d := &req.Devices[i]
		t := &p.devices[i]
		t.id = d.ID
		t.cfg, t.cfgErr = parseDevice(d.ProtocolConfig)
		t.props = make([]prop, len(d.Properties))
		for j, pr := range d.Properties {
			t.props[j].name = pr.Name
			t.props[j].pt, t.props[j].ptErr = parsePoint(pr.Visitor, pr.Type)
		}
	}
	if len(planOrder) >= maxPlans {
		delete(plans, planOrder[0])
		planOrder = planOrder[1:]
	}
	key := string(content)
	plans[key] = p
	planOrder = append(planOrder, key)
	return p, nil
}

// appendReply appends r as the JSON of abi.MapperReadReply; written by
// hand because encoding/json costs as much as the poll in wasm.
func appendReply(dst []byte, r *abi.MapperReadReply) []byte {
	dst = append(dst, `{"devices":[`...)
	for i := range r.Devices {
		d := &r.Devices[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":`...)
		dst = appendString(dst, d.ID)
		if d.State != "" {
			dst = append(dst, `,"state":`...)
			dst = appendString(dst, d.State)
		}
		if d.Error != "" {
			dst = append(dst, `,"error":`...)
			dst = appendString(dst, d.Error)
		}
		if len(d.Properties) > 0 {
			dst = append(dst, `,"properties":[`...)
			for j, v := range d.Properties {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, `{"name":`...)
				dst = appendString(dst, v.Name)
				if v.Value != "" {
					dst = append(dst, `,"value":`...)
					dst = appendString(dst, v.Value)
				}
				if v.Error != "" {
					dst = append(dst, `,"error":`...)
					dst = appendString(dst, v.Error)
				}
				dst = append(dst, '}')
			}
			dst = append(dst, ']')
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// appendString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\r':
				dst = append(dst, '\\', 'r')
			default:
				dst = append(dst, `\u00`...)
				dst = append(dst, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xF])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
