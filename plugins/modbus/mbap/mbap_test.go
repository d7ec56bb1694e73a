package mbap

import (
	"bytes"
	"errors"
	"testing"
)

func mustRead(t *testing.T, fc byte, addr, qty uint16) Request {
	t.Helper()
	r, err := Read(fc, addr, qty)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestEncode: each function's request frame, byte for byte as the Modbus
// application protocol spec's examples lay them out.
func TestEncode(t *testing.T) {
	regs, err := WriteRegisters(1, []byte{0x00, 0x0A, 0x01, 0x02})
	if err != nil {
		t.Fatal(err)
	}
	one, err := WriteRegisters(1, []byte{0x00, 0x03})
	if err != nil {
		t.Fatal(err)
	}
	coils, err := WriteCoils(19, []bool{true, false, true, true, false, false, true, true, true, false})
	if err != nil {
		t.Fatal(err)
	}
	coil, err := WriteCoils(172, []bool{true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		r    Request
		want []byte
	}{
		{"read coils", mustRead(t, ReadCoils, 19, 19), []byte{0, 1, 0, 0, 0, 6, 9, 1, 0, 19, 0, 19}},
		{"read discrete", mustRead(t, ReadDiscreteInputs, 196, 22), []byte{0, 1, 0, 0, 0, 6, 9, 2, 0, 196, 0, 22}},
		{"read holding", mustRead(t, ReadHoldingRegisters, 107, 3), []byte{0, 1, 0, 0, 0, 6, 9, 3, 0, 107, 0, 3}},
		{"read input", mustRead(t, ReadInputRegisters, 8, 1), []byte{0, 1, 0, 0, 0, 6, 9, 4, 0, 8, 0, 1}},
		{"write coil", coil, []byte{0, 1, 0, 0, 0, 6, 9, 5, 0, 172, 0xFF, 0}},
		{"write register", one, []byte{0, 1, 0, 0, 0, 6, 9, 6, 0, 1, 0, 3}},
		{"write coils", coils, []byte{0, 1, 0, 0, 0, 9, 9, 15, 0, 19, 0, 10, 2, 0xCD, 0x01}},
		{"write registers", regs, []byte{0, 1, 0, 0, 0, 11, 9, 16, 0, 1, 0, 2, 4, 0, 0x0A, 1, 2}},
	} {
		if got := c.r.Append(nil, 1, 9); !bytes.Equal(got, c.want) {
			t.Errorf("%s: % x, want % x", c.name, got, c.want)
		}
	}
}

// TestRequestLimits: quantities and addresses outside the protocol's
// bounds are refused before anything is sent.
func TestRequestLimits(t *testing.T) {
	for _, c := range []struct {
		fc        byte
		addr, qty uint16
	}{{ReadHoldingRegisters, 0, 0}, {ReadHoldingRegisters, 0, 126}, {ReadCoils, 0, 2001}, {ReadInputRegisters, 65535, 2}, {7, 0, 1}} {
		if _, err := Read(c.fc, c.addr, c.qty); err == nil {
			t.Errorf("Read(%d, %d, %d) accepted", c.fc, c.addr, c.qty)
		}
	}
	if _, err := WriteRegisters(0, make([]byte, 2*124)); err == nil {
		t.Error("124 registers accepted")
	}
	if _, err := WriteRegisters(0, []byte{1}); err == nil {
		t.Error("half a register accepted")
	}
	if _, err := WriteCoils(0, nil); err == nil {
		t.Error("no coils accepted")
	}
}

// TestCheck: the replies a device may send, each decoded or named.
func TestCheck(t *testing.T) {
	hold := mustRead(t, ReadHoldingRegisters, 0, 1)
	coils := mustRead(t, ReadCoils, 0, 10)
	wr, _ := WriteRegisters(4, []byte{0, 42})
	for _, c := range []struct {
		name  string
		r     Request
		frame []byte
		data  []byte
		check func(error) bool
	}{
		{"holding", hold, []byte{0, 7, 0, 0, 0, 5, 1, 3, 2, 0, 42}, []byte{0, 42}, nil},
		{"coils", coils, []byte{0, 7, 0, 0, 0, 5, 1, 1, 2, 0xCD, 1}, []byte{0xCD, 1}, nil},
		{"write echo", wr, []byte{0, 7, 0, 0, 0, 6, 1, 6, 0, 4, 0, 42}, nil, nil},
		{"exception", hold, []byte{0, 7, 0, 0, 0, 3, 1, 0x83, 2}, nil, func(err error) bool {
			var e *Exception
			return errors.As(err, &e) && e.Code == 2 && err.Error() == "modbus exception 2 (illegal data address) to function 3"
		}},
		{"wrong transaction", hold, []byte{0, 8, 0, 0, 0, 5, 1, 3, 2, 0, 42}, nil, func(err error) bool {
			var e *TransactionMismatch
			return errors.As(err, &e) && e.Got == 8 && e.Want == 7
		}},
		{"wrong unit", hold, []byte{0, 7, 0, 0, 0, 5, 2, 3, 2, 0, 42}, nil, isMalformed},
		{"wrong function", hold, []byte{0, 7, 0, 0, 0, 5, 1, 4, 2, 0, 42}, nil, isMalformed},
		{"short count", hold, []byte{0, 7, 0, 0, 0, 4, 1, 3, 1, 0}, nil, isMalformed},
		{"count and length disagree", hold, []byte{0, 7, 0, 0, 0, 6, 1, 3, 2, 0, 42, 0}, nil, isMalformed},
		{"bad echo", wr, []byte{0, 7, 0, 0, 0, 6, 1, 6, 0, 4, 0, 43}, nil, isMalformed},
		{"long exception", hold, []byte{0, 7, 0, 0, 0, 4, 1, 0x83, 2, 0}, nil, isMalformed},
	} {
		f, n, err := Decode(c.frame)
		if err != nil || n != len(c.frame) {
			t.Fatalf("%s: decode %d of %d bytes: %v", c.name, n, len(c.frame), err)
		}
		data, err := c.r.Check(f, 7, 1)
		switch {
		case c.check == nil && (err != nil || !bytes.Equal(data, c.data)):
			t.Errorf("%s: % x, %v; want % x", c.name, data, err, c.data)
		case c.check != nil && !c.check(err):
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func isMalformed(err error) bool { return errors.Is(err, ErrMalformed) }

// TestDecodeFraming: partial frames ask for more, bad headers are named.
func TestDecodeFraming(t *testing.T) {
	full := []byte{0, 1, 0, 0, 0, 5, 1, 3, 2, 0, 42, 0xEE}
	for i := range HeaderLen {
		if _, _, err := Decode(full[:i]); !errors.Is(err, ErrShort) {
			t.Errorf("%d bytes: %v, want ErrShort", i, err)
		}
	}
	if _, _, err := Decode(full[:9]); !errors.Is(err, ErrShort) {
		t.Errorf("header and part of the PDU: %v, want ErrShort", err)
	}
	if f, n, err := Decode(full); err != nil || n != 11 || len(f.PDU) != 4 {
		t.Errorf("a frame and a byte more: %+v, %d, %v", f, n, err)
	}
	for _, b := range [][]byte{{0, 1, 0, 1, 0, 5, 1}, {0, 1, 0, 0, 0, 1, 1}, {0, 1, 0, 0, 1, 0, 1}} {
		if _, _, err := Decode(b); !isMalformed(err) {
			t.Errorf("% x: %v, want malformed", b, err)
		}
	}
}

func TestBits(t *testing.T) {
	bits := []bool{true, false, true, true, false, false, true, true, true}
	packed := PackBits(bits)
	if !bytes.Equal(packed, []byte{0xCD, 0x01}) {
		t.Fatalf("packed % x", packed)
	}
	got := UnpackBits(packed, len(bits))
	for i := range bits {
		if got[i] != bits[i] {
			t.Fatalf("bit %d: %v", i, got[i])
		}
	}
}

// FuzzDecode: no input makes the decoder panic or accept a frame its
// header does not describe, and every reply a read accepts has the data
// its request asked for.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 5, 1, 3, 2, 0, 42}, byte(3))
	f.Fuzz(func(t *testing.T, b []byte, fc byte) {
		fr, n, err := Decode(b)
		if err != nil {
			return
		}
		if n > len(b) || n < HeaderLen+1 || len(fr.PDU) != n-HeaderLen {
			t.Fatalf("decoded %d bytes of %d, PDU %d", n, len(b), len(fr.PDU))
		}
		var r Request
		switch fc % 4 {
		case 0:
			r = Request{Function: ReadHoldingRegisters, Quantity: 2}
		case 1:
			r = Request{Function: ReadCoils, Quantity: 9}
		case 2:
			r, _ = WriteRegisters(0, []byte{0, 1, 0, 2})
		default:
			r, _ = WriteCoils(3, []bool{true})
		}
		data, err := r.Check(fr, fr.Transaction, fr.Unit)
		if err != nil {
			return
		}
		switch r.Function {
		case ReadHoldingRegisters:
			if len(data) != 4 {
				t.Fatalf("holding read accepted %d bytes", len(data))
			}
		case ReadCoils:
			if len(data) != 2 {
				t.Fatalf("coil read accepted %d bytes", len(data))
			}
		default:
			if data != nil {
				t.Fatalf("write returned data % x", data)
			}
		}
	})
}

// TestErrorTexts: errors name the numbers and bytes that were wrong (the
// texts fmt wrote before the package dropped it) and wrap ErrMalformed.
func TestErrorTexts(t *testing.T) {
	r, err := Read(ReadHoldingRegisters, 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	w, err := WriteRegisters(7, []byte{0, 42})
	if err != nil {
		t.Fatal(err)
	}
	_, tooMany := Read(ReadCoils, 0, 2001)
	_, badLen := FrameLen([]byte{0, 1, 0, 0, 1, 0, 1})
	_, count := r.Check(Frame{Transaction: 1, Unit: 1, PDU: []byte{3, 2, 0, 1}}, 1, 1)
	_, echo := w.Check(Frame{Transaction: 1, Unit: 1, PDU: []byte{6, 0, 7, 0, 43}}, 1, 1)
	for _, c := range []struct {
		err       error
		want      string
		malformed bool
	}{
		{tooMany, "function 1 reads 1-2000 at a time, not 2001", false},
		{badLen, "malformed modbus reply: length field 256 outside 2-254", true},
		{count, "malformed modbus reply: function 3 reply has byte count 2 and 2 data bytes, want 4 for 2 items", true},
		{echo, "malformed modbus reply: function 6 reply 06 00 07 00 2b does not echo 06 00 07 00 2a", true},
		{&TransactionMismatch{Got: 3, Want: 4}, "modbus reply has transaction id 3, want 4", false},
	} {
		if c.err == nil || c.err.Error() != c.want || isMalformed(c.err) != c.malformed {
			t.Errorf("%v, want %q (malformed %v)", c.err, c.want, c.malformed)
		}
	}
}
