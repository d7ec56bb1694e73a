package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/edgehost/edgehost/plugins/modbus/mbap"
)

// swap applies the point's byte swap (within each register) and word swap
// (the registers' order reversed) to regs in place. Each is its own
// inverse and they commute, so the same call decodes and encodes.
func (p *point) swap(regs []byte) {
	if p.byteSwap {
		for i := 0; i+1 < len(regs); i += 2 {
			regs[i], regs[i+1] = regs[i+1], regs[i]
		}
	}
	if p.wordSwap {
		for i, j := 0, len(regs)-2; i < j; i, j = i+2, j-2 {
			regs[i], regs[i+1], regs[j], regs[j+1] = regs[j], regs[j+1], regs[i], regs[i+1]
		}
	}
}

// decode turns what a read returned (register bytes or packed bits) into
// the property's value, as text in its twin type.
func (p *point) decode(data []byte) (string, error) {
	if p.bits() {
		bits := mbap.UnpackBits(data, int(p.count))
		var n uint64
		for i, b := range bits {
			if b {
				n |= 1 << i
			}
		}
		if p.dataType == "boolean" && p.twinType != "int" && p.twinType != "float" {
			return strconv.FormatBool(n != 0), nil
		}
		return p.number(float64(n), 0)
	}
	regs := bytes.Clone(data)
	p.swap(regs)
	switch p.dataType {
	case "string":
		return strings.TrimRight(string(regs), "\x00 "), nil
	case "boolean":
		if p.twinType == "boolean" || p.twinType == "string" {
			return strconv.FormatBool(binary.BigEndian.Uint16(regs) != 0), nil
		}
		return p.number(float64(binary.BigEndian.Uint16(regs)), 0)
	case "int16":
		return p.integer(int64(int16(binary.BigEndian.Uint16(regs))))
	case "uint16":
		return p.integer(int64(binary.BigEndian.Uint16(regs)))
	case "int32":
		return p.integer(int64(int32(binary.BigEndian.Uint32(regs))))
	case "uint32":
		return p.integer(int64(binary.BigEndian.Uint32(regs)))
	case "int64":
		return p.integer(int64(binary.BigEndian.Uint64(regs)))
	case "uint64":
		u := binary.BigEndian.Uint64(regs)
		if p.scale == 1 && (p.twinType == "int" || p.twinType == "string") {
			return strconv.FormatUint(u, 10), nil
		}
		return p.number(float64(u), 0)
	case "float32":
		return p.number(float64(math.Float32frombits(binary.BigEndian.Uint32(regs))), 32)
	case "float64":
		return p.number(math.Float64frombits(binary.BigEndian.Uint64(regs)), 64)
	}
	return "", errors.New("dataType " + strconv.Quote(p.dataType) + " cannot be decoded")
}

// integer formats a whole raw value, exactly when no scale applies.
func (p *point) integer(n int64) (string, error) {
	if p.scale == 1 && (p.twinType == "int" || p.twinType == "string") {
		return strconv.FormatInt(n, 10), nil
	}
	return p.number(float64(n), 0)
}

// number scales the raw value x and formats it in the twin type, never
// with an exponent (the twin refuses '+'). bits is the precision of a
// float read as is (32 or 64), 0 for a whole number.
func (p *point) number(x float64, bits int) (string, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "", errors.New("the device holds " + strconv.FormatFloat(x, 'g', -1, 64) + ", which the twin cannot take")
	}
	if p.scale != 1 {
		x *= p.scale
		// 0.1 × 215 is 21.500000000000004: twelve significant digits
		// are more than a register holds and drop the noise.
		x, _ = strconv.ParseFloat(strconv.FormatFloat(x, 'g', 12, 64), 64)
		bits = 64
	}
	switch p.twinType {
	case "int":
		return strconv.FormatInt(int64(math.Round(x)), 10), nil
	case "boolean":
		return strconv.FormatBool(x != 0), nil
	}
	if bits == 0 {
		bits = 64
	}
	return strconv.FormatFloat(x, 'f', -1, bits), nil
}

