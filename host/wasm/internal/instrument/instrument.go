// Package instrument rewrites a wasm module so that a host can interrupt it
// cheaply: it adds an imported safepoint function, a countdown global (the
// module's budget of loop iterations and calls until the next safepoint)
// and a countdown local per function that holds the budget in a register
// while the function runs:
//
//	at every function entry:          at every loop head:
//	  global.get $countdown             local.get $c
//	  i32.const 1                       i32.const 1
//	  i32.sub                           i32.sub
//	  local.tee $c                      local.tee $c
//	  i32.eqz                           i32.eqz
//	  if                                if
//	    i32.const <Period>                i32.const <Period>
//	    local.set $c                      local.set $c
//	    call $safepoint                   call $safepoint
//	    if                                if
//	      unreachable                       unreachable
//	    end                               end
//	  end                               end
//
//	around every call:                at every way out of the function:
//	  local.get $c; global.set $countdown   local.get $c
//	  call ...                              global.set $countdown
//	  global.get $countdown; local.set $c
//
// so that native code calls into the host once every Period loop
// iterations and function calls of the whole module, however they nest:
// loops in a function called from a loop spend the same budget (a counter
// reset at each function entry would let a loop of N iterations called
// from a loop of Period iterations run N × Period iterations between two
// safepoints). The loop counts on a local because wazero keeps it in a
// register: a global is a load and a store per iteration; the global is
// written only where control leaves the function or enters another. The
// safepoint is where the Go runtime can stop the goroutine for a garbage
// collection (compiled wasm cannot be preempted), and where the host checks
// the call's deadline: a non-zero result makes the guest trap. Each
// sequence is stack-neutral and opens its own block, so no branch depth of
// the original code changes.
//
// The new import comes after the module's function imports, so every
// defined function's index grows by one: calls, ref.func, exports, the
// start function, element segments and the name section are renumbered.
// DWARF sections, whose code offsets no longer hold, are dropped.
//
// Module refuses, with an error naming what it met, anything it cannot
// decode, rather than produce a module that differs in meaning.
package instrument

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Names of the import the rewritten module calls.
const (
	ImportModule = "edgehost_rt"
	ImportName   = "safepoint"
)

// Version names this rewriting; it is written into the module as the
// custom section VersionSection, so compiled code cached for one version is
// never taken for another's.
const (
	Version        = "2"
	VersionSection = "edgehost.instrument"
)

// MaxDepth bounds the guest's call depth: a call past it traps. wazero
// grows a call's native stack up to 400 MB before it reports an overflow,
// so without a bound ten lines of recursion cost the daemon hundreds of MB
// per concurrent call; at this depth a call's stack stays within a few MB.
const MaxDepth = 10000

// DepthExport is the name under which the rewritten module exports its call
// depth global, so that the host can tell a depth trap from another trap.
const DepthExport = "edgehost_rt.depth"

// Period is how many loop iterations and function entries run between two
// safepoint calls. A call costs tens of nanoseconds, so at 16384 they cost
// well under 1%, and on a counting loop they come every few tens of
// microseconds.
const Period = 16384

// Section ids (the wasm core spec, plus the exception handling proposal's
// tag section).
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// order is where each known section goes in a module, for placing a new
// global section.
var order = map[byte]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5, secTag: 6,
	secGlobal: 7, secExport: 8, secStart: 9, secElement: 10, secDataCount: 11, secCode: 12, secData: 13,
}

// section is one section of a module: its id and its payload.
type section struct {
	id      byte
	payload []byte
}

