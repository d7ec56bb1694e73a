package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
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

// EncodedLen returns the number of bytes Encode writes for m.
func (m *Message) EncodedLen() int {
	return fixedLen + len(m.Header.ID) + len(m.Header.ParentID) + len(m.Header.ResourceVersion) +
		len(m.Route.Source) + len(m.Route.Group) + len(m.Route.Operation) + len(m.Route.Resource) +
		len(m.Content)
}

// Validate reports the first field of m that does not fit the envelope.
func (m *Message) Validate() error {
	for i, s := range m.strings() {
		if len(s) > MaxStringLen {
			return fmt.Errorf("encode envelope: %s is %d bytes, longer than %d", fieldNames[i], len(s), MaxStringLen)
		}
	}
	if len(m.Content) > MaxContentLen {
		return fmt.Errorf("encode envelope: content is %d bytes, longer than %d", len(m.Content), MaxContentLen)
	}
	return nil
}

func (m *Message) strings() [7]string {
	return [7]string{m.Header.ID, m.Header.ParentID, m.Header.ResourceVersion,
		m.Route.Source, m.Route.Group, m.Route.Operation, m.Route.Resource}
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
	b := dst[n : n+need]
	writeTo(b, m)
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
		return 0, fmt.Errorf("encode envelope: buffer holds %d bytes, message needs %d", len(b), need)
	}
	writeTo(b[:need], m)
	return need, nil
}

// writeTo writes a validated m into b, which is exactly m.EncodedLen() long.
func writeTo(b []byte, m *Message) {
	b[0] = FormatV1
	b[1] = 0
	if m.Header.Sync {
		b[1] = FlagSync
	}
	binary.LittleEndian.PutUint64(b[2:10], uint64(m.Header.Timestamp))
	strs := m.strings()
	for i, s := range strs {
		binary.LittleEndian.PutUint16(b[10+2*i:], uint16(len(s)))
	}
	binary.LittleEndian.PutUint32(b[24:28], uint32(len(m.Content)))
	off := fixedLen
	for _, s := range strs {
		off += copy(b[off:], s)
	}
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
		return fmt.Errorf("%w: %d bytes, shorter than the %d-byte fixed part", ErrMalformed, len(b), fixedLen)
	}
	if b[0] != FormatV1 {
		return fmt.Errorf("%w: format byte is 0x%02x, want 0x%02x", ErrMalformed, b[0], FormatV1)
	}
	if b[1]&^FlagSync != 0 {
		return fmt.Errorf("%w: unknown flag bits 0x%02x", ErrMalformed, b[1]&^FlagSync)
	}
	total := uint64(fixedLen)
	for i := range fieldNames {
		total += uint64(binary.LittleEndian.Uint16(b[10+2*i:]))
	}
	content := binary.LittleEndian.Uint32(b[24:28])
	if content > MaxContentLen {
		return fmt.Errorf("%w: content length %d is over %d", ErrMalformed, content, MaxContentLen)
	}
	total += uint64(content)
	if total != uint64(len(b)) {
		return fmt.Errorf("%w: lengths add up to %d bytes, envelope is %d", ErrMalformed, total, len(b))
	}
	off := fixedLen
	for i, name := range fieldNames {
		l := int(binary.LittleEndian.Uint16(b[10+2*i:]))
		if !utf8.Valid(b[off : off+l]) {
			return fmt.Errorf("%w: %s is not valid UTF-8", ErrMalformed, name)
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
	next := func(i int) string {
		l := int(binary.LittleEndian.Uint16(b[10+2*i:]))
		s := body[off : off+l]
		off += l
		if l == 0 {
			return ""
		}
		return unsafe.String(&s[0], l)
	}
	m.Header.ID = next(0)
	m.Header.ParentID = next(1)
	m.Header.ResourceVersion = next(2)
	m.Route.Source = next(3)
	m.Route.Group = next(4)
	m.Route.Operation = next(5)
	m.Route.Resource = next(6)
	m.Content = body[off:len(body):len(body)]
	if len(m.Content) == 0 {
		m.Content = nil
	}
}
