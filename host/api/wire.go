package api

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/edgehost/edgehost/abi"
)

// MessageJSON is a message as the admin API reads and writes it: KubeEdge's
// JSON field names, with content inline when it is JSON, as a string when it
// is other UTF-8 text, and base64 (content_base64) otherwise.
type MessageJSON struct {
	Header        HeaderJSON      `json:"header"`
	Route         RouteJSON       `json:"route"`
	Content       json.RawMessage `json:"content,omitempty"`
	ContentBase64 []byte          `json:"content_base64,omitempty"`
}

// HeaderJSON is the header in KubeEdge's field names.
type HeaderJSON struct {
	ID              string `json:"msg_id,omitempty"`
	ParentID        string `json:"parent_msg_id,omitempty"`
	Timestamp       int64  `json:"timestamp,omitempty"`
	ResourceVersion string `json:"resourceversion,omitempty"`
	Sync            bool   `json:"sync,omitempty"`
}

// RouteJSON is the route in KubeEdge's field names.
type RouteJSON struct {
	Source    string `json:"source,omitempty"`
	Group     string `json:"group,omitempty"`
	Operation string `json:"operation,omitempty"`
	Resource  string `json:"resource,omitempty"`
}

// ToJSON converts a message for the API.
func ToJSON(m *abi.Message) MessageJSON {
	out := MessageJSON{
		Header: HeaderJSON{ID: m.Header.ID, ParentID: m.Header.ParentID, Timestamp: m.Header.Timestamp,
			ResourceVersion: m.Header.ResourceVersion, Sync: m.Header.Sync},
		Route: RouteJSON{Source: m.Route.Source, Group: m.Route.Group, Operation: m.Route.Operation, Resource: m.Route.Resource},
	}
	switch {
	case len(m.Content) == 0:
	case json.Valid(m.Content):
		out.Content = json.RawMessage(m.Content)
	case utf8.Valid(m.Content):
		s, _ := json.Marshal(string(m.Content))
		out.Content = s
	default:
		out.ContentBase64 = m.Content
	}
	return out
}

// FromJSON converts an API message. A JSON string content becomes its text;
// any other JSON value is kept as JSON bytes.
func FromJSON(j *MessageJSON) (abi.Message, error) {
	m := abi.Message{
		Header: abi.Header{ID: j.Header.ID, ParentID: j.Header.ParentID, Timestamp: j.Header.Timestamp,
			ResourceVersion: j.Header.ResourceVersion, Sync: j.Header.Sync},
		Route: abi.Route{Source: j.Route.Source, Group: j.Route.Group, Operation: j.Route.Operation, Resource: j.Route.Resource},
	}
	switch {
	case len(j.Content) > 0 && len(j.ContentBase64) > 0:
		return m, fmt.Errorf("message: content and content_base64 are both set; use one")
	case len(j.ContentBase64) > 0:
		m.Content = j.ContentBase64
	case len(j.Content) > 0 && j.Content[0] == '"':
		var s string
		if err := json.Unmarshal(j.Content, &s); err != nil {
			return m, fmt.Errorf("message: content: %w", err)
		}
		m.Content = []byte(s)
	case len(j.Content) > 0 && string(j.Content) != "null":
		m.Content = []byte(j.Content)
	}
	return m, nil
}