// Module returns wasm rewritten with the countdown and safepoint checks.
// Errors name the section, function or opcode that could not be decoded.
func Module(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("instrument: not a wasm module (bad magic)")
	}
	if string(wasm[4:8]) != "\x01\x00\x00\x00" {
		return nil, fmt.Errorf("instrument: unsupported wasm binary version % x", wasm[4:8])
	}
	secs, err := splitSections(wasm[8:])
	if err != nil {
		return nil, err
	}
	m := &rewrite{}
	for _, s := range secs {
		switch s.id {
		case secType:
			if err := m.scanTypes(s.payload); err != nil {
				return nil, err
			}
		case secFunction:
			if err := m.scanFunctions(s.payload); err != nil {
				return nil, err
			}
		case secImport:
			if err := m.scanImports(s.payload); err != nil {
				return nil, err
			}
		case secGlobal:
			if m.definedGlobals, err = countVec(s.payload, "global"); err != nil {
				return nil, err
			}
		}
	}
	m.countdown = m.importedGlobals + m.definedGlobals
	m.depth = m.countdown + 1
	m.safepoint = m.importedFuncs

	// rewriters gives each section id its rewriting; the sections every
	// rewritten module needs are made when the module has none.
	rewriters := map[byte]func([]byte) ([]byte, error){
		secType:      m.typeSection,
		secImport:    m.importSection,
		secGlobal:    m.globalSection,
		secExport:    m.exportSection,
		secStart:     m.startSection,
		secElement:   m.elementSection,
		secTable:     m.tableSection,
		secCode:      m.codeSection,
		secDataCount: func(b []byte) ([]byte, error) { return b, dataCount(b) },
	}
	needed := []byte{secType, secImport, secGlobal, secExport}
	present := map[byte]bool{}
	for _, s := range secs {
		present[s.id] = true
	}
	// The checks grow a Go module's code by about a fifth: one allocation
	// of the final size rather than a dozen doublings.
	out := append(make([]byte, 0, len(wasm)+len(wasm)/4), wasm[:8]...)
	addMissing := func(next byte, last bool) error {
		for _, id := range needed {
			if present[id] || !(last || before(id, next)) {
				continue
			}
			payload, err := rewriters[id](nil)
			if err != nil {
				return err
			}
			out = appendSection(out, id, payload)
			present[id] = true
		}
		return nil
	}
	for _, s := range secs {
		// A new section goes before the first section that must follow it.
		if err := addMissing(s.id, false); err != nil {
			return nil, err
		}
		payload, keep := s.payload, true
		if s.id == secCustom {
			payload, keep, err = m.customSection(s.payload)
		} else if rw := rewriters[s.id]; rw != nil {
			payload, err = rw(s.payload)
		}
		if err != nil {
			return nil, err
		}
		if keep {
			out = appendSection(out, s.id, payload)
		}
	}
	if err := addMissing(0, true); err != nil {
		return nil, err
	}
	marker := appendName(nil, VersionSection)
	marker = append(marker, Version...)
	return appendSection(out, secCustom, marker), nil
}

// before reports whether a section of id new goes before one of id next.
func before(newID, next byte) bool {
	o, ok := order[next]
	return ok && order[newID] < o
}

// rewrite holds what Module learns about the module while rewriting it.
type rewrite struct {
	typeCount       uint32
	params          []uint32 // parameter count of each type
	funcParams      []uint32 // parameter count of each defined function
	importedFuncs   uint32
	importedGlobals uint32
	definedGlobals  uint32
	safepoint       uint32 // the new import's function index
	countdown       uint32 // the countdown global's index
	depth           uint32 // the call depth global's index
	safepointType   uint32 // the index of the type () -> i32, appended
}

func splitSections(b []byte) ([]section, error) {
	var secs []section
	r := reader{b: b, what: "module"}
	lastOrder := 0
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("instrument: section %d size: %w", id, err)
		}
		payload, err := r.bytes(int(size))
		if err != nil {
			return nil, fmt.Errorf("instrument: section %d: %w", id, err)
		}
		if id != secCustom {
			o, ok := order[id]
			if !ok {
				return nil, fmt.Errorf("instrument: unknown section id %d", id)
			}
			if o <= lastOrder {
				return nil, fmt.Errorf("instrument: section %d out of order or repeated", id)
			}
			lastOrder = o
			if err := plausibleCount(id, payload); err != nil {
				return nil, err
			}
		}
		secs = append(secs, section{id: id, payload: payload})
	}
	return secs, nil
}

func appendSection(out []byte, id byte, payload []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(payload)))
	return append(out, payload...)
}

// plausibleCount refuses a vector section whose element count exceeds its
// size in bytes (every element takes at least one byte). wazero allocates a
// slice of the declared count before it reads the elements, so a module
// that declares 2^32 data segments in a few bytes would otherwise make the
// daemon run out of memory while compiling it.
func plausibleCount(id byte, payload []byte) error {
	if id == secStart || id == secDataCount {
		return nil
	}
	r := reader{b: payload, what: fmt.Sprintf("section %d", id)}
	n, err := r.u32()
	if err != nil {
		return err
	}
	if uint64(n) > uint64(len(r.rest())) {
		return fmt.Errorf("instrument: section %d declares %d entries in %d bytes", id, n, len(r.rest()))
	}
	return nil
}

