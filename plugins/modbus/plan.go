package main

import "github.com/edgehost/edgehost/sdk/mapperjson"

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
	req, err := mapperjson.DecodeRead(content)
	if err != nil {
		return nil, wrap("modbus: read: ", err)
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
