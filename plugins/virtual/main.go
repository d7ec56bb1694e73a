// Command virtual is edgehost's simulated-device mapper: a wasm plugin of
// kind mapper for the protocol "virtual" (abi/SPEC.md section 9). The host
// schedules its devices' reads and writes; each property's visitor config
// picks what it simulates:
//
//	{"kind": "counter", "start": 0, "step": 1}   start + step × cycles since the device was opened
//	{"kind": "sine", "amplitude": 10, "period": "60s", "offset": 0}
//	{"kind": "random", "min": 0, "max": 100}
//	{"kind": "echo", "initial": "off"}           the last value written, else initial
//	{"kind": "constant", "value": "42"}
//
// The device's protocol config may set {"fail": "reason"}, which makes
// every read and write of the device fail with that reason, and
// {"state": "offline"}, which is reported as the device's state: both for
// demos and tests of the host's error handling.
//
// Values are formatted in the property's twin type (int, float, boolean,
// string). Counters are computed from the time, and the open time and the
// echoed values live in the KV store, so every instance gives the same
// answers without a write on the read path.
package main

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/jsonlite"
	"github.com/edgehost/edgehost/sdk/mapperjson"
)

func init() {
	sdk.Handle(handle)
}

func main() {}

// handle answers the host's mapper messages.
func handle(m *sdk.Message) (*sdk.Message, error) {
	switch m.Route.Operation {
	case abi.MapperOpRead:
		req, err := mapperjson.DecodeRead(m.Content)
		if err != nil {
			return nil, wrap("virtual: read: ", err)
		}
		reply := read(&req, sdk.Now())
		return m.Reply(mapperjson.AppendReadReply(make([]byte, 0, 256), &reply)), nil
	case abi.MapperOpWrite:
		req, err := mapperjson.DecodeWrite(m.Content)
		if err != nil {
			return nil, wrap("virtual: write: ", err)
		}
		if err := write(&req); err != nil {
			return nil, err
		}
		return m.Reply(nil), nil
	case abi.MapperOpOpen:
		d, err := mapperjson.DecodeDevice(m.Content)
		if err != nil {
			return nil, wrap("virtual: open: ", err)
		}
		return m.Reply(nil), open(&d, sdk.Now())
	case abi.MapperOpClose:
		return m.Reply(nil), sdk.KVDelete(openedKey(strings.TrimPrefix(m.Route.Resource, "device/")))
	}
	return nil, abi.NoHandler
}

// open records when the device was opened, which its counters count from;
// a device opened again (after a restart of the daemon) keeps counting.
func open(d *abi.MapperDevice, now time.Time) error {
	if _, ok, err := sdk.KVGet(openedKey(d.ID)); err != nil || ok {
		return err
	}
	return sdk.KVPut(openedKey(d.ID), strconv.AppendInt(nil, now.UnixMilli(), 10))
}

func openedKey(id string) string { return "opened/" + id }

func echoKey(id, prop string) string { return "echo/" + id + "/" + prop }

// read answers every property of every device of req.
func read(req *abi.MapperRead, now time.Time) abi.MapperReadReply {
	reply := abi.MapperReadReply{Devices: make([]abi.MapperDeviceValues, 0, len(req.Devices))}
	for i := range req.Devices {
		d := &req.Devices[i]
		out := abi.MapperDeviceValues{ID: d.ID}
		if reason := text(d.ProtocolConfig["fail"]); reason != "" {
			out.Error, out.State = reason, abi.StateOffline
			reply.Devices = append(reply.Devices, out)
			continue
		}
		out.State = text(d.ProtocolConfig["state"])
		opened := openedAt(d.ID, now)
		for _, p := range d.Properties {
			v, err := simulate(d.ID, &p, now, opened)
			if err != nil {
				out.Properties = append(out.Properties, abi.MapperValue{Name: p.Name, Error: err.Error()})
				continue
			}
			out.Properties = append(out.Properties, abi.MapperValue{Name: p.Name, Value: v})
		}
		reply.Devices = append(reply.Devices, out)
	}
	return reply
}

// openedAt is when the device was opened, or now if it never was.
func openedAt(id string, now time.Time) time.Time {
	b, ok, err := sdk.KVGet(openedKey(id))
	if err != nil || !ok {
		return now
	}
	ms, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return now
	}
	return time.UnixMilli(ms)
}