// dataCount checks that the data count section holds one u32 and no more.
func dataCount(payload []byte) error {
	r := reader{b: payload, what: "data count section"}
	if _, err := r.u32(); err != nil {
		return err
	}
	if !r.done() {
		return errors.New("instrument: data count section: trailing bytes")
	}
	return nil
}

func countVec(payload []byte, what string) (uint32, error) {
	r := reader{b: payload, what: what + " section"}
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	return n, nil
}

// scanTypes records each function type's parameter count.
func (m *rewrite) scanTypes(payload []byte) error {
	r := reader{b: payload, what: "type section"}
	n, err := r.u32()
	if err != nil {
		return err
	}
	m.typeCount = n
	for i := range n {
		form, err := r.byte()
		if err != nil {
			return err
		}
		if form != 0x60 {
			return fmt.Errorf("instrument: type %d: unsupported type form 0x%02x", i, form)
		}
		params, err := r.u32()
		if err != nil {
			return err
		}
		for range params {
			if _, err := r.s33(); err != nil {
				return err
			}
		}
		results, err := r.u32()
		if err != nil {
			return err
		}
		for range results {
			if _, err := r.s33(); err != nil {
				return err
			}
		}
		m.params = append(m.params, params)
	}
	if !r.done() {
		return errors.New("instrument: type section: trailing bytes")
	}
	return nil
}

// scanFunctions records each defined function's parameter count.
func (m *rewrite) scanFunctions(payload []byte) error {
	r := reader{b: payload, what: "function section"}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for i := range n {
		t, err := r.u32()
		if err != nil {
			return err
		}
		if int(t) >= len(m.params) {
			return fmt.Errorf("instrument: function %d: type %d out of range", i, t)
		}
		m.funcParams = append(m.funcParams, m.params[t])
	}
	return nil
}

// scanImports counts imported functions and globals and refuses a module
// that already imports from ImportModule.
func (m *rewrite) scanImports(payload []byte) error {
	r := reader{b: payload, what: "import section"}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for range n {
		mod, err := r.name()
		if err != nil {
			return err
		}
		if _, err := r.name(); err != nil {
			return err
		}
		if mod == ImportModule {
			return fmt.Errorf("instrument: the module imports from %q, which is the host's own", ImportModule)
		}
		kind, err := r.byte()
		if err != nil {
			return err
		}
		switch kind {
		case 0x00: // func: typeidx
			m.importedFuncs++
			_, err = r.u32()
		case 0x01: // table: reftype, limits
			if _, err = r.s33(); err == nil {
				err = r.limits()
			}
		case 0x02: // memory: limits
			err = r.limits()
		case 0x03: // global: valtype, mut
			m.importedGlobals++
			if _, err = r.s33(); err == nil {
				_, err = r.byte()
			}
		case 0x04: // tag: attribute, typeidx
			if _, err = r.byte(); err == nil {
				_, err = r.u32()
			}
		default:
			return fmt.Errorf("instrument: import section: unknown import kind 0x%02x", kind)
		}
		if err != nil {
			return err
		}
	}
	if !r.done() {
		return errors.New("instrument: import section: trailing bytes")
	}
	return nil
}

// typeSection appends the safepoint's type, () -> i32.
func (m *rewrite) typeSection(payload []byte) ([]byte, error) {
	m.safepointType = m.typeCount
	out := appendU32(nil, m.typeCount+1)
	if payload != nil {
		r := reader{b: payload}
		_, _ = r.u32() // counted before
		out = append(out, r.rest()...)
	}
	return append(out, 0x60, 0x00, 0x01, 0x7F), nil
}

// importSection appends the safepoint import, after every other import so
// that only defined functions move.
func (m *rewrite) importSection(payload []byte) ([]byte, error) {
	var rest []byte
	n := uint32(0)
	if payload != nil {
		r := reader{b: payload}
		n, _ = r.u32() // scanned before
		rest = r.rest()
	}
	out := appendU32(nil, n+1)
	out = append(out, rest...)
	out = appendName(out, ImportModule)
	out = appendName(out, ImportName)
	out = append(out, 0x00)
	return appendU32(out, m.safepointType), nil
}

// newGlobals appends the new globals: the countdown, (mut i32)
// (i32.const Period), and the call depth, (mut i32) (i32.const 0).
func newGlobals(out []byte) []byte {
	out = append(out, 0x7F, 0x01, 0x41)
	out = appendS64(out, Period)
	return append(out, 0x0B, 0x7F, 0x01, 0x41, 0x00, 0x0B)
}

