package sdk

import (
	"errors"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// ReplyHandlerFunc handles one message by writing its reply into w: the
// handler path that allocates nothing in the guest, whatever the reply's
// content, for plugins on a hot path (see HandleReply).
//
// m is a view of the exchange buffer, as for HandlerFunc: m, its strings
// and its Content are valid only until the handler returns. So is w: the
// SDK reuses it, and its buffer, for the next message.
//
// Return values:
//   - nil: the reply in w is sent. Its ParentID is the request's ID; the
//     host gives it an ID and, unless the handler set one, the current
//     time (SPEC §4).
//   - NoReply (itself, not wrapped): no reply; the message is consumed.
//   - another error: what w holds is dropped, and the reply is one with
//     operation "error" and content err.Error() on the request's route, as
//     for HandlerFunc; a bare abi.Code fails the call with that code.
//
// A panic traps, as for HandlerFunc.
type ReplyHandlerFunc func(m *Message, w *ReplyWriter) error

// HandleReply registers h as the message handler, in place of one
// registered with Handle (a later Handle or HandleReply replaces it).
//
// Use it where a plugin's cost per message matters: a ReplyHandlerFunc
// writes its reply's content straight into the reply envelope, in a buffer
// the SDK keeps from call to call, so a handler that replies with a copy of
// its input, or with content it builds by appending, allocates nothing. A
// HandlerFunc is simpler and allocates nothing either as long as its reply
// is m.Reply(content) with content it did not allocate, such as a view of
// m.Content.
func HandleReply(h ReplyHandlerFunc) { replyHandler, handler = h, nil }

// NoReply, returned as it is by a ReplyHandlerFunc (or a HandlerFunc),
// consumes the message without a reply.
var NoReply = errors.New("edgehost sdk: no reply")

// ReplyWriter builds the reply of a ReplyHandlerFunc. Its content goes
// through Write, WriteString and AvailableBuffer straight to its place in
// the reply envelope, in a buffer the SDK reuses from call to call (it
// grows when a reply needs more, and stays grown). The reply has the
// request's route with operation "response", the request's resource
// version, and timestamp zero, which the host replaces with the current
// time, unless the handler sets others with the Set methods. The SDK
// writes the envelope's header in front of the content when the handler
// returns. The zero value is not usable: the SDK hands each handler a
// ready one.
type ReplyWriter struct {
	// buf holds the envelope being built: the content from buf[head:],
	// and room before it for the fixed part and strings.
	buf  []byte
	head int
	// set says which of the fields below replace the defaults; they are
	// left as they are between calls, which costs nothing, unlike
	// clearing strings (pointer stores, with write barriers).
	set       uint8
	op        string
	route     Route
	version   string
	timestamp int64
}

// Bits of ReplyWriter.set.
const (
	setOperation = 1 << iota
	setRoute
	setVersion
)

// SetOperation sets the reply's operation, e.g. abi.OpError; the default
// is "response" (abi.OpResponse).
func (w *ReplyWriter) SetOperation(op string) {
	w.op = op
	w.set |= setOperation
}

// SetRoute sets the reply's whole route, operation included, in place of
// the request's.
func (w *ReplyWriter) SetRoute(r Route) {
	w.route, w.op = r, r.Operation
	w.set |= setRoute | setOperation
}

// SetResourceVersion sets the reply's resource version in place of the
// request's.
func (w *ReplyWriter) SetResourceVersion(v string) {
	w.version = v
	w.set |= setVersion
}

// SetTimestamp sets the reply's timestamp in Unix milliseconds; zero, the
// default, lets the host set the current time.
func (w *ReplyWriter) SetTimestamp(ms int64) { w.timestamp = ms }

// Write appends p to the reply's content. It always returns len(p), nil.
// p may be a view of the request, such as m.Content: it is copied.
func (w *ReplyWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// WriteString appends s to the reply's content. It always returns
// len(s), nil.
func (w *ReplyWriter) WriteString(s string) (int, error) {
	w.buf = append(w.buf, s...)
	return len(s), nil
}

// AvailableBuffer returns an empty slice whose capacity is the room left
// in the reply's buffer, to append to and pass to an immediate Write, as
// with bytes.Buffer: the bytes are built where they will stay, with no
// buffer of their own to allocate.
//
//	w.Write(strconv.AppendInt(w.AvailableBuffer(), n, 10))
//
// The slice is valid only until the next call that writes to w.
func (w *ReplyWriter) AvailableBuffer() []byte { return w.buf[len(w.buf):] }

// reset readies w for a reply whose head, at its default, is head bytes
// long: no content, the defaults, and room in front for the head. It is
// small enough to be inlined: in wasm a call costs tens of ns.
func (w *ReplyWriter) reset(head int) {
	w.set, w.timestamp, w.head = 0, 0, head
	if cap(w.buf) < head {
		w.grow()
	}
	w.buf = w.buf[:head]
}

// grow gives w an empty buffer with room for its head.
func (w *ReplyWriter) grow() { w.buf = make([]byte, 0, max(w.head, minBuffer)) }

// finish writes the envelope's head in front of the content and returns
// the whole reply to the request env. With the request's route and
// resource version, the usual case, the head is written straight from the
// request's envelope, as a hand-written echo would: a few stores and two
// to four copies, with none of putReply's general work.
func (w *ReplyWriter) finish(env []byte) ([]byte, abi.Code) {
	if w.set&(setRoute|setVersion) != 0 {
		return w.finishWith(env)
	}
	op := abi.OpResponse
	if w.set&setOperation != 0 {
		op = w.op
	}
	p := unsafe.Pointer(unsafe.SliceData(env))
	lo, hi := le64(unsafe.Add(p, 10)), le64(unsafe.Add(p, 18))
	// The request's lengths: id, parent_id, resource_version + source +
	// group (back to back in both envelopes), operation, resource.
	id, parent, meta := uintptr(lo&0xFFFF), uintptr(lo>>16&0xFFFF), uintptr(lo>>32&0xFFFF+lo>>48+hi&0xFFFF)
	reqOp, resource := uintptr(hi>>16&0xFFFF), uintptr(hi>>32&0xFFFF)
	n := len(w.buf) - w.head
	if len(op) > abi.MaxStringLen || n > abi.MaxContentLen {
		return replyTooLarge()
	}
	head := fixedLen + int(id+meta+resource) + len(op)
	if head > w.head {
		w.moveContent(head)
	}
	// The envelope, head and content, ends w.buf: made without a bounds
	// check, since head <= w.head <= len(w.buf).
	d := unsafe.Add(unsafe.Pointer(unsafe.SliceData(w.buf)), w.head-head)
	b := bytesAt((*byte)(d), len(w.buf)-(w.head-head))
	putLE16(d, uint16(abi.FormatV1)) // format; flags 0: not sync
	putLE64(unsafe.Add(d, 2), uint64(w.timestamp))
	putLE64(unsafe.Add(d, 10), lo<<16&0xFFFF_0000|lo&0xFFFF_FFFF_0000_0000) // id as parent_id; resource_version, source
	putLE64(unsafe.Add(d, 18), hi&0xFFFF|uint64(len(op))<<16|hi&0xFFFF_0000_0000)
	putLE32(unsafe.Add(d, 24), uint32(n))
	// The request's id becomes parent_id; resource_version, source and
	// group follow, back to back in both envelopes, and in one run with
	// the id when the request has no parent_id, as requests rarely do.
	src, dst := unsafe.Add(p, fixedLen), unsafe.Add(d, fixedLen)
	if parent == 0 {
		move(dst, src, id+meta)
	} else {
		move(dst, src, id)
		move(unsafe.Add(dst, id), unsafe.Add(src, id+parent), meta)
	}
	if dst = unsafe.Add(dst, id+meta); len(op) == 8 { // "response", a word
		putLE64(dst, le64(unsafe.Pointer(unsafe.StringData(op))))
	} else {
		move(dst, unsafe.Pointer(unsafe.StringData(op)), uintptr(len(op)))
	}
	move(unsafe.Add(dst, len(op)), unsafe.Add(src, id+parent+meta+reqOp), resource)
	return b, abi.OK
}

// defaultReplyHead returns the length of the head, all but the content, of
// the default reply to the request env: its strings but parent_id, and
// operation "response" for the request's.
func defaultReplyHead(env []byte) int {
	p := unsafe.Pointer(unsafe.SliceData(env))
	lo, hi := le64(unsafe.Add(p, 10)), le64(unsafe.Add(p, 18))
	return fixedLen + int(lo&0xFFFF+lo>>32&0xFFFF+lo>>48+hi&0xFFFF+hi>>32&0xFFFF) + len(abi.OpResponse)
}

// finishWith is finish for a reply whose route or resource version the
// handler has set: the fields come from w or, where it has not set them,
// from the request env.
func (w *ReplyWriter) finishWith(env []byte) ([]byte, abi.Code) {
	var req abi.Message
	_ = abi.DecodeAlias(env, &req) // decodeView has accepted env
	route, version := req.Route, req.Header.ResourceVersion
	if w.set&setRoute != 0 {
		route = w.route
	}
	if w.set&setVersion != 0 {
		version = w.version
	}
	if w.set&setOperation != 0 {
		route.Operation = w.op
	} else {
		route.Operation = abi.OpResponse
	}
	parent := req.Header.ID
	if !replyFits(parent, version, &route, len(w.buf)-w.head) {
		return replyTooLarge()
	}
	head := replyLen(parent, version, &route, 0)
	if head > w.head {
		w.moveContent(head)
	}
	b := w.buf[w.head-head:]
	putReply(b, parent, version, &route, w.timestamp, b[head:])
	return b, abi.OK
}

// moveContent makes room for a head of the given length in front of the
// content, for a reply whose head is longer than the default's. It is
// rare, and kept out of finish: inlined, it makes finish slower.
//
//go:noinline
func (w *ReplyWriter) moveContent(head int) {
	n := len(w.buf) - w.head
	if cap(w.buf) < head+n {
		grown := make([]byte, head+n, max(head+n, 2*cap(w.buf)))
		copy(grown[head:], w.buf[w.head:])
		w.buf = grown
	} else {
		old := w.head
		w.buf = w.buf[:head+n]
		copy(w.buf[head:], w.buf[old:old+n])
	}
	w.head = head
}

// move copies n bytes from src to dst, which must not overlap. From 8 to
// 16 bytes, a short field's, it copies two words, which may overlap each
// other, inline: a memmove is a call, ~20 ns in wasm.
func move(dst, src unsafe.Pointer, n uintptr) {
	if n-8 <= 8 {
		putLE64(dst, le64(src))
		putLE64(unsafe.Add(dst, n-8), le64(unsafe.Add(src, n-8)))
		return
	}
	copy(bytesAt((*byte)(dst), int(n)), bytesAt((*byte)(src), int(n)))
}
