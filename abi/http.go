package abi

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// HTTPRequest is an http_request's request (SPEC.md section 5.3).
type HTTPRequest struct {
	Method string
	URL    string
	// Header holds the header lines in order, as name/value pairs.
	Header [][2]string
	Body   []byte
}

// HTTPResponse is an http_request's response.
type HTTPResponse struct {
	Status int
	Header [][2]string
	Body   []byte
}

// ErrHTTPFraming is wrapped by the errors of DecodeHTTPRequest and
// DecodeHTTPResponse.
var ErrHTTPFraming = errors.New("bad http framing")

// framingError is an ErrHTTPFraming with what was wrong. The package
// stays off fmt (and net/url) because every Go guest links it: fmt alone
// adds reflect and hundreds of KB of machine code to each plugin.
type framingError string

func (e framingError) Error() string { return ErrHTTPFraming.Error() + ": " + string(e) }
func (e framingError) Unwrap() error { return ErrHTTPFraming }

// hostSetHeaders are set by the host; a request may not carry them.
var hostSetHeaders = []string{"host", "content-length", "transfer-encoding", "connection"}

// AppendHTTPRequest appends r in section 5.3's framing.
func AppendHTTPRequest(b []byte, r *HTTPRequest) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.URL...)
	b = append(b, '\n')
	return appendHeaderBody(b, r.Header, r.Body)
}

// AppendHTTPResponse appends r in section 5.3's framing.
func AppendHTTPResponse(b []byte, r *HTTPResponse) []byte {
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, '\n')
	return appendHeaderBody(b, r.Header, r.Body)
}

func appendHeaderBody(b []byte, h [][2]string, body []byte) []byte {
	for _, kv := range h {
		b = append(b, kv[0]...)
		b = append(b, ": "...)
		b = append(b, kv[1]...)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, body...)
}

// DecodeHTTPRequest parses and checks a request; the body aliases data.
func DecodeHTTPRequest(data []byte) (HTTPRequest, error) {
	line, rest, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return HTTPRequest{}, framingError("no request line")
	}
	method, rawURL, ok := strings.Cut(string(line), " ")
	if !ok || len(method) == 0 || len(method) > 16 || strings.Trim(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return HTTPRequest{}, framingError("method " + strconv.Quote(method) + " is not 1-16 of A-Z")
	}
	if !plainHTTPURL(rawURL) {
		return HTTPRequest{}, framingError("url " + strconv.Quote(rawURL) + " is not an absolute http(s) URL without user info or fragment")
	}
	h, body, err := decodeHeaderBody(rest)
	if err != nil {
		return HTTPRequest{}, err
	}
	for _, kv := range h {
		for _, n := range hostSetHeaders {
			if strings.EqualFold(kv[0], n) {
				return HTTPRequest{}, framingError("header " + kv[0] + " is set by the host")
			}
		}
	}
	return HTTPRequest{Method: method, URL: rawURL, Header: h, Body: body}, nil
}

// plainHTTPURL reports whether u is http:// or https://, a non-empty
// host, no user info, no fragment, and no space or control character.
// The host parses the URL fully before it checks the grant.
func plainHTTPURL(u string) bool {
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok {
		if rest, ok = strings.CutPrefix(u, "https://"); !ok {
			return false
		}
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority = rest[:i]
	}
	return authority != "" && !strings.Contains(authority, "@") && authority[0] != ':'
}

// DecodeHTTPResponse parses a response; the body aliases data.
func DecodeHTTPResponse(data []byte) (HTTPResponse, error) {
	line, rest, ok := bytes.Cut(data, []byte{'\n'})
	if !ok || len(line) != 3 {
		return HTTPResponse{}, framingError("no 3-digit status line")
	}
	status, err := strconv.Atoi(string(line))
	if err != nil || status < 100 {
		return HTTPResponse{}, framingError("status " + strconv.Quote(string(line)))
	}
	h, body, err := decodeHeaderBody(rest)
	if err != nil {
		return HTTPResponse{}, err
	}
	return HTTPResponse{Status: status, Header: h, Body: body}, nil
}

func decodeHeaderBody(data []byte) ([][2]string, []byte, error) {
	var h [][2]string
	for {
		line, rest, ok := bytes.Cut(data, []byte{'\n'})
		if !ok {
			return nil, nil, framingError("headers not ended by an empty line")
		}
		data = rest
		if len(line) == 0 {
			return h, data, nil
		}
		name, value, ok := strings.Cut(string(line), ": ")
		if !ok || !ValidHeaderName(name) || !ValidHeaderValue(value) {
			return nil, nil, framingError("header line " + strconv.Quote(string(line)) + " is not Name: value")
		}
		h = append(h, [2]string{name, value})
	}
}

// ValidHeaderName reports whether s is 1-128 of HTTP's token characters
// (RFC 9110: letters, digits and !#$%&'*+-.^_`|~), the names net/http
// sends.
func ValidHeaderName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// ValidHeaderValue reports whether s holds no control characters but
// tabs: printable ASCII, tabs and bytes 0x80-0xff (which net/http passes
// on as they are).
func ValidHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\t' && (c < ' ' || c == 0x7f) {
			return false
		}
	}
	return true
}
