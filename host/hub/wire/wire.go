// Package wire is the cloud link's frame codec: KubeEdge's beehive message
// envelope as JSON, one message per websocket text frame
// (docs/hub.md, kubeedge-contract.md section 1.1).
//
// abi.Message carries its content as bytes; the envelope's content is
// untyped JSON, and KubeEdge's receivers assert one form per message kind
// (a string for keepalives, ACKs, MQTT uploads and state updates, an
// object for twin results and Kubernetes objects, base64 for Go []byte).
// Encode picks that form, the content Kind, from the route (UpstreamKind);
// Decode reports the form it found.
package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/edgehost/edgehost/abi"
)

// Kind is the JSON form of a message's content on the wire.
type Kind int

// The content kinds.
const (
	// KindNull is JSON null: no content.
	KindNull Kind = iota
	// KindString is a JSON string holding the content bytes as text.
	KindString
	// KindObject is the content bytes themselves, a JSON object or array.
	KindObject
	// KindBytes is a JSON string holding the content base64-encoded, as Go
	// encodes a []byte.
	KindBytes
	// KindScalar is a JSON number or boolean, kept as its JSON text.
	KindScalar
)

func (k Kind) String() string {
	switch k {
	case KindNull:
		return "null"
	case KindString:
		return "string"
	case KindObject:
		return "object"
	case KindBytes:
		return "bytes"
	case KindScalar:
		return "scalar"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Errors of Decode and Encode; each error returned wraps one of them.
var (
	// ErrMalformed: the frame is not a JSON envelope.
	ErrMalformed = errors.New("malformed frame")
	// ErrMissingField: a required envelope field is missing or empty.
	ErrMissingField = errors.New("missing field")
	// ErrContent: the content cannot take the kind asked for.
	ErrContent = errors.New("content does not fit its kind")
)

// header is the envelope's header; field order and names are beehive's.
type header struct {
	ID              string `json:"msg_id"`
	ParentID        string `json:"parent_msg_id,omitempty"`
	Timestamp       int64  `json:"timestamp"`
	ResourceVersion string `json:"resourceversion,omitempty"`
	Sync            bool   `json:"sync,omitempty"`
	Type            string `json:"type,omitempty"`
}

type route struct {
	Source    string `json:"source,omitempty"`
	Group     string `json:"group,omitempty"`
	Operation string `json:"operation,omitempty"`
	Resource  string `json:"resource,omitempty"`
}

type envelope struct {
	Header  *header         `json:"header"`
	Route   route           `json:"route"`
	Content json.RawMessage `json:"content"`
}

// Encode returns m as one frame with its content in the given kind. A
// KindObject or KindScalar content must be valid JSON of that form.
func Encode(m abi.Message, kind Kind) ([]byte, error) {
	if m.Header.ID == "" {
		return nil, fmt.Errorf("encode message: msg_id: %w", ErrMissingField)
	}
	content, err := encodeContent(m.Content, kind)
	if err != nil {
		return nil, fmt.Errorf("encode message %s (%s %s): %w", m.Header.ID, m.Route.Operation, m.Route.Resource, err)
	}
	env := envelope{
		Header: &header{ID: m.Header.ID, ParentID: m.Header.ParentID, Timestamp: m.Header.Timestamp,
			ResourceVersion: m.Header.ResourceVersion, Sync: m.Header.Sync},
		Route:   route{Source: m.Route.Source, Group: m.Route.Group, Operation: m.Route.Operation, Resource: m.Route.Resource},
		Content: content,
	}
	return json.Marshal(env)
}

var null = json.RawMessage("null")

func encodeContent(c []byte, kind Kind) (json.RawMessage, error) {
	switch kind {
	case KindNull:
		return null, nil
	case KindString:
		return json.Marshal(string(c))
	case KindBytes:
		return json.Marshal(base64.StdEncoding.EncodeToString(c))
	case KindObject:
		t := bytes.TrimSpace(c)
		if len(t) == 0 || t[0] != '{' && t[0] != '[' || !json.Valid(t) {
			return nil, fmt.Errorf("%w: want a JSON object or array", ErrContent)
		}
		return t, nil
	case KindScalar:
		if !json.Valid(c) {
			return nil, fmt.Errorf("%w: want a JSON number or boolean", ErrContent)
		}
		return bytes.TrimSpace(c), nil
	}
	return nil, fmt.Errorf("%w: unknown kind %d", ErrContent, int(kind))
}

// Decoded is one frame read from the wire.
type Decoded struct {
	// Message is the envelope as a bus message; Content holds a string's
	// text, an object's JSON, or nothing for null.
	Message abi.Message
	// Kind is the form the content had. A JSON string is KindString: the
	// wire cannot tell base64 from text, so the receiver decides.
	Kind Kind
	// Type is the header's type, which only the stream tunnel uses.
	Type string
}

// Decode parses one frame. It refuses a frame that is not a JSON object,
// has no header, or has no msg_id.
func Decode(frame []byte) (Decoded, error) {
	var env envelope
	if err := json.Unmarshal(frame, &env); err != nil {
		return Decoded{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if env.Header == nil {
		return Decoded{}, fmt.Errorf("%w: header", ErrMissingField)
	}
	if env.Header.ID == "" {
		return Decoded{}, fmt.Errorf("%w: header.msg_id", ErrMissingField)
	}
	d := Decoded{Type: env.Header.Type, Message: abi.Message{
		Header: abi.Header{ID: env.Header.ID, ParentID: env.Header.ParentID, Timestamp: env.Header.Timestamp,
			ResourceVersion: env.Header.ResourceVersion, Sync: env.Header.Sync},
		Route: abi.Route{Source: env.Route.Source, Group: env.Route.Group, Operation: env.Route.Operation, Resource: env.Route.Resource},
	}}
	c := bytes.TrimSpace(env.Content)
	switch {
	case len(c) == 0 || string(c) == "null":
		d.Kind = KindNull
	case c[0] == '"':
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return Decoded{}, fmt.Errorf("%w: content: %v", ErrMalformed, err)
		}
		d.Kind, d.Message.Content = KindString, []byte(s)
	case c[0] == '{' || c[0] == '[':
		d.Kind, d.Message.Content = KindObject, bytes.Clone(c)
	default:
		d.Kind, d.Message.Content = KindScalar, bytes.Clone(c)
	}
	return d, nil
}

// UpstreamKind is the content kind KubeEdge's cloud expects for a message
// the edge sends (kubeedge-contract.md sections 1.1 and 1.3):
//   - servicebus requests (no parent): base64 bytes;
//   - MQTT uploads (group user, op upload), device state updates,
//     membership/detail, node and pod patches: a string;
//   - otherwise an object if the content is a JSON object or array, null
//     if there is none, else a string (keepalive "ping", ACK "OK").
func UpstreamKind(m abi.Message) Kind {
	r := m.Route
	switch {
	case r.Source == "servicebus" && m.Header.ParentID == "":
		return KindBytes
	case r.Group == "user" && r.Operation == abi.OpUpload && r.Source != "servicebus",
		strings.HasSuffix(r.Resource, "/state/update"),
		r.Resource == "membership/detail",
		strings.Contains(r.Resource, "nodepatch/"), strings.Contains(r.Resource, "podpatch/"):
		return KindString
	}
	t := bytes.TrimSpace(m.Content)
	switch {
	case len(t) == 0:
		if len(m.Content) > 0 {
			return KindString
		}
		if r.Operation == abi.OpKeepalive || r.Operation == abi.OpResponse {
			return KindString
		}
		return KindNull
	case (t[0] == '{' || t[0] == '[') && json.Valid(t):
		return KindObject
	}
	return KindString
}
