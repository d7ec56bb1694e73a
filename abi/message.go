// Package abi is edgehost's plugin ABI in Go: the message envelope, its
// binary encoding, and the names and numbers fixed by abi/SPEC.md.
//
// Host and plugin SDK both use this package, so it imports nothing outside
// the standard library and never panics on bad input.
package abi

import "strings"

// Message is one unit of work, shaped like KubeEdge's beehive message so the
// cloud side can read it without translation.
type Message struct {
	Header  Header
	Route   Route
	Content []byte
}

// Header identifies a message and, for replies, the request it answers.
type Header struct {
	// ID is unique per message (a UUID by convention).
	ID string
	// ParentID is the ID of the request this message answers; empty otherwise.
	ParentID string
	// Timestamp is the creation time in Unix milliseconds.
	Timestamp int64
	// ResourceVersion is the Kubernetes resource version the content carries.
	ResourceVersion string
	// Sync marks a request whose sender waits for the reply.
	Sync bool
	// Chain is the host's record of the message chain this message is part
	// of. It is not in the envelope: a guest never sees or sets it.
	Chain Chain
}

// MaxHops is the longest chain of messages the host lets plugins make: a
// message made while handling one that is MaxHops deep is refused with
// Loop (abi/SPEC.md section 5).
const MaxHops = 16

// Chain records how a message came to be, so the host can stop loops of
// plugins messaging themselves (abi/SPEC.md section 5). Only the host sets
// it, from the message the sending plugin is handling.
type Chain struct {
	// Hops counts the messages before this one in its chain: 0 for a
	// message made outside any handling (by a tick, an MQTT delivery's
	// sender, a native module), the handled message's Hops + 1 otherwise.
	Hops int
	// Waiting names the plugins whose calls wait for this request's reply,
	// directly or through requests of their own, oldest first, separated
	// by single spaces (plugin names have none); empty for a message that
	// is not a request. A request to one of them would wait for itself. A
	// string, not a slice, keeps Header comparable.
	Waiting string
}

// Waits reports whether the plugin named name is among c.Waiting.
func (c Chain) Waits(name string) bool {
	for w := c.Waiting; w != ""; {
		var head string
		head, w, _ = strings.Cut(w, " ")
		if head == name {
			return true
		}
	}
	return false
}

// Route says where a message comes from and what it is about.
type Route struct {
	Source    string
	Group     string
	Operation string
	Resource  string
}

// Operations used by the host and by KubeEdge's cloud side.
const (
	OpInsert    = "insert"
	OpDelete    = "delete"
	OpQuery     = "query"
	OpUpdate    = "update"
	OpPatch     = "patch"
	OpUpload    = "upload"
	OpResponse  = "response"
	OpError     = "error"
	OpKeepalive = "keepalive"
	OpPublish   = "publish"
	OpSubscribe = "subscribe"
	OpMessage   = "message"
)

// Reply returns a message answering m: a new id, ParentID set to m's id, the
// same route with the given operation, and the given content. The caller
// fills in the new message's ID and Timestamp.
func (m *Message) Reply(operation string, content []byte) Message {
	r := Message{Route: m.Route, Content: content}
	r.Header.ParentID = m.Header.ID
	r.Route.Operation = operation
	return r
}
