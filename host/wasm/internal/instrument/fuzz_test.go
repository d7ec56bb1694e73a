package instrument

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
)

// FuzzModule feeds mutated modules to Module: it must never panic, and
// whenever it rewrites a module wazero accepts, wazero must accept the
// result too, so the rewriting never turns a valid module into an invalid
// one. (That real modules are accepted at all is what the host/wasm tests,
// which run every test plugin instrumented, show.)
func FuzzModule(f *testing.F) {
	f.Add(loopModule)
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := Module(wasm)
		if err != nil {
			return // refused with an error: fine for any input
		}
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
		defer rt.Close(ctx)
		// The output first: it is what the host compiles, and Module has
		// refused the implausible counts that make wazero's decoder
		// allocate without bound, which the raw input may still hold.
		_, outErr := rt.CompileModule(ctx, out)
		if outErr == nil {
			return
		}
		if _, err := rt.CompileModule(ctx, wasm); err == nil {
			t.Fatalf("valid module became invalid: %v", outErr)
		}
	})
}
