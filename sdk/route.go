package sdk

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// Route plugins (SPEC §10): the servicebus hands a route plugin each cloud
// request it receives as an HTTP request in SPEC §5.3's framing, addressed
// to the local service (http://127.0.0.1:{port}{path}), and takes the
// answer in the response framing, which is what http_request returns. So
// a plugin reads the request with RouteRequest, changes what its policy
// says, and either answers itself with ReplyHTTP or forwards with
// HTTPForward and replies with what came back. No JSON is involved: the
// host decodes and encodes KubeEdge's JSON once, natively.

// HTTPHeader is an HTTP header as its lines, name and value, one per value
// and in order, as SPEC §5.3's framing carries it. Names compare
// case-insensitively. The SDK has its own type rather than net/http's
// Header so that a plugin does not link net/http: that brings crypto/tls
// and megabytes of machine code into every plugin.
type HTTPHeader [][2]string

// Get returns the first value of name, or "".
func (h HTTPHeader) Get(name string) string {
	for _, kv := range h {
		if strings.EqualFold(kv[0], name) {
			return kv[1]
		}
	}
	return ""
}

// Del removes every line of name.
func (h *HTTPHeader) Del(name string) {
	out := (*h)[:0]
	for _, kv := range *h {
		if !strings.EqualFold(kv[0], name) {
			out = append(out, kv)
		}
	}
	*h = out
}

// Set replaces the lines of name with one line of value.
func (h *HTTPHeader) Set(name, value string) {
	h.Del(name)
	h.Add(name, value)
}

// Add appends a line.
func (h *HTTPHeader) Add(name, value string) { *h = append(*h, [2]string{name, value}) }

// HTTPRequest is an HTTP request in SPEC §5.3's terms: what a route plugin
// receives and what HTTPForward sends.
type HTTPRequest struct {
	Method string
	// URL is absolute: http://127.0.0.1:{port}{path} for a route's request.
	URL    string
	Header HTTPHeader
	Body   []byte
}

// RouteRequest decodes the cloud request a route plugin receives, m's
// content. Strings and body alias m.Content: clone m to keep any of them
// beyond the call. The host framed the request, so only the framing is
// checked, not the URL or the header syntax (abi.DecodeHTTPRequest does
// that, at several times the cost in a plugin).
func RouteRequest(m *Message) (*HTTPRequest, error) {
	b := m.Content
	line, rest, ok := cutLine(b)
	if !ok {
		return nil, errRouteFraming
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return nil, errRouteFraming
	}
	r := &HTTPRequest{Method: alias(line[:sp]), URL: alias(line[sp+1:])}
	for {
		if line, rest, ok = cutLine(rest); !ok {
			return nil, errRouteFraming
		}
		if len(line) == 0 {
			r.Body = rest
			return r, nil
		}
		i := bytes.Index(line, []byte(": "))
		if i <= 0 {
			return nil, errRouteFraming
		}
		r.Header = append(r.Header, [2]string{alias(line[:i]), alias(line[i+2:])})
	}
}

// errRouteFraming is RouteRequest's error for content that is not a
// request in SPEC §5.3's framing.
var errRouteFraming = wrap("edgehost route request", abi.ErrHTTPFraming)

// alias views b as a string without copying it.
func alias(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// cutLine splits b at its first LF.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

// HTTPForward makes r through the host, as HTTPDo does, and returns the
// response in SPEC §5.3's framing: the content of a route plugin's reply
// as it is (m.Reply(resp)). ParseHTTPResponse reads it.
func HTTPForward(r *HTTPRequest, timeout time.Duration) ([]byte, error) {
	httpBuf = abi.AppendHTTPRequest(httpBuf[:0], &abi.HTTPRequest{Method: r.Method, URL: r.URL, Header: r.Header, Body: r.Body})
	ms := millis(timeout)
	b, err := fetch("http_request", r.URL,
		func(o []byte) int32 { return hostHTTPRequest(httpBuf, ms, o) },
		hostHTTPReply)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// ParseHTTPResponse decodes a response in SPEC §5.3's framing (what
// HTTPForward returns). Header and body alias b.
func ParseHTTPResponse(b []byte) (status int, header HTTPHeader, body []byte, err error) {
	r, err := abi.DecodeHTTPResponse(b)
	if err != nil {
		return 0, nil, nil, wrap("edgehost http response", err)
	}
	return r.Status, r.Header, r.Body, nil
}

// AppendHTTPResponse appends a response in SPEC §5.3's framing to b: a
// route plugin's own answer (see ReplyHTTP). Header lines that the framing
// cannot carry are left out.
func AppendHTTPResponse(b []byte, status int, header HTTPHeader, body []byte) []byte {
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, '\n')
	for _, kv := range header {
		if abi.ValidHeaderName(kv[0]) && abi.ValidHeaderValue(kv[1]) {
			b = append(b, kv[0]...)
			b = append(b, ": "...)
			b = append(b, kv[1]...)
			b = append(b, '\n')
		}
	}
	b = append(b, '\n')
	return append(b, body...)
}

// ReplyHTTP turns m into a route plugin's answer (SPEC §10): operation
// response, status (100-999), header and body in SPEC §5.3's framing.
func (m *Message) ReplyHTTP(status int, header HTTPHeader, body []byte) *Message {
	return m.Reply(AppendHTTPResponse(nil, status, header, body))
}
