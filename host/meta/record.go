package meta

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A stored object is one bbolt value under its resource key:
//
//	byte 0      record format, recordV1
//	uvarint     length of the resource version, then its bytes
//	the rest    the object's content exactly as the cloud sent it (JSON)
//
// The resource version sits beside the content so the staleness check
// needs no JSON parse of the stored object.
const recordV1 = 1

// record is one decoded stored object.
type record struct {
	RV      string
	Content []byte
}

// errRecord is the error every malformed record matches.
var errRecord = errors.New("malformed meta record")

// appendRecord encodes r after dst.
func appendRecord(dst []byte, r record) []byte {
	dst = append(dst, recordV1)
	dst = binary.AppendUvarint(dst, uint64(len(r.RV)))
	dst = append(dst, r.RV...)
	return append(dst, r.Content...)
}

// decodeRecord decodes a stored value. The returned slices alias b.
func decodeRecord(b []byte) (record, error) {
	if len(b) == 0 {
		return record{}, fmt.Errorf("%w: empty", errRecord)
	}
	if b[0] != recordV1 {
		return record{}, fmt.Errorf("%w: format %d, want %d", errRecord, b[0], recordV1)
	}
	n, w := binary.Uvarint(b[1:])
	if w <= 0 {
		return record{}, fmt.Errorf("%w: bad resource version length", errRecord)
	}
	rest := b[1+w:]
	if n > uint64(len(rest)) {
		return record{}, fmt.Errorf("%w: resource version of %d bytes in %d", errRecord, n, len(rest))
	}
	return record{RV: string(rest[:n]), Content: rest[n:]}, nil
}