// globalSection renumbers ref.func in the globals' initialisers and
// appends the new globals.
func (m *rewrite) globalSection(payload []byte) ([]byte, error) {
	if payload == nil {
		return newGlobals(appendU32(nil, 2)), nil
	}
	r := reader{b: payload, what: "global section"}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n+2)
	for range n {
		start := r.off
		if _, err := r.s33(); err != nil { // valtype
			return nil, err
		}
		if _, err := r.byte(); err != nil { // mut
			return nil, err
		}
		out = append(out, r.b[start:r.off]...)
		if out, err = m.constExpr(&r, out); err != nil {
			return nil, err
		}
	}
	if !r.done() {
		return nil, errors.New("instrument: global section: trailing bytes")
	}
	return newGlobals(out), nil
}

// fn renumbers a function index: defined functions move up by one.
func (m *rewrite) fn(idx uint32) uint32 {
	if idx >= m.importedFuncs {
		return idx + 1
	}
	return idx
}

// exportSection renumbers exported functions and exports the call depth
// as DepthExport, for the host to read after a trap.
func (m *rewrite) exportSection(payload []byte) ([]byte, error) {
	r := reader{b: payload, what: "export section"}
	n := uint32(0)
	if payload != nil {
		var err error
		if n, err = r.u32(); err != nil {
			return nil, err
		}
	}
	out := appendU32(nil, n+1)
	for range n {
		name, err := r.name()
		if err != nil {
			return nil, err
		}
		if name == DepthExport {
			return nil, fmt.Errorf("instrument: the module exports %q, a name of the host's own", name)
		}
		kind, err := r.byte()
		if err != nil {
			return nil, err
		}
		idx, err := r.u32()
		if err != nil {
			return nil, err
		}
		if kind == 0x00 {
			idx = m.fn(idx)
		}
		out = appendName(out, name)
		out = append(out, kind)
		out = appendU32(out, idx)
	}
	if !r.done() {
		return nil, errors.New("instrument: export section: trailing bytes")
	}
	out = appendName(out, DepthExport)
	out = append(out, 0x03) // global
	return appendU32(out, m.depth), nil
}

func (m *rewrite) startSection(payload []byte) ([]byte, error) {
	r := reader{b: payload, what: "start section"}
	idx, err := r.u32()
	if err != nil {
		return nil, err
	}
	return appendU32(nil, m.fn(idx)), nil
}

// tableSection renumbers ref.func in table initialisers (the function
// references proposal's 0x40 0x00 form).
func (m *rewrite) tableSection(payload []byte) ([]byte, error) {
	r := reader{b: payload, what: "table section"}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	for range n {
		if len(r.b) > r.off+1 && r.b[r.off] == 0x40 && r.b[r.off+1] == 0x00 {
			out = append(out, 0x40, 0x00)
			r.off += 2
			start := r.off
			if _, err := r.s33(); err != nil {
				return nil, err
			}
			if err := r.limits(); err != nil {
				return nil, err
			}
			out = append(out, r.b[start:r.off]...)
			if out, err = m.constExpr(&r, out); err != nil {
				return nil, err
			}
			continue
		}
		start := r.off
		if _, err := r.s33(); err != nil {
			return nil, err
		}
		if err := r.limits(); err != nil {
			return nil, err
		}
		out = append(out, r.b[start:r.off]...)
	}
	if !r.done() {
		return nil, errors.New("instrument: table section: trailing bytes")
	}
	return out, nil
}

