package abi

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// HostSource is the route source of a failure reply: the host's, not a
// plugin's. A plugin's messages always carry its own name as their source,
// and no plugin may be called "edgehost", so a requester can trust a reply
// from HostSource to come from the host (SPEC.md section 6.1).
const HostSource = "edgehost"

// Reasons a host fails a message, the Failure's Reason.
const (
	// FailureFault: the plugin faulted (Failure.Fault says how); the
	// instance was discarded.
	FailureFault = "fault"
	// FailureCode: the plugin returned a failure code (Failure.Code).
	FailureCode = "code"
	// FailureQuarantined: the plugin is quarantined after repeated faults.
	FailureQuarantined = "quarantined"
	// FailureTooLarge: the message is over the plugin's max message size.
	FailureTooLarge = "too_large"
	// FailureNoReceiver: no plugin receives the message's route.
	FailureNoReceiver = "no_receiver"
	// FailureLoop: the request would loop back into a plugin waiting for
	// its reply.
	FailureLoop = "loop"
	// FailureTimeout: the message's deadline passed before the plugin
	// took it.
	FailureTimeout = "timeout"
	// FailureUnavailable: the plugin is not running (disabled, failed to
	// load, being removed).
	FailureUnavailable = "unavailable"
)

// Failure is the content of a failure reply: JSON, with the reason a
// program acts on and the text a person reads.
type Failure struct {
	// Reason is one of the Failure* constants.
	Reason string `json:"reason"`
	// Code is the ABI code behind the failure, 0 when there is none.
	Code Code `json:"code"`
	// Fault is the kind of fault for reason fault: trap, timeout, memory,
	// malformed-reply, reply-too-large, stack or start.
	Fault string `json:"fault,omitempty"`
	// Plugin names the plugin the message was for, when there is one.
	Plugin string `json:"plugin,omitempty"`
	// Error describes the failure for a person.
	Error string `json:"error"`
}

// FailureReply is the host's failure reply to m: operation error, source
// HostSource, parent m, the rest of m's route, f as JSON content.
func (m *Message) FailureReply(f Failure) Message {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "waiting: a -> b" stays readable
	enc.Encode(f)            // strings and an int: always encodes
	r := m.Reply(OpError, bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	r.Route.Source = HostSource
	return r
}

// ParseFailure returns the Failure a reply carries, and whether it is a
// host failure reply at all (an error from HostSource whose content
// decodes); any other error reply is the answering module's own.
func ParseFailure(reply Message) (Failure, bool) {
	if reply.Route.Operation != OpError || reply.Route.Source != HostSource {
		return Failure{}, false
	}
	var f Failure
	if err := json.Unmarshal(reply.Content, &f); err != nil || f.Reason == "" {
		return Failure{}, false
	}
	return f, true
}

// String is the failure's text with its reason.
func (f Failure) String() string { return fmt.Sprintf("%s: %s", f.Reason, f.Error) }
