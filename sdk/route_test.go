//go:build !wasip1

package sdk_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
)

// TestRouteRequest: what the servicebus frames decodes to the same
// request, header lines in order; content that is not the framing is
// refused with abi.ErrHTTPFraming.
func TestRouteRequest(t *testing.T) {
	in := abi.HTTPRequest{Method: "PUT", URL: "http://127.0.0.1:8080/a?b=1", Header: [][2]string{{"X-A", "1"}, {"X-A", "2: two"}, {"Y", ""}},
		Body: []byte("\n\x00body\n")}
	r, err := sdk.RouteRequest(&sdk.Message{Content: abi.AppendHTTPRequest(nil, &in)})
	if err != nil || r.Method != in.Method || r.URL != in.URL || len(r.Header) != 3 || r.Header[1] != in.Header[1] || r.Header[2] != in.Header[2] ||
		!bytes.Equal(r.Body, in.Body) {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range []string{"", "GET\n\n", " http://a/\n\n", "GET http://a/\nX\n\n", "GET http://a/\nX: y\n"} {
		if _, err := sdk.RouteRequest(&sdk.Message{Content: []byte(bad)}); !errors.Is(err, abi.ErrHTTPFraming) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestHTTPHeader(t *testing.T) {
	h := sdk.HTTPHeader{{"Authorization", "Bearer x"}, {"X-A", "1"}, {"x-a", "2"}}
	if h.Get("authorization") != "Bearer x" || h.Get("X-A") != "1" || h.Get("none") != "" {
		t.Errorf("get: %v", h)
	}
	h.Del("AUTHORIZATION")
	h.Set("X-A", "3")
	h.Add("X-B", "4")
	if len(h) != 2 || h[0] != [2]string{"X-A", "3"} || h[1] != [2]string{"X-B", "4"} {
		t.Errorf("after del, set, add: %v", h)
	}
}

// TestReplyHTTP: a route's own answer is a response in the framing, the
// lines the framing cannot carry left out.
func TestReplyHTTP(t *testing.T) {
	m := (&sdk.Message{Header: sdk.Header{ID: "r1"}}).ReplyHTTP(401, sdk.HTTPHeader{{"Www-Authenticate", "Bearer"}, {"Bad", "a\nb"}}, []byte{0, 1})
	r, err := abi.DecodeHTTPResponse(m.Content)
	if m.Route.Operation != abi.OpResponse || m.Header.ParentID != "r1" || err != nil || r.Status != 401 || len(r.Header) != 1 ||
		r.Header[0] != [2]string{"Www-Authenticate", "Bearer"} || !bytes.Equal(r.Body, []byte{0, 1}) {
		t.Fatalf("%+v %q: %+v %v", m.Route, m.Content, r, err)
	}
	status, header, body, err := sdk.ParseHTTPResponse(m.Content)
	if status != 401 || header.Get("www-authenticate") != "Bearer" || !bytes.Equal(body, []byte{0, 1}) || err != nil {
		t.Errorf("parse: %d %v %q %v", status, header, body, err)
	}
}

// FuzzRouteRequest: any content is decoded or refused with
// abi.ErrHTTPFraming; what decodes encodes back to the same bytes.
func FuzzRouteRequest(f *testing.F) {
	f.Add([]byte("GET http://127.0.0.1:8080/x\nA: b\n\nbody"))
	f.Add([]byte("POST http://127.0.0.1:1/\n\n"))
	f.Fuzz(func(t *testing.T, content []byte) {
		r, err := sdk.RouteRequest(&sdk.Message{Content: content})
		if err != nil {
			if !errors.Is(err, abi.ErrHTTPFraming) {
				t.Fatal(err)
			}
			return
		}
		again := abi.AppendHTTPRequest(nil, &abi.HTTPRequest{Method: r.Method, URL: r.URL, Header: r.Header, Body: r.Body})
		if !bytes.Equal(again, content) {
			t.Fatalf("%q encodes back as %q", content, again)
		}
	})
}