// simulate is one property's value at now.
func simulate(id string, p *abi.MapperProperty, now, opened time.Time) (string, error) {
	v := p.Visitor
	switch kind := text(v["kind"]); kind {
	case "counter":
		cycle := max(p.CollectCycle, 1)
		n := now.Sub(opened).Milliseconds() / cycle
		return format(p.Type, number(v["start"], 0)+number(v["step"], 1)*float64(n))
	case "sine":
		period, err := duration(v["period"], time.Minute)
		if err != nil {
			return "", err
		}
		phase := 2 * math.Pi * float64(now.Sub(opened)) / float64(period)
		return format(p.Type, number(v["offset"], 0)+number(v["amplitude"], 1)*math.Sin(phase))
	case "random":
		lo, hi := number(v["min"], 0), number(v["max"], 100)
		if hi < lo {
			return "", errors.New("random: max " + show(hi) + " is below min " + show(lo))
		}
		x := lo + rand.Float64()*(hi-lo)
		if p.Type == "int" {
			x = math.Floor(lo + rand.Float64()*(hi-lo+1))
			x = min(x, hi)
		}
		return format(p.Type, x)
	case "echo":
		b, ok, err := sdk.KVGet(echoKey(id, p.Name))
		if err != nil {
			return "", err
		}
		if ok {
			return string(b), nil
		}
		return text(v["initial"]), nil
	case "constant":
		return text(v["value"]), nil
	case "":
		return "", errors.New("the visitor config has no kind (counter, sine, random, echo, constant)")
	default:
		return "", errors.New("unknown kind " + strconv.Quote(kind) + " (counter, sine, random, echo, constant)")
	}
}

// write sets an echo property; other kinds are read-only.
func write(req *abi.MapperWrite) error {
	d := &req.Device
	if reason := text(d.ProtocolConfig["fail"]); reason != "" {
		return errors.New(reason)
	}
	if len(d.Properties) != 1 {
		return errors.New("virtual: write names " + strconv.Itoa(len(d.Properties)) + " properties, want 1")
	}
	p := &d.Properties[0]
	if kind := text(p.Visitor["kind"]); kind != "echo" {
		return errors.New("property " + p.Name + " is a " + kind + ", which is read-only; only echo properties take writes")
	}
	if err := checkType(p.Type, req.Value); err != nil {
		return wrap("property "+p.Name+": ", err)
	}
	return sdk.KVPut(echoKey(d.ID, p.Name), []byte(req.Value))
}

// checkType refuses a value that does not fit the twin type.
func checkType(typ, s string) error {
	var err error
	switch typ {
	case "int":
		_, err = strconv.ParseInt(s, 10, 64)
	case "float":
		_, err = strconv.ParseFloat(s, 64)
	case "boolean":
		_, err = strconv.ParseBool(s)
	}
	if err != nil {
		return errors.New(strconv.Quote(s) + " is not a " + typ)
	}
	return nil
}

// format writes x in the twin type typ, without an exponent (the twin
// refuses '+').
func format(typ string, x float64) (string, error) {
	switch typ {
	case "int":
		return strconv.FormatInt(int64(math.Round(x)), 10), nil
	case "boolean":
		return strconv.FormatBool(x != 0), nil
	}
	return strconv.FormatFloat(math.Round(x*1000)/1000, 'f', -1, 64), nil
}

// text is a config value as text.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return string(jsonlite.AppendValue(nil, v))
}

// show is a config value as JSON text, for errors.
func show(v any) string { return string(jsonlite.AppendValue(nil, v)) }

// wrapped is an error with context before it, as fmt.Errorf("%s%w")
// makes one (fmt is left out to keep the module small).
type wrapped struct {
	context string
	err     error
}

func (e *wrapped) Error() string { return e.context + e.err.Error() }
func (e *wrapped) Unwrap() error { return e.err }

func wrap(context string, err error) error { return &wrapped{context, err} }

// number is a config value as a number, def when absent or not one.
func number(v any, def float64) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return f
		}
	}
	return def
}

// duration is a config value as a duration: a Go duration text or a
// number of milliseconds.
func duration(v any, def time.Duration) (time.Duration, error) {
	switch x := v.(type) {
	case nil:
		return def, nil
	case float64:
		if x > 0 {
			return time.Duration(x) * time.Millisecond, nil
		}
	case string:
		if d, err := time.ParseDuration(x); err == nil && d > 0 {
			return d, nil
		}
	}
	return 0, errors.New("period " + show(v) + ` is not a positive duration ("60s" or milliseconds)`)
}
