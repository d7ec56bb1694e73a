package wasm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/plugintest"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// benchEcho returns the echo plugin to benchmark: examples/echo (built with
// the SDK) when it exists and builds, else the raw echo of testdata.
func benchEcho(b *testing.B) []byte {
	b.Helper()
	if root, err := plugintest.RepoRoot(); err == nil {
		if _, err := os.Stat(filepath.Join(root, "examples", "echo", "main.go")); err == nil {
			if path, err := plugintest.Build("examples/echo"); err == nil {
				if wasm, err := os.ReadFile(path); err == nil {
					b.Log("echo plugin: examples/echo")
					return wasm
				}
			} else {
				b.Logf("examples/echo does not build, using the raw echo: %v", err)
			}
		}
	}
	b.Log("echo plugin: host/wasm/testdata/plugins/echo (raw ABI)")
	return plugintest.MustRead(b, pluginDir+"echo")
}

func message256() *abi.Message {
	m := message("echo", "")
	m.Content = bytes.Repeat([]byte("x"), 256)
	return m
}

// BenchmarkPluginRoundTrip256 is the 256-byte echo round trip through the
// echo example of each SDK: Go (examples/echo), C, Rust and AssemblyScript
// (examples/<lang>/echo). A language whose toolchain is missing is skipped
// (failed under CI). Each reports its module's size and initial memory.
func BenchmarkPluginRoundTrip256(b *testing.B) {
	b.Run("Go", func(b *testing.B) { benchRoundTrip(b, benchEcho(b)) })
	for _, lang := range []struct{ name, id string }{
		{"C", plugintest.C}, {"Rust", plugintest.Rust}, {"AssemblyScript", plugintest.AssemblyScript},
	} {
		b.Run(lang.name, func(b *testing.B) { benchRoundTrip(b, plugintest.MustReadExample(b, lang.id, "echo")) })
	}
}

// BenchmarkPluginRoundTrip256Raw is BenchmarkPluginRoundTrip256 against the
// raw echo of testdata whatever examples/echo is: it separates the host's
// cost from the SDK's.
func BenchmarkPluginRoundTrip256Raw(b *testing.B) {
	benchRoundTrip(b, plugintest.MustRead(b, pluginDir+"echo"))
}

