// Package mbap encodes Modbus TCP requests and decodes their replies: the
// MBAP header (transaction id, protocol 0, length, unit id) around a PDU of
// function codes 1-6, 15 and 16. It does no I/O and needs no `net`, so it
// builds for a wasm mapper as well as natively; every reply is checked
// against the request it answers, and what does not fit is a named error.
package mbap

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Function codes this package speaks.
const (
	ReadCoils              byte = 1
	ReadDiscreteInputs     byte = 2
	ReadHoldingRegisters   byte = 3
	ReadInputRegisters     byte = 4
	WriteSingleCoil        byte = 5
	WriteSingleRegister    byte = 6
	WriteMultipleCoils     byte = 15
	WriteMultipleRegisters byte = 16
)

// Protocol limits (Modbus application protocol v1.1b3, section 6).
const (
	// HeaderLen is the MBAP header's length, unit id included.
	HeaderLen = 7
	// MaxPDU is the longest PDU: function code and data.
	MaxPDU = 253
	// MaxADU is the longest frame, header and PDU.
	MaxADU = HeaderLen - 1 + MaxPDU
	// MaxReadBits and MaxReadRegisters bound a read's quantity.
	MaxReadBits      = 2000
	MaxReadRegisters = 125
	// MaxWriteBits and MaxWriteRegisters bound a multiple write's quantity.
	MaxWriteBits      = 1968
	MaxWriteRegisters = 123
)

// ErrMalformed is wrapped by every error about a reply that is not a
// Modbus TCP frame answering the request: errors.Is(err, ErrMalformed).
var ErrMalformed = errors.New("malformed modbus reply")

// ErrShort says the bytes end before the frame does: read more.
var ErrShort = errors.New("modbus frame incomplete")

// Exception is a Modbus exception response: the device understood the
// request and refused it.
type Exception struct {
	Function byte
	Code     byte
}

var exceptionNames = map[byte]string{
	1:  "illegal function",
	2:  "illegal data address",
	3:  "illegal data value",
	4:  "server device failure",
	5:  "acknowledge",
	6:  "server device busy",
	8:  "memory parity error",
	10: "gateway path unavailable",
	11: "gateway target device failed to respond",
}

func (e *Exception) Error() string {
	name := exceptionNames[e.Code]
	if name == "" {
		name = "unknown exception"
	}
	return "modbus exception " + itoa(e.Code) + " (" + name + ") to function " + itoa(e.Function)
}

// TransactionMismatch is a reply whose transaction id is not the
// request's: a stale answer, or a device that does not echo ids.
type TransactionMismatch struct {
	Got, Want uint16
}

func (e *TransactionMismatch) Error() string {
	return "modbus reply has transaction id " + itoa(e.Got) + ", want " + itoa(e.Want)
}

// Request is one Modbus request PDU and what its reply must look like.
type Request struct {
	Function byte
	Address  uint16
	// Quantity is the number of bits or registers read or written.
	Quantity uint16
	// Data is what a write sends: the register bytes (big-endian, two per
	// register) or the packed bits (LSB first).
	Data []byte
}

// Read returns the request reading quantity bits or registers at address
// with function fc (1-4).
func Read(fc byte, address, quantity uint16) (Request, error) {
	limit := MaxReadRegisters
	switch fc {
	case ReadCoils, ReadDiscreteInputs:
		limit = MaxReadBits
	case ReadHoldingRegisters, ReadInputRegisters:
	default:
		return Request{}, errors.New("function " + itoa(fc) + " is not a read")
	}
	if quantity == 0 || int(quantity) > limit {
		return Request{}, errors.New("function " + itoa(fc) + " reads 1-" + itoa(limit) + " at a time, not " + itoa(quantity))
	}
	if int(address)+int(quantity) > 0x10000 {
		return Request{}, errors.New("address " + itoa(address) + " + " + itoa(quantity) + " runs past 65535")
	}
	return Request{Function: fc, Address: address, Quantity: quantity}, nil
}

