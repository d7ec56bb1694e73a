package main

// The decoder's scanner: JSON's syntax, in one pass, with the error of the
// first thing that is wrong (json.go has the rules).

import (
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// maxDepth is encoding/json's limit on nesting.
const maxDepth = 10000

// decoder reads one JSON document. The decoders of decode.go are its
// methods, one per type; each returns early once err is set, which leaves
// the document undecodable as a whole.
type decoder struct {
	data  []byte
	pos   int
	depth int
	err   *decodeError
	// key is the member key just read: a view of data (keyView), or of
	// keyBuf when it had escapes. Valid until the next string.
	key     []byte
	keyView bool
	keyBuf  []byte
	// escaped tells whether the last string read needed unescaping, so is
	// not a view of data.
	escaped bool
	// share lets strings share data's bytes instead of copying them,
	// for data that is the decoder's caller's own and never changes.
	share bool
	// path holds, per depth, the key (its offset in data) or array index
	// being decoded, for error messages.
	path [16]pathStep
}

// pathStep is where a decoder is in one level of the document: the raw
// key data[keyStart:keyEnd] of an object's member, or element index of
// an array (keyStart < 0).
type pathStep struct {
	keyStart, keyEnd, index int
}

// decodeError is a document that does not decode: a syntax error, or a
// value that does not fit the field it is for.
type decodeError struct {
	msg    string
	path   string // where in the document, e.g. twin.temp.actual.value
	offset int
}

func (e *decodeError) Error() string {
	s := "json: "
	if e.path != "" {
		s += e.path + ": "
	}
	return s + e.msg + " (at byte " + strconv.Itoa(e.offset) + ")"
}

// fail records the first error; the decoders stop at it.
func (d *decoder) fail(msg string) {
	if d.err != nil {
		return
	}
	d.err = &decodeError{msg: msg, path: d.where(), offset: d.pos}
}

// where renders the path to the value being decoded.
func (d *decoder) where() string {
	var b []byte
	for i := 1; i <= d.depth && i < len(d.path); i++ {
		s := d.path[i]
		if s.keyStart < 0 {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(s.index), 10)
			b = append(b, ']')
			continue
		}
		if s.keyEnd < s.keyStart {
			break // the object's first key is not read yet
		}
		if len(b) > 0 {
			b = append(b, '.')
		}
		key := d.data[s.keyStart:s.keyEnd]
		if len(key) > 64 {
			b = append(append(b, key[:64]...), "..."...)
		} else {
			b = append(b, key...)
		}
	}
	return string(b)
}

// syntaxError records an unexpected byte (or the end of the document)
// where what was expected.
func (d *decoder) syntaxError(what string) {
	if d.pos >= len(d.data) {
		d.fail("unexpected end of the document, looking for " + what)
		return
	}
	d.fail("invalid character " + quoteChar(d.data[d.pos]) + " looking for " + what)
}

// typeError records the value ahead as the wrong kind for a Go field that
// wants want (or, if it is no value at all, as a syntax error).
func (d *decoder) typeError(want string) {
	var got string
	switch c := d.peek(); c {
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		got = "a number"
	case '"':
		got = "a string"
	case '{':
		got = "an object"
	case '[':
		got = "an array"
	case 't', 'f':
		got = "a boolean"
	case 'n':
		got = "null"
	default:
		d.syntaxError("a value")
		return
	}
	d.fail("want " + want + ", got " + got)
}

// quoteChar shows a byte of the document in an error.
func quoteChar(c byte) string {
	if ' ' <= c && c < utf8.RuneSelf {
		return "'" + string(rune(c)) + "'"
	}
	return "byte 0x" + string([]byte{hexDigits[c>>4], hexDigits[c&0xF]})
}

// finish checks that only white space follows the document and returns
// the decoding's error.
func (d *decoder) finish() error {
	if d.err == nil {
		d.space()
		if d.pos < len(d.data) {
			d.syntaxError("the end of the document")
		}
	}
	if d.err != nil {
		return d.err
	}
	return nil
}

// space skips white space.
func (d *decoder) space() {
	pos, data := d.pos, d.data
	for pos < len(data) && data[pos] <= ' ' && (data[pos] == ' ' || data[pos] == '\t' || data[pos] == '\n' || data[pos] == '\r') {
		pos++
	}
	d.pos = pos
}

