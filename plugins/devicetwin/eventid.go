package main

import (
	"crypto/rand"
	"encoding/hex"
)

// newEventID is a random (version 4) UUID, as edgecore's BuildBaseMessage
// gives the documents it originates: the delta, edge_updated, the state
// result and each membership/updated. Under wasm, crypto/rand reads the
// host's random source.
func newEventID() string {
	var u [16]byte
	rand.Read(u[:]) // never fails: since Go 1.24 it crashes instead
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}
