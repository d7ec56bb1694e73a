package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/plugintest"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// sdkEcho is one SDK's echo example instantiated bare in wazero, so that
// any bytes, not only the valid envelopes a host sends, reach its decoder.
type sdkEcho struct {
	lang   string
	mod    api.Module
	buffer api.Function
	handle api.Function
}

// bareEchoes instantiates the echo example of every non-Go SDK whose
// toolchain is installed (NeedLanguage skips, or fails under CI, otherwise).
func bareEchoes(tb testing.TB) []sdkEcho {
	tb.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	tb.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	if _, err := rt.NewHostModuleBuilder(abi.ImportModule).NewFunctionBuilder().
		WithFunc(func(int32, int32, int32) {}).Export(abi.ImportLog).Instantiate(ctx); err != nil {
		tb.Fatal(err)
	}
	var echoes []sdkEcho
	for _, lang := range []string{plugintest.C, plugintest.Rust, plugintest.AssemblyScript} {
		wasm := plugintest.MustReadExample(tb, lang, "echo")
		mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName(lang).WithStartFunctions())
		if err != nil {
			tb.Fatal(err)
		}
		if f := mod.ExportedFunction(exportInitialize); f != nil {
			if _, err := f.Call(ctx); err != nil {
				tb.Fatal(err)
			}
		}
		e := sdkEcho{lang: lang, mod: mod, buffer: mod.ExportedFunction(abi.ExportBuffer), handle: mod.ExportedFunction(abi.ExportHandle)}
		if _, err := e.buffer.Call(ctx, 0); err != nil {
			tb.Fatal(err)
		}
		if _, err := mod.ExportedFunction(abi.ExportInit).Call(ctx, 0); err != nil {
			tb.Fatal(err)
		}
		echoes = append(echoes, e)
	}
	return echoes
}

// echo hands env to e's edgehost_handle and returns the reply envelope,
// or the failure code.
func (e sdkEcho) echo(env []byte) ([]byte, abi.Code, error) {
	ctx := context.Background()
	r, err := e.buffer.Call(ctx, uint64(len(env)))
	if err != nil || r[0] == 0 {
		return nil, 0, fmt.Errorf("edgehost_buffer(%d): %v", len(env), err)
	}
	if !e.mod.Memory().Write(uint32(r[0]), env) {
		return nil, 0, fmt.Errorf("exchange buffer outside memory")
	}
	r, err = e.handle.Call(ctx, uint64(len(env)))
	if err != nil {
		return nil, 0, fmt.Errorf("edgehost_handle: %w", err)
	}
	v := int64(r[0])
	if v < 0 {
		return nil, abi.Code(-v), nil
	}
	out, ok := e.mod.Memory().Read(uint32(v), uint32(v>>32))
	if !ok {
		return nil, 0, fmt.Errorf("reply outside memory")
	}
	return bytes.Clone(out), abi.OK, nil
}

// FuzzSDKEchoDecode feeds any bytes to the C, Rust and AssemblyScript
// echoes and checks their envelope decoders against abi.DecodeAlias: the
// same envelopes refused (malformed), and for the others the reply abi
// would make (SPEC §4: parent_id = id, operation response, no id).
func FuzzSDKEchoDecode(f *testing.F) {
	for _, m := range []abi.Message{
		*message("echo", "hi"),
		{Header: abi.Header{ID: "ünï", ResourceVersion: "42", Sync: true, Timestamp: -1}, Route: abi.Route{Resource: "é/x"}},
		{},
		{Route: abi.Route{Source: "s", Group: "g", Operation: "o", Resource: "r"}, Content: bytes.Repeat([]byte{0xff}, 70)},
	} {
		env, err := abi.Append(nil, &m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(env)
		f.Add(env[:len(env)-1])                                          // short
		f.Add(append(bytes.Clone(env), 0))                               // trailing byte
		f.Add(append([]byte{1, 2}, env[2:]...))                          // reserved flag bit
		f.Add(append([]byte{2}, env[1:]...))                             // unknown format
		f.Add(binary.LittleEndian.AppendUint32(env[:24:24], 0x80000000)) // content length over 2^31-1
	}
	f.Add([]byte("\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xc3\xa9"))
	// testdata/fuzz/FuzzSDKEchoDecode/split-utf8: é split over id and
	// parent_id, which the C SDK once took (it checked the strings as one).
	echoes := bareEchoes(f)
	f.Fuzz(func(t *testing.T, env []byte) {
		var m abi.Message
		decodeErr := abi.DecodeAlias(env, &m)
		var want []byte
		if decodeErr == nil {
			r := abi.Message{Header: abi.Header{ParentID: m.Header.ID, ResourceVersion: m.Header.ResourceVersion},
				Route: m.Route, Content: m.Content}
			r.Route.Operation = abi.OpResponse
			var err error
			if want, err = abi.Append(nil, &r); err != nil {
				t.Skip("the reply would not fit an envelope")
			}
		}
		for _, e := range echoes {
			got, code, err := e.echo(env)
			switch {
			case err != nil:
				t.Fatalf("%s: %v", e.lang, err)
			case decodeErr != nil && code != abi.Malformed:
				t.Fatalf("%s: %q, which abi refuses (%v): code %v, reply %q", e.lang, env, decodeErr, code, got)
			case decodeErr == nil && !bytes.Equal(got, want):
				t.Fatalf("%s: reply to %q (code %v):\n got %q\nwant %q", e.lang, env, code, got, want)
			}
		}
	})
}
