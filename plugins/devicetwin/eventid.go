package main

import (
	"encoding/binary"
	"math/rand/v2"
	"unsafe"
)

// newEventID is a random (version 4) UUID, as edgecore's BuildBaseMessage
// gives the documents it originates: the delta, edge_updated, the state
// result and each membership/updated. It is a view of idBuf, valid until
// the next call: each document is encoded before the next id is made.
//
// The bytes come from math/rand/v2's runtime source (ChaCha8, seeded from
// the host's random_get when the instance starts), so an id costs no host
// call; crypto/rand and encoding/hex are not used because they link
// math/big and fmt, ~0.5 MB of module the twin would carry for this alone.
func newEventID() string {
	var u [16]byte
	binary.LittleEndian.PutUint64(u[0:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:16], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	s := &idBuf
	j := 0
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hexDigits[b>>4], hexDigits[b&0xf]
		j += 2
	}
	return unsafe.String(&s[0], len(s))
}

// hexDigits are the id's digits.
const hexDigits = "0123456789abcdef"

// idBuf holds the last event id made.
var idBuf [36]byte
