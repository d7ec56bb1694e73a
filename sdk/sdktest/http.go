//go:build !wasip1

package sdktest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/iogrant"
)

// httpClient is the fake host's, as the real one: no proxy, no redirects.
var httpClient = &http.Client{Transport: &http.Transport{Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (i imports) HTTPRequest(data []byte, timeoutMS int32, out []byte) int32 {
	h := i.h
	h.keptHTTP = nil
	r, err := abi.DecodeHTTPRequest(data)
	if err != nil {
		return -int32(abi.Malformed)
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return -int32(abi.Malformed)
	}
	granted := false
	for _, g := range h.HTTP {
		if p, err := iogrant.ParseURLPattern(g); err == nil && p.Match(u) {
			granted = true
		}
	}
	if !granted {
		return -int32(abi.Denied)
	}
	ctx, cancel := context.WithDeadline(context.Background(), ioDeadline(timeoutMS))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(bytes.Clone(r.Body)))
	if err != nil {
		return -int32(abi.Malformed)
	}
	for _, kv := range r.Header {
		req.Header.Add(kv[0], kv[1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			return -int32(abi.Timeout)
		}
		return -int32(abi.Unreachable)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return -int32(abi.Unreachable)
	}
	res := abi.HTTPResponse{Status: resp.StatusCode, Body: body}
	for name, values := range resp.Header {
		for _, v := range values {
			res.Header = append(res.Header, [2]string{name, v})
		}
	}
	enc := abi.AppendHTTPResponse(nil, &res)
	if len(enc) > len(out) {
		h.keptHTTP = enc
		return int32(len(enc))
	}
	return int32(copy(out, enc))
}

func (i imports) HTTPReply(out []byte) int32 {
	if i.h.keptHTTP == nil {
		return -int32(abi.NotFound)
	}
	if len(i.h.keptHTTP) <= len(out) {
		copy(out, i.h.keptHTTP)
	}
	return int32(len(i.h.keptHTTP))
}
