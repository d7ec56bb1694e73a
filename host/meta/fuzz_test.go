package meta

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzDecodeRecord: a stored value never panics the decoder, and what
// decodes re-encodes to a value that decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, record{RV: "42", Content: []byte(`{"kind":"Pod"}`)}))
	f.Add([]byte{recordV1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(appendRecord(nil, r))
		if err != nil || again.RV != r.RV || !bytes.Equal(again.Content, r.Content) {
			t.Errorf("decode(%q) = %+v re-encodes to %+v, %v", b, r, again, err)
		}
	})
}

// FuzzParseResource: any string is accepted or refused without a panic,
// and an accepted one is within the limits and keys back to itself.
func FuzzParseResource(f *testing.F) {
	for _, s := range []string{"default/pod/nginx", "null/node/n1", "default/configmap", "a/b/c/d", "", "/x/y", "ns//n"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, list bool) {
		r, err := ParseResource(s, list)
		if err != nil {
			return
		}
		if r.Key() != s || len(s) > MaxKeyLen || len(r.Type) > MaxTypeLen || strings.ContainsRune(s, 0) {
			t.Errorf("ParseResource(%q) = %+v, key %q", s, r, r.Key())
		}
		if r.IsList() && !list {
			t.Errorf("ParseResource(%q, false) gave a list", s)
		}
	})
}

// FuzzDecodeObject: content is accepted only as one JSON object.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{"metadata":{"uid":"u","resourceVersion":"1"}}`, `[1]`, `"OK"`, ` {}`, `{`, ``, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var o struct {
			Metadata objectMeta `json:"metadata"`
		}
		if decodeObject(b, &o) == nil && bytes.TrimLeft(b, " \t\r\n")[0] != '{' {
			t.Errorf("decodeObject(%q) accepted a non-object", b)
		}
	})
}

// FuzzTokenKey: any token request content gets a key that parses as a
// token resource within the limits, or an error; nothing panics.
func FuzzTokenKey(f *testing.F) {
	f.Add([]byte(`{"spec":{"audiences":["a"],"expirationSeconds":3607,"boundObjectRef":{"kind":"Pod","name":"p","uid":"u"}}}`))
	f.Add([]byte(`{"spec":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, content []byte) {
		key, err := TokenKey("default", "app", content)
		if err != nil {
			return
		}
		res, err := ParseResource(key, false)
		if err != nil || res.Type != TokenType || len(key) > MaxKeyLen {
			t.Fatalf("key %q: %+v %v", key, res, err)
		}
	})
}
