// Package sdk is the guest side of the edgehost plugin ABI (abi/SPEC.md) for
// Go: a plugin author registers a handler and writes ordinary Go; the SDK
// implements the wasm exports and wraps every host import.
//
//	package main
//
//	import "github.com/edgehost/edgehost/sdk"
//
//	func init() {
//		sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) {
//			return m.Reply(m.Content), nil
//		})
//	}
//
//	func main() {}
//
// Build it as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o p.wasm .
//
// In a native build (plain go test) the same API talks to the fake host of
// package sdktest, so handlers can be unit-tested without a wasm runtime.
//
// Rules, from the ABI:
//   - The host makes one call at a time per instance and runs several
//     instances for concurrency. Package globals are per instance: state
//     that must survive an instance or be shared goes in the KV store.
//   - Goroutines do not run between calls; never leave one behind or block
//     on one.
//   - A handler's request, strings and Content included, points into the
//     exchange buffer and is valid only during the call; keep m.Clone() to
//     keep it (see HandlerFunc). This keeps the handle path allocation-free,
//     which matters: in a Go wasm module each allocated byte costs about as
//     much as a whole call, garbage collection having no background workers.
//   - A handler whose cost per message matters registers with HandleReply
//     instead: it writes its reply into a ReplyWriter, whose buffer the SDK
//     reuses, so no content it replies with costs an allocation.
//   - Keep crypto/* out of plugins: Go 1.26 grows the module's initial
//     memory to ~34 MiB when crypto's random generator is linked.
//
// Import failures are errors that unwrap to an abi.Code, so
// errors.Is(err, abi.NotFound) works.
package sdk
