package wasm

import (
	"context"
	"time"

	"github.com/edgehost/edgehost/host/wasm/internal/instrument"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// instantiateSafepoint provides the function every instrumented module
// calls once per instrument.Period loop iterations and function entries
// (host/wasm/internal/instrument). The call is the guest's way back into
// Go: where the Go runtime can stop it for a garbage collection, and where
// the host ends a call that has run past its deadline.
func instantiateSafepoint(ctx context.Context, rt wazero.Runtime) error {
	_, err := rt.NewHostModuleBuilder(instrument.ImportModule).NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(safepoint), nil, []api.ValueType{i32}).
		WithName(instrument.ImportName).
		Export(instrument.ImportName).
		Instantiate(ctx)
	return err
}

// safepoint returns 1, which makes the guest trap, once the calling
// instance's call is past its deadline; else 0.
func safepoint(ctx context.Context, _ api.Module, stack []uint64) {
	stack[0] = 0
	inst, _ := ctx.Value(instanceKey{}).(*instance)
	if inst != nil && time.Now().After(inst.deadline) {
		inst.timedOut = true
		stack[0] = 1
	}
}
