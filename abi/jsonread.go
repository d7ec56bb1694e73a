package abi

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonReader reads the few JSON shapes the abi package decodes by hand
// (failure.go says why it is not encoding/json). Each method skips the
// white space before its token and reports false for anything that is
// not valid JSON.
type jsonReader struct {
	data []byte
	pos  int
}

// maxJSONDepth bounds the nesting of skipped values.
const maxJSONDepth = 512

func (d *jsonReader) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// consume reads c if it is the next token.
func (d *jsonReader) consume(c byte) bool {
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (d *jsonReader) end() error {
	d.skipSpace()
	if d.pos != len(d.data) {
		return errFailureJSON
	}
	return nil
}

// literal reads word (true, false, null) if it is the next token.
func (d *jsonReader) literal(word string) bool {
	d.skipSpace()
	if len(d.data)-d.pos >= len(word) && string(d.data[d.pos:d.pos+len(word)]) == word {
		d.pos += len(word)
		return true
	}
	return false
}

func (d *jsonReader) null() bool { return d.literal("null") }

// string reads a string, unescaped; invalid UTF-8 and lone surrogates
// become U+FFFD, as encoding/json decodes them.
func (d *jsonReader) string() (string, bool) {
	if !d.consume('"') {
		return "", false
	}
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if c == '"' {
			s := string(d.data[start:d.pos])
			d.pos++
			if !utf8.ValidString(s) {
				s = string([]rune(s))
			}
			return s, true
		}
		if c == '\\' || c < ' ' {
			break
		}
		d.pos++
	}
	// The slow path, for escapes.
	var b []byte
	b = append(b, d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(b), true
		case c < ' ':
			return "", false
		case c == '\\':
			if d.pos+1 >= len(d.data) {
				return "", false
			}
			e := d.data[d.pos+1]
			d.pos += 2
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", false
				}
				if utf16.IsSurrogate(r) {
					save := d.pos
					if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
						d.pos += 2
						if r2, ok := d.hex4(); ok {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								b = utf8.AppendRune(b, dec)
								continue
							}
						}
					}
					d.pos = save
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
			default:
				return "", false
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.data[d.pos:])
			b = utf8.AppendRune(b, r)
			d.pos += size
		}
	}
	return "", false
}

func (d *jsonReader) hex4() (rune, bool) {
	if len(d.data)-d.pos < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.data[d.pos:d.pos+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	d.pos += 4
	return rune(n), true
}

// number reads a JSON number's text.
func (d *jsonReader) number() (string, bool) {
	d.skipSpace()
	start := d.pos
	digits := func() int {
		n := 0
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	if d.pos < len(d.data) && d.data[d.pos] == '-' {
		d.pos++
	}
	if d.pos < len(d.data) && d.data[d.pos] == '0' {
		d.pos++
	} else if digits() == 0 {
		return "", false
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if digits() == 0 {
			return "", false
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return "", false
		}
	}
	return string(d.data[start:d.pos]), true
}

// integer reads a number that is an integer in int32's range, written
// without fraction or exponent (encoding/json refuses 1e2 for an int).
func (d *jsonReader) integer() (int32, bool) {
	s, ok := d.number()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 32)
	return int32(n), err == nil
}

// skipValue reads any JSON value.
func (d *jsonReader) skipValue(depth int) bool {
	if depth > maxJSONDepth {
		return false
	}
	d.skipSpace()
	if d.pos >= len(d.data) {
		return false
	}
	switch d.data[d.pos] {
	case '"':
		_, ok := d.string()
		return ok
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.null()
	case '[':
		d.pos++
		if d.consume(']') {
			return true
		}
		for {
			if !d.skipValue(depth + 1) {
				return false
			}
			if d.consume(']') {
				return true
			}
			if !d.consume(',') {
				return false
			}
		}
	case '{':
		d.pos++
		if d.consume('}') {
			return true
		}
		for {
			if _, ok := d.string(); !ok || !d.consume(':') || !d.skipValue(depth+1) {
				return false
			}
			if d.consume('}') {
				return true
			}
			if !d.consume(',') {
				return false
			}
		}
	default:
		_, ok := d.number()
		return ok
	}
}
