package api

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzMessageJSON checks that no request body makes the message decoder
// panic, and that a decoded message survives ToJSON/FromJSON unchanged.
// Seeds are in testdata/fuzz/FuzzMessageJSON.
func FuzzMessageJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		var j MessageJSON
		if json.Unmarshal(body, &j) != nil {
			return
		}
		m, err := FromJSON(&j)
		if err != nil {
			return
		}
		out := ToJSON(&m)
		back, err := FromJSON(&out)
		if err != nil {
			t.Fatalf("ToJSON output does not decode: %v", err)
		}
		if back.Header != m.Header || back.Route != m.Route || !bytes.Equal(back.Content, m.Content) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, back)
		}
	})
}
