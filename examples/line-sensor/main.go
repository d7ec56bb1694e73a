// Command line-sensor is an example device mapper for a made-up protocol:
// a sensor on TCP that answers one line per request line.
//
//	READ temp\n      -> temp 21.5\n
//	SET fan on\n     -> OK\n
//	anything else    -> ERR reason\n
//
// A device's protocol config gives the sensor's address
// ({address: "10.0.0.7:7000"}); a property's visitor config may name the
// channel ({channel: temp}), else the property's name is used. Everything
// else — when to read, the twin, desired values, device state — is the
// host's (abi/SPEC.md section 9).
//
// It decodes and encodes the mapper contract with sdk/mapperjson and
// builds its errors with strconv, not encoding/json and fmt: together they
// would add over a megabyte to the module, and four times that in the
// host's machine code.
package main

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/mapperjson"
)

func init() { sdk.Handle(handle) }

func main() {}

// sensor is a connection kept across calls, with what was read past the
// last answer's newline.
type sensor struct {
	conn    *sdk.TCPConn
	pending []byte
}

var sensors = map[string]*sensor{}

func handle(m *sdk.Message) (*sdk.Message, error) {
	switch m.Route.Operation {
	case abi.MapperOpRead:
		req, err := mapperjson.DecodeRead(m.Content)
		if err != nil {
			return nil, errors.New("line-sensor: read: " + err.Error())
		}
		var out abi.MapperReadReply
		for _, d := range req.Devices {
			dv := abi.MapperDeviceValues{ID: d.ID}
			for _, p := range d.Properties {
				ch := channel(&p)
				answer, err := ask(d.ProtocolConfig, "READ "+ch)
				value, ok := strings.CutPrefix(answer, ch+" ")
				switch {
				case err != nil:
					dv.Error, dv.State = err.Error(), abi.StateOffline
				case !ok:
					value, err = "", errors.New("READ "+ch+": the sensor answered "+strconv.Quote(answer))
				}
				if dv.Error != "" {
					dv.Properties = nil
					break // the sensor is not answering: the device fails
				}
				dv.Properties = append(dv.Properties, abi.MapperValue{Name: p.Name, Value: value, Error: errText(err)})
			}
			out.Devices = append(out.Devices, dv)
		}
		return m.Reply(mapperjson.AppendReadReply(nil, &out)), nil
	case abi.MapperOpWrite:
		req, err := mapperjson.DecodeWrite(m.Content)
		if err != nil {
			return nil, errors.New("line-sensor: write: " + err.Error())
		}
		if len(req.Device.Properties) != 1 {
			return nil, errors.New("line-sensor: write names " + strconv.Itoa(len(req.Device.Properties)) + " properties, want 1")
		}
		ch := channel(&req.Device.Properties[0])
		answer, err := ask(req.Device.ProtocolConfig, "SET "+ch+" "+req.Value)
		if err == nil && answer != "OK" {
			err = errors.New("SET " + ch + ": the sensor answered " + strconv.Quote(answer))
		}
		return m.Reply(nil), err
	}
	return nil, abi.NoHandler
}

func channel(p *abi.MapperProperty) string {
	if ch, ok := p.Visitor["channel"].(string); ok && ch != "" {
		return ch
	}
	return p.Name
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ask sends one line to the device's sensor and returns its answer line.
// A connection the sensor closed, or a stale handle, is made again once;
// one that failed
// otherwise is closed, so a late answer cannot answer the next line.
func ask(cfg map[string]any, line string) (string, error) {
	addr, _ := cfg["address"].(string)
	if addr == "" {
		return "", errors.New(`protocol config: address is required ("host:port")`)
	}
	for attempt := 0; ; attempt++ {
		s := sensors[addr]
		fresh := s == nil
		if fresh {
			c, err := sdk.DialTCP(addr, 500*time.Millisecond)
			if err != nil {
				return "", err
			}
			c.SetTimeout(500 * time.Millisecond)
			s = &sensor{conn: c}
			sensors[addr] = s
		}
		answer, err := s.exchange(line)
		if err == nil {
			return answer, nil
		}
		s.conn.Close()
		delete(sensors, addr)
		if fresh || attempt > 0 || !(errors.Is(err, io.EOF) || errors.Is(err, sdk.ErrClosed) || errors.Is(err, sdk.ErrBadHandle)) {
			return "", err
		}
	}
}

// exchange writes line and reads up to the answer's newline.
func (s *sensor) exchange(line string) (string, error) {
	if _, err := s.conn.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	buf := make([]byte, 256)
	for {
		if i := strings.IndexByte(string(s.pending), '\n'); i >= 0 {
			answer := strings.TrimSpace(string(s.pending[:i]))
			s.pending = s.pending[i+1:]
			return answer, nil
		}
		n, err := s.conn.Read(buf)
		if err != nil {
			return "", err
		}
		s.pending = append(s.pending, buf[:n]...)
	}
}
