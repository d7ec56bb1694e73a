package instrument

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// wat-free hand-assembled modules, each a complete binary.
var (
	// loopModule exports "spin" (i32 n) -> i32: counts n down to zero in a
	// loop and returns the number of iterations; and "rec" (i32 n) -> i32,
	// which recurses n times without a loop.
	loopModule = module(
		sec(secType, vec(
			[]byte{0x60, 0x01, 0x7F, 0x01, 0x7F},
			[]byte{0x60, 0x01, 0x7F, 0x00},
		)),
		sec(secFunction, vec([]byte{0x00}, []byte{0x00}, []byte{0x00}, []byte{0x01}, []byte{0x00})),
		sec(secExport, vec(
			append(name("spin"), 0x00, 0x00),
			append(name("rec"), 0x00, 0x01),
			append(name("early"), 0x00, 0x02),
			append(name("table"), 0x00, 0x03),
			append(name("nest"), 0x00, 0x04),
		)),
		sec(secCode, vec(
			body([]byte{0x01, 0x01, 0x7F}, // one local i32: the count
				0x03, 0x40, // loop
				0x20, 0x01, 0x41, 0x01, 0x6A, 0x21, 0x01, // count++
				0x20, 0x00, 0x41, 0x01, 0x6B, 0x22, 0x00, // n--, tee
				0x0D, 0x00, // br_if 0
				0x0B,       // end loop
				0x20, 0x01, // return count
				0x0B),
			body([]byte{0x00},
				0x20, 0x00, 0x45, 0x04, 0x7F, // if n == 0 (result i32)
				0x41, 0x00,
				0x05,                                                       // else
				0x20, 0x00, 0x41, 0x01, 0x6B, 0x10, 0x01, 0x41, 0x01, 0x6A, // rec(n-1)+1
				0x0B,
				0x0B),
			// early(n): 7 through a br_if out of the function when n != 0,
			// else 9 off its end.
			body([]byte{0x00}, 0x41, 0x07, 0x20, 0x00, 0x0D, 0x00, 0x1A, 0x41, 0x09, 0x0B),
			// table(n): br_table [block, function] default block.
			body([]byte{0x00}, 0x02, 0x40, 0x20, 0x00, 0x0E, 0x02, 0x00, 0x01, 0x00, 0x0B, 0x0B),
			// nest(n): calls spin(100) n times in a loop, returns the sum.
			body([]byte{0x01, 0x01, 0x7F}, // one local i32: the sum
				0x03, 0x40, // loop
				0x41, 0xE4, 0x00, 0x10, 0x00, // spin(100)
				0x20, 0x01, 0x6A, 0x21, 0x01, // sum +=
				0x20, 0x00, 0x41, 0x01, 0x6B, 0x22, 0x00, // n--, tee
				0x0D, 0x00, // br_if 0
				0x0B,
				0x20, 0x01,
				0x0B),
		)),
		customSec("name", append([]byte{0x01}, lenPrefixed(vec(
			append([]byte{0x00}, name("spin")...),
			append([]byte{0x01}, name("rec")...),
		))...)),
	)
)

func module(sections ...[]byte) []byte {
	return append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Join(sections, nil)...)
}

func sec(id byte, payload []byte) []byte {
	return append([]byte{id}, lenPrefixed(payload)...)
}

func customSec(n string, payload []byte) []byte {
	return sec(secCustom, append(name(n), payload...))
}

func lenPrefixed(b []byte) []byte { return append(appendU32(nil, uint32(len(b))), b...) }

func vec(items ...[]byte) []byte {
	return append(appendU32(nil, uint32(len(items))), bytes.Join(items, nil)...)
}

func name(s string) []byte { return appendName(nil, s) }

func body(locals []byte, code ...byte) []byte {
	return lenPrefixed(append(append([]byte(nil), locals...), code...))
}

// host runs an instrumented module with a safepoint that counts its calls
// and says stop once stopAfter calls have been made (0: never).
type host struct {
	calls     int
	stopAfter int
}

func (h *host) instantiate(t *testing.T, ctx context.Context, rt wazero.Runtime, wasm []byte) api.Module {
	t.Helper()
	_, err := rt.NewHostModuleBuilder(ImportModule).NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
			h.calls++
			stack[0] = 0
			if h.stopAfter > 0 && h.calls >= h.stopAfter {
				stack[0] = 1
			}
		}), nil, []api.ValueType{api.ValueTypeI32}).Export(ImportName).Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatalf("instantiate the instrumented module: %v", err)
	}
	return mod
}

