package sdk

import (
	"encoding/binary"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// The envelope on the handle path (SPEC §2), written for what Go compiles
// to wasm. There, every jump goes through a dispatch table and passes the
// host's safepoint countdown, every call and every value that does not fit
// the 16 registers goes through linear memory, and unsafe.Slice calls a
// helper: abi's general codec costs a Go guest ~400 ns each way, more than
// the whole host side of a call. So the handle path decodes and encodes
// straight-line, copies adjacent fields with one memmove, and leaves
// anything unusual to abi.

// fixedLen is the size of the envelope's fixed part (SPEC §2).
const fixedLen = 28

// decodeView decodes the envelope b into m as abi.DecodeAlias does: m's
// strings and content point into b, and the same envelopes are refused.
// An envelope whose strings are all ASCII, as nearly all are, is decoded
// here; any other, valid or not, is left to abi.DecodeAlias, which checks
// UTF-8 and names what is malformed. b's capacity must reach at least 64
// bytes past the fixed part and one byte past b's end (the exchange
// buffer's does): the ASCII test reads whole words, and no view, not even
// an empty string at the very end, may point past b's allocation.
//
// It reads through pointers rather than by index: each bounds check is a
// branch, and in wasm branches and loops are what cost.
func decodeView(b []byte, m *Message) error {
	n := len(b)
	if n < fixedLen || cap(b) < fixedLen+64 || cap(b) == n {
		return abi.DecodeAlias(b, (*abi.Message)(m))
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	lo := le64(unsafe.Add(p, 10)) // lengths of id, parent_id, resource_version, source
	hi := le64(unsafe.Add(p, 18)) // group, operation, resource, then content's low half
	clen := int(le32(unsafe.Add(p, 24)))
	l0, l1, l2, l3 := uintptr(lo&0xFFFF), uintptr(lo>>16&0xFFFF), uintptr(lo>>32&0xFFFF), uintptr(lo>>48)
	l4, l5, l6 := uintptr(hi&0xFFFF), uintptr(hi>>16&0xFFFF), uintptr(hi>>32&0xFFFF)
	strs := int(l0 + l1 + l2 + l3 + l4 + l5 + l6)
	if le16(p)&^(uint16(abi.FlagSync)<<8) != uint16(abi.FormatV1) || clen > abi.MaxContentLen ||
		fixedLen+strs+clen != n {
		return abi.DecodeAlias(b, (*abi.Message)(m))
	}
	// The strings are ASCII if none of their bytes has its high bit set.
	// The first 64 bytes, usually all of them, are tested without a loop:
	// the 8-byte words wholly inside the strings, then the 8 bytes that end
	// the strings, less those before them when the strings are shorter.
	q := unsafe.Add(p, fixedLen)
	head := min(strs, 64)
	words := head >> 3
	acc := le64(unsafe.Add(q, head-8))&(^uint64(0)<<(8*(8-min(head, 8)))) |
		le64(q)&whole(0, words) | le64(unsafe.Add(q, 8))&whole(1, words) |
		le64(unsafe.Add(q, 16))&whole(2, words) | le64(unsafe.Add(q, 24))&whole(3, words) |
		le64(unsafe.Add(q, 32))&whole(4, words) | le64(unsafe.Add(q, 40))&whole(5, words) |
		le64(unsafe.Add(q, 48))&whole(6, words) | le64(unsafe.Add(q, 56))&whole(7, words)
	if acc&0x8080808080808080 != 0 || strs > 64 && !ascii(b[fixedLen+64:fixedLen+strs]) {
		return abi.DecodeAlias(b, (*abi.Message)(m))
	}
	m.Header.Sync = *(*byte)(unsafe.Add(p, 1)) != 0
	m.Header.Timestamp = int64(le64(unsafe.Add(p, 2)))
	// Every view is inside b now. Their pointers are usually the ones m
	// holds already: the last message had the same layout, and the
	// handler left m alone. Then only the lengths, which are not
	// pointers, are stored. A pointer store costs a write-barrier check,
	// in wasm a jump through the function's dispatch table.
	p0 := uintptr(q)
	p1 := p0 + l0
	p2 := p1 + l1
	p3 := p2 + l2
	p4 := p3 + l3
	p5 := p4 + l4
	p6 := p5 + l5
	p7 := p6 + l6
	if clen == 0 {
		p7 = 0 // nil content, as abi.DecodeAlias gives
	}
	mp := unsafe.Pointer(m)
	if (word(mp, offID)^p0)|(word(mp, offParentID)^p1)|(word(mp, offResourceVersion)^p2)|(word(mp, offSource)^p3)|
		(word(mp, offGroup)^p4)|(word(mp, offOperation)^p5)|(word(mp, offResource)^p6)|(word(mp, offContent)^p7) != 0 {
		setViews(m, b)
	}
	setWord(mp, offID+lenWord, l0)
	setWord(mp, offParentID+lenWord, l1)
	setWord(mp, offResourceVersion+lenWord, l2)
	setWord(mp, offSource+lenWord, l3)
	setWord(mp, offGroup+lenWord, l4)
	setWord(mp, offOperation+lenWord, l5)
	setWord(mp, offResource+lenWord, l6)
	setWord(mp, offContent+lenWord, uintptr(clen))
	setWord(mp, offContent+2*lenWord, uintptr(clen))
	return nil
}

// whole returns all ones if word i is one of the first n, else zero,
// without a branch.
func whole(i, n int) uint64 { return uint64(int64(i-n) >> 63) }

// ascii reports whether s is all ASCII, eight bytes at a time.
func ascii(s []byte) bool {
	var acc uint64
	for len(s) >= 8 {
		acc |= binary.LittleEndian.Uint64(s)
		s = s[8:]
	}
	for _, c := range s {
		acc |= uint64(c)
	}
	return acc&0x8080808080808080 == 0
}

// The offsets in a Message of its strings, in the envelope's order, and
// of its content; a string or slice keeps its length one word after its
// pointer, and a slice its capacity one word after that.
const (
	offID              = unsafe.Offsetof(Message{}.Header) + unsafe.Offsetof(Header{}.ID)
	offParentID        = unsafe.Offsetof(Message{}.Header) + unsafe.Offsetof(Header{}.ParentID)
	offResourceVersion = unsafe.Offsetof(Message{}.Header) + unsafe.Offsetof(Header{}.ResourceVersion)
	offSource          = unsafe.Offsetof(Message{}.Route) + unsafe.Offsetof(Route{}.Source)
	offGroup           = unsafe.Offsetof(Message{}.Route) + unsafe.Offsetof(Route{}.Group)
	offOperation       = unsafe.Offsetof(Message{}.Route) + unsafe.Offsetof(Route{}.Operation)
	offResource        = unsafe.Offsetof(Message{}.Route) + unsafe.Offsetof(Route{}.Resource)
	offContent         = unsafe.Offsetof(Message{}.Content)
	lenWord            = unsafe.Sizeof(uintptr(0))
)

// stringFields are the offsets of a Message's strings, in the envelope's
// order.
var stringFields = [...]uintptr{offID, offParentID, offResourceVersion, offSource, offGroup, offOperation, offResource}

// word reads the machine word at p+off.
func word(p unsafe.Pointer, off uintptr) uintptr { return *(*uintptr)(unsafe.Add(p, off)) }

// setWord writes v to the word at p+off, which must not hold a pointer.
func setWord(p unsafe.Pointer, off, v uintptr) { *(*uintptr)(unsafe.Add(p, off)) = v }

// setViews points m's strings and content into the checked envelope b, as
// decodeView does when they have moved: these stores are of pointers,
// with the write barriers the garbage collector needs.
func setViews(m *Message, b []byte) {
	p := (*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), fixedLen))
	for i, off := range stringFields {
		l := int(binary.LittleEndian.Uint16(b[10+2*i:]))
		*(*string)(unsafe.Add(unsafe.Pointer(m), off)) = stringAt(p, l)
		p = (*byte)(unsafe.Add(unsafe.Pointer(p), l))
	}
	m.Content = nil
	if n := len(b) - int(uintptr(unsafe.Pointer(p))-uintptr(unsafe.Pointer(unsafe.SliceData(b)))); n > 0 {
		m.Content = bytesAt(p, n)
	}
}

