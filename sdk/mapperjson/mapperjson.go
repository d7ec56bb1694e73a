// Package mapperjson decodes and encodes the mapper contract's JSON
// (abi/SPEC.md section 9: abi.MapperRead, abi.MapperDevice, abi.MapperWrite
// and abi.MapperReadReply) without reflection, so a Go mapper need not
// link encoding/json: the results are json.Unmarshal's and the bytes
// json.Marshal's (the package's tests hold it to both), and errors name
// the field and the byte where the content was wrong.
package mapperjson

import (
	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk/jsonlite"
)

// JSON field names of the contract's types, as abi's tags spell them.
var (
	readFields     = []string{"devices"}
	deviceFields   = []string{"id", "protocol", "protocolConfig", "properties"}
	propertyFields = []string{"name", "type", "visitor", "collectCycle"}
	writeFields    = []string{"device", "value"}
)

// DecodeRead decodes the content of a read.
func DecodeRead(data []byte) (abi.MapperRead, error) {
	var r abi.MapperRead
	d := jsonlite.NewDecoder(data)
	d.Object(readFields, func(string) { devices(d, &r.Devices) })
	return r, d.Finish()
}

// DecodeDevice decodes the content of an open: one device.
func DecodeDevice(data []byte) (abi.MapperDevice, error) {
	var dev abi.MapperDevice
	d := jsonlite.NewDecoder(data)
	device(d, &dev)
	return dev, d.Finish()
}

// DecodeWrite decodes the content of a write.
func DecodeWrite(data []byte) (abi.MapperWrite, error) {
	var w abi.MapperWrite
	d := jsonlite.NewDecoder(data)
	d.Object(writeFields, func(name string) {
		if name == "device" {
			device(d, &w.Device)
			return
		}
		d.String(&w.Value)
	})
	return w, d.Finish()
}

// devices decodes an array of devices into *p.
func devices(d *jsonlite.Decoder, p *[]abi.MapperDevice) {
	if d.Null() {
		*p = nil
		return
	}
	s := (*p)[:0]
	if d.Array(func(i int) {
		s = grow(s, i)
		device(d, &s[i])
	}) {
		*p = nonEmpty(s)
	}
}

// device decodes a device into *dev, over what is there (as
// encoding/json decodes repeated keys and array elements).
func device(d *jsonlite.Decoder, dev *abi.MapperDevice) {
	d.Object(deviceFields, func(name string) {
		switch name {
		case "id":
			d.String(&dev.ID)
		case "protocol":
			d.String(&dev.Protocol)
		case "protocolConfig":
			d.Map(&dev.ProtocolConfig)
		case "properties":
			properties(d, &dev.Properties)
		}
	})
}

// properties decodes an array of properties into *p.
func properties(d *jsonlite.Decoder, p *[]abi.MapperProperty) {
	if d.Null() {
		*p = nil
		return
	}
	s := (*p)[:0]
	if d.Array(func(i int) {
		s = grow(s, i)
		property(d, &s[i])
	}) {
		*p = nonEmpty(s)
	}
}

func property(d *jsonlite.Decoder, p *abi.MapperProperty) {
	d.Object(propertyFields, func(name string) {
		switch name {
		case "name":
			d.String(&p.Name)
		case "type":
			d.String(&p.Type)
		case "visitor":
			d.Map(&p.Visitor)
		case "collectCycle":
			d.Int64(&p.CollectCycle)
		}
	})
}

// grow makes s[i] exist: within the capacity it is the element already
// there (encoding/json decodes into it), past it a zero one.
func grow[T any](s []T, i int) []T {
	if i < cap(s) {
		return s[:i+1]
	}
	var zero T
	return append(s, zero)
}

// nonEmpty is s, or a new empty slice for an empty one: encoding/json
// drops the array an empty one decodes into.
func nonEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return []T{}
	}
	return s
}

// AppendReadReply appends r as json.Marshal writes an abi.MapperReadReply.
func AppendReadReply(b []byte, r *abi.MapperReadReply) []byte {
	b = append(b, `{"devices":`...)
	if r.Devices == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range r.Devices {
		dv := &r.Devices[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = jsonlite.AppendString(b, dv.ID)
		if dv.State != "" {
			b = append(b, `,"state":`...)
			b = jsonlite.AppendString(b, dv.State)
		}
		if dv.Error != "" {
			b = append(b, `,"error":`...)
			b = jsonlite.AppendString(b, dv.Error)
		}
		if len(dv.Properties) > 0 {
			b = append(b, `,"properties":[`...)
			for j := range dv.Properties {
				v := &dv.Properties[j]
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"name":`...)
				b = jsonlite.AppendString(b, v.Name)
				if v.Value != "" {
					b = append(b, `,"value":`...)
					b = jsonlite.AppendString(b, v.Value)
				}
				if v.Error != "" {
					b = append(b, `,"error":`...)
					b = jsonlite.AppendString(b, v.Error)
				}
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}
