package abi

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// FormatV1 is the first byte of every encoded envelope (SPEC.md, "Envelope").
const FormatV1 byte = 0x01

// FlagSync is bit 0 of the flags byte: Header.Sync.
const FlagSync byte = 0x01

// MaxStringLen is the longest id, version or route field the envelope holds.
const MaxStringLen = 0xFFFF

// MaxContentLen is the longest content the envelope holds (2 GiB - 1, so a
// length always fits a signed 32-bit integer on the wasm side).
const MaxContentLen = 0x7FFFFFFF

// fixedLen is the size of the envelope's fixed part: format, flags,
// timestamp, seven u16 string lengths and the u32 content length.
const fixedLen = 1 + 1 + 8 + 7*2 + 4

// The string fields in wire order.
var fieldNames = [7]string{"id", "parent_id", "resource_version", "source", "group", "operation", "resource"}

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed envelope")

// malformed is a decoding error: errors.Is(err, ErrMalformed) holds.
type malformed string

func (e malformed) Error() string        { return "malformed envelope: " + string(e) }
func (e malformed) Is(target error) bool { return target == ErrMalformed }

// The codec builds its messages with strconv rather than fmt so that every
// plugin linking it stays ~500 KB smaller (SPEC targets small guests).
func itoa(n int) string { return strconv.Itoa(n) }

func hexByte(b byte) string {
	const digits = "0123456789abcdef"
	return "0x" + string([]byte{digits[b>>4], digits[b&0xF]})
}

// EncodedLen returns the number of bytes Encode writes for m.
func (m *Message) EncodedLen() int {
	return fixedLen + len(m.Header.ID) + len(m.Header.ParentID) + len(m.Header.ResourceVersion) +
		len(m.Route.Source) + len(m.Route.Group) + len(m.Route.Operation) + len(m.Route.Resource) +
		len(m.Content)
}

// Validate reports the first field of m that does not fit the envelope.
func (m *Message) Validate() error {
	if len(m.Header.ID)|len(m.Header.ParentID)|len(m.Header.ResourceVersion)|len(m.Route.Source)|
		len(m.Route.Group)|len(m.Route.Operation)|len(m.Route.Resource) > MaxStringLen {
		for i, s := range [7]string{m.Header.ID, m.Header.ParentID, m.Header.ResourceVersion,
			m.Route.Source, m.Route.Group, m.Route.Operation, m.Route.Resource} {
			if len(s) > MaxStringLen {
				return errors.New("encode envelope: " + fieldNames[i] + " is " + itoa(len(s)) +
					" bytes, longer than " + itoa(MaxStringLen))
			}
		}
	}
	if len(m.Content) > MaxContentLen {
		return errors.New("encode envelope: content is " + itoa(len(m.Content)) + " bytes, longer than " + itoa(MaxContentLen))
	}
	return nil
}

// Append appends m's encoding to dst and returns the extended slice. It
// allocates only when dst lacks capacity.
func Append(dst []byte, m *Message) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return dst, err
	}
	n := len(dst)
	need := m.EncodedLen()
	if cap(dst)-n < need {
		grown := make([]byte, n, n+need)
		copy(grown, dst)
		dst = grown
	}
	writeTo(dst[n:n+need], m)
	return dst[:n+need], nil
}

// EncodeTo writes m's encoding into b and returns the number of bytes
// written. It fails, writing nothing, when b is shorter than m.EncodedLen().
func EncodeTo(b []byte, m *Message) (int, error) {
	if err := m.Validate(); err != nil {
		return 0, err
	}
	need := m.EncodedLen()
	if len(b) < need {
		return 0, errors.New("encode envelope: buffer holds " + itoa(len(b)) + " bytes, message needs " + itoa(need))
	}
	writeTo(b[:need], m)
	return need, nil
}

