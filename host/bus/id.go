package bus

import "math/rand/v2"

// NewID returns a random (version 4) UUID in its 36-character text form, the
// id format KubeEdge uses for msg_id.
//
// The bits come from math/rand/v2's runtime generator (ChaCha8, seeded from
// the operating system, no lock), not crypto/rand: ids must be unique, not
// secret, and this keeps NewID to one small allocation.
func NewID() string {
	const hex = "0123456789abcdef"
	hi := rand.Uint64()&^0xf000 | 0x4000 // version 4
	lo := rand.Uint64()&^(3<<62) | 1<<63 // RFC 9562 variant
	var b [36]byte
	n := 0
	for i := range 16 {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[n] = '-'
			n++
		}
		var v byte
		if i < 8 {
			v = byte(hi >> (56 - 8*i))
		} else {
			v = byte(lo >> (56 - 8*(i-8)))
		}
		b[n], b[n+1] = hex[v>>4], hex[v&0xf]
		n += 2
	}
	return string(b[:])
}
