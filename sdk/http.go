package sdk

import (
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// Outbound HTTP (ABI 1.3, SPEC §5.3): requests made by the host within the
// plugin's http grant. Errors are the abi codes: ErrDenied outside the
// grant, ErrTimeout when the wait ended, ErrUnreachable when the server
// cannot be reached (refused, no name, TLS failed).

// HTTPResponse is the answer to HTTPDo. Header holds the response's
// header lines, one per value, in order.
type HTTPResponse struct {
	Status int
	Header HTTPHeader
	Body   []byte
}

// httpBuf holds the request being encoded, reused.
var httpBuf []byte

// HTTPDo makes a request through the host and waits for the whole
// response, at most timeout (zero: until shortly before the call's own
// timeout). A status the server sends (404, 500) is a response, not an
// error; redirects are not followed.
func HTTPDo(method, url string, header HTTPHeader, body []byte, timeout time.Duration) (*HTTPResponse, error) {
	r := abi.HTTPRequest{Method: method, URL: url, Header: header, Body: body}
	httpBuf = abi.AppendHTTPRequest(httpBuf[:0], &r)
	ms := millis(timeout)
	b, err := fetch("http_request", url,
		func(o []byte) int32 { return hostHTTPRequest(httpBuf, ms, o) },
		hostHTTPReply)
	if err != nil {
		return nil, err
	}
	res, err := abi.DecodeHTTPResponse(b)
	if err != nil {
		return nil, wrap("edgehost http_request: response", err)
	}
	// The response aliases the host's reply buffer: copy what is kept.
	out := &HTTPResponse{Status: res.Status, Body: append([]byte(nil), res.Body...)}
	for _, kv := range res.Header {
		out.Header = append(out.Header, [2]string{strings.Clone(kv[0]), strings.Clone(kv[1])})
	}
	return out, nil
}
