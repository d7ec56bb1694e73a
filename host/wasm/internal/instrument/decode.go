package instrument

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// errTruncated is wrapped by every error for input that ends early.
var errTruncated = errors.New("unexpected end")

// reader decodes the wasm binary format from b.
type reader struct {
	b    []byte
	off  int
	what string // what is being read, for errors
}

func (r *reader) done() bool { return r.off >= len(r.b) }

func (r *reader) rest() []byte { return r.b[r.off:] }

func (r *reader) fail(err error) error {
	return fmt.Errorf("instrument: %s at byte %d: %w", r.what, r.off, err)
}

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, r.fail(errTruncated)
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, r.fail(errTruncated)
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b, nil
}

// u32 reads an unsigned LEB128 of at most 32 bits.
func (r *reader) u32() (uint32, error) {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if shift == 28 && c&0x70 != 0 {
			return 0, r.fail(errors.New("u32 out of range"))
		}
		v |= uint32(c&0x7F) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, r.fail(errors.New("u32 longer than 5 bytes"))
}

// sleb skips a signed LEB128 of at most bits bits and returns its value.
func (r *reader) sleb(bits int) (int64, error) {
	var v int64
	shift := 0
	for {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if shift >= bits+7 {
			return 0, r.fail(fmt.Errorf("s%d too long", bits))
		}
		v |= int64(c&0x7F) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, nil
		}
	}
}

// s33 reads a block type, value type or heap type (all s33 encodings).
func (r *reader) s33() (int64, error) { return r.sleb(33) }

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(int(n))
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", r.fail(errors.New("name is not UTF-8"))
	}
	return string(b), nil
}

// skipName skips a name, checking it is UTF-8, without making a string.
func (r *reader) skipName() error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	b, err := r.bytes(int(n))
	if err != nil {
		return err
	}
	if !utf8.Valid(b) {
		return r.fail(errors.New("name is not UTF-8"))
	}
	return nil
}

// limits skips a table or memory type's limits.
func (r *reader) limits() error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if flags > 0x07 {
		return r.fail(fmt.Errorf("unknown limits flags 0x%02x", flags))
	}
	// Bit 2: 64-bit (memory64); bit 0: a maximum follows.
	read := func() error {
		if flags&0x04 != 0 {
			_, err := r.sleb(64)
			return err
		}
		_, err := r.u32()
		return err
	}
	if err := read(); err != nil {
		return err
	}
	if flags&0x01 != 0 {
		return read()
	}
	return nil
}

