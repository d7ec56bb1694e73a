package abi

import (
	"bytes"
	"errors"
	"testing"
)

func TestHTTPFramingRoundTrip(t *testing.T) {
	req := HTTPRequest{Method: "POST", URL: "http://127.0.0.1:8080/a?b=1", Header: [][2]string{{"X-A", "1"}, {"X-A", "2"}},
		Body: []byte("\n\x00binary\nbody")}
	got, err := DecodeHTTPRequest(AppendHTTPRequest(nil, &req))
	if err != nil || got.Method != req.Method || got.URL != req.URL || len(got.Header) != 2 || got.Header[1] != req.Header[1] ||
		!bytes.Equal(got.Body, req.Body) {
		t.Fatalf("%+v %v", got, err)
	}
	resp := HTTPResponse{Status: 201, Header: [][2]string{{"Content-Type", "x/y"}}, Body: []byte{0, 1, '\n'}}
	back, err := DecodeHTTPResponse(AppendHTTPResponse(nil, &resp))
	if err != nil || back.Status != 201 || back.Header[0] != resp.Header[0] || !bytes.Equal(back.Body, resp.Body) {
		t.Fatalf("%+v %v", back, err)
	}
	for _, bad := range []string{"", "GET\n\n", "get http://a/\n\n", "GET ftp://a/\n\n", "GET http://u@a/\n\n", "GET http://a/\nHost: b\n\n",
		"GET http://a/\nX: \r\n\n", "GET http://a/\nX:1\n\n", "GET http://a/\n",
		"GET http://a/#f\n\n", "GET http:///x\n\n", "GET http://:80/\n\n", "GET http://a/ b\n\n", "GET http://a/?q=@x#\n\n"} {
		if _, err := DecodeHTTPRequest([]byte(bad)); !errors.Is(err, ErrHTTPFraming) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// FuzzDecodeHTTPRequest: any input is decoded or refused with
// ErrHTTPFraming, and what decodes encodes back to the same bytes.
func FuzzDecodeHTTPRequest(f *testing.F) {
	f.Add([]byte("GET http://127.0.0.1:8080/x\nA: b\n\nbody"))
	f.Add([]byte("POST https://h/\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeHTTPRequest(data)
		if err != nil {
			if !errors.Is(err, ErrHTTPFraming) {
				t.Fatal(err)
			}
			return
		}
		if again := AppendHTTPRequest(nil, &r); !bytes.Equal(again, data) {
			t.Fatalf("%q encodes back as %q", data, again)
		}
	})
}
