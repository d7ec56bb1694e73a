package abi

import (
	"bytes"
	"encoding/json"
	"testing"
)

// marshalFailure is what the hand-written encoder must agree with:
// encoding/json with HTML escaping off, the encoding the host used before.
func marshalFailure(t testing.TB, f Failure) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func TestFailureJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, f := range []Failure{
		{},
		{Reason: FailureFault, Code: -7, Fault: "trap", Plugin: "echo", Error: "wasm error: unreachable"},
		{Reason: FailureLoop, Error: "waiting: a -> b <&>"},
		{Reason: "x", Error: "quote \" backslash \\ tab \t nl \n cr \r nul \x00 esc \x1b del \x7f"},
		{Reason: "x", Error: "bad utf-8 \xff\xfe, é, 日本, \u2028\u2029, 😀"},
	} {
		got := f.AppendJSON(nil)
		if want := marshalFailure(t, f); !bytes.Equal(got, want) {
			t.Errorf("%+v:\n got %s\nwant %s", f, got, want)
		}
		var back Failure
		if err := back.UnmarshalJSON(got); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		var std Failure
		if err := json.Unmarshal(got, &std); err != nil || back != std {
			t.Errorf("%s: read back %+v, encoding/json %+v (%v)", got, back, std, err)
		}
	}
}

func TestFailureJSONRefusesWhatIsNotAFailure(t *testing.T) {
	for _, bad := range []string{"", "[]", `{"reason":1}`, `{"code":"1"}`, `{"code":1.5}`, `{"code":1e2}`,
		`{"code":2147483648}`, `{"reason":"a"`, `{"reason":"a"}x`, `{"reason":"a\x01"}`, `{"reason":"\u12"}`, `{"a":[1,}`,
		`{"reason":"a",}`, `{,}`, `{"a":tru}`} {
		var f Failure
		if err := f.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("%q: read as %+v", bad, f)
		}
	}
	var f Failure
	if err := f.UnmarshalJSON([]byte(` { "extra" : {"deep":[1,-2.5e3,true,false,null,"s"]}, "reason" : "fault", "code" : -3 , "error":null } `)); err != nil ||
		f != (Failure{Reason: "fault", Code: -3}) {
		t.Errorf("%+v %v", f, err)
	}
}

// FuzzFailureJSON: the reader accepts exactly what encoding/json accepts
// into a Failure, with the same result; a Failure encodes as encoding/json
// encodes it.
func FuzzFailureJSON(f *testing.F) {
	f.Add([]byte(`{"reason":"fault","code":-3,"fault":"trap","plugin":"echo","error":"x \u00e9 \ud83d\ude00"}`))
	f.Add([]byte(`{"reason":"a","x":[{"y":null}],"error":"\ud800x"}`))
	f.Add([]byte(`{"REASON":"a","Code":2147483648}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, std Failure
		err := got.UnmarshalJSON(data)
		stdErr := json.Unmarshal(data, &std)
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("%q: read error %v, encoding/json error %v", data, err, stdErr)
		}
		if err != nil {
			return
		}
		if got != std {
			t.Fatalf("%q: read %+v, encoding/json %+v", data, got, std)
		}
		if enc, want := got.AppendJSON(nil), marshalFailure(t, got); !bytes.Equal(enc, want) {
			t.Fatalf("%+v: encodes %s, encoding/json %s", got, enc, want)
		}
	})
}

func TestValidProtocol(t *testing.T) {
	for p, want := range map[string]bool{"modbus": true, "a": true, "opc-ua.v1_2": true, "": false, "-a": false, "a-": false,
		"a b": false, "é": false, string(bytes.Repeat([]byte("a"), 64)): true, string(bytes.Repeat([]byte("a"), 65)): false} {
		if got := ValidProtocol(p); got != want {
			t.Errorf("ValidProtocol(%q) = %v", p, got)
		}
	}
}