// elementSection renumbers the function indices and ref.func expressions
// of every element segment (all eight encodings).
func (m *rewrite) elementSection(payload []byte) ([]byte, error) {
	r := reader{b: payload, what: "element section"}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	for i := range n {
		flags, err := r.u32()
		if err != nil {
			return nil, err
		}
		if flags > 7 {
			return nil, fmt.Errorf("instrument: element segment %d: unknown flags %d", i, flags)
		}
		out = appendU32(out, flags)
		passiveOrDeclared := flags&1 != 0
		explicitTable := flags&2 != 0
		exprs := flags&4 != 0
		if !passiveOrDeclared && explicitTable {
			start := r.off
			if _, err := r.u32(); err != nil { // tableidx
				return nil, err
			}
			out = append(out, r.b[start:r.off]...)
		}
		if !passiveOrDeclared {
			if out, err = m.constExpr(&r, out); err != nil { // offset
				return nil, err
			}
		}
		if passiveOrDeclared || explicitTable {
			// elemkind (0x00) or reftype
			start := r.off
			if _, err := r.s33(); err != nil {
				return nil, err
			}
			out = append(out, r.b[start:r.off]...)
		}
		count, err := r.u32()
		if err != nil {
			return nil, err
		}
		out = appendU32(out, count)
		for range count {
			if exprs {
				if out, err = m.constExpr(&r, out); err != nil {
					return nil, err
				}
				continue
			}
			idx, err := r.u32()
			if err != nil {
				return nil, err
			}
			out = appendU32(out, m.fn(idx))
		}
	}
	if !r.done() {
		return nil, errors.New("instrument: element section: trailing bytes")
	}
	return out, nil
}

// constExpr copies a constant expression up to and including its end,
// renumbering ref.func.
func (m *rewrite) constExpr(r *reader, out []byte) ([]byte, error) {
	depth := 0
	for {
		op, err := r.byte()
		if err != nil {
			return nil, err
		}
		if op == 0xD2 { // ref.func
			idx, err := r.u32()
			if err != nil {
				return nil, err
			}
			out = append(out, op)
			out = appendU32(out, m.fn(idx))
			continue
		}
		start := r.off - 1
		if err := skipImmediates(r, op); err != nil {
			return nil, fmt.Errorf("instrument: %s: constant expression: %w", r.what, err)
		}
		out = append(out, r.b[start:r.off]...)
		switch op {
		case 0x02, 0x03, 0x04, 0x1F: // blocks do not occur here, but nest correctly if they do
			depth++
		case 0x0B:
			if depth == 0 {
				return out, nil
			}
			depth--
		}
	}
}

// entry is inserted at every function entry: it counts the call depth up
// and traps past MaxDepth, and takes one from the module's budget into the
// function's countdown local.
func (m *rewrite) entry(out []byte, counter uint32) []byte {
	out = append(out, 0x23) // global.get depth; i32.const 1; i32.add; global.set depth
	out = appendU32(out, m.depth)
	out = append(out, 0x41, 0x01, 0x6A, 0x24)
	out = appendU32(out, m.depth)
	out = append(out, 0x23) // global.get depth; i32.const MaxDepth; i32.gt_u; if; unreachable; end
	out = appendU32(out, m.depth)
	out = append(out, 0x41)
	out = appendS64(out, MaxDepth)
	out = append(out, 0x4B, 0x04, 0x40, 0x00, 0x0B)
	out = append(out, 0x23) // global.get countdown; then as at a loop head
	out = appendU32(out, m.countdown)
	return m.countDown(out, counter)
}

// storeBudget writes the function's countdown back to the module's: before
// a call and wherever the function returns.
func (m *rewrite) storeBudget(out []byte, counter uint32) []byte {
	out = append(out, 0x20) // local.get counter; global.set countdown
	out = appendU32(out, counter)
	out = append(out, 0x24)
	return appendU32(out, m.countdown)
}

// loadBudget takes the module's countdown back after a call, which spent
// some of it.
func (m *rewrite) loadBudget(out []byte, counter uint32) []byte {
	out = append(out, 0x23) // global.get countdown; local.set counter
	out = appendU32(out, m.countdown)
	out = append(out, 0x21)
	return appendU32(out, counter)
}

// loopCheck is inserted at every loop head: it counts the iteration down
// on the function's countdown local, which wazero keeps in a register.
func (m *rewrite) loopCheck(out []byte, counter uint32) []byte {
	out = append(out, 0x20) // local.get counter
	out = appendU32(out, counter)
	return m.countDown(out, counter)
}

// countDown takes the budget on the stack, subtracts one into the
// countdown local and, at zero, refills it and calls the safepoint.
func (m *rewrite) countDown(out []byte, counter uint32) []byte {
	out = append(out, 0x41, 0x01, 0x6B, 0x22) // i32.const 1; i32.sub; local.tee
	out = appendU32(out, counter)
	out = append(out, 0x45, 0x04, 0x40, 0x41) // i32.eqz; if; i32.const Period; local.set
	out = appendS64(out, Period)
	out = append(out, 0x21)
	out = appendU32(out, counter)
	return m.callSafepoint(out)
}

