package sdk

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// HandlerFunc handles one message and returns its reply.
//
// m and everything it holds (its strings and its Content) belong to the SDK
// and are valid only until the handler returns: they point into the
// exchange buffer, which the host overwrites with the next message. This is
// what makes a call allocation-free; a handler that keeps anything of its
// request beyond the call keeps m.Clone(), or strings.Clone / bytes.Clone
// of the field it needs (assigning a string does not copy its bytes;
// decoding JSON from m.Content does). sdktest overwrites the buffer after
// every call so that unit tests catch a handler that breaks this rule.
//
// Return values:
//   - (reply, nil): reply is sent back. The SDK sets its ParentID (the
//     request's ID), clears its ID and Sync; the host gives it a fresh ID and, when
//     Timestamp is zero, the current time (SPEC §4). m.Reply(content),
//     which turns m into its reply, is the allocation-free way to make one;
//     for content built per call without allocating, see HandleReply.
//   - (nil, nil) or (_, NoReply): no reply; the message is consumed.
//   - (_, err): an application failure. The SDK replies with operation
//     "error" and content err.Error(), as SPEC §4 asks. Only when err is an
//     abi.Code itself (not wrapped), e.g. abi.NoHandler, does the call fail
//     with that code instead of replying.
//
// A panic is not recovered: it traps, and the host discards the instance
// and counts a fault (SPEC §7), which is what a bug should do.
type HandlerFunc func(m *Message) (*Message, error)

// Callbacks registered by the plugin, usually from an init function.
var (
	handler      HandlerFunc
	replyHandler ReplyHandlerFunc
	initFn       func(config []byte) error
	tickFn       func() error
	stopFn       func()
)

// Handle registers the message handler. A later call of Handle or
// HandleReply replaces it. Without a handler every message fails with
// abi.NoHandler.
func Handle(h HandlerFunc) { handler, replyHandler = h, nil }

// OnInit registers f to run at edgehost_init with the plugin's config
// (opaque bytes, JSON by convention, possibly empty; f may keep it). An
// error refuses to start the plugin: it is logged, and its code is the
// abi.Code it wraps, or abi.Internal.
func OnInit(f func(config []byte) error) { initFn = f }

// OnTick registers f to run at each edgehost_tick. An error is logged and
// returned to the host as the abi.Code it wraps, or abi.Internal.
func OnTick(f func() error) { tickFn = f }

// OnStop registers f to run at edgehost_stop, before an orderly discard of
// the instance (never after a fault).
func OnStop(f func()) { stopFn = f }

// minBuffer is the smallest size the SDK allocates for a buffer.
const minBuffer = 4096

// The SDK's buffers, kept reachable from globals and reused; each grows
// only when a call needs more.
var (
	// exchange is where the host writes config and messages
	// (edgehost_buffer). The SDK never writes it. Its capacity has a
	// spare byte past its length, and is at least minBuffer: decodeView
	// relies on both.
	exchange []byte
	// out holds encoded outgoing envelopes: replies, sends and requests.
	out []byte
	// in receives data from imports: KV values, key lists, request replies.
	in []byte
	// request is the message being handled, reused for every call.
	request Message
	// errorReply is the reply made from a handler's error.
	errorReply Message
	// replyWriter builds the replies of a ReplyHandlerFunc, reused.
	replyWriter ReplyWriter
)

// exchangeBuffer implements edgehost_buffer: an exchange buffer of at least
// n bytes, or nil for a negative n.
func exchangeBuffer(n int32) []byte {
	if n < 0 {
		return nil
	}
	if int(n) > len(exchange) || exchange == nil {
		size := max(int(n), minBuffer)
		exchange = make([]byte, size, size+1)
	}
	return exchange
}

// initPlugin implements edgehost_init.
func initPlugin(configLen int32) abi.Code {
	if configLen < 0 || int(configLen) > len(exchange) {
		return abi.InvalidArgument
	}
	config := append([]byte(nil), exchange[:configLen]...)
	if initFn == nil {
		return abi.OK
	}
	return failure("init", initFn(config))
}

// tick implements edgehost_tick.
func tick() abi.Code {
	if tickFn == nil {
		return abi.OK
	}
	return failure("tick", tickFn())
}

