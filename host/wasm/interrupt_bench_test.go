package wasm

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/wasm/internal/instrument"
	"github.com/edgehost/edgehost/internal/plugintest"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// crcC is the C twin of the faulty plugin's crc export.
const crcC = `
__attribute__((export_name("crc")))
int crc(int rounds) {
	unsigned char data[1024];
	for (int i = 0; i < 1024; i++) data[i] = (unsigned char)i;
	unsigned c = ~0u;
	for (int r = 0; r < rounds; r++)
		for (int i = 0; i < 1024; i++) {
			c ^= data[i];
			for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & -(c & 1));
		}
	return (int)~c;
}
`

// BenchmarkInterruptOverhead prices the ways to make a runaway guest
// stoppable, on compute-bound guest code (CRC-32 of 1 KiB, bitwise) in Go
// and in C: plain (not stoppable), instrumented with safepoints (what the
// host runs), and wazero's close-on-done with a cancellable context (what
// the host ran before).
func BenchmarkInterruptOverhead(b *testing.B) {
	ctx := context.Background()
	goWasm := plugintest.MustRead(b, pluginDir+"faulty")
	plugintest.NeedTool(b, "clang")
	cPath, err := plugintest.BuildC(b.TempDir(), "crc", crcC)
	if err != nil {
		b.Fatal(err)
	}
	cWasm, err := os.ReadFile(cPath)
	if err != nil {
		b.Fatal(err)
	}
	for _, guest := range []struct {
		name string
		wasm []byte
	}{{"go", goWasm}, {"c", cWasm}} {
		for _, mode := range []string{"plain", "instrumented", "closeOnDone"} {
			b.Run(guest.name+"/"+mode, func(b *testing.B) {
				code := guest.wasm
				cfg := wazero.NewRuntimeConfig().WithCloseOnContextDone(mode == "closeOnDone")
				rt := wazero.NewRuntimeWithConfig(ctx, cfg)
				defer rt.Close(ctx)
				wasi_snapshot_preview1.MustInstantiate(ctx, rt)
				if err := instantiateImports(ctx, rt, allImports()); err != nil {
					b.Fatal(err)
				}
				callCtx := ctx
				switch mode {
				case "instrumented":
					if code, err = instrument.Module(code); err != nil {
						b.Fatal(err)
					}
					if err := instantiateSafepoint(ctx, rt); err != nil {
						b.Fatal(err)
					}
					// The safepoint finds a call with a deadline far away.
					inst := &instance{deadline: time.Now().Add(24 * time.Hour)}
					callCtx = context.WithValue(ctx, instanceKey{}, inst)
				case "closeOnDone":
					var cancel context.CancelFunc
					callCtx, cancel = context.WithCancel(ctx)
					defer cancel()
				}
				mod, err := rt.InstantiateWithConfig(ctx, code, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
				if err != nil {
					b.Fatal(err)
				}
				fn := mod.ExportedFunction("crc")
				stack := []uint64{16}
				for b.Loop() {
					stack[0] = 16
					if err := fn.CallWithStack(callCtx, stack); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// allImports names every edgehost_v1 import this host provides.
func allImports() []string {
	names := make([]string, 0, len(hostFuncs))
	for name := range hostFuncs {
		names = append(names, name)
	}
	return names
}
