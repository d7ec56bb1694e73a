package main

import (
	"strconv"
	"time"

	"github.com/edgehost/edgehost/sdk/jsonlite"
)

// The plugin's JSON, read and written by hand with jsonlite as
// encoding/json would read and write the types' tags: each decoder names
// the fields it knows and reads each with the method of its type.

var (
	configFields  = []string{"valid_min_c", "valid_max_c"}
	readingFields = []string{"device", "temperature_c"}
	statsFields   = []string{"count", "min_c", "max_c", "sum_c", "updated"}
)

func (c *Config) decode(data []byte) error {
	d := jsonlite.NewDecoder(data)
	d.Object(configFields, func(name string) {
		if name == "valid_min_c" {
			d.Float64(&c.ValidMinC)
		} else {
			d.Float64(&c.ValidMaxC)
		}
	})
	return d.Finish()
}

func (r *Reading) decode(data []byte) error {
	d := jsonlite.NewDecoder(data)
	d.Object(readingFields, func(name string) {
		if name == "device" {
			d.String(&r.Device)
			return
		}
		if d.Null() {
			r.TemperatureC = nil
			return
		}
		var t float64
		d.Float64(&t)
		r.TemperatureC = &t
	})
	return d.Finish()
}

func (s *Stats) decode(data []byte) error {
	d := jsonlite.NewDecoder(data)
	d.Object(statsFields, func(name string) {
		switch name {
		case "count":
			d.Int64(&s.Count)
		case "min_c":
			d.Float64(&s.MinC)
		case "max_c":
			d.Float64(&s.MaxC)
		case "sum_c":
			d.Float64(&s.SumC)
		case "updated":
			decodeTime(d, &s.Updated)
		}
	})
	return d.Finish()
}

// decodeTime reads a time as encoding/json does: with time.Time's
// UnmarshalJSON, given the value's bytes.
func decodeTime(d *jsonlite.Decoder, t *time.Time) {
	if raw := d.Raw(); raw != nil {
		if err := t.UnmarshalJSON(raw); err != nil {
			d.Fail(err.Error())
		}
	}
}

func (s *Stats) append(b []byte) []byte {
	b = append(b, `{"count":`...)
	b = strconv.AppendInt(b, s.Count, 10)
	b = append(b, `,"min_c":`...)
	b = jsonlite.AppendFloat(b, s.MinC)
	b = append(b, `,"max_c":`...)
	b = jsonlite.AppendFloat(b, s.MaxC)
	b = append(b, `,"sum_c":`...)
	b = jsonlite.AppendFloat(b, s.SumC)
	b = append(b, `,"updated":`...)
	return append(appendTime(b, s.Updated), '}')
}

func (e *Enriched) append(b []byte) []byte {
	b = append(b, `{"device":`...)
	b = jsonlite.AppendString(b, e.Device)
	if e.TemperatureC != nil {
		b = append(b, `,"temperature_c":`...)
		b = jsonlite.AppendFloat(b, *e.TemperatureC)
	}
	if e.TemperatureF != nil {
		b = append(b, `,"temperature_f":`...)
		b = jsonlite.AppendFloat(b, *e.TemperatureF)
	}
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, e.Count, 10)
	b = append(b, `,"min_c":`...)
	b = jsonlite.AppendFloat(b, e.MinC)
	b = append(b, `,"max_c":`...)
	b = jsonlite.AppendFloat(b, e.MaxC)
	b = append(b, `,"mean_c":`...)
	b = jsonlite.AppendFloat(b, e.MeanC)
	b = append(b, `,"updated":`...)
	return append(appendTime(b, e.Updated), '}')
}

// appendTime appends t as time.Time's MarshalJSON writes it (which
// refuses a year outside 0-9999; the plugin's times are now).
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendDevices appends {"devices":[...]}.
func appendDevices(b []byte, devices []string) []byte {
	b = append(b, `{"devices":[`...)
	for i, dev := range devices {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonlite.AppendString(b, dev)
	}
	return append(b, "]}"...)
}