// stringAt is unsafe.String(p, n) without its checks, which cost a
// wasm guest more than the view itself; n >= 0 and p valid are the
// caller's to ensure.
func stringAt(p *byte, n int) string {
	return *(*string)(unsafe.Pointer(&struct {
		p *byte
		n int
	}{p, n}))
}

// bytesAt is unsafe.Slice(p, n) without its checks (a call in wasm), with
// capacity n; n >= 0 and p valid are the caller's to ensure.
func bytesAt(p *byte, n int) []byte {
	return *(*[]byte)(unsafe.Pointer(&struct {
		p    *byte
		n, c int
	}{p, n, n}))
}

// replyLen returns the length of the envelope putReply writes for a reply
// with these fields and clen bytes of content.
func replyLen(parent, version string, r *Route, clen int) int {
	return fixedLen + len(parent) + len(version) + len(r.Source) + len(r.Group) + len(r.Operation) +
		len(r.Resource) + clen
}

// putReply writes into b, exactly replyLen long, the envelope of a reply
// to the request whose ID is parent: no ID (the host gives one), not sync,
// and the given resource version, timestamp, route and content. Fields
// that lie back to back in memory, as a request's own fields do in the
// exchange buffer, are copied with one memmove; content that is already in
// place at the end of b is not copied. The fields must fit the envelope
// (replyFits).
func putReply(b []byte, parent, version string, r *Route, ts int64, content []byte) {
	_ = b[fixedLen-1]
	binary.LittleEndian.PutUint16(b, uint16(abi.FormatV1)) // format; flags 0: not sync
	binary.LittleEndian.PutUint64(b[2:], uint64(ts))
	binary.LittleEndian.PutUint64(b[10:], uint64(len(parent))<<16|uint64(len(version))<<32|uint64(len(r.Source))<<48)
	binary.LittleEndian.PutUint64(b[18:], uint64(len(r.Group))|uint64(len(r.Operation))<<16|uint64(len(r.Resource))<<32)
	binary.LittleEndian.PutUint32(b[24:], uint32(len(content)))
	dst := (*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), fixedLen))
	p, n := unsafe.StringData(parent), len(parent)
	p, n, dst = join(p, n, dst, unsafe.StringData(version), len(version))
	for _, f := range routeStrings(r) {
		p, n, dst = join(p, n, dst, unsafe.StringData(f), len(f))
	}
	p, n, dst = join(p, n, dst, unsafe.SliceData(content), len(content))
	if p != dst {
		copy(bytesAt(dst, n), bytesAt(p, n))
	}
}

// join adds the m bytes at q to the run of n bytes at p that is still to
// be copied to dst. If they follow the run in memory (or are none), it
// returns the longer run; else it copies the run and returns q's, and the
// next destination.
func join(p *byte, n int, dst, q *byte, m int) (*byte, int, *byte) {
	if q == (*byte)(unsafe.Add(unsafe.Pointer(p), n)) || m == 0 {
		return p, n + m, dst
	}
	copy(bytesAt(dst, n), bytesAt(p, n))
	return q, m, (*byte)(unsafe.Add(unsafe.Pointer(dst), n))
}

// routeStrings views r's four strings, which Route lays out back to back
// (TestRouteLayout), as an array, so loops over them are compact.
func routeStrings(r *Route) *[4]string { return (*[4]string)(unsafe.Pointer(&r.Source)) }

// replyFits reports whether a reply's fields fit the envelope's lengths,
// as abi.Message.Validate does.
func replyFits(parent, version string, r *Route, clen int) bool {
	return len(parent)|len(version)|len(r.Source)|len(r.Group)|len(r.Operation)|len(r.Resource) <= abi.MaxStringLen &&
		clen <= abi.MaxContentLen
}
