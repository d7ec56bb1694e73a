package main

import (
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"unsafe"
)

// newEventID is a random (version 4) UUID, as edgecore's BuildBaseMessage
// gives the documents it originates: the delta, edge_updated, the state
// result and each membership/updated. It is a view of idBuf, valid until
// the next call: each document is encoded before the next id is made.
func newEventID() string {
	if idSource == nil {
		// One read of the host's random source per instance seeds a
		// ChaCha8 stream, so an id costs no host call.
		var seed [32]byte
		crand.Read(seed[:]) // never fails: since Go 1.24 it crashes instead
		idSource = rand.NewChaCha8(seed)
	}
	var u [16]byte
	idSource.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	s := &idBuf
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return unsafe.String(&s[0], len(s))
}

var (
	// idSource is this instance's stream of random bytes for event ids.
	idSource *rand.ChaCha8
	// idBuf holds the last event id made.
	idBuf [36]byte
)
