// Command faulty is a raw ABI 1 plugin (no SDK) for the host's fault and
// import tests. The message's operation selects the behaviour; the content
// is its argument. It also checks each import against abi/SPEC.md.
package main

import (
	"strconv"
	"unsafe"
)

var (
	buf, reply []byte
	config     []byte
	ticks      int
	hog        [][]byte
	spin       int
)

func main() {}

//go:wasmimport edgehost_v1 log
func hostLog(level int32, ptr unsafe.Pointer, n int32)

//go:wasmimport edgehost_v1 send
func hostSend(ptr unsafe.Pointer, n int32) int32

//go:wasmimport edgehost_v1 request
func hostRequest(ptr unsafe.Pointer, n, timeoutMS int32, out unsafe.Pointer, outCap int32) int32

//go:wasmimport edgehost_v1 request_reply
func hostRequestReply(out unsafe.Pointer, outCap int32) int32

//go:wasmimport edgehost_v1 kv_get
func kvGet(key unsafe.Pointer, keyLen int32, out unsafe.Pointer, outCap int32) int32

//go:wasmimport edgehost_v1 kv_put
func kvPut(key unsafe.Pointer, keyLen int32, val unsafe.Pointer, valLen int32) int32

//go:wasmimport edgehost_v1 kv_delete
func kvDelete(key unsafe.Pointer, keyLen int32) int32

//go:wasmimport edgehost_v1 kv_list
func kvList(prefix unsafe.Pointer, prefixLen int32, out unsafe.Pointer, outCap int32) int32

//go:wasmimport edgehost_v1 now
func hostNow() int64

//go:wasmimport edgehost_v1 config
func hostConfig(out unsafe.Pointer, outCap int32) int32

