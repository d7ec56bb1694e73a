package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/wasm/internal/instrument"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// signature is a wasm function type.
type signature struct{ params, results []api.ValueType }

func (s signature) String() string {
	names := func(ts []api.ValueType) string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = api.ValueTypeName(t)
		}
		return strings.Join(out, ", ")
	}
	return "(" + names(s.params) + ") -> (" + names(s.results) + ")"
}

func (s signature) matches(d api.FunctionDefinition) bool {
	return slices.Equal(s.params, d.ParamTypes()) && slices.Equal(s.results, d.ResultTypes())
}

// The reactor initialiser of WASI toolchains (abi/SPEC.md section 4).
const exportInitialize = "_initialize"

// exportSigs lists the exports of abi/SPEC.md section 4.
var exportSigs = []struct {
	name     string
	sig      signature
	required bool
}{
	{abi.ExportABIVersion, signature{nil, []api.ValueType{i32}}, true},
	{abi.ExportBuffer, signature{[]api.ValueType{i32}, []api.ValueType{i32}}, true},
	{abi.ExportInit, signature{[]api.ValueType{i32}, []api.ValueType{i32}}, true},
	{abi.ExportHandle, signature{[]api.ValueType{i32}, []api.ValueType{i64}}, true},
	{abi.ExportTick, signature{nil, []api.ValueType{i32}}, false},
	{abi.ExportStop, signature{}, false},
	{exportInitialize, signature{}, false},
}

// Module is a compiled and validated plugin module. Load any number of
// plugins from it; Close it when no more will be loaded.
type Module struct {
	rt           *Runtime
	digest       [sha256.Size]byte
	wasm         []byte // instrumented: what every plugin runtime compiles
	size         int    // of the module as given
	compiled     wazero.CompiledModule
	imports      []string
	initialPages uint32
	hasTick      bool
	hasStop      bool
	closeOnce    sync.Once
	closeErr     error
}

func newModule(r *Runtime, digest [sha256.Size]byte, wasm []byte, c wazero.CompiledModule) (*Module, error) {
	name := "module " + shortDigest(digest)
	mem, ok := c.ExportedMemories()["memory"]
	if !ok {
		return nil, fmt.Errorf("%s: missing required export \"memory\"", name)
	}
	if imported := c.ImportedMemories(); len(imported) > 0 {
		mod, field, _ := imported[0].Import()
		return nil, fmt.Errorf("%s imports memory %s.%s; a plugin must define its own memory", name, mod, field)
	}
	exports := c.ExportedFunctions()
	for _, e := range exportSigs {
		d, ok := exports[e.name]
		if !ok {
			if e.required {
				return nil, fmt.Errorf("%s: missing required export %q", name, e.name)
			}
			continue
		}
		if !e.sig.matches(d) {
			return nil, fmt.Errorf("%s: export %q has type %s, want %s", name, e.name,
				signature{d.ParamTypes(), d.ResultTypes()}, e.sig)
		}
	}
	m := &Module{
		rt:           r,
		digest:       digest,
		wasm:         wasm,
		compiled:     c,
		initialPages: mem.Min(),
	}
	_, m.hasTick = exports[abi.ExportTick]
	_, m.hasStop = exports[abi.ExportStop]
	for _, d := range c.ImportedFunctions() {
		mod, field, _ := d.Import()
		switch mod {
		case abi.ImportModule:
			h, ok := hostFuncs[field]
			if !ok {
				return nil, fmt.Errorf("%s imports %s.%s, which this host (ABI %d.%d) does not provide",
					name, mod, field, abi.Major, abi.Minor)
			}
			if !h.sig.matches(d) {
				return nil, fmt.Errorf("%s imports %s.%s with type %s, want %s", name, mod, field,
					signature{d.ParamTypes(), d.ResultTypes()}, h.sig)
			}
			m.imports = append(m.imports, field)
		case wasi_snapshot_preview1.ModuleName, instrument.ImportModule:
			// instrument.Module refuses modules of their own that import
			// the latter; this is its safepoint.
		default:
			return nil, fmt.Errorf("%s imports %s.%s, which this host (ABI %d.%d) does not provide",
				name, mod, field, abi.Major, abi.Minor)
		}
	}
	slices.Sort(m.imports)
	m.imports = slices.Compact(m.imports)
	return m, nil
}

// Digest returns the hex sha256 digest of the module's bytes.
func (m *Module) Digest() string { return hex.EncodeToString(m.digest[:]) }

// Imports returns the names of the edgehost_v1 functions the module imports,
// sorted: the capabilities it may use.
func (m *Module) Imports() []string { return slices.Clone(m.imports) }

// InitialMemoryPages returns the minimum size of the module's memory, in
// 64 KiB pages: what every instance starts with.
func (m *Module) InitialMemoryPages() uint32 { return m.initialPages }

// Close releases the compiled module. Plugins already loaded from it keep
// running; a later Compile of the same bytes compiles (or loads from the
// cache) again.
func (m *Module) Close(ctx context.Context) error {
	m.rt.mu.Lock()
	if c := m.rt.modules[m.digest]; c != nil && c.m == m {
		delete(m.rt.modules, m.digest)
	}
	m.rt.mu.Unlock()
	return m.dropCompiled(ctx)
}

// dropCompiled closes the module's compilation in the shared runtime,
// keeping what Load needs (the instrumented bytes and what was read from
// them). wazero's engine keeps the decoded module of whichever runtime
// compiled it first for as long as any runtime uses the code; dropped
// before a plugin's runtime compiles, the plugin's own decoded copy is the
// only one kept.
func (m *Module) dropCompiled(ctx context.Context) error {
	m.closeOnce.Do(func() {
		if err := m.compiled.Close(ctx); err != nil {
			m.closeErr = fmt.Errorf("close module %s: %w", shortDigest(m.digest), err)
		}
	})
	return m.closeErr
}

func shortDigest(d [sha256.Size]byte) string { return "sha256:" + hex.EncodeToString(d[:6]) }