// WriteRegisters returns the request writing regs (two bytes each) at
// address: function 6 for one register, 16 for more.
func WriteRegisters(address uint16, regs []byte) (Request, error) {
	n := len(regs) / 2
	switch {
	case len(regs)%2 != 0 || n == 0:
		return Request{}, errors.New(itoa(len(regs)) + " bytes are not whole registers")
	case n > MaxWriteRegisters:
		return Request{}, errors.New("function 16 writes at most " + itoa(MaxWriteRegisters) + " registers, not " + itoa(n))
	case int(address)+n > 0x10000:
		return Request{}, errors.New("address " + itoa(address) + " + " + itoa(n) + " runs past 65535")
	case n == 1:
		return Request{Function: WriteSingleRegister, Address: address, Quantity: 1, Data: regs}, nil
	}
	return Request{Function: WriteMultipleRegisters, Address: address, Quantity: uint16(n), Data: regs}, nil
}

// WriteCoils returns the request setting the coils at address to bits:
// function 5 for one, 15 for more.
func WriteCoils(address uint16, bits []bool) (Request, error) {
	n := len(bits)
	switch {
	case n == 0:
		return Request{}, errors.New("no coils to write")
	case n > MaxWriteBits:
		return Request{}, errors.New("function 15 writes at most " + itoa(MaxWriteBits) + " coils, not " + itoa(n))
	case int(address)+n > 0x10000:
		return Request{}, errors.New("address " + itoa(address) + " + " + itoa(n) + " runs past 65535")
	case n == 1:
		v := []byte{0, 0}
		if bits[0] {
			v[0] = 0xFF
		}
		return Request{Function: WriteSingleCoil, Address: address, Quantity: 1, Data: v}, nil
	}
	return Request{Function: WriteMultipleCoils, Address: address, Quantity: uint16(n), Data: PackBits(bits)}, nil
}

// PackBits packs bits LSB first, as coils travel.
func PackBits(bits []bool) []byte {
	out := make([]byte, (len(bits)+7)/8)
	for i, b := range bits {
		if b {
			out[i/8] |= 1 << (i % 8)
		}
	}
	return out
}

// UnpackBits returns the first n bits of packed, LSB first.
func UnpackBits(packed []byte, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = packed[i/8]&(1<<(i%8)) != 0
	}
	return out
}

// pdu appends r's PDU to dst.
func (r *Request) pdu(dst []byte) []byte {
	dst = append(dst, r.Function)
	dst = binary.BigEndian.AppendUint16(dst, r.Address)
	switch r.Function {
	case WriteSingleCoil, WriteSingleRegister:
		return append(dst, r.Data[:2]...)
	case WriteMultipleCoils, WriteMultipleRegisters:
		dst = binary.BigEndian.AppendUint16(dst, r.Quantity)
		dst = append(dst, byte(len(r.Data)))
		return append(dst, r.Data...)
	}
	return binary.BigEndian.AppendUint16(dst, r.Quantity)
}

// Append appends r as a Modbus TCP frame for unit with transaction id tx.
func (r *Request) Append(dst []byte, tx uint16, unit byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, tx)
	dst = append(dst, 0, 0, 0, 0, unit) // protocol 0, length below
	dst = r.pdu(dst)
	binary.BigEndian.PutUint16(dst[start+4:], uint16(len(dst)-start-6))
	return dst
}

// Frame is a decoded Modbus TCP frame.
type Frame struct {
	Transaction uint16
	Unit        byte
	// PDU is the function code and its data; it aliases the decoded bytes.
	PDU []byte
}