// writeTo writes a validated m into b, which is exactly m.EncodedLen() long.
func writeTo(b []byte, m *Message) {
	_ = b[fixedLen-1]
	b[0] = FormatV1
	b[1] = 0
	if m.Header.Sync {
		b[1] = FlagSync
	}
	binary.LittleEndian.PutUint64(b[2:10], uint64(m.Header.Timestamp))
	binary.LittleEndian.PutUint16(b[10:], uint16(len(m.Header.ID)))
	binary.LittleEndian.PutUint16(b[12:], uint16(len(m.Header.ParentID)))
	binary.LittleEndian.PutUint16(b[14:], uint16(len(m.Header.ResourceVersion)))
	binary.LittleEndian.PutUint16(b[16:], uint16(len(m.Route.Source)))
	binary.LittleEndian.PutUint16(b[18:], uint16(len(m.Route.Group)))
	binary.LittleEndian.PutUint16(b[20:], uint16(len(m.Route.Operation)))
	binary.LittleEndian.PutUint16(b[22:], uint16(len(m.Route.Resource)))
	binary.LittleEndian.PutUint32(b[24:28], uint32(len(m.Content)))
	off := fixedLen
	off += copy(b[off:], m.Header.ID)
	off += copy(b[off:], m.Header.ParentID)
	off += copy(b[off:], m.Header.ResourceVersion)
	off += copy(b[off:], m.Route.Source)
	off += copy(b[off:], m.Route.Group)
	off += copy(b[off:], m.Route.Operation)
	off += copy(b[off:], m.Route.Resource)
	copy(b[off:], m.Content)
}

// Decode decodes an envelope into m, copying: m shares no memory with b.
// It makes one allocation for all strings and the content together.
func Decode(b []byte, m *Message) error {
	if err := check(b); err != nil {
		return err
	}
	own := make([]byte, len(b)-fixedLen)
	copy(own, b[fixedLen:])
	fill(b, own, m)
	return nil
}

// DecodeAlias decodes an envelope into m without copying: m's strings and
// content point into b, so b must not change while m is in use. It does not
// allocate.
func DecodeAlias(b []byte, m *Message) error {
	if err := check(b); err != nil {
		return err
	}
	fill(b, b[fixedLen:], m)
	return nil
}

// check validates the whole envelope so fill cannot fail.
func check(b []byte) error {
	if len(b) < fixedLen {
		return malformed(itoa(len(b)) + " bytes, shorter than the " + itoa(fixedLen) + "-byte fixed part")
	}
	if b[0] != FormatV1 {
		return malformed("format byte is " + hexByte(b[0]) + ", want " + hexByte(FormatV1))
	}
	if b[1]&^FlagSync != 0 {
		return malformed("unknown flag bits " + hexByte(b[1]&^FlagSync))
	}
	content := binary.LittleEndian.Uint32(b[24:28])
	if content > MaxContentLen {
		return malformed("content length " + itoa(int(content)) + " is over " + itoa(MaxContentLen))
	}
	strs := 0
	for i := 10; i < 24; i += 2 {
		strs += int(binary.LittleEndian.Uint16(b[i:]))
	}
	if total := fixedLen + strs + int(content); total != len(b) {
		return malformed("lengths add up to " + itoa(total) + " bytes, envelope is " + itoa(len(b)))
	}
	// The strings are short and mostly ASCII: test for that first.
	s := b[fixedLen : fixedLen+strs]
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return checkUTF8(b)
		}
	}
	return nil
}

// checkUTF8 names the first string field that is not valid UTF-8.
func checkUTF8(b []byte) error {
	off := fixedLen
	for i, name := range fieldNames {
		l := int(binary.LittleEndian.Uint16(b[10+2*i:]))
		if !utf8.Valid(b[off : off+l]) {
			return malformed(name + " is not valid UTF-8")
		}
		off += l
	}
	return nil
}

// fill sets m's fields from a checked envelope b whose variable part is body
// (either b[fixedLen:] itself or a copy of it).
func fill(b, body []byte, m *Message) {
	m.Header.Sync = b[1]&FlagSync != 0
	m.Header.Timestamp = int64(binary.LittleEndian.Uint64(b[2:10]))
	off := 0
	m.Header.ID, off = field(b, body, 10, off)
	m.Header.ParentID, off = field(b, body, 12, off)
	m.Header.ResourceVersion, off = field(b, body, 14, off)
	m.Route.Source, off = field(b, body, 16, off)
	m.Route.Group, off = field(b, body, 18, off)
	m.Route.Operation, off = field(b, body, 20, off)
	m.Route.Resource, off = field(b, body, 22, off)
	if off == len(body) {
		m.Content = nil
	} else {
		m.Content = body[off:len(body):len(body)]
	}
}

// field returns the string whose length is at b[lenAt:] and whose bytes
// start at body[off:], and the offset after it.
func field(b, body []byte, lenAt, off int) (string, int) {
	l := int(binary.LittleEndian.Uint16(b[lenAt:]))
	if l == 0 {
		return "", off
	}
	return unsafe.String(&body[off], l), off + l
}
