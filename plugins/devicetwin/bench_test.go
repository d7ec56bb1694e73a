//go:build !wasip1

package main

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/sdktest"
)

// BenchmarkHandleUpdate runs the plugin's whole handling of a twin update
// natively, as BenchmarkTwinUpdateE2E's publisher sends it: a device with a
// declared expected value gets a new actual value, so the plugin loads and
// stores the device and publishes a result, a document and a delta, and
// sends an edge_updated upstream.
func BenchmarkHandleUpdate(b *testing.B) {
	h := sdktest.New()
	h.Name = "devicetwin"
	h.Config = []byte(`{"node_name":"bench"}`)
	list := `{"event_id":"","timestamp":0,"devices":[{"id":"default/d0","name":"d0","twin":{"temp":{"expected":{"value":"20"},"metadata":{"type":"string"}}}}]}`
	if _, err := h.Call(&sdk.Message{Route: sdk.Route{Source: "devicesdir", Group: "twin", Operation: "update", Resource: "membership/detail"}, Content: []byte(list)}); err != nil {
		b.Fatal(err)
	}
	resource := base64.URLEncoding.EncodeToString([]byte("$hw/events/device/default/d0/twin/update"))
	payloads := make([][]byte, 50)
	for i := range payloads {
		payloads[i] = []byte(`{"event_id":"` + strconv.Itoa(i) + `","timestamp":0,"twin":{"temp":{"actual":{"value":"` + strconv.Itoa(i) + `"}}}}`)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m := sdk.Message{Route: sdk.Route{Source: "bus", Group: "user", Operation: "response", Resource: resource}, Content: payloads[i%len(payloads)]}
		if _, err := h.Call(&m); err != nil {
			b.Fatal(err)
		}
	}
}

// The documents of one twin update of BenchmarkHandleUpdate: the request,
// the device as stored, and what the plugin sends.
var (
	benchPayload = []byte(`{"event_id":"17","timestamp":0,"twin":{"temp":{"actual":{"value":"23"}}}}`)
	benchStored  = []byte(`{"id":"default/d0","name":"d0","twin":{"temp":{"expected":{"value":"20","metadata":{"timestamp":1795715523600}},"actual":{"value":"23","metadata":{"timestamp":1795715523600}},"optional":true,"metadata":{"type":"string"},"actual_version":{"cloud":0,"edge":7}}},"origin":"local"}`)
)

// BenchmarkCodec measures the codec against encoding/json on the documents
// of one twin update: decoding the request and the stored device,
// encoding the device to store it, and the result, document, delta and
// edge_updated the plugin sends.
func BenchmarkCodec(b *testing.B) {
	var rec record
	if err := rec.decodeJSON(benchStored); err != nil {
		b.Fatal(err)
	}
	tw := rec.Twin["temp"]
	result := &TwinUpdate{BaseMessage: BaseMessage{EventID: "17", Timestamp: 1795715523600},
		Twin: map[string]*MsgTwin{"temp": {Actual: tw.Actual, Optional: tw.Optional, Metadata: tw.Metadata}}}
	sync := &TwinUpdate{BaseMessage: result.BaseMessage, Twin: map[string]*MsgTwin{"temp": {Actual: tw.Actual, Optional: tw.Optional, Metadata: tw.Metadata, ActualVersion: tw.ActualVersion}}}
	document := &TwinDocument{BaseMessage: result.BaseMessage, Twin: map[string]*TwinDoc{"temp": {Last: tw, Current: tw}}}
	delta := &TwinDelta{BaseMessage: result.BaseMessage, Twin: map[string]*MsgTwin{"temp": tw}, Delta: map[string]string{"temp": "20"}}
	encodes := []struct {
		name string
		v    interface{ appendJSON([]byte) []byte }
	}{{"record", &rec}, {"result", result}, {"document", document}, {"delta", delta}, {"edge_updated", sync}}

	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var u TwinUpdate
			var r record
			if json.Unmarshal(benchPayload, &u) != nil || json.Unmarshal(benchStored, &r) != nil {
				b.Fatal("decode")
			}
			for _, e := range encodes {
				if _, err := json.Marshal(e.v); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			var u TwinUpdate
			var r record
			if u.decodeJSON(benchPayload) != nil || r.decodeJSON(benchStored) != nil {
				b.Fatal("decode")
			}
			for _, e := range encodes {
				buf = e.v.appendJSON(buf[:0])
			}
		}
	})
	for _, c := range []struct {
		name      string
		std, mine func()
	}{
		{"decode-update", func() { var u TwinUpdate; _ = json.Unmarshal(benchPayload, &u) }, func() { var u TwinUpdate; _ = u.decodeJSON(benchPayload) }},
		{"decode-record", func() { var r record; _ = json.Unmarshal(benchStored, &r) }, func() { var r record; _ = r.decodeJSON(benchStored) }},
		{"encode-record", func() { _, _ = json.Marshal(&rec) }, func() { _ = rec.appendJSON(make([]byte, 0, 512)) }},
		{"encode-document", func() { _, _ = json.Marshal(document) }, func() { _ = document.appendJSON(make([]byte, 0, 512)) }},
	} {
		b.Run(c.name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.std()
			}
		})
		b.Run(c.name+"/codec", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.mine()
			}
		})
	}
}