// callSafepoint ends a check: it calls the safepoint, traps if it says
// stop, and closes the check's if.
func (m *rewrite) callSafepoint(out []byte) []byte {
	out = append(out, 0x10) // call
	out = appendU32(out, m.safepoint)
	return append(out, 0x04, 0x40, 0x00, 0x0B, 0x0B) // if; unreachable; end; end
}

func (m *rewrite) codeSection(payload []byte) ([]byte, error) {
	r := reader{b: payload, what: "code section"}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(make([]byte, 0, len(payload)+len(payload)/4), n)
	var body []byte
	for i := range n {
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		code, err := r.bytes(int(size))
		if err != nil {
			return nil, fmt.Errorf("instrument: function %d: %w", i, err)
		}
		if int(i) >= len(m.funcParams) {
			return nil, fmt.Errorf("instrument: code section: body %d has no function", i)
		}
		if body, err = m.function(body[:0], code, m.funcParams[i]); err != nil {
			return nil, fmt.Errorf("instrument: function %d (index %d): %w", i, m.importedFuncs+i, err)
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	if !r.done() {
		return nil, errors.New("instrument: code section: trailing bytes")
	}
	return out, nil
}

// function rewrites one function body: it adds two locals (the loop
// countdown and a scratch i32), starts the function with the entry check,
// inserts the loop check after every loop's block type, counts the call
// depth down at every way out of the function, and renumbers calls and
// ref.func.
func (m *rewrite) function(out, code []byte, params uint32) ([]byte, error) {
	r := reader{b: code, what: "function body"}
	groups, err := r.u32()
	if err != nil {
		return nil, err
	}
	locals := uint64(params)
	start := r.off
	for range groups {
		n, err := r.u32()
		if err != nil {
			return nil, err
		}
		locals += uint64(n)
		if _, err := r.s33(); err != nil {
			return nil, err
		}
	}
	if locals >= 1<<32-2 {
		return nil, r.fail(errors.New("too many locals"))
	}
	counter, scratch := uint32(locals), uint32(locals)+1
	out = appendU32(out, groups+1)
	out = append(out, code[start:r.off]...)
	out = append(out, 0x02, 0x7F) // two i32s: the loop countdown, scratch
	out = m.entry(out, counter)
	depth := 0 // blocks open inside the function body
	var targets []uint32
	for !r.done() {
		op, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch op {
		case 0x10: // call
			idx, err := r.u32()
			if err != nil {
				return nil, err
			}
			out = m.storeBudget(out, counter)
			out = append(out, op)
			out = appendU32(out, m.fn(idx))
			out = m.loadBudget(out, counter)
			continue
		case 0xD2: // ref.func
			idx, err := r.u32()
			if err != nil {
				return nil, err
			}
			out = append(out, op)
			out = appendU32(out, m.fn(idx))
			continue
		case 0x11, 0x14: // call_indirect, call_ref
			out = m.storeBudget(out, counter)
		case 0x12, 0x13, 0x15: // return_call*: the frame would end uncounted
			return nil, r.fail(errors.New("tail calls are not supported"))
		case 0x0F: // return
			out = m.leave(out, counter)
		case 0x0B: // end
			if depth == 0 {
				out = m.leave(out, counter) // falling off the end of the body
			} else {
				depth--
			}
		case 0x02, 0x03, 0x04, 0x06, 0x1F: // block, loop, if, try, try_table
			depth++
		case 0x0C, 0x0D, 0x0E: // br, br_if, br_table: out of the function?
			save := r.off
			if targets, err = branchTargets(&r, op, targets[:0]); err != nil {
				return nil, err
			}
			r.off = save
			out = m.leaveIfBranchOut(out, op, targets, uint32(depth), counter, scratch)
		}
		start := r.off - 1
		if err := skipImmediates(&r, op); err != nil {
			return nil, err
		}
		out = append(out, code[start:r.off]...)
		switch op {
		case 0x03: // loop
			out = m.loopCheck(out, counter)
		case 0x11, 0x14: // call_indirect, call_ref
			out = m.loadBudget(out, counter)
		}
	}
	return out, nil
}

// branchTargets reads the label indices of a br, br_if or br_table, the
// default last.
func branchTargets(r *reader, op byte, out []uint32) ([]uint32, error) {
	n := uint32(1)
	if op == 0x0E {
		var err error
		if n, err = r.u32(); err != nil {
			return nil, err
		}
		n++ // the default
	}
	for range n {
		l, err := r.u32()
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// leave counts the call depth down and stores the budget: inserted
// wherever the function returns.
func (m *rewrite) leave(out []byte, counter uint32) []byte {
	out = m.storeBudget(out, counter)
	out = append(out, 0x23)
	out = appendU32(out, m.depth)
	out = append(out, 0x41, 0x01, 0x6B, 0x24) // i32.const 1; i32.sub; global.set
	return appendU32(out, m.depth)
}

// leaveIfBranchOut inserts, before a branch, the depth count-down for when
// the branch leaves the function (its label is the function body's, depth).
// br does so always; br_if and br_table only for some operands, so the
// operand is saved in scratch, tested, and put back.
func (m *rewrite) leaveIfBranchOut(out []byte, op byte, targets []uint32, depth, counter, scratch uint32) []byte {
	if !slices.Contains(targets, depth) {
		return out
	}
	if op == 0x0C { // br
		return m.leave(out, counter)
	}
	out = append(out, 0x22) // local.tee scratch
	out = appendU32(out, scratch)
	if op == 0x0E { // br_table: leaves when the index selects such a label
		cases, def := targets[:len(targets)-1], targets[len(targets)-1]
		if def == depth { // index >= len(cases)
			out = append(out, 0x41)
			out = appendS64(out, int64(len(cases)))
			out = append(out, 0x4F) // i32.ge_u
		} else {
			out = append(out, 0x41, 0x00)
		}
		for i, l := range cases {
			if l != depth {
				continue
			}
			out = append(out, 0x20) // local.get scratch; i32.const i; i32.eq; i32.or
			out = appendU32(out, scratch)
			out = append(out, 0x41)
			out = appendS64(out, int64(i))
			out = append(out, 0x46, 0x72)
		}
	}
	out = append(out, 0x04, 0x40) // if (br_if: the condition itself)
	out = m.leave(out, counter)
	out = append(out, 0x0B, 0x20) // end; local.get scratch
	return appendU32(out, scratch)
}

// customSection renumbers the name section, drops DWARF sections (their
// code offsets are wrong now) and keeps the others as they are.
func (m *rewrite) customSection(payload []byte) ([]byte, bool, error) {
	r := reader{b: payload, what: "custom section"}
	name, err := r.name()
	if err != nil {
		return nil, false, err
	}
	switch {
	case strings.HasPrefix(name, ".debug_"), name == "sourceMappingURL", name == VersionSection:
		return nil, false, nil
	case name == "name":
		out, err := m.nameSection(appendName(nil, name), r.rest())
		if err != nil {
			// A name section is only for debugging: drop one we cannot read.
			return nil, false, nil
		}
		return out, true, nil
	}
	return payload, true, nil
}

// nameSection keeps the module name (subsection 0) and renumbers the
// function names (1) and local names (2), the subsections wazero reads; it
// drops the others. A malformed subsection fails it, and then the caller
// drops the whole name section.
func (m *rewrite) nameSection(out, b []byte) ([]byte, error) {
	r := reader{b: b, what: "name section"}
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		sub, err := r.bytes(int(size))
		if err != nil {
			return nil, err
		}
		var body []byte
		switch id {
		case 0:
			sr := reader{b: sub, what: "module name"}
			if _, err = sr.name(); err == nil && !sr.done() {
				err = errors.New("instrument: module name: trailing bytes")
			}
			body = sub
		case 1:
			body, err = m.nameMap(sub, false)
		case 2:
			body, err = m.nameMap(sub, true)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

// nameMap renumbers a name map (or, indirect, a map of name maps) keyed by
// function index.
func (m *rewrite) nameMap(b []byte, indirect bool) ([]byte, error) {
	r := reader{b: b, what: "name map"}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	for range n {
		idx, err := r.u32()
		if err != nil {
			return nil, err
		}
		out = appendU32(out, m.fn(idx))
		start := r.off
		if indirect {
			inner, err := r.u32()
			if err != nil {
				return nil, err
			}
			for range inner {
				if _, err := r.u32(); err != nil {
					return nil, err
				}
				if err := r.skipName(); err != nil {
					return nil, err
				}
			}
		} else if err := r.skipName(); err != nil {
			return nil, err
		}
		out = append(out, b[start:r.off]...)
	}
	if !r.done() {
		return nil, errors.New("trailing bytes")
	}
	return out, nil
}