// peek skips white space and returns the next byte, 0 at the end.
func (d *decoder) peek() byte {
	if d.pos < len(d.data) && d.data[d.pos] > ' ' {
		return d.data[d.pos] // no white space, as in most documents
	}
	d.space()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// null consumes a null and reports whether there was one.
func (d *decoder) null() bool {
	if d.peek() != 'n' {
		return false
	}
	d.literal("null")
	return d.err == nil
}

// literal consumes the literal lit (true, false or null).
func (d *decoder) literal(lit string) {
	if len(d.data)-d.pos >= len(lit) && string(d.data[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return
	}
	for i := 0; i < len(lit); i++ {
		if d.pos >= len(d.data) || d.data[d.pos] != lit[i] {
			d.syntaxError("the literal " + lit)
			return
		}
		d.pos++
	}
}

// object starts decoding an object into a Go value of kind want: true
// when the value is an object, whose members more then reads. false for
// null (the caller decides what null does) and for any other value,
// which is an error.
func (d *decoder) object(want string) bool {
	switch d.peek() {
	case '{':
		d.pos++
		d.push(pathStep{keyStart: 0, keyEnd: -1})
		return d.err == nil
	case 'n':
		d.null()
	default:
		d.typeError(want)
	}
	return false
}

// push enters an object or an array.
func (d *decoder) push(s pathStep) {
	d.depth++
	if d.depth > maxDepth {
		d.pos--
		d.fail("exceeded the maximum nesting depth of 10000")
		return
	}
	if d.depth < len(d.path) {
		d.path[d.depth] = s
	}
}

// more reads the next member of the object object started: its key into
// d.key, and the colon after it. n is how many members were read. It
// reports false at the end of the object, which it consumes, or on error.
func (d *decoder) more(n int) bool {
	if d.err != nil {
		return false
	}
	c := d.peek()
	switch {
	case c == '}':
		d.pos++
		d.depth--
		return false
	case n > 0 && c == ',':
		d.pos++
		c = d.peek()
	case n > 0:
		d.syntaxError("a comma or } after an object's member")
		return false
	}
	if c != '"' {
		d.syntaxError("an object's key in double quotes")
		return false
	}
	start := d.pos + 1
	d.key = d.stringBytes(d.keyBuf[:0])
	d.keyView = !d.escaped
	if d.err != nil {
		return false
	}
	if d.depth < len(d.path) {
		d.path[d.depth] = pathStep{keyStart: start, keyEnd: d.pos - 1}
	}
	if d.peek() != ':' {
		d.syntaxError("a colon after an object's key")
		return false
	}
	d.pos++
	return true
}

// array starts decoding an array into a Go value of kind want, as object
// does for objects; elem then reads its elements.
func (d *decoder) array(want string) bool {
	switch d.peek() {
	case '[':
		d.pos++
		d.push(pathStep{keyStart: -1})
		return d.err == nil
	case 'n':
		d.null()
	default:
		d.typeError(want)
	}
	return false
}

// elem reports whether the array array started has an element n (the
// number read so far), consuming the comma before it, or consumes the end
// of the array.
func (d *decoder) elem(n int) bool {
	if d.err != nil {
		return false
	}
	switch c := d.peek(); {
	case c == ']':
		d.pos++
		d.depth--
		return false
	case n > 0 && c == ',':
		d.pos++
	case n > 0:
		d.syntaxError("a comma or ] after an array's element")
		return false
	}
	if d.depth < len(d.path) {
		d.path[d.depth] = pathStep{keyStart: -1, index: n}
	}
	if n > 0 && d.peek() == ']' {
		d.syntaxError("a value after a comma in an array")
		return false
	}
	return true
}

// foldEqual reports whether key matches the field name (lower case
// ASCII) as encoding/json folds case: ASCII letters in either case, and
// ſ (U+017F) for s and the Kelvin sign (U+212A) for k.
func foldEqual(key []byte, name string) bool {
	i := 0
	for j := 0; j < len(name); j++ {
		c := name[j]
		if i >= len(key) {
			return false
		}
		switch b := key[i]; {
		case b == c || 'A' <= b && b <= 'Z' && b+'a'-'A' == c:
			i++
		case b == 0xC5 && i+1 < len(key) && key[i+1] == 0xBF && c == 's':
			i += 2
		case b == 0xE2 && i+2 < len(key) && key[i+1] == 0x84 && key[i+2] == 0xAA && c == 'k':
			i += 3
		default:
			return false
		}
	}
	return i == len(key)
}

// text returns b, a string just read, as a string of its own, or, for a
// decoder that shares its data and a string read as is, a view of data.
func (d *decoder) text(b []byte) string {
	if d.share && !d.escaped && len(b) > 0 {
		return unsafe.String(&b[0], len(b))
	}
	return string(b)
}

// keyString returns the key just read as a string, as text does.
func (d *decoder) keyString() string {
	if d.share && d.keyView && len(d.key) > 0 {
		return unsafe.String(&d.key[0], len(d.key))
	}
	return string(d.key)
}

// str decodes a string into *p; null leaves it as it is.
func (d *decoder) str(p *string) {
	switch d.peek() {
	case '"':
		b := d.stringBytes(d.keyBuf[:0])
		if d.err == nil {
			*p = d.text(b)
		}
	case 'n':
		d.null()
	default:
		d.typeError("a string")
	}
}

// strPtr decodes a string into **pp, allocating it if needed; null sets
// *pp to nil.
func (d *decoder) strPtr(pp **string) {
	switch d.peek() {
	case '"':
		b := d.stringBytes(d.keyBuf[:0])
		if d.err != nil {
			return
		}
		if *pp == nil {
			*pp = new(string)
		}
		**pp = d.text(b)
	case 'n':
		if d.null() {
			*pp = nil
		}
	default:
		d.typeError("a string")
	}
}

// boolPtr decodes true or false into **pp, allocating it if needed; null
// sets *pp to nil.
func (d *decoder) boolPtr(pp **bool) {
	var v bool
	switch d.peek() {
	case 't':
		d.literal("true")
		v = true
	case 'f':
		d.literal("false")
	case 'n':
		if d.null() {
			*pp = nil
		}
		return
	default:
		d.typeError("true or false")
		return
	}
	if d.err != nil {
		return
	}
	if *pp == nil {
		*pp = new(bool)
	}
	**pp = v
}

// int64 decodes an integer into *p; null leaves it as it is. A number
// with a fraction or an exponent, or out of int64's range, is an error,
// as is a number in a string.
func (d *decoder) int64(p *int64) {
	c := d.peek()
	switch {
	case c == '-' || '0' <= c && c <= '9':
	case c == 'n':
		d.null()
		return
	default:
		d.typeError("an integer")
		return
	}
	start := d.pos
	integer := d.number()
	if d.err != nil {
		return
	}
	num := d.data[start:d.pos]
	if !integer {
		d.pos = start
		d.fail("want an integer, got " + truncate(string(num)))
		return
	}
	digits := num
	if num[0] == '-' {
		digits = num[1:]
	}
	var u uint64
	for _, c := range digits {
		u = u*10 + uint64(c-'0') // 19 digits fit in a uint64
	}
	if len(digits) > 19 || num[0] == '-' && u > 1<<63 || num[0] != '-' && u > 1<<63-1 {
		d.pos = start
		d.fail("the integer " + truncate(string(num)) + " is out of range")
		return
	}
	if num[0] == '-' {
		*p = -int64(u)
	} else {
		*p = int64(u)
	}
}

// number consumes a JSON number and reports whether it is an integer (no
// fraction, no exponent).
func (d *decoder) number() (integer bool) {
	integer = true
	if d.pos < len(d.data) && d.data[d.pos] == '-' {
		d.pos++
	}
	switch {
	case d.pos < len(d.data) && d.data[d.pos] == '0':
		d.pos++
	case d.pos < len(d.data) && '1' <= d.data[d.pos] && d.data[d.pos] <= '9':
		d.digits()
	default:
		d.syntaxError("a digit in a number")
		return false
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		integer = false
		d.pos++
		if !d.digit() {
			d.syntaxError("a digit after a decimal point")
			return false
		}
		d.digits()
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		integer = false
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if !d.digit() {
			d.syntaxError("a digit in an exponent")
			return false
		}
		d.digits()
	}
	return integer
}

func (d *decoder) digit() bool {
	return d.pos < len(d.data) && '0' <= d.data[d.pos] && d.data[d.pos] <= '9'
}

func (d *decoder) digits() {
	for d.digit() {
		d.pos++
	}
}

// skip consumes any JSON value, checking its syntax, for a member the
// document type does not have.
func (d *decoder) skip() {
	switch c := d.peek(); {
	case c == '{':
		d.pos++
		d.push(pathStep{keyStart: 0, keyEnd: -1})
		for n := 0; d.more(n); n++ {
			d.skip()
		}
	case c == '[':
		d.pos++
		d.push(pathStep{keyStart: -1})
		for n := 0; d.elem(n); n++ {
			d.skip()
		}
	case c == '"':
		d.stringBytes(d.keyBuf[:0])
	case c == '-' || '0' <= c && c <= '9':
		d.number()
	case c == 't':
		d.literal("true")
	case c == 'f':
		d.literal("false")
	case c == 'n':
		d.literal("null")
	default:
		d.syntaxError("a value")
	}
}
