package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk/mapperjson"
)

// TestAppendReply: the reply the plugin writes (mapperjson's) decodes, with encoding/json, to
// what was encoded, empty fields left out as the abi types' omitempty.
func TestAppendReply(t *testing.T) {
	r := abi.MapperReadReply{Devices: []abi.MapperDeviceValues{
		{ID: "default/meter-0", Properties: []abi.MapperValue{{Name: "temp", Value: "21.5"}, {Name: "x", Error: `reply from "a": bad` + "\n\t\x01\\"}}},
		{ID: "default/dead", State: "offline", Error: "temp: cannot connect"},
		{ID: "default/ünï", Properties: []abi.MapperValue{{Name: "s", Value: "日本"}}},
	}}
	got := mapperjson.AppendReadReply(nil, &r)
	var back abi.MapperReadReply
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("decoded %+v, want %+v", back, r)
	}
	want, _ := json.Marshal(r)
	if string(got) != string(want) {
		t.Errorf("appendReply = %s\nencoding/json %s", got, want)
	}
}

// FuzzReplyJSON: any text a device or an error puts in a reply comes out
// as valid JSON that decodes to it (invalid UTF-8 as U+FFFD, as
// encoding/json does).
func FuzzReplyJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, id, value, errText string) {
		r := abi.MapperReadReply{Devices: []abi.MapperDeviceValues{{ID: id, Error: errText,
			Properties: []abi.MapperValue{{Name: "p", Value: value}}}}}
		b := mapperjson.AppendReadReply(nil, &r)
		var back abi.MapperReadReply
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		fix := func(s string) string { // each invalid byte becomes U+FFFD
			var b strings.Builder
			for _, r := range s {
				b.WriteRune(r)
			}
			return b.String()
		}
		if len(back.Devices) != 1 || back.Devices[0].ID != fix(id) || back.Devices[0].Error != fix(errText) ||
			back.Devices[0].Properties[0].Value != fix(value) {
			t.Fatalf("%q decoded to %+v", b, back)
		}
	})
}
