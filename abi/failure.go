package abi

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/edgehost/edgehost/sdk/jsonlite"
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
	r := m.Reply(OpError, f.AppendJSON(nil))
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
	if err := f.UnmarshalJSON(reply.Content); err != nil || f.Reason == "" {
		return Failure{}, false
	}
	return f, true
}

// String is the failure's text with its reason.
func (f Failure) String() string { return f.Reason + ": " + f.Error }

// The failure's JSON is written by hand and read with sdk/jsonlite, not
// with encoding/json: every Go guest links this package, and encoding/json
// with fmt and reflect would add ~180 KB to each module and ~4× that in
// machine code.

// AppendJSON appends f as encoding/json would marshal it with HTML
// escaping off: {"reason","code","fault" if set,"plugin" if set,"error"}.
func (f Failure) AppendJSON(b []byte) []byte {
	b = append(b, `{"reason":`...)
	b = appendJSONString(b, f.Reason)
	b = append(b, `,"code":`...)
	b = strconv.AppendInt(b, int64(f.Code), 10)
	if f.Fault != "" {
		b = append(b, `,"fault":`...)
		b = appendJSONString(b, f.Fault)
	}
	if f.Plugin != "" {
		b = append(b, `,"plugin":`...)
		b = appendJSONString(b, f.Plugin)
	}
	b = append(b, `,"error":`...)
	b = appendJSONString(b, f.Error)
	return append(b, '}')
}

// appendJSONString appends s quoted as encoding/json does without HTML
// escaping: invalid UTF-8 becomes U+FFFD, U+2028 and U+2029 are escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < ' ':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// UnmarshalJSON reads a failure's JSON object as json.Unmarshal would
// read it into a Failure (sdk/jsonlite, which imports nothing of edgehost's).
func (f *Failure) UnmarshalJSON(data []byte) error {
	d := jsonlite.NewDecoder(data)
	d.Object([]string{"reason", "code", "fault", "plugin", "error"}, func(name string) {
		switch name {
		case "reason":
			d.String(&f.Reason)
		case "fault":
			d.String(&f.Fault)
		case "plugin":
			d.String(&f.Plugin)
		case "error":
			d.String(&f.Error)
		case "code":
			n := int64(f.Code)
			d.Int64(&n)
			if n < math.MinInt32 || n > math.MaxInt32 {
				d.Fail("code " + strconv.FormatInt(n, 10) + " is not an int32")
				return
			}
			f.Code = Code(n)
		}
	})
	return d.Finish()
}