func benchRoundTrip(b *testing.B, wasm []byte) {
	ctx := context.Background()
	m, err := testRuntime.Compile(ctx, wasm)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("module: %d bytes, initial memory: %d pages", len(wasm), m.InitialMemoryPages())
	p, err := testRuntime.Load(ctx, m, PluginConfig{Name: "echo"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(ctx)
	in := message256()
	b.ReportAllocs()
	for b.Loop() {
		reply, ok, err := p.Handle(ctx, in)
		if err != nil || !ok || len(reply.Content) != 256 {
			b.Fatalf("ok=%v err=%v", ok, err)
		}
	}
	// After the loop: b.Loop's start drops metrics reported before it.
	b.ReportMetric(float64(len(wasm)), "module-bytes")
	b.ReportMetric(float64(m.InitialMemoryPages()), "pages")
}

// nativeEcho is the echo plugin as a Go function over envelopes: decode the
// request in place, encode the reply into a reused buffer.
type nativeEcho struct{ reply []byte }

func (e *nativeEcho) handle(in []byte) []byte {
	var m abi.Message
	if err := abi.DecodeAlias(in, &m); err != nil {
		return nil
	}
	r := m.Reply(abi.OpResponse, m.Content)
	e.reply, _ = abi.Append(e.reply[:0], &r)
	return e.reply
}

// BenchmarkNativeRoundTrip256 is the baseline: the same envelope work as
// BenchmarkPluginRoundTrip256 (encode into an exchange buffer, handle,
// copy and decode the reply) with no wasm in between.
func BenchmarkNativeRoundTrip256(b *testing.B) {
	in := message256()
	exchange := make([]byte, minBuffer)
	echo := &nativeEcho{reply: make([]byte, 0, minBuffer)}
	b.ReportAllocs()
	for b.Loop() {
		n, err := abi.EncodeTo(exchange, in)
		if err != nil {
			b.Fatal(err)
		}
		var reply abi.Message
		if err := abi.Decode(echo.handle(exchange[:n]), &reply); err != nil || len(reply.Content) != 256 {
			b.Fatal(err)
		}
	}
}

func BenchmarkPluginCompileCold(b *testing.B) {
	ctx := context.Background()
	wasm := benchEcho(b)
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewRuntime(ctx, RuntimeConfig{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Compile(ctx, wasm); err != nil {
			b.Fatal(err)
		}
		r.Close(ctx)
	}
}

func BenchmarkPluginCompileCached(b *testing.B) {
	ctx := context.Background()
	wasm := benchEcho(b)
	dir := b.TempDir()
	compileIn := func() {
		r, err := NewRuntime(ctx, RuntimeConfig{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Compile(ctx, wasm); err != nil {
			b.Fatal(err)
		}
		r.Close(ctx)
	}
	compileIn() // warm the cache
	b.ReportAllocs()
	for b.Loop() {
		compileIn()
	}
}

// BenchmarkPluginInstantiate measures a new instance of a loaded plugin:
// instantiation with _initialize, the version check, the exchange buffer
// and edgehost_init.
func BenchmarkPluginInstantiate(b *testing.B) {
	ctx := context.Background()
	m, err := testRuntime.Compile(ctx, benchEcho(b))
	if err != nil {
		b.Fatal(err)
	}
	p, err := testRuntime.Load(ctx, m, PluginConfig{Name: "echo"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(ctx)
	b.ReportAllocs()
	for b.Loop() {
		inst, err := p.newInstance(ctx)
		if err != nil {
			b.Fatal(err)
		}
		inst.close()
	}
}

// BenchmarkCallWithStack measures one bare wazero call into the raw echo
// (no envelope work) with and without WithCloseOnContextDone, to price
// wazero's per-call watchdog goroutine (RATIONALE.md).
func BenchmarkCallWithStack(b *testing.B) {
	ctx := context.Background()
	wasm := plugintest.MustRead(b, pluginDir+"echo")
	for _, closeOnDone := range []bool{false, true} {
		name := "closeOnDone=false"
		if closeOnDone {
			name = "closeOnDone=true"
		}
		b.Run(name, func(b *testing.B) {
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(closeOnDone))
			defer rt.Close(ctx)
			wasi_snapshot_preview1.MustInstantiate(ctx, rt)
			mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions("_initialize"))
			if err != nil {
				b.Fatal(err)
			}
			fn := mod.ExportedFunction(abi.ExportABIVersion)
			stack := make([]uint64, 1)
			b.ReportAllocs()
			for b.Loop() {
				if err := fn.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSDKGuestEcho256 calls each SDK's echo example's edgehost_handle
// on a 256-byte message straight through wazero: no edgehost host around
// it (no instrumentation, no envelope work on the host side), only a stub
// log import. It is the guest's share of BenchmarkPluginRoundTrip256, which
// the host's share hides.
func BenchmarkSDKGuestEcho256(b *testing.B) {
	ctx := context.Background()
	for _, lang := range []struct{ name, id string }{
		{"Go", plugintest.Go}, {"C", plugintest.C}, {"Rust", plugintest.Rust}, {"AssemblyScript", plugintest.AssemblyScript},
	} {
		b.Run(lang.name, func(b *testing.B) {
			wasm := plugintest.MustReadExample(b, lang.id, "echo")
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			wasi_snapshot_preview1.MustInstantiate(ctx, rt)
			if _, err := rt.NewHostModuleBuilder(abi.ImportModule).NewFunctionBuilder().
				WithFunc(func(int32, int32, int32) {}).Export(abi.ImportLog).Instantiate(ctx); err != nil {
				b.Fatal(err)
			}
			mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions())
			if err != nil {
				b.Fatal(err)
			}
			if f := mod.ExportedFunction("_initialize"); f != nil {
				if _, err := f.Call(ctx); err != nil {
					b.Fatal(err)
				}
			}
			env, err := abi.Append(nil, message256())
			if err != nil {
				b.Fatal(err)
			}
			r, err := mod.ExportedFunction(abi.ExportBuffer).Call(ctx, uint64(len(env)))
			if err != nil || r[0] == 0 {
				b.Fatalf("edgehost_buffer: %v", err)
			}
			if _, err := mod.ExportedFunction(abi.ExportInit).Call(ctx, 0); err != nil {
				b.Fatal(err)
			}
			if !mod.Memory().Write(uint32(r[0]), env) {
				b.Fatal("exchange buffer outside memory")
			}
			handle := mod.ExportedFunction(abi.ExportHandle)
			stack := make([]uint64, 1)
			for b.Loop() {
				stack[0] = uint64(len(env))
				if err := handle.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
			// The reply: the request with operation response for echo.
			if n, want := int64(stack[0])>>32, int64(len(env)-len("echo")+len(abi.OpResponse)); n != want {
				b.Fatalf("reply of %d bytes, want %d", n, want)
			}
		})
	}
}
