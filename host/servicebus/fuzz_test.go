package servicebus

import (
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
)

// FuzzDecodeRequest: any resource and content is parsed or refused with
// one of the module's errors, never a panic; an accepted target is a
// loopback URL.
func FuzzDecodeRequest(f *testing.F) {
	f.Add("8080:/api", "GET", []byte(`{"header":{"A":["b"]},"body":"aGk=","method":"POST","url":"/api"}`))
	f.Add("1:x", "", []byte(`{}`))
	f.Add("::", "GET", []byte(`null`))
	f.Fuzz(func(t *testing.T, resource, op string, content []byte) {
		if target, err := Target(resource); err == nil && !strings.HasPrefix(target, "http://127.0.0.1:") {
			t.Fatalf("target %q for %q", target, resource)
		}
		req, err := DecodeRequest(abi.Message{Route: abi.Route{Operation: op}, Content: content})
		if err == nil && req.Method == "" {
			t.Fatal("accepted a request without a method")
		}
	})
}
