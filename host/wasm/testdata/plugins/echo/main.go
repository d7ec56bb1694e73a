// Command echo is a raw ABI 1 plugin written from abi/SPEC.md alone, without
// the SDK: it answers every message with the same route, operation
// "response", parent_id set to the request's id and the same content.
package main

import "unsafe"

// buf is the exchange buffer; reply holds the last reply. Both stay
// reachable from globals, as SPEC.md section 3 requires.
var buf, reply []byte

func main() {}

//go:wasmexport edgehost_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport edgehost_buffer
func buffer(n int32) int32 {
	if n < 1 {
		n = 1
	}
	if int(n) > len(buf) {
		buf = make([]byte, n)
	}
	return int32(uintptr(unsafe.Pointer(&buf[0])))
}

//go:wasmexport edgehost_init
func initPlugin(configLen int32) int32 { return 0 }

func u16(b []byte) int { return int(b[0]) | int(b[1])<<8 }

func put16(b []byte, v int) { b[0], b[1] = byte(v), byte(v>>8) }

//go:wasmexport edgehost_handle
func handle(n int32) int64 {
	in := buf[:n]
	if len(in) < 28 {
		return -2
	}
	var lens [7]int
	var fields [7][]byte
	off := 28
	for i := range lens {
		lens[i] = u16(in[10+2*i:])
		if off+lens[i] > len(in) {
			return -2
		}
		fields[i] = in[off : off+lens[i]]
		off += lens[i]
	}
	content := in[off:]
	// Reply fields: id empty, parent_id = id, the rest as sent except the
	// operation.
	out := [7][]byte{nil, fields[0], fields[2], fields[3], fields[4], []byte("response"), fields[6]}
	total := 28 + len(content)
	for _, f := range out {
		total += len(f)
	}
	if total > cap(reply) {
		reply = make([]byte, total)
	}
	r := reply[:total]
	r[0], r[1] = 1, 0
	copy(r[2:10], in[2:10])
	for i, f := range out {
		put16(r[10+2*i:], len(f))
	}
	copy(r[24:28], in[24:28])
	p := 28
	for _, f := range out {
		p += copy(r[p:], f)
	}
	copy(r[p:], content)
	return int64(total)<<32 | int64(uint32(uintptr(unsafe.Pointer(&r[0]))))
}
