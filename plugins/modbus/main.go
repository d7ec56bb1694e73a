// Command modbus is edgehost's Modbus TCP mapper: a wasm plugin of kind
// mapper for the protocol "modbus" (abi/SPEC.md section 9), reaching its
// devices through the host's TCP imports (section 5.2). A device's
// protocol config names the server, a property's visitor config the
// registers, with KubeEdge's keys:
//
//	protocol: {ip: 10.0.0.5, port: 502, slaveID: 1, timeout: 500, requestGap: 0}
//	visitor:  {register: HoldingRegister, offset: 0, limit: 1, scale: 0.1,
//	           isSwap: false, isRegisterSwap: false, dataType: int16}
//
// Reads use functions 1-4 by register kind; writes use 5 or 15 for coils
// and 6 or 16 for holding registers. Each instance keeps one connection
// per server across calls and makes it again when it broke. A device that
// cannot be reached or does not answer in its timeout fails as a whole
// (offline) and is read after the others in later batches, so it holds up
// no other device; an exception, a malformed reply or a wrong transaction
// id fails its property with an error that names it.
package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/plugins/modbus/mbap"
	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/mapperjson"
)

func init() {
	sdk.Handle(handle)
}

func main() {}

// slow holds the addresses whose last request timed out or could not
// connect: their devices are read last in a batch.
var slow = map[string]bool{}

// addrs remembers each device's server address, for close.
var addrs = map[string]string{}

// handle answers the host's mapper messages.
func handle(m *sdk.Message) (*sdk.Message, error) {
	switch m.Route.Operation {
	case abi.MapperOpRead:
		p, err := planFor(m.Content)
		if err != nil {
			return nil, err
		}
		reply := read(p)
		return m.Reply(mapperjson.AppendReadReply(make([]byte, 0, 256), &reply)), nil
	case abi.MapperOpWrite:
		req, err := mapperjson.DecodeWrite(m.Content)
		if err != nil {
			return nil, wrap("modbus: write: ", err)
		}
		if err := write(&req); err != nil {
			return nil, err
		}
		return m.Reply(nil), nil
	case abi.MapperOpClose:
		id := strings.TrimPrefix(m.Route.Resource, "device/")
		if c := conns[addrs[id]]; c != nil {
			c.close()
		}
		delete(addrs, id)
		return m.Reply(nil), nil
	}
	return nil, abi.NoHandler
}

// read answers every device of p, in the order of the request, reading
// the devices that were slow last time after the others.
func read(p *plan) abi.MapperReadReply {
	reply := abi.MapperReadReply{Devices: make([]abi.MapperDeviceValues, len(p.devices))}
	var later []int
	for i := range p.devices {
		t := &p.devices[i]
		if t.cfgErr == nil && slow[t.cfg.addr] {
			later = append(later, i)
			continue
		}
		reply.Devices[i] = readDevice(t)
	}
	for _, i := range later {
		reply.Devices[i] = readDevice(&p.devices[i])
	}
	return reply
}

// readDevice reads the due properties of one device. A device that
// cannot be reached or does not answer fails as a whole; a property the
// device refuses or answers wrongly fails alone.
func readDevice(t *target) abi.MapperDeviceValues {
	out := abi.MapperDeviceValues{ID: t.id}
	if t.cfgErr != nil {
		out.Error, out.State = t.cfgErr.Error(), abi.StateOffline
		return out
	}
	addrs[t.id] = t.cfg.addr
	out.Properties = make([]abi.MapperValue, 0, len(t.props))
	for i := range t.props {
		p := &t.props[i]
		v, err := readProperty(&t.cfg, p)
		if err == nil {
			delete(slow, t.cfg.addr)
			out.Properties = append(out.Properties, abi.MapperValue{Name: p.name, Value: v})
			continue
		}
		if errors.Is(err, errConnect) || errors.Is(err, sdk.ErrTimeout) {
			// Not reachable or not answering: the other properties would
			// wait as long, so the device fails now.
			slow[t.cfg.addr] = true
			out.Error, out.State, out.Properties = p.name+": "+err.Error(), abi.StateOffline, nil
			return out
		}
		out.Properties = append(out.Properties, abi.MapperValue{Name: p.name, Error: err.Error()})
	}
	return out
}

// readFunctions are the read function of each register kind.
var readFunctions = map[string]byte{coilRegister: mbap.ReadCoils, discreteInputRegister: mbap.ReadDiscreteInputs,
	holdingRegister: mbap.ReadHoldingRegisters, inputRegister: mbap.ReadInputRegisters}

// readProperty reads one property's registers or bits and decodes them.
func readProperty(cfg *device, p *prop) (string, error) {
	if p.ptErr != nil {
		return "", p.ptErr
	}
	pt := &p.pt
	r, err := mbap.Read(readFunctions[pt.register], pt.offset, pt.count)
	if err != nil {
		return "", err
	}
	data, err := transact(cfg, &r)
	if err != nil {
		return "", wrap(pt.register+" "+strconv.Itoa(int(pt.offset))+": ", err)
	}
	v, err := pt.decode(data)
	if err != nil {
		return "", wrap(pt.register+" "+strconv.Itoa(int(pt.offset))+": ", err)
	}
	return v, nil
}

// write sets one property: holding registers (functions 6 and 16) and
// coils (5 and 15) take writes; inputs are read-only.
func write(req *abi.MapperWrite) error {
	d := &req.Device
	if len(d.Properties) != 1 {
		return errors.New("modbus: write names " + strconv.Itoa(len(d.Properties)) + " properties, want 1")
	}
	cfg, err := parseDevice(d.ProtocolConfig)
	if err != nil {
		return err
	}
	p := &d.Properties[0]
	pt, err := parsePoint(p.Visitor, p.Type)
	if err != nil {
		return wrap("property "+p.Name+": ", err)
	}
	regs, bits, err := pt.encode(req.Value)
	if err != nil {
		return wrap("property "+p.Name+": ", err)
	}
	var r mbap.Request
	switch pt.register {
	case holdingRegister:
		r, err = mbap.WriteRegisters(pt.offset, regs)
	case coilRegister:
		r, err = mbap.WriteCoils(pt.offset, bits)
	default:
		return errors.New("property " + p.Name + ": a " + pt.register + " is read-only; only HoldingRegister and CoilRegister take writes")
	}
	if err != nil {
		return wrap("property "+p.Name+": ", err)
	}
	addrs[d.ID] = cfg.addr
	if _, err := transact(&cfg, &r); err != nil {
		return wrap("property "+p.Name+": "+pt.register+" "+strconv.Itoa(int(pt.offset))+": ", err)
	}
	return nil
}
