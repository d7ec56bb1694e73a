package main

// The scanner's strings: JSON's escapes, and encoding/json's replacement
// of invalid UTF-8 and lone surrogates with U+FFFD.

import "unicode/utf8"

// stringBytes consumes a JSON string at d.pos and returns its bytes
// unescaped: a view of data when it has no escapes and is valid UTF-8,
// else buf filled. Invalid UTF-8 and lone surrogates become U+FFFD, as
// in encoding/json.
func (d *decoder) stringBytes(buf []byte) []byte {
	d.escaped = false
	start := d.pos + 1 // after the opening quote
	pos, data := start, d.data
	for pos < len(data) && plain[data[pos]] {
		pos++
	}
	if pos < len(data) && data[pos] == '"' {
		d.pos = pos + 1
		return data[start:pos]
	}
	d.pos = pos
	return d.stringSlow(buf, start)
}

// plain is true for the bytes a string has as they are: not a quote, a
// backslash, a control character, or part of a multi-byte character.
var plain = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// stringSlow goes on from stringBytes at a byte that is not plain: a
// multi-byte character, or what needs unescaping or replacing (into buf,
// which is kept as keyBuf for the next use).
func (d *decoder) stringSlow(buf []byte, start int) []byte {
	// Valid UTF-8 needs no copy.
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if plain[c] {
			d.pos++
			continue
		}
		if c == '"' {
			d.pos++
			return d.data[start : d.pos-1]
		}
		if c < utf8.RuneSelf {
			break
		}
		r, size := utf8.DecodeRune(d.data[d.pos:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		d.pos += size
	}
	d.escaped = true
	b := append(buf, d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			d.keyBuf = b[:0]
			return b
		case c < ' ':
			d.syntaxError("a character in a string (control characters must be escaped)")
			return nil
		case c == '\\':
			b = d.escape(b)
			if d.err != nil {
				return nil
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.data[d.pos:])
			b = utf8.AppendRune(b, r) // RuneError for invalid UTF-8
			d.pos += size
		}
	}
	d.syntaxError("the end of a string")
	return nil
}

// escape decodes the escape sequence at d.pos into b.
func (d *decoder) escape(b []byte) []byte {
	d.pos++
	if d.pos >= len(d.data) {
		d.syntaxError("an escape sequence")
		return b
	}
	c := d.data[d.pos]
	switch c {
	case '"', '\\', '/':
		d.pos++
		return append(b, c)
	case 'b':
		d.pos++
		return append(b, '\b')
	case 'f':
		d.pos++
		return append(b, '\f')
	case 'n':
		d.pos++
		return append(b, '\n')
	case 'r':
		d.pos++
		return append(b, '\r')
	case 't':
		d.pos++
		return append(b, '\t')
	case 'u':
		d.pos++
		r := d.hex4()
		if r < 0 {
			return b
		}
		if 0xD800 <= r && r < 0xE000 {
			// A surrogate: valid only as a high one followed by an
			// escaped low one; otherwise U+FFFD, and what follows is
			// read on its own.
			if r < 0xDC00 && len(d.data)-d.pos >= 6 && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
				save := d.pos
				d.pos += 2
				if r2 := d.hex4(); 0xDC00 <= r2 && r2 < 0xE000 {
					return utf8.AppendRune(b, 0x10000+(r-0xD800)<<10+(r2-0xDC00))
				}
				d.pos = save
				if d.err != nil {
					return b
				}
			}
			r = utf8.RuneError
		}
		return utf8.AppendRune(b, r)
	}
	d.syntaxError("an escape sequence (one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)")
	return b
}

// hex4 reads the four hex digits of a \u escape, or fails.
func (d *decoder) hex4() rune {
	var r rune
	for range 4 {
		if d.pos >= len(d.data) {
			d.syntaxError("a hex digit in a \\u escape")
			return -1
		}
		c := d.data[d.pos]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			d.syntaxError("a hex digit in a \\u escape")
			return -1
		}
		r = r<<4 | rune(c)
		d.pos++
	}
	return r
}
