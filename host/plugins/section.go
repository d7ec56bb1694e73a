package plugins

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Custom section names that carry a package's manifest and signature.
const (
	SectionManifest  = "edgehost.manifest"
	SectionSignature = "edgehost.signature"
)

var wasmHeader = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// section is one top-level section of a wasm binary: its id, its custom
// name (id 0 only), and where its bytes lie in the binary.
type section struct {
	id            byte
	name          string
	start, end    int // the whole section, id byte included
	payloadOffset int // start of the payload after the name (custom) or size
}

// sections splits a wasm binary into its top-level sections without
// decoding them. It checks the header and that every size fits.
func sections(b []byte) ([]section, error) {
	if len(b) < len(wasmHeader) || !bytes.Equal(b[:len(wasmHeader)], wasmHeader) {
		return nil, errors.New("not a wasm module: bad magic number or version")
	}
	var out []section
	off := len(wasmHeader)
	for off < len(b) {
		s := section{id: b[off], start: off}
		size, n := binary.Uvarint(b[off+1:])
		if n <= 0 || size > uint64(len(b)-off-1-n) {
			return nil, fmt.Errorf("wasm section at byte %d: bad size", off)
		}
		body := off + 1 + n
		s.end = body + int(size)
		s.payloadOffset = body
		if s.id == 0 {
			nameLen, m := binary.Uvarint(b[body:s.end])
			if m <= 0 || nameLen > uint64(s.end-body-m) {
				return nil, fmt.Errorf("wasm custom section at byte %d: bad name", off)
			}
			s.name = string(b[body+m : body+m+int(nameLen)])
			s.payloadOffset = body + m + int(nameLen)
		}
		out = append(out, s)
		off = s.end
	}
	return out, nil
}

// isOurs reports whether s is a section this package writes.
func (s section) isOurs() bool {
	return s.id == 0 && (s.name == SectionManifest || s.name == SectionSignature)
}

// customSection encodes a custom section with name and payload.
func customSection(name string, payload []byte) []byte {
	var body []byte
	body = binary.AppendUvarint(body, uint64(len(name)))
	body = append(body, name...)
	body = append(body, payload...)
	out := []byte{0}
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}