// ptr returns the address of b's first byte, or nil for an empty b.
func ptr(b []byte) unsafe.Pointer {
	if cap(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

func logf(level int32, s string) {
	b := []byte(s)
	hostLog(level, ptr(b), int32(len(b)))
}

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
func initPlugin(n int32) int32 {
	config = append([]byte(nil), buf[:n]...)
	// The daemon hands a config: value over as JSON: "loop" arrives quoted.
	if len(config) >= 2 && config[0] == '"' && config[len(config)-1] == '"' {
		config = config[1 : len(config)-1]
	}
	switch string(config) {
	case "refuse":
		return 5 // denied
	case "trap":
		panic("faulty: init trap")
	case "loop":
		for {
			spin++
		}
	case "kv":
		// Writes made by init are committed when init returns 0.
		k, v := []byte("init"), []byte("done")
		kvPut(ptr(k), int32(len(k)), ptr(v), int32(len(v)))
	}
	logf(2, "faulty: init")
	return 0
}

//go:wasmexport edgehost_tick
func tick() int32 {
	ticks++
	switch string(config) {
	case "tickfail":
		return 8
	case "tickloop":
		for {
			spin++
		}
	}
	return 0
}

// crc is a compute-bound export outside the ABI for the interruption
// benchmarks: rounds passes of CRC-32 (bitwise, no table) over 1 KiB.
//
//go:wasmexport crc
func crc(rounds int32) int32 {
	var data [1024]byte
	for i := range data {
		data[i] = byte(i)
	}
	c := ^uint32(0)
	for range rounds {
		for _, b := range data {
			c ^= uint32(b)
			for range 8 {
				c = c>>1 ^ 0xEDB88320&-(c&1)
			}
		}
	}
	return int32(^c)
}

//go:wasmexport edgehost_stop
func stop() { logf(2, "faulty: stop") }

// msg is a decoded envelope; its slices alias the exchange buffer.
type msg struct {
	ts      []byte // 8 timestamp bytes
	sync    bool
	f       [7][]byte // id, parent_id, resource_version, source, group, operation, resource
	content []byte
}

func u16(b []byte) int { return int(b[0]) | int(b[1])<<8 }

func decode(in []byte) (m msg, ok bool) {
	if len(in) < 28 || in[0] != 1 {
		return m, false
	}
	m.sync = in[1]&1 != 0
	m.ts = in[2:10]
	off := 28
	for i := range m.f {
		l := u16(in[10+2*i:])
		if off+l > len(in) {
			return m, false
		}
		m.f[i] = in[off : off+l]
		off += l
	}
	clen := int(in[24]) | int(in[25])<<8 | int(in[26])<<16 | int(in[27])<<24
	if off+clen != len(in) {
		return m, false
	}
	m.content = in[off:]
	return m, true
}

// encode appends m's envelope to dst.
func encode(dst []byte, m *msg) []byte {
	var hdr [28]byte
	hdr[0] = 1
	if m.sync {
		hdr[1] = 1
	}
	copy(hdr[2:10], m.ts)
	for i, f := range m.f {
		hdr[10+2*i], hdr[11+2*i] = byte(len(f)), byte(len(f)>>8)
	}
	c := len(m.content)
	hdr[24], hdr[25], hdr[26], hdr[27] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
	dst = append(dst, hdr[:]...)
	for _, f := range m.f {
		dst = append(dst, f...)
	}
	return append(dst, m.content...)
}

// answer builds the reply to req with the given content and returns its
// packed location.
func answer(req *msg, op string, content []byte) int64 {
	r := msg{ts: req.ts, content: content}
	r.f = [7][]byte{nil, req.f[0], req.f[2], req.f[3], req.f[4], []byte(op), req.f[6]}
	reply = encode(reply[:0], &r)
	return locate(reply)
}

func locate(b []byte) int64 {
	return int64(len(b))<<32 | int64(uint32(uintptr(unsafe.Pointer(&b[0]))))
}

//go:wasmexport edgehost_handle
func handle(n int32) int64 {
	m, ok := decode(buf[:n])
	if !ok {
		return -2
	}
	arg := m.content
	switch string(m.f[5]) {
	case "echo":
		return answer(&m, "response", arg)
	case "consume":
		return 0
	case "panic":
		panic("faulty: boom")
	case "loop":
		for {
			spin++
		}
	case "recurse":
		return int64(recurse(0))
	case "oom":
		for {
			hog = append(hog, make([]byte, 1<<20))
		}
	case "malformed":
		reply = append(reply[:0], "this is not an envelope"...)
		return locate(reply)
	case "badptr":
		return int64(100)<<32 | int64(0xFFFFFF00)
	case "oversized":
		size, _ := strconv.Atoi(string(arg))
		return answer(&m, "response", make([]byte, size))
	case "fail":
		code, _ := strconv.Atoi(string(arg))
		return -int64(code)
	case "kvtrap":
		for _, kv := range [][2]string{{"t1", "v1"}, {"t2", "v2"}} {
			k, v := []byte(kv[0]), []byte(kv[1])
			kvPut(ptr(k), int32(len(k)), ptr(v), int32(len(v)))
		}
		panic("faulty: trap after kv writes")
	case "kvfail":
		k, v := []byte("f1"), []byte("v1")
		kvPut(ptr(k), int32(len(k)), ptr(v), int32(len(v)))
		return -8
	case "kvput":
		k, v, _ := cut(arg, '=')
		return answer(&m, "response", itoa(kvPut(ptr(k), int32(len(k)), ptr(v), int32(len(v)))))
	case "kvseq":
		return answer(&m, "response", kvSeq())
	case "incr":
		return answer(&m, "response", incr(arg))
	case "kvdel":
		return answer(&m, "response", itoa(kvDelete(ptr(arg), int32(len(arg)))))
	case "kvget":
		return getAnswer(&m, func(out []byte) int32 { return kvGet(ptr(arg), int32(len(arg)), ptr(out), int32(len(out))) })
	case "kvlist":
		return getAnswer(&m, func(out []byte) int32 { return kvList(ptr(arg), int32(len(arg)), ptr(out), int32(len(out))) })
	case "config":
		return getAnswer(&m, func(out []byte) int32 { return hostConfig(ptr(out), int32(len(out))) })
	case "now":
		return answer(&m, "response", strconv.AppendInt(nil, hostNow(), 10))
	case "ticks":
		return answer(&m, "response", itoa(int32(ticks)))
	case "log":
		logf(3, string(arg))
		return 0
	case "send":
		out := msg{ts: make([]byte, 8), content: arg}
		out.f[4], out.f[5], out.f[6] = []byte("bus"), []byte("publish"), []byte("topic/x")
		env := encode(nil, &out)
		return answer(&m, "response", itoa(hostSend(ptr(env), int32(len(env)))))
	case "request":
		return request(&m, arg)
	case "forge":
		// A reply whose header breaks the rules of abi/SPEC.md section 4:
		// an id of the guest's, another parent_id, the sync bit.
		r := msg{ts: m.ts, content: arg}
		r.f = [7][]byte{[]byte("forged-id"), m.f[0], m.f[2], m.f[3], m.f[4], []byte("response"), m.f[6]}
		switch string(arg) {
		case "parent":
			r.f[1] = []byte("not-the-request")
		case "sync":
			r.sync = true
		}
		reply = encode(reply[:0], &r)
		return locate(reply)
	case "forward":
		return forward(&m, arg)
	case "relay":
		relay(arg)
		return 0
	case "badargs":
		return answer(&m, "response", badArgs())
	}
	return -10 // no handler
}

// recurse calls itself without end; the two calls keep the compiler from
// turning it into a loop.
func recurse(n int) int {
	if n < 0 {
		return 0
	}
	return recurse(n+1) + recurse(n+2)
}

// forward requests the first of the space-separated groups in arg with
// operation "forward" and the groups rotated by one, so plugins forwarding
// to each other make a request chain; it replies with the reply's
// operation and content, or with operation "error" and "code N" when the
// request import failed.
func forward(m *msg, arg []byte) int64 {
	group, rest, _ := cut(arg, ' ')
	next := append([]byte(nil), group...)
	if len(rest) > 0 {
		next = append(append(append([]byte(nil), rest...), ' '), group...)
	}
	req := msg{ts: make([]byte, 8), sync: true, content: next}
	req.f[4], req.f[5], req.f[6] = group, []byte("forward"), []byte("chain")
	env := encode(nil, &req)
	out := make([]byte, 64<<10)
	n := hostRequest(ptr(env), int32(len(env)), 5000, ptr(out), int32(len(out)))
	if n < 0 {
		return answer(m, "error", append([]byte("code "), itoa(n)...))
	}
	r, ok := decode(out[:n])
	if !ok {
		return answer(m, "error", []byte("reply does not decode"))
	}
	return answer(m, string(r.f[5]), r.content)
}

// relay sends a one-way message of operation "relay" with content arg to
// the group arg, so a plugin receiving its own relays sends forever; it
// logs the code when the send fails.
func relay(arg []byte) {
	out := msg{ts: make([]byte, 8), content: arg}
	out.f[4], out.f[5], out.f[6] = arg, []byte("relay"), []byte("chain")
	env := encode(nil, &out)
	if c := hostSend(ptr(env), int32(len(env))); c != 0 {
		logf(3, "relay: send returned "+string(itoa(c)))
	}
}

// getAnswer calls an import that fills a guest buffer, first with a buffer
// too small to exercise the "report the needed length" rule, and replies
// with the data, or with operation "error" and the code.
func getAnswer(m *msg, call func(out []byte) int32) int64 {
	small := make([]byte, 1)
	n := call(small)
	if n < 0 {
		return answer(m, "error", itoa(n))
	}
	if int(n) <= len(small) {
		return answer(m, "response", small[:n])
	}
	if small[0] != 0 {
		return answer(m, "error", []byte("host wrote into a too-small buffer"))
	}
	out := make([]byte, n)
	if got := call(out); got != n {
		return answer(m, "error", itoa(got))
	}
	return answer(m, "response", out)
}

// request sends a request to group "svc" and replies with the reply's
// content. A small first buffer forces the kept-reply path.
func request(m *msg, arg []byte) int64 {
	req := msg{ts: make([]byte, 8), sync: true, content: arg}
	req.f[4], req.f[5], req.f[6] = []byte("svc"), []byte("query"), []byte("thing")
	env := encode(nil, &req)
	small := make([]byte, 4)
	n := hostRequest(ptr(env), int32(len(env)), 1000, ptr(small), int32(len(small)))
	if n < 0 {
		return answer(m, "error", itoa(n))
	}
	var out []byte
	if int(n) <= len(small) {
		out = small[:n]
	} else {
		out = make([]byte, n)
		if got := hostRequestReply(ptr(out), n); got != n {
			return answer(m, "error", itoa(got))
		}
		if again := hostRequestReply(ptr(out), n); again != n {
			return answer(m, "error", []byte("kept reply dropped too early"))
		}
	}
	r, ok := decode(out)
	if !ok {
		return answer(m, "error", []byte("reply does not decode"))
	}
	return answer(m, "response", r.content)
}

// badArgs passes out-of-range pointers to every import that takes one and
// reports the results, which must all be -1.
func badArgs() []byte {
	bad := unsafe.Add(unsafe.Pointer(nil), 0x7FFFFFF0)
	k := []byte("k")
	res := []int32{
		hostSend(bad, 100),
		hostRequest(bad, 100, 0, nil, 0),
		hostRequestReply(bad, 100),
		kvGet(bad, 100, nil, 0),
		kvGet(ptr(k), 1, bad, 100),
		kvPut(bad, 100, ptr(k), 1),
		kvPut(ptr(k), 1, bad, 100),
		kvDelete(bad, 100),
		kvList(bad, 100, nil, 0),
		hostConfig(bad, 100),
		kvPut(nil, 0, ptr(k), 1), // empty key
	}
	var out []byte
	for i, r := range res {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, itoa(r)...)
	}
	hostLog(2, bad, 100) // must be ignored, not trap
	return out
}

// kvSeq checks that a call sees its own buffered writes.
func kvSeq() []byte {
	s, s2, one, two := []byte("s"), []byte("s2"), []byte("1"), []byte("2")
	out := make([]byte, 8)
	kvPut(ptr(s), 1, ptr(one), 1)
	if n := kvGet(ptr(s), 1, ptr(out), 8); n != 1 || out[0] != '1' {
		return []byte("own put not visible")
	}
	kvDelete(ptr(s), 1)
	if n := kvGet(ptr(s), 1, ptr(out), 8); n != -4 {
		return []byte("own delete not visible")
	}
	kvPut(ptr(s2), 2, ptr(two), 1)
	list := make([]byte, 64)
	n := kvList(ptr(s), 1, ptr(list), 64)
	if string(list[:n]) != "\x02\x00s2" {
		return append([]byte("list: "), list[:max(n, 0)]...)
	}
	return []byte("ok")
}

// incr adds one to the decimal number at key (0 if absent) and replies
// with the new value.
func incr(key []byte) []byte {
	out := make([]byte, 20)
	v := 0
	if n := kvGet(ptr(key), int32(len(key)), ptr(out), int32(len(out))); n > 0 {
		v, _ = strconv.Atoi(string(out[:n]))
	}
	next := strconv.AppendInt(nil, int64(v+1), 10)
	if c := kvPut(ptr(key), int32(len(key)), ptr(next), int32(len(next))); c != 0 {
		return append([]byte("kv_put: "), itoa(c)...)
	}
	return next
}

func cut(b []byte, sep byte) (before, after []byte, found bool) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

func itoa(n int32) []byte { return strconv.AppendInt(nil, int64(n), 10) }