// stop implements edgehost_stop.
func stop() {
	if stopFn != nil {
		stopFn()
	}
}

// failure logs a callback's error and returns its code for the host.
func failure(what string, err error) abi.Code {
	if err == nil {
		return abi.OK
	}
	LogError(what+" failed", "error", err.Error())
	var c abi.Code
	if errors.As(err, &c) && c > abi.OK {
		return c
	}
	return abi.Internal
}

// handleMessage implements edgehost_handle: it decodes the envelope in the
// exchange buffer into views, runs the handler and returns the encoded
// reply (empty for none), which stays valid until the next call.
//
// It saves nothing of the request before calling the handler, which may
// change m: what a reply needs of the request afterwards (its ID, its route
// for an error reply) is read again from the exchange buffer, which the
// handler cannot change but for Content.
func handleMessage(msgLen int32) ([]byte, abi.Code) {
	if msgLen < 0 || int(msgLen) > len(exchange) {
		return nil, abi.InvalidArgument
	}
	if handler == nil && replyHandler == nil {
		return nil, abi.NoHandler
	}
	env := exchange[:msgLen]
	m := &request
	if err := decodeView(env, m); err != nil {
		LogError("handle: "+err.Error(), "len", strconv.Itoa(int(msgLen)))
		return nil, abi.Malformed
	}
	if replyHandler != nil {
		w := &replyWriter
		w.reset(defaultReplyHead(env))
		if err := replyHandler(m, w); err != nil {
			return handlerFailed(err, env)
		}
		return w.finish(env)
	}
	reply, err := handler(m)
	if err != nil {
		return handlerFailed(err, env)
	}
	if reply == nil {
		return nil, abi.OK
	}
	return encodeReply(reply, requestID(env))
}

// requestID returns the ID of the request env, which decodeView accepted.
func requestID(env []byte) string {
	p := unsafe.Add(unsafe.Pointer(unsafe.SliceData(env)), fixedLen)
	return stringAt((*byte)(p), int(binary.LittleEndian.Uint16(env[10:])))
}

// handlerFailed turns a handler's error into the call's outcome: a bare
// abi.Code fails the call, NoReply consumes the message, and any other
// error becomes a reply with operation "error" and content err.Error() on
// the route of the request env.
func handlerFailed(err error, env []byte) ([]byte, abi.Code) {
	if c, ok := err.(abi.Code); ok && c > abi.OK {
		return nil, c
	}
	if err == NoReply {
		return nil, abi.OK
	}
	r := &errorReply
	_ = decodeView(env, r) // it has accepted env once
	r.Route.Operation = abi.OpError
	r.Header.ResourceVersion, r.Header.Timestamp = "", 0
	r.Content = []byte(err.Error())
	return encodeReply(r, r.Header.ID)
}

// encodeReply encodes reply into out as the answer to the message whose ID
// is parent, without changing reply. The ID (always fresh) and a zero
// timestamp are left for the host to fill, which keeps the guest's share of
// a call small.
func encodeReply(reply *Message, parent string) ([]byte, abi.Code) {
	version, route, content := reply.Header.ResourceVersion, &reply.Route, reply.Content
	if !replyFits(parent, version, route, len(content)) {
		return replyTooLarge()
	}
	need := replyLen(parent, version, route, len(content))
	if cap(out) < need {
		out = make([]byte, max(need, 2*cap(out), minBuffer))
	}
	b := out[:need]
	putReply(b, parent, version, route, reply.Header.Timestamp, content)
	return b, abi.OK
}

// replyTooLarge logs and reports a reply whose fields do not fit the
// envelope.
func replyTooLarge() ([]byte, abi.Code) {
	LogError("handle: reply does not fit the envelope")
	return nil, abi.TooLarge
}

// encode encodes m into the reused out buffer.
func encode(m *Message) ([]byte, error) {
	am := (*abi.Message)(m)
	need := am.EncodedLen()
	if cap(out) < need {
		out = make([]byte, max(need, 2*cap(out), minBuffer))
	}
	n, err := abi.EncodeTo(out[:need], am)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}
