// Command kvcounter is an edgehost plugin that enriches temperature
// readings. For a reading such as
//
//	{"device":"d1","temperature_c":21.5}
//
// it replies with the reading in both units and the device's running
// statistics, which it keeps in the KV store so that every instance of the
// plugin, and every later version, shares them:
//
//	{"device":"d1","temperature_c":21.5,"temperature_f":70.7,"count":3,
//	 "min_c":19,"max_c":21.5,"mean_c":20.5,"updated":"2025-01-02T03:04:05Z"}
//
// {"device":"d1"} returns the statistics without recording a reading, and
// empty content lists the known devices: {"devices":["d1","d2"]}. A reading
// outside the configured plausible range is refused with an error reply.
//
// Config (optional): {"valid_min_c":-40,"valid_max_c":125}.
//
// Its JSON is read and written by hand with sdk/jsonlite (json.go), and its
// errors built with strconv: encoding/json and fmt would add over a
// megabyte to the module, and four times that in the host's machine code.
package main

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/sdk"
)

// Config is the plugin's configuration.
type Config struct {
	// ValidMinC and ValidMaxC bound a plausible reading, in °C.
	ValidMinC float64 `json:"valid_min_c"`
	ValidMaxC float64 `json:"valid_max_c"`
}

// defaultConfig covers common industrial sensors.
var defaultConfig = Config{ValidMinC: -40, ValidMaxC: 125}

// config is this instance's configuration, set at init.
var config = defaultConfig

// Reading is the content the plugin receives.
type Reading struct {
	Device       string   `json:"device"`
	TemperatureC *float64 `json:"temperature_c,omitempty"`
}

// Stats are a device's running statistics, stored as JSON under
// keyPrefix + device.
type Stats struct {
	Count   int64     `json:"count"`
	MinC    float64   `json:"min_c"`
	MaxC    float64   `json:"max_c"`
	SumC    float64   `json:"sum_c"`
	Updated time.Time `json:"updated"`
}

// Enriched is the reply to a reading or a query for one device.
type Enriched struct {
	Device       string    `json:"device"`
	TemperatureC *float64  `json:"temperature_c,omitempty"`
	TemperatureF *float64  `json:"temperature_f,omitempty"`
	Count        int64     `json:"count"`
	MinC         float64   `json:"min_c"`
	MaxC         float64   `json:"max_c"`
	MeanC        float64   `json:"mean_c"`
	Updated      time.Time `json:"updated"`
}

// keyPrefix namespaces the per-device statistics in the plugin's KV store.
const keyPrefix = "device/"

// maxDeviceLen keeps keys well inside the 1024-byte KV key limit.
const maxDeviceLen = 256

func init() {
	sdk.OnInit(func(raw []byte) error {
		c := defaultConfig
		if len(raw) > 0 {
			if err := c.decode(raw); err != nil {
				return errors.New("kvcounter: config: " + err.Error())
			}
		}
		if !(c.ValidMinC < c.ValidMaxC) {
			return errors.New("kvcounter: config: valid_min_c must be below valid_max_c")
		}
		config = c
		return nil
	})
	sdk.Handle(handle)
}

// handle dispatches on the content: a reading, a device query, or a list.
func handle(m *sdk.Message) (*sdk.Message, error) {
	if len(strings.TrimSpace(string(m.Content))) == 0 {
		return listDevices(m)
	}
	var r Reading
	if err := r.decode(m.Content); err != nil {
		return nil, errors.New("kvcounter: content is not a reading: " + err.Error())
	}
	if r.Device == "" || len(r.Device) > maxDeviceLen {
		return nil, errors.New("kvcounter: reading needs a device name of 1 to 256 bytes")
	}
	stats, err := load(r.Device)
	if err != nil {
		return nil, err
	}
	out := Enriched{Device: r.Device}
	if t := r.TemperatureC; t != nil {
		if *t < config.ValidMinC || *t > config.ValidMaxC || math.IsNaN(*t) {
			return nil, errors.New("kvcounter: temperature out of the plausible range")
		}
		if stats.Count == 0 {
			sdk.LogInfo("new device", "device", r.Device)
		}
		stats.add(*t, sdk.Now().UTC())
		if err := save(r.Device, stats); err != nil {
			return nil, err
		}
		f := round2(*t*9/5 + 32)
		out.TemperatureC, out.TemperatureF = t, &f
	} else if stats.Count == 0 {
		return nil, errors.New("kvcounter: unknown device " + strconv.Quote(r.Device))
	}
	out.Count, out.MinC, out.MaxC, out.Updated = stats.Count, stats.MinC, stats.MaxC, stats.Updated
	out.MeanC = round2(stats.SumC / float64(stats.Count))
	return m.Reply(out.append(nil)), nil
}

// add records one reading taken at now.
func (s *Stats) add(c float64, now time.Time) {
	if s.Count == 0 || c < s.MinC {
		s.MinC = c
	}
	if s.Count == 0 || c > s.MaxC {
		s.MaxC = c
	}
	s.Count++
	s.SumC += c
	s.Updated = now
}

// load reads a device's statistics; a device never seen has zero Stats.
func load(device string) (Stats, error) {
	var s Stats
	b, ok, err := sdk.KVGet(keyPrefix + device)
	if err != nil || !ok {
		return s, err
	}
	if err := s.decode(b); err != nil {
		return s, errors.New("kvcounter: stored statistics of " + strconv.Quote(device) + ": " + err.Error())
	}
	return s, nil
}

// save stores a device's statistics.
func save(device string, s Stats) error {
	return sdk.KVPut(keyPrefix+device, s.append(nil))
}

// listDevices replies with the names of the devices seen so far.
func listDevices(m *sdk.Message) (*sdk.Message, error) {
	keys, err := sdk.KVList(keyPrefix)
	if err != nil {
		return nil, err
	}
	devices := make([]string, len(keys))
	for i, k := range keys {
		devices[i] = strings.TrimPrefix(k, keyPrefix)
	}
	return m.Reply(appendDevices(nil, devices)), nil
}

// round2 rounds to two decimals, so 21.5 °C is 70.7 °F and not
// 70.70000000000002.
func round2(x float64) float64 { return math.Round(x*100) / 100 }

func main() {}