// Decode decodes the first frame in b and returns it with its length.
// It returns ErrShort when b holds only part of a frame (FrameLen says how
// much to read), and an error wrapping ErrMalformed when b cannot start
// a Modbus TCP frame.
func Decode(b []byte) (Frame, int, error) {
	n, err := FrameLen(b)
	if err != nil {
		return Frame{}, 0, err
	}
	if len(b) < n {
		return Frame{}, 0, ErrShort
	}
	return Frame{Transaction: binary.BigEndian.Uint16(b), Unit: b[6], PDU: b[HeaderLen:n]}, n, nil
}

// FrameLen returns the length of the frame b starts with, from its header;
// ErrShort if b is shorter than a header.
func FrameLen(b []byte) (int, error) {
	if len(b) < HeaderLen {
		return 0, ErrShort
	}
	if p := binary.BigEndian.Uint16(b[2:]); p != 0 {
		return 0, malformed("protocol id " + itoa(p) + ", want 0")
	}
	l := int(binary.BigEndian.Uint16(b[4:]))
	if l < 2 || l > MaxPDU+1 {
		return 0, malformed("length field " + itoa(l) + " outside 2-" + itoa(MaxPDU+1))
	}
	return 6 + l, nil
}

// Check checks that f answers r, sent with transaction id tx to unit, and
// returns the reply's data: the register bytes or packed bits of a read,
// nil for a write. An exception reply is an *Exception, a wrong id a
// *TransactionMismatch, anything else that does not fit wraps ErrMalformed.
func (r *Request) Check(f Frame, tx uint16, unit byte) ([]byte, error) {
	if f.Transaction != tx {
		return nil, &TransactionMismatch{Got: f.Transaction, Want: tx}
	}
	if f.Unit != unit {
		return nil, malformed("unit id " + itoa(f.Unit) + ", want " + itoa(unit))
	}
	p := f.PDU
	switch {
	case len(p) == 0:
		return nil, malformed("empty PDU")
	case p[0] == r.Function|0x80:
		if len(p) != 2 {
			return nil, malformed("exception reply of " + itoa(len(p)) + " bytes, want 2")
		}
		return nil, &Exception{Function: r.Function, Code: p[1]}
	case p[0] != r.Function:
		return nil, malformed("function " + itoa(p[0]) + " answers function " + itoa(r.Function))
	}
	switch r.Function {
	case ReadCoils, ReadDiscreteInputs, ReadHoldingRegisters, ReadInputRegisters:
		want := int(r.Quantity) * 2
		if r.Function <= ReadDiscreteInputs {
			want = (int(r.Quantity) + 7) / 8
		}
		if len(p) < 2 {
			return nil, malformed("function " + itoa(r.Function) + " reply has no byte count")
		}
		if int(p[1]) != want || len(p) != 2+want {
			return nil, malformed("function " + itoa(r.Function) + " reply has byte count " + itoa(p[1]) + " and " + itoa(len(p)-2) +
				" data bytes, want " + itoa(want) + " for " + itoa(r.Quantity) + " items")
		}
		return p[2:], nil
	}
	// A write's reply echoes the address and the value or quantity.
	echo := r.pdu(nil)[:5]
	if len(p) != 5 || string(p) != string(echo) {
		return nil, malformed("function " + itoa(r.Function) + " reply " + hexBytes(p) + " does not echo " + hexBytes(echo))
	}
	return nil, nil
}

// Errors are built with strconv rather than fmt, which would add a few
// hundred KB to every mapper that links this package.

// malformedError is an error about a reply that wraps ErrMalformed.
type malformedError struct{ what string }

func (e *malformedError) Error() string { return ErrMalformed.Error() + ": " + e.what }
func (e *malformedError) Unwrap() error { return ErrMalformed }

func malformed(what string) error { return &malformedError{what} }

// itoa is n in decimal.
func itoa[T byte | uint16 | int](n T) string { return strconv.Itoa(int(n)) }

// hexBytes is b as fmt's "% x" writes it: hex bytes, space separated.
func hexBytes(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 3*len(b))
	for i, c := range b {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, digits[c>>4], digits[c&0xF])
	}
	return string(out)
}
