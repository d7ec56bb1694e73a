package sdk

import (
	"errors"
	"strconv"

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
//     which turns m into its reply, is the allocation-free way to make one.
//   - (nil, nil): no reply; the message is consumed.
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
	handler HandlerFunc
	initFn  func(config []byte) error
	tickFn  func() error
	stopFn  func()
)

// Handle registers the message handler. A later call replaces it. Without
// a handler every message fails with abi.NoHandler.
func Handle(h HandlerFunc) { handler = h }

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
	// (edgehost_buffer). The SDK never writes it.
	exchange []byte
	// out holds encoded outgoing envelopes: replies, sends and requests.
	out []byte
	// in receives data from imports: KV values, key lists, request replies.
	in []byte
	// request is the message being handled, reused for every call.
	request Message
	// errorReply is the reply made from a handler's error.
	errorReply Message
)

// exchangeBuffer implements edgehost_buffer: an exchange buffer of at least
// n bytes, or nil for a negative n.
func exchangeBuffer(n int32) []byte {
	if n < 0 {
		return nil
	}
	if int(n) > len(exchange) || exchange == nil {
		exchange = make([]byte, max(int(n), minBuffer))
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
// exchange buffer, runs the handler and returns the encoded reply (empty for
// none), which stays valid until the next call.
func handleMessage(msgLen int32) ([]byte, abi.Code) {
	if msgLen < 0 || int(msgLen) > len(exchange) {
		return nil, abi.InvalidArgument
	}
	if handler == nil {
		return nil, abi.NoHandler
	}
	m := &request
	if err := abi.DecodeAlias(exchange[:msgLen], (*abi.Message)(m)); err != nil {
		LogError("handle: "+err.Error(), "len", strconv.Itoa(int(msgLen)))
		return nil, abi.Malformed
	}
	parent, route := m.Header.ID, m.Route
	reply, err := handler(m)
	if err != nil {
		if c, ok := err.(abi.Code); ok && c > abi.OK {
			return nil, c
		}
		errorReply = Message{Route: route, Content: []byte(err.Error())}
		errorReply.Route.Operation = abi.OpError
		reply = &errorReply
	}
	if reply == nil {
		return nil, abi.OK
	}
	return encodeReply(reply, parent)
}

// encodeReply encodes reply into out as the answer to the message whose ID
// is parent, without changing reply. The ID (always fresh) and a zero
// timestamp are left for the host to fill, which keeps the guest's share of
// a call small.
func encodeReply(reply *Message, parent string) ([]byte, abi.Code) {
	r := *reply
	r.Header.ID = ""
	r.Header.ParentID = parent
	r.Header.Sync = false
	b, err := encode(&r)
	if err != nil {
		LogError("handle: reply: " + err.Error())
		return nil, abi.TooLarge
	}
	return b, abi.OK
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