func TestLoopsAndCallsReachTheSafepoint(t *testing.T) {
	out, err := Module(loopModule)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	h := &host{}
	mod := h.instantiate(t, ctx, rt, out)

	// Meaning is unchanged.
	res, err := mod.ExportedFunction("spin").Call(ctx, 3*Period)
	if err != nil || res[0] != 3*Period {
		t.Fatalf("spin(3*Period) = %v, %v", res, err)
	}
	// 3*Period loop heads and one entry: three safepoint calls.
	if h.calls != 3 {
		t.Fatalf("safepoint called %d times for 3*Period+1 checks, want 3", h.calls)
	}
	// Recursion without loops is counted at function entries: four calls
	// of 5001 entries each cross the countdown once. It also shows that
	// every return counts the depth down again, or the second call would
	// pass MaxDepth.
	for range 4 {
		res, err = mod.ExportedFunction("rec").Call(ctx, 5000)
		if err != nil || res[0] != 5000 {
			t.Fatalf("rec(5000) = %v, %v", res, err)
		}
	}
	if h.calls != 4 {
		t.Fatalf("loop-free recursion reached the safepoint %d times in all, want 4", h.calls)
	}
	// Every way out of a function counts the depth down: MaxDepth calls
	// leaving by br_if, off the end and by br_table to the function's label
	// or to a block do not add up to an overflow.
	for i := range MaxDepth + 10 {
		n := uint64(i % 3)
		res, err := mod.ExportedFunction("early").Call(ctx, n)
		if want := map[uint64]uint64{0: 9, 1: 7, 2: 7}[n]; err != nil || res[0] != want {
			t.Fatalf("early(%d) = %v, %v, want %d", n, res, err, want)
		}
		if _, err := mod.ExportedFunction("table").Call(ctx, n); err != nil {
			t.Fatalf("table(%d), call %d: %v", n, i, err)
		}
	}
	// Deeper than MaxDepth traps.
	if _, err := mod.ExportedFunction("rec").Call(ctx, MaxDepth+1); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("rec(MaxDepth+1): %v, want a trap", err)
	}
	if d := mod.ExportedGlobal(DepthExport); d == nil || d.Get() < MaxDepth {
		t.Fatalf("depth global after the depth trap: %v", d)
	}

	// A safepoint that says stop makes the guest trap.
	h.stopAfter = h.calls + 1
	_, err = mod.ExportedFunction("spin").Call(ctx, 1<<30)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("spin with the safepoint saying stop: %v, want an unreachable trap", err)
	}
}

// TestNestedLoopsShareTheBudget: a loop of 100 iterations in a function
// called from a loop spends the same budget as its caller. With a countdown
// reset at each function entry, Period calls of it ran 100 × Period
// iterations between two safepoints.
func TestNestedLoopsShareTheBudget(t *testing.T) {
	out, err := Module(loopModule)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	h := &host{}
	mod := h.instantiate(t, ctx, rt, out)
	res, err := mod.ExportedFunction("nest").Call(ctx, Period)
	if err != nil || res[0] != 100*Period {
		t.Fatalf("nest(Period) = %v, %v, want %d", res, err, 100*Period)
	}
	// Period × (100 inner loop heads + 1 entry + 1 outer loop head) + 1
	// checks: 102 safepoint calls.
	if h.calls != 102 {
		t.Fatalf("safepoint called %d times for 102*Period+1 checks, want 102", h.calls)
	}
}

func TestKeepsNamesAndMarksVersion(t *testing.T) {
	out, err := Module(loopModule)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	h := &host{stopAfter: 1}
	mod := h.instantiate(t, ctx, rt, out)
	_, err = mod.ExportedFunction("spin").Call(ctx, 1<<30)
	// The trap's stack trace names the function: the name section was
	// renumbered, not lost.
	if err == nil || !strings.Contains(err.Error(), ".spin(") {
		t.Fatalf("trap without the function's name: %v", err)
	}
	if !bytes.Contains(out, append(name(VersionSection), Version...)) {
		t.Fatal("no version section in the output")
	}
	// The same input gives the same bytes, so the compilation cache hits.
	again, err := Module(loopModule)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatal("instrumenting is not deterministic")
	}
}

func TestRefusesWhatItCannotRead(t *testing.T) {
	for name, wasm := range map[string][]byte{
		"not wasm":       []byte("hello world"),
		"truncated":      loopModule[:len(loopModule)-5],
		"unknown opcode": module(sec(secType, vec([]byte{0x60, 0x00, 0x00})), sec(secFunction, vec([]byte{0x00})), sec(secCode, vec(body([]byte{0x00}, 0xFF, 0x0B)))),
		"host import": module(sec(secType, vec([]byte{0x60, 0x00, 0x00})),
			sec(secImport, vec(append(append(name(ImportModule), name("x")...), 0x00, 0x00)))),
		"out of order": module(sec(secFunction, vec()), sec(secType, vec())),
	} {
		if _, err := Module(wasm); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "instrument: ") {
			t.Errorf("%s: error %q does not say where it comes from", name, err)
		}
	}
}

func TestEmptyModule(t *testing.T) {
	out, err := Module([]byte("\x00asm\x01\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	(&host{}).instantiate(t, ctx, rt, out)
}
