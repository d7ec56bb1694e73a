// Package jsonlite reads and writes JSON without reflection, for Go
// plugins that must stay small: encoding/json brings reflect and fmt, about
// a megabyte of wasm module and four times that in machine code on the
// host, into every plugin that imports it.
//
// A Decoder reads the way encoding/json decodes into the same Go types, so
// a hand-written decoder built on it gives json.Unmarshal's results: keys
// match a struct's field names exactly or, failing that, case
// insensitively; unknown keys are skipped; the last of repeated keys wins;
// null leaves a string, number or bool as it is and sets a map or slice to
// nil; generic values are map[string]any, []any, float64, string, bool and
// nil; invalid UTF-8 and lone surrogates become U+FFFD; and a syntax error
// anywhere, a value of the wrong kind, or a number out of its type's range
// fails the whole input with an *Error naming the place and the value.
// The Append functions write as json.Marshal writes.
package jsonlite

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is encoding/json's bound on nesting.
const maxDepth = 10000

// A Decoder reads one JSON document. Its methods read the next value;
// after the first error they read nothing and Finish returns it.
type Decoder struct {
	data  []byte
	pos   int
	depth int
	path  []step
	err   error
}

// step is one level of the path to the value being read: an object's key
// or an array's index (key "" and index ≥ 0).
type step struct {
	key   string
	index int
}

// NewDecoder returns a decoder of data.
func NewDecoder(data []byte) *Decoder { return &Decoder{data: data} }

// Error is a decoding error: where it happened and what was wrong.
type Error struct {
	// Path is where in the document, as devices[0].properties[1].name;
	// empty at the top.
	Path string
	// Offset is the byte offset in the input.
	Offset int
	// Msg says what was wrong.
	Msg string
}

func (e *Error) Error() string {
	s := "json"
	if e.Path != "" {
		s += " " + e.Path
	}
	return s + ": " + e.Msg + " (byte " + strconv.Itoa(e.Offset) + ")"
}