// memarg skips a memory argument: alignment (with bit 6 meaning a memory
// index follows, multi-memory) and offset.
func (r *reader) memarg() error {
	align, err := r.u32()
	if err != nil {
		return err
	}
	if align&0x40 != 0 {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	_, err = r.sleb(64) // offset: u64 in memory64; a u32 reads the same
	return err
}

// skipImmediates advances r past the immediates of the instruction whose
// opcode op has just been read: the core spec and the proposals wazero
// runs (sign extension, saturating conversions, bulk memory, reference
// types, SIMD, tail calls, threads, exception handling). Anything else is
// an error naming the opcode.
func skipImmediates(r *reader, op byte) error {
	switch {
	case op == 0x00, op == 0x01, op == 0x05, op == 0x0A, op == 0x0B, op == 0x0F, op == 0x19,
		op == 0x1A, op == 0x1B, op == 0xD1, op == 0xD3, op == 0xD5:
		return nil
	case op >= 0x45 && op <= 0xC4: // numeric instructions, sign extension
		return nil
	}
	var err error
	switch op {
	case 0x02, 0x03, 0x04, 0x06: // block, loop, if, try: block type
		_, err = r.s33()
	case 0x07, 0x08, 0x09, 0x0C, 0x0D, 0x18, 0xD4, 0xD6: // catch, throw, rethrow, br, br_if, delegate, br_on_null, br_on_non_null
		_, err = r.u32()
	case 0x0E: // br_table
		var n uint32
		if n, err = r.u32(); err == nil {
			for i := uint32(0); i <= n && err == nil; i++ {
				_, err = r.u32()
			}
		}
	case 0x10, 0x12, 0x14, 0x15, 0xD2: // call, return_call, call_ref, return_call_ref, ref.func
		_, err = r.u32()
	case 0x11, 0x13: // call_indirect, return_call_indirect: type, table
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	case 0x1C: // select t*
		var n uint32
		if n, err = r.u32(); err == nil {
			for i := uint32(0); i < n && err == nil; i++ {
				_, err = r.s33()
			}
		}
	case 0x1F: // try_table: block type, catch clauses
		err = tryTable(r)
	case 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26: // local.*, global.*, table.get/set
		_, err = r.u32()
	case 0x3F, 0x40: // memory.size, memory.grow: memory index
		_, err = r.u32()
	case 0x41:
		_, err = r.sleb(32)
	case 0x42:
		_, err = r.sleb(64)
	case 0x43:
		_, err = r.bytes(4)
	case 0x44:
		_, err = r.bytes(8)
	case 0xD0: // ref.null: heap type
		_, err = r.s33()
	case 0xFC:
		err = prefixFC(r)
	case 0xFD:
		err = prefixFD(r)
	case 0xFE:
		err = prefixFE(r)
	default:
		if op >= 0x28 && op <= 0x3E { // loads and stores
			return r.memarg()
		}
		return r.fail(fmt.Errorf("unknown opcode 0x%02x", op))
	}
	return err
}

func tryTable(r *reader) error {
	if _, err := r.s33(); err != nil {
		return err
	}
	n, err := r.u32()
	if err != nil {
		return err
	}
	for range n {
		kind, err := r.byte()
		if err != nil {
			return err
		}
		switch kind {
		case 0x00, 0x01: // catch, catch_ref: tag, label
			if _, err := r.u32(); err != nil {
				return err
			}
		case 0x02, 0x03: // catch_all, catch_all_ref: label
		default:
			return r.fail(fmt.Errorf("try_table: unknown catch kind 0x%02x", kind))
		}
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

// prefixFC: saturating conversions, bulk memory, table instructions.
func prefixFC(r *reader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	args := 0
	switch {
	case sub <= 7: // trunc_sat
	case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
		args = 1
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
		args = 2
	default:
		return r.fail(fmt.Errorf("unknown opcode 0xfc %d", sub))
	}
	for range args {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

// prefixFD: SIMD (and relaxed SIMD, which has no immediates).
func prefixFD(r *reader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 0x0B, sub == 0x5C, sub == 0x5D: // loads, stores, load_zero
		return r.memarg()
	case sub == 0x0C, sub == 0x0D: // v128.const, i8x16.shuffle
		_, err = r.bytes(16)
	case sub >= 0x15 && sub <= 0x22: // extract_lane, replace_lane
		_, err = r.byte()
	case sub >= 0x54 && sub <= 0x5B: // load_lane, store_lane
		if err = r.memarg(); err == nil {
			_, err = r.byte()
		}
	case sub <= 0x113:
	default:
		return r.fail(fmt.Errorf("unknown opcode 0xfd %d", sub))
	}
	return err
}

// prefixFE: threads (atomics).
func prefixFE(r *reader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub == 0x03: // atomic.fence: a zero byte
		_, err = r.byte()
	case sub <= 0x02, sub >= 0x10 && sub <= 0x4E:
		return r.memarg()
	default:
		return r.fail(fmt.Errorf("unknown opcode 0xfe %d", sub))
	}
	return err
}

func appendU32(out []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if v == 0 {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

func appendS64(out []byte, v int64) []byte {
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

func appendName(out []byte, s string) []byte {
	out = appendU32(out, uint32(len(s)))
	return append(out, s...)
}
