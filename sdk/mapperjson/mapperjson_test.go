package mapperjson_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk/mapperjson"
)

// checkDecode holds each decoder to json.Unmarshal into the same abi
// type: both accept data or both refuse it, and accepted they agree.
func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	compare := func(what string, got, want any, err, wantErr error) {
		t.Helper()
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%s %q: mapperjson error %v, encoding/json error %v", what, data, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %q:\nmapperjson    %#v\nencoding/json %#v", what, data, got, want)
		}
	}
	var read abi.MapperRead
	wantErr := json.Unmarshal(data, &read)
	gotRead, err := mapperjson.DecodeRead(data)
	compare("read", gotRead, read, err, wantErr)

	var dev abi.MapperDevice
	wantErr = json.Unmarshal(data, &dev)
	gotDev, err := mapperjson.DecodeDevice(data)
	compare("device", gotDev, dev, err, wantErr)

	var w abi.MapperWrite
	wantErr = json.Unmarshal(data, &w)
	gotW, err := mapperjson.DecodeWrite(data)
	compare("write", gotW, w, err, wantErr)
}

// hostRead is a read as the host marshals it.
func hostRead() []byte {
	b, _ := json.Marshal(abi.MapperRead{Devices: []abi.MapperDevice{
		{ID: "default/meter-0", Protocol: "modbus", ProtocolConfig: map[string]any{"ip": "10.0.0.5", "port": 502, "tcp": map[string]any{"ip": "x"}},
			Properties: []abi.MapperProperty{{Name: "temp", Type: "float", Visitor: map[string]any{"register": "HoldingRegister", "scale": 0.1, "isSwap": true}, CollectCycle: 1000}}},
		{ID: "default/ünï <&>", Protocol: "virtual", Properties: []abi.MapperProperty{}},
	}})
	return b
}

// TestDecodeAgreesWithEncodingJSON: the host's reads, writes and opens,
// and the corner cases of repeated keys, nulls, case folding, wrong
// kinds and bad numbers, decode as encoding/json decodes them.
func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	write, _ := json.Marshal(abi.MapperWrite{Device: abi.MapperDevice{ID: "default/a", Properties: []abi.MapperProperty{{Name: "fan", Type: "boolean"}}}, Value: "on"})
	for _, in := range []string{
		string(hostRead()), string(write), `null`, `{}`, `{"devices":[]}`, `{"devices":null}`,
		`{"ID":"a","Id":"b","PROTOCOLCONFIG":{"a":1},"protocolConfig":{"b":2},"unknown":{"x":[1]}}`,
		`{"properties":[{"name":"a","type":"int"},{"name":"b"}],"properties":[{"type":"float"}],"properties":[{},{"collectCycle":5}]}`,
		`{"properties":[{"name":"a"}],"properties":[],"properties":[{"type":"x"}]}`,
		`{"devices":[{"id":"a","id":null,"protocolConfig":{"a":1},"protocolConfig":null}]}`,
		`{"properties":[{"collectCycle":1.5}]}`, `{"properties":[{"collectCycle":1e3}]}`, `{"properties":[{"collectCycle":"5"}]}`,
		`{"properties":[{"collectCycle":9223372036854775808}]}`, `{"properties":[{"collectCycle":-9223372036854775808}]}`,
		`{"device":{"id":"a"},"value":7}`, `{"device":null,"value":null}`, `{"device":[],"value":"x"}`, `{"devices":{}}`,
		`{"devices":[{"protocolConfig":[1]}]}`, `{"devices":[{"id":"a"}]} x`, `{"devices":[{"id":"a"},]}`, `[]`, `"x"`,
		`{"value":"\ud800\u00e9\xff"}`, `{"ſd":"long s is not i"}`, `{"devices":[{"properties":[{"visitor":{"k":{"n":[1,2,{"z":null}]}}}]}]}`,
	} {
		checkDecode(t, []byte(in))
	}
}

// FuzzDecode: DecodeRead, DecodeDevice and DecodeWrite agree with
// encoding/json on any input.
func FuzzDecode(f *testing.F) {
	f.Add(hostRead())
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}

// TestDecodeErrorNamesTheField: a wrong value is named by its place.
func TestDecodeErrorNamesTheField(t *testing.T) {
	_, err := mapperjson.DecodeRead([]byte(`{"devices":[{"id":"a","properties":[{"name":"t","collectCycle":"fast"}]}]}`))
	if err == nil || !strings.Contains(err.Error(), `devices[0].properties[0].collectCycle: want a number, got a string`) {
		t.Fatalf("error %v does not name the field", err)
	}
}

// checkReply holds AppendReadReply to json.Marshal's bytes.
func checkReply(t *testing.T, r *abi.MapperReadReply) {
	t.Helper()
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := mapperjson.AppendReadReply(nil, r); string(got) != string(want) {
		t.Fatalf("AppendReadReply %s\njson.Marshal    %s", got, want)
	}
}

// TestAppendReadReply: replies with states, errors and values, and empty
// ones, are json.Marshal's bytes.
func TestAppendReadReply(t *testing.T) {
	checkReply(t, &abi.MapperReadReply{})
	checkReply(t, &abi.MapperReadReply{Devices: []abi.MapperDeviceValues{}})
	checkReply(t, &abi.MapperReadReply{Devices: []abi.MapperDeviceValues{
		{ID: "default/meter-0", Properties: []abi.MapperValue{{Name: "temp", Value: "21.5"}, {Name: "x", Error: `reply from "a": bad` + "\n\t\x01\\ <&> \u2028"}}},
		{ID: "default/dead", State: "offline", Error: "temp: cannot connect"},
		{ID: "default/ünï", State: "online", Properties: []abi.MapperValue{}},
		{ID: "\xff\xfe", Properties: []abi.MapperValue{{Name: "s", Value: "日本", Error: "both"}}},
	}})
}

// FuzzAppendReadReply: any text in a reply is written as json.Marshal
// writes it.
func FuzzAppendReadReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, id, state, errText, name, value string) {
		checkReply(t, &abi.MapperReadReply{Devices: []abi.MapperDeviceValues{{ID: id, State: state, Error: errText,
			Properties: []abi.MapperValue{{Name: name, Value: value, Error: errText}}}}})
	})
}