// encode turns a value to write, text in the twin type, into the
// register bytes or the bits for the device.
func (p *point) encode(value string) (regs []byte, bits []bool, err error) {
	value = strings.TrimSpace(value)
	if p.bits() {
		if p.count == 1 {
			b, err := parseBool(value)
			return nil, []bool{b}, err
		}
		n, err := strconv.ParseUint(value, 10, 64)
		if err != nil || (p.count < 64 && n >= 1<<p.count) {
			return nil, nil, errors.New(strconv.Quote(value) + " is not a whole number of " + strconv.Itoa(int(p.count)) + " bits")
		}
		bits = make([]bool, p.count)
		for i := range bits {
			bits[i] = n&(1<<i) != 0
		}
		return nil, bits, nil
	}
	regs = make([]byte, 2*int(p.count))
	switch p.dataType {
	case "string":
		if len(value) > len(regs) {
			return nil, nil, errors.New(strconv.Quote(value) + " is longer than " + strconv.Itoa(int(p.count)) + " registers hold")
		}
		copy(regs, value)
	case "boolean":
		b, err := parseBool(value)
		if err != nil {
			return nil, nil, err
		}
		if b {
			regs[1] = 1
		}
	case "float32":
		f, err := p.unscaled(value)
		if err != nil {
			return nil, nil, err
		}
		if math.Abs(f) > math.MaxFloat32 {
			return nil, nil, errors.New(strconv.Quote(value) + " does not fit a float32")
		}
		binary.BigEndian.PutUint32(regs, math.Float32bits(float32(f)))
	case "float64":
		f, err := p.unscaled(value)
		if err != nil {
			return nil, nil, err
		}
		binary.BigEndian.PutUint64(regs, math.Float64bits(f))
	default:
		if err := p.putInteger(regs, value); err != nil {
			return nil, nil, err
		}
	}
	p.swap(regs)
	return regs, nil, nil
}

// intRanges are the integer data types' bounds.
var intRanges = map[string][2]float64{
	"int16": {math.MinInt16, math.MaxInt16}, "uint16": {0, math.MaxUint16},
	"int32": {math.MinInt32, math.MaxInt32}, "uint32": {0, math.MaxUint32},
	"int64": {math.MinInt64, math.MaxInt64}, "uint64": {0, math.MaxUint64},
}

// putInteger writes value, unscaled and rounded, as the point's integer
// type.
func (p *point) putInteger(regs []byte, value string) error {
	r := intRanges[p.dataType]
	lo, hi := r[0], r[1]
	var u uint64
	if n, err := strconv.ParseInt(value, 10, 64); err == nil && p.scale == 1 {
		if float64(n) < lo || float64(n) > hi {
			return errors.New(value + " does not fit " + p.dataType)
		}
		u = uint64(n)
	} else {
		f, err := p.unscaled(value)
		if err != nil {
			return err
		}
		f = math.Round(f)
		if f < lo || f > hi {
			return errors.New(value + " (raw " + strconv.FormatFloat(f, 'g', -1, 64) + ") does not fit " + p.dataType)
		}
		if f < 0 {
			u = uint64(int64(f))
		} else {
			u = uint64(f)
		}
	}
	switch len(regs) {
	case 2:
		binary.BigEndian.PutUint16(regs, uint16(u))
	case 4:
		binary.BigEndian.PutUint32(regs, uint32(u))
	default:
		binary.BigEndian.PutUint64(regs, u)
	}
	return nil
}

// unscaled is value as a number divided by the scale: the raw value.
func (p *point) unscaled(value string) (float64, error) {
	f, err := strconv.ParseFloat(value, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New(strconv.Quote(value) + " is not a number")
	}
	return f / p.scale, nil
}

// parseBool reads a boolean as the twin may hold it.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errors.New(strconv.Quote(s) + " is not a boolean (true, false, 1, 0, on, off)")
	}
	return b, nil
}
