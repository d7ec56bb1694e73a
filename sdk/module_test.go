//go:build !wasip1

package sdk_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// wasmModule is what the test reads from a module: its imports and exports
// by name and its memory's initial size in 64 KiB pages.
type wasmModule struct {
	imports, exports []string
	memPages         uint64
}

// wasmReader reads the few parts of the binary format the test needs.
type wasmReader struct {
	b   []byte
	err error
}

func (r *wasmReader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *wasmReader) fail() {
	if r.err == nil {
		r.err = errors.New("truncated wasm")
	}
	r.b = nil
}

// uleb reads an unsigned LEB128 number.
func (r *wasmReader) uleb() uint64 {
	var v uint64
	for shift := 0; shift < 64 && r.err == nil; shift += 7 {
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	r.fail()
	return 0
}

func (r *wasmReader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *wasmReader) name() string { return string(r.bytes(r.uleb())) }

// limits reads a limits entry and returns its minimum.
func (r *wasmReader) limits() uint64 {
	flags := r.byte()
	lo := r.uleb()
	if flags&1 != 0 {
		r.uleb()
	}
	return lo
}

// parseWasm reads the import, memory and export sections of a module.
func parseWasm(b []byte) (wasmModule, error) {
	var m wasmModule
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return m, errors.New("not a wasm module")
	}
	r := &wasmReader{b: b[8:]}
	for len(r.b) > 0 && r.err == nil {
		id := r.byte()
		sec := &wasmReader{b: r.bytes(r.uleb())}
		switch id {
		case 2: // imports
			for n := sec.uleb(); n > 0 && sec.err == nil; n-- {
				name := sec.name() + "." + sec.name()
				m.imports = append(m.imports, name)
				switch sec.byte() {
				case 0: // function: type index
					sec.uleb()
				case 1: // table: element type, limits
					sec.byte()
					sec.limits()
				case 2: // memory
					m.memPages = sec.limits()
				case 3: // global: value type, mutability
					sec.bytes(2)
				}
			}
		case 5: // memory
			if sec.uleb() > 0 {
				m.memPages = sec.limits()
			}
		case 7: // exports
			for n := sec.uleb(); n > 0 && sec.err == nil; n-- {
				m.exports = append(m.exports, sec.name())
				sec.byte()
				sec.uleb()
			}
		}
		if sec.err != nil {
			return m, sec.err
		}
	}
	return m, r.err
}

// maxInitialPages is the goal for a plugin's initial linear memory (4 MiB).
const maxInitialPages = 64

// TestExampleModules builds the examples to wasm and checks what a host
// sees at load: the SPEC's exports, imports only from edgehost_v1 (names the
// SPEC defines) and WASI, and a small initial memory.
func TestExampleModules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wasm modules")
	}
	spec := []string{abi.ImportLog, abi.ImportSend, abi.ImportRequest, abi.ImportRequestReply,
		abi.ImportKVGet, abi.ImportKVPut, abi.ImportKVDelete, abi.ImportKVList, abi.ImportNow, abi.ImportConfig}
	for _, pkg := range []string{"examples/echo", "examples/kvcounter"} {
		t.Run(pkg, func(t *testing.T) {
			path, err := plugintest.Build(pkg)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := parseWasm(b)
			if err != nil {
				t.Fatalf("parse %s: %v", path, err)
			}
			t.Logf("%s: %d bytes, initial memory %d pages (%d KiB), imports %v",
				pkg, len(b), m.memPages, m.memPages*64, m.imports)
			for _, e := range []string{"memory", "_initialize", abi.ExportABIVersion, abi.ExportBuffer,
				abi.ExportInit, abi.ExportHandle, abi.ExportTick, abi.ExportStop} {
				if !slices.Contains(m.exports, e) {
					t.Errorf("missing export %s (exports: %v)", e, m.exports)
				}
			}
			for _, imp := range m.imports {
				mod, name, _ := strings.Cut(imp, ".")
				switch {
				case mod == "wasi_snapshot_preview1":
				case mod == abi.ImportModule && slices.Contains(spec, name):
				default:
					t.Errorf("import %s is neither WASI nor in SPEC §5", imp)
				}
			}
			if m.memPages == 0 || m.memPages > maxInitialPages {
				t.Errorf("initial memory is %d pages, want 1..%d (is crypto/* linked?)", m.memPages, maxInitialPages)
			}
		})
	}
}
