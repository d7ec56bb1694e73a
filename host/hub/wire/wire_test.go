package wire

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/edgehost/edgehost/abi"
)

func TestUpstreamKind(t *testing.T) {
	cases := []struct {
		name string
		m    abi.Message
		want Kind
	}{
		{"keepalive", abi.Message{Route: abi.Route{Source: "websocket", Group: "resource", Operation: "keepalive", Resource: "node"}, Content: []byte("ping")}, KindString},
		{"ack", abi.Message{Header: abi.Header{ParentID: "p"}, Route: abi.Route{Source: "edgecontroller", Group: "resource", Operation: "response", Resource: "default/pod/nginx"}, Content: []byte("OK")}, KindString},
		{"edge_updated", abi.Message{Route: abi.Route{Source: "twin", Group: "resource", Operation: "update", Resource: "device/default/d/twin/edge_updated"}, Content: []byte(`{"twin":{}}`)}, KindObject},
		{"state update", abi.Message{Route: abi.Route{Source: "twin", Group: "resource", Operation: "update", Resource: "device/default/d/state/update"}, Content: []byte(`{"state":"online"}`)}, KindString},
		{"membership detail", abi.Message{Route: abi.Route{Source: "twin", Group: "resource", Operation: "get", Resource: "membership/detail"}, Content: []byte(`{"event_type":"x"}`)}, KindString},
		{"mqtt upload json", abi.Message{Route: abi.Route{Source: "bus", Group: "user", Operation: "upload", Resource: "a/user/b"}, Content: []byte(`{"a":1}`)}, KindString},
		{"nodepatch", abi.Message{Route: abi.Route{Source: "edged", Group: "meta", Operation: "patch", Resource: "null/nodepatch/n"}, Content: []byte(`{"status":{}}`)}, KindString},
		{"servicebus request", abi.Message{Route: abi.Route{Source: "servicebus", Group: "user", Operation: "upload", Resource: "http://x"}, Content: []byte(`{}`)}, KindBytes},
		{"servicebus response", abi.Message{Header: abi.Header{ParentID: "p"}, Route: abi.Route{Source: "servicebus", Group: "user", Operation: "upload"}, Content: []byte(`{"code":200}`)}, KindObject},
		{"node object", abi.Message{Route: abi.Route{Source: "edged", Group: "meta", Operation: "insert", Resource: "null/node/n"}, Content: []byte(` {"kind":"Node"}`)}, KindObject},
		{"empty query", abi.Message{Route: abi.Route{Source: "edged", Group: "meta", Operation: "query", Resource: "default/configmap/c"}}, KindNull},
		{"whitespace", abi.Message{Route: abi.Route{Operation: "update"}, Content: []byte("  ")}, KindString},
		{"bad json", abi.Message{Route: abi.Route{Operation: "update"}, Content: []byte("{nope")}, KindString},
	}
	for _, c := range cases {
		if got := UpstreamKind(c.m); got != c.want {
			t.Errorf("%s: kind %s, want %s", c.name, got, c.want)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	m := abi.Message{
		Header:  abi.Header{ID: "id-1", ParentID: "p-1", Timestamp: 1795715924710, ResourceVersion: "7", Sync: true},
		Route:   abi.Route{Source: "twin", Group: "resource", Operation: "update", Resource: "device/default/d/twin/edge_updated"},
		Content: []byte(`{"event_id":"e","twin":{}}`),
	}
	for _, kind := range []Kind{KindObject, KindString, KindBytes, KindNull} {
		frame, err := Encode(m, kind)
		if err != nil {
			t.Fatalf("encode %s: %v", kind, err)
		}
		d, err := Decode(frame)
		if err != nil {
			t.Fatalf("decode %s: %v", kind, err)
		}
		if d.Message.Header != m.Header || d.Message.Route != m.Route {
			t.Errorf("%s: got %+v, want %+v", kind, d.Message, m)
		}
		want, wantKind := string(m.Content), kind
		switch kind {
		case KindBytes:
			want, wantKind = "eyJldmVudF9pZCI6ImUiLCJ0d2luIjp7fX0=", KindString
		case KindNull:
			want = ""
		}
		if string(d.Message.Content) != want || d.Kind != wantKind {
			t.Errorf("%s: content %q kind %s, want %q kind %s", kind, d.Message.Content, d.Kind, want, wantKind)
		}
	}
}

func TestEncodeFieldNames(t *testing.T) {
	frame, err := Encode(abi.Message{Header: abi.Header{ID: "i", Timestamp: 5}, Route: abi.Route{Source: "websocket", Group: "resource", Operation: "keepalive", Resource: "node"}, Content: []byte("ping")}, KindString)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"header":{"msg_id":"i","timestamp":5},"route":{"source":"websocket","group":"resource","operation":"keepalive","resource":"node"},"content":"ping"}`
	if string(frame) != want {
		t.Errorf("frame\n %s\nwant\n %s", frame, want)
	}
}

func TestEncodeRefusesBadObject(t *testing.T) {
	_, err := Encode(abi.Message{Header: abi.Header{ID: "i"}, Content: []byte("not json")}, KindObject)
	if !errors.Is(err, ErrContent) {
		t.Errorf("err = %v, want ErrContent", err)
	}
	if _, err := Encode(abi.Message{}, KindNull); !errors.Is(err, ErrMissingField) {
		t.Errorf("err = %v, want ErrMissingField", err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	cases := map[string]error{
		`not json`:                   ErrMalformed,
		`[1,2]`:                      ErrMalformed,
		`{"route":{}}`:               ErrMissingField,
		`{"header":{"timestamp":1}}`: ErrMissingField,
		`{"header":{"msg_id":5}}`:    ErrMalformed,
		`{"header":{"msg_id":"a"},"content":"\x"}`: ErrMalformed,
	}
	for frame, want := range cases {
		if _, err := Decode([]byte(frame)); !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", frame, err, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"header":{"msg_id":"a","timestamp":1},"route":{"group":"twin"},"content":{"a":1}}`))
	f.Add([]byte(`{"header":{"msg_id":"a"},"content":"OK"}`))
	f.Add([]byte(`{"header":{"msg_id":"a"},"content":12}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		d, err := Decode(frame)
		if err != nil {
			return
		}
		kind := d.Kind
		if kind == KindScalar && !json.Valid(d.Message.Content) {
			t.Fatalf("scalar content %q is not JSON", d.Message.Content)
		}
		again, err := Encode(d.Message, kind)
		if err != nil {
			t.Fatalf("re-encode %s: %v", kind, err)
		}
		d2, err := Decode(again)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		if d2.Message.Header != d.Message.Header || d2.Message.Route != d.Message.Route || d2.Kind != kind {
			t.Fatalf("round trip changed %+v to %+v", d, d2)
		}
	})
}