// Fail records an error at the current value, unless there is one: for
// decoders that find a value of the right kind but wrong.
func (d *Decoder) Fail(msg string) {
	if d.err != nil {
		return
	}
	var b strings.Builder
	for _, s := range d.path {
		if s.key == "" && s.index < 0 {
			continue // between an object's members
		}
		if s.key == "" {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	d.err = &Error{Path: b.String(), Offset: d.pos, Msg: msg}
	d.pos = len(d.data)
}

// Err returns the first error, if any.
func (d *Decoder) Err() error { return d.err }

// Finish checks that only white space follows the value read and returns
// the first error.
func (d *Decoder) Finish() error {
	d.space()
	if d.err == nil && d.pos < len(d.data) {
		d.syntax("after the top-level value")
	}
	return d.err
}

// syntax records a syntax error at the current byte.
func (d *Decoder) syntax(context string) {
	if d.pos >= len(d.data) {
		d.Fail("unexpected end of input")
		return
	}
	d.Fail("invalid character " + strconv.QuoteRune(rune(d.data[d.pos])) + " " + context)
}

// kindError records a value of the wrong kind, which is skipped first so
// that a syntax error after it is still the one reported.
func (d *Decoder) kindError(want string) {
	got := d.kind()
	start := d.pos
	d.Skip()
	if d.err != nil {
		return
	}
	d.pos = start
	d.Fail("want " + want + ", got " + got)
}

// kind names the kind of the next value.
func (d *Decoder) kind() string {
	switch d.peek() {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func (d *Decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end or after
// an error.
func (d *Decoder) peek() byte {
	d.space()
	if d.err != nil || d.pos >= len(d.data) {
		return 0
	}
	return d.data[d.pos]
}

// consume reads c if it is the next byte after white space.
func (d *Decoder) consume(c byte) bool {
	if d.peek() == c {
		d.pos++
		return true
	}
	return false
}

// literal reads true, false or null, whose first byte is next.
func (d *Decoder) literal(word string) {
	if len(d.data)-d.pos >= len(word) && string(d.data[d.pos:d.pos+len(word)]) == word {
		d.pos += len(word)
		return
	}
	for i := 0; i < len(word) && d.pos < len(d.data) && d.data[d.pos] == word[i]; i++ {
		d.pos++
	}
	d.syntax("in literal " + word)
}

// Null reads null if it is the next value.
func (d *Decoder) Null() bool {
	if d.peek() == 'n' {
		d.literal("null")
		return d.err == nil
	}
	return false
}

// enter opens an object or array, within encoding/json's depth.
func (d *Decoder) enter() bool {
	d.depth++
	if d.depth > maxDepth {
		d.Fail("nested too deeply")
		return false
	}
	d.pos++
	return true
}

// Object reads an object. fields are a struct's JSON names: each key is
// matched to one of them, exactly or else case insensitively, and field
// is called with that name and the decoder at the value, which it must
// read; the values of other keys are skipped. With fields nil, field is
// called with every key (a map). Object reports false, calling nothing,
// for null, an error or a value of another kind (an error).
func (d *Decoder) Object(fields []string, field func(name string)) bool {
	switch d.peek() {
	case '{':
	case 'n':
		d.literal("null")
		return false
	default:
		if d.err == nil {
			d.kindError("an object")
		}
		return false
	}
	if !d.enter() {
		return false
	}
	d.path = append(d.path, step{index: -1})
	top := len(d.path) - 1
	if !d.consume('}') {
		for d.err == nil {
			if d.peek() != '"' {
				d.syntax("looking for the beginning of an object key string")
				break
			}
			key := d.string()
			if !d.consume(':') {
				d.syntax("after object key")
				break
			}
			d.path[top].key = key
			if fields == nil {
				field(key)
			} else if name := match(key, fields); name != "" {
				field(name)
			} else {
				d.Skip()
			}
			d.path[top].key = ""
			if d.consume('}') {
				break
			}
			if !d.consume(',') {
				d.syntax("after object key:value pair")
			}
		}
	}
	d.path = d.path[:top]
	d.depth--
	return d.err == nil
}

// match returns the field name key matches, exactly or else by case
// folding, or "".
func match(key string, fields []string) string {
	for _, f := range fields {
		if key == f {
			return f
		}
	}
	for _, f := range fields {
		if strings.EqualFold(key, f) {
			return f
		}
	}
	return ""
}

// Array reads an array, calling elem with each index and the decoder at
// the element, which it must read. It reports false, calling nothing, for
// null, an error or a value of another kind (an error).
func (d *Decoder) Array(elem func(i int)) bool {
	switch d.peek() {
	case '[':
	case 'n':
		d.literal("null")
		return false
	default:
		if d.err == nil {
			d.kindError("an array")
		}
		return false
	}
	if !d.enter() {
		return false
	}
	d.path = append(d.path, step{})
	top := len(d.path) - 1
	if !d.consume(']') {
		for i := 0; d.err == nil; i++ {
			d.path[top].index = i
			elem(i)
			if d.consume(']') {
				break
			}
			if !d.consume(',') {
				d.syntax("after array element")
			}
		}
	}
	d.path = d.path[:top]
	d.depth--
	return d.err == nil
}

// String reads a string into *p; null leaves *p as it is.
func (d *Decoder) String(p *string) {
	switch d.peek() {
	case '"':
		*p = d.string()
	case 'n':
		d.literal("null")
	default:
		if d.err == nil {
			d.kindError("a string")
		}
	}
}

// Bool reads true or false into *p; null leaves *p as it is.
func (d *Decoder) Bool(p *bool) {
	switch d.peek() {
	case 't':
		d.literal("true")
		*p = d.err == nil
	case 'f':
		d.literal("false")
		*p = false
	case 'n':
		d.literal("null")
	default:
		if d.err == nil {
			d.kindError("a boolean")
		}
	}
}

// Int64 reads a number into *p: it must be a whole number written without
// a fraction or exponent, in int64's range. null leaves *p as it is.
func (d *Decoder) Int64(p *int64) {
	if !d.isNumber() {
		return
	}
	start := d.pos
	s := d.number()
	if d.err != nil {
		return
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		d.pos = start
		d.Fail("number " + s + " is not an int64")
		return
	}
	*p = n
}

// Float64 reads a number into *p; null leaves *p as it is.
func (d *Decoder) Float64(p *float64) {
	if !d.isNumber() {
		return
	}
	if f, ok := d.float(); ok {
		*p = f
	}
}

// isNumber reports whether a number is next, reading null and recording
// an error for any other kind.
func (d *Decoder) isNumber() bool {
	switch c := d.peek(); {
	case c == '-' || c >= '0' && c <= '9':
		return true
	case c == 'n':
		d.literal("null")
	case d.err == nil:
		d.kindError("a number")
	}
	return false
}

// float reads a number as a float64.
func (d *Decoder) float() (float64, bool) {
	start := d.pos
	s := d.number()
	if d.err != nil {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		d.pos = start
		d.Fail("number " + s + " is not a float64")
		return 0, false
	}
	return f, true
}

// Map reads an object of any keys into *m, adding to the map there (as
// encoding/json does); null sets *m to nil.
func (d *Decoder) Map(m *map[string]any) {
	if d.Null() {
		*m = nil
		return
	}
	if d.peek() == '{' && *m == nil {
		*m = map[string]any{}
	}
	d.Object(nil, func(key string) { (*m)[key] = d.Value() })
}

// Value reads any value as encoding/json decodes it into an any:
// map[string]any, []any, float64, string, bool or nil.
func (d *Decoder) Value() any {
	switch c := d.peek(); c {
	case '{':
		m := map[string]any{}
		d.Object(nil, func(key string) { m[key] = d.Value() })
		return m
	case '[':
		a := []any{}
		d.Array(func(int) { a = append(a, d.Value()) })
		return a
	case '"':
		return d.string()
	case 't', 'f':
		var b bool
		d.Bool(&b)
		return b
	case 'n':
		d.literal("null")
		return nil
	case 0:
		if d.err == nil {
			d.syntax("looking for beginning of value")
		}
		return nil
	default:
		if c != '-' && (c < '0' || c > '9') {
			d.syntax("looking for beginning of value")
			return nil
		}
		f, _ := d.float()
		return f
	}
}

// Raw reads any value and returns its bytes as they are in the input,
// for a type that decodes its own JSON (time.Time's UnmarshalJSON, say);
// nil after an error.
func (d *Decoder) Raw() []byte {
	d.space()
	start := d.pos
	d.Skip()
	if d.err != nil {
		return nil
	}
	return d.data[start:d.pos]
}

// Skip reads any value and drops it.
func (d *Decoder) Skip() {
	switch c := d.peek(); c {
	case '{':
		d.Object(nil, func(string) { d.Skip() })
	case '[':
		d.Array(func(int) { d.Skip() })
	case '"':
		d.skipString()
	case 't':
		d.literal("true")
	case 'f':
		d.literal("false")
	case 'n':
		d.literal("null")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			d.number()
		} else if d.err == nil {
			d.syntax("looking for beginning of value")
		}
	}
}

// number reads a number's text, checking its grammar; its first byte is
// '-' or a digit.
func (d *Decoder) number() string {
	start := d.pos
	if d.data[d.pos] == '-' {
		d.pos++
	}
	switch {
	case d.pos < len(d.data) && d.data[d.pos] == '0':
		d.pos++
	case d.digits() == 0:
		d.syntax("in numeric literal")
		return ""
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if d.digits() == 0 {
			d.syntax("after decimal point in numeric literal")
			return ""
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if d.digits() == 0 {
			d.syntax("in exponent of numeric literal")
			return ""
		}
	}
	return string(d.data[start:d.pos])
}

func (d *Decoder) digits() int {
	n := 0
	for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
		d.pos++
		n++
	}
	return n
}

// skipString reads a string without keeping it.
func (d *Decoder) skipString() { d.string() }

// string reads a string, whose quote is next, unescaped; invalid UTF-8
// and lone surrogates become U+FFFD, as encoding/json decodes them.
func (d *Decoder) string() string {
	d.pos++
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if c == '"' {
			s := string(d.data[start:d.pos])
			d.pos++
			if !utf8.ValidString(s) {
				s = string([]rune(s))
			}
			return s
		}
		if c == '\\' || c < ' ' {
			break
		}
		d.pos++
	}
	// The slow path, for escapes.
	b := append([]byte(nil), d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			if !utf8.Valid(b) {
				return string([]rune(string(b)))
			}
			return string(b)
		case c < ' ':
			d.syntax("in string literal")
			return ""
		case c == '\\':
			d.pos++
			if d.pos >= len(d.data) {
				d.syntax("in string escape code")
				return ""
			}
			e := d.data[d.pos]
			d.pos++
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
					return ""
				}
				if utf16.IsSurrogate(r) {
					r = d.lowSurrogate(r)
				}
				b = utf8.AppendRune(b, r)
			default:
				d.pos--
				d.syntax("in string escape code")
				return ""
			}
		default:
			b = append(b, c)
			d.pos++
		}
	}
	d.syntax("in string literal")
	return ""
}

// lowSurrogate reads the \u escape of the second half of a surrogate pair
// whose first half is r, returning the rune they make; a lone half is
// U+FFFD and what follows it is left.
func (d *Decoder) lowSurrogate(r rune) rune {
	save := d.pos
	if len(d.data)-d.pos >= 6 && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
		d.pos += 2
		if r2, ok := d.hex4(); ok {
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				return dec
			}
		}
		if d.err != nil {
			return utf8.RuneError
		}
	}
	d.pos = save
	return utf8.RuneError
}

// hex4 reads the four hex digits of a \u escape.
func (d *Decoder) hex4() (rune, bool) {
	var r rune
	for i := 0; i < 4; i++ {
		if d.pos >= len(d.data) {
			d.syntax("in \\u hexadecimal character escape")
			return 0, false
		}
		c := d.data[d.pos]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			d.syntax("in \\u hexadecimal character escape")
			return 0, false
		}
		r = r<<4 | rune(c)
		d.pos++
	}
	return r, true
}
