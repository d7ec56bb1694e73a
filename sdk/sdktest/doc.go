// Package sdktest is a fake edgehost host for unit-testing Go plugins
// natively, with plain go test: an in-memory KV store with the ABI's
// per-call atomicity, captured log lines and sent messages, a programmable
// responder for requests, and Call, which runs the plugin's registered
// handler through the same envelope encoding and exports a wasm host uses.
//
//	func TestEcho(t *testing.T) {
//		h := sdktest.New()
//		reply, err := h.Call(&sdk.Message{Content: []byte("hi")})
//		...
//	}
//
// It builds only for native targets, not GOOS=wasip1.
package sdktest
