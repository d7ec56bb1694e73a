package sdk

import (
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// Message is one edgehost message: header, route and content, laid out
// exactly as abi.Message, so (*abi.Message)(m) converts for free.
type Message abi.Message

// Header identifies a message; see abi.Header.
type Header = abi.Header

// Route says where a message comes from and what it is about; see abi.Route.
type Route = abi.Route

// Reply turns m into its own reply and returns it: operation "response",
// the given content, ParentID set to m's ID, ID and Timestamp cleared (the
// host fills them in), Sync cleared, and the route otherwise unchanged. It allocates
// nothing. Clone m first to keep the request as it was.
func (m *Message) Reply(content []byte) *Message {
	return m.ReplyOp(abi.OpResponse, content)
}

// ReplyOp is Reply with another operation, e.g. abi.OpError.
func (m *Message) ReplyOp(operation string, content []byte) *Message {
	m.Header.ParentID = m.Header.ID
	m.Header.ID = ""
	m.Header.Timestamp = 0
	m.Header.Sync = false
	m.Route.Operation = operation
	m.Content = content
	return m
}

// Clone returns a deep copy of m, with its strings and content in one new
// allocation. A handler keeps its request, or any part of it, beyond the
// call only through a clone (see HandlerFunc).
func (m *Message) Clone() *Message {
	c := *m
	h, r := &c.Header, &c.Route
	fields := [...]*string{&h.ID, &h.ParentID, &h.ResourceVersion, &r.Source, &r.Group, &r.Operation, &r.Resource}
	n := len(m.Content)
	for _, f := range fields {
		n += len(*f)
	}
	own := make([]byte, 0, n)
	for _, f := range fields {
		if len(*f) > 0 {
			start := len(own)
			own = append(own, *f...)
			*f = unsafe.String(&own[start], len(*f))
		}
	}
	if m.Content != nil {
		c.Content = append(own[len(own):len(own):n], m.Content...)
	}
	return &c
}
