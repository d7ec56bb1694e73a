package wasm

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/edgehost/edgehost/abi"
	"github.com/tetratelabs/wazero/api"
)

// httpClient makes the plugins' outbound requests (abi/SPEC.md section
// 5.3): no proxy, no redirects followed (each hop would need its own
// grant check), TLS verified against the host's roots. Deadlines come
// from each call's context.
var httpClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, ForceAttemptHTTP2: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// http_request(req_ptr, req_len, timeout_ms, out_ptr, out_cap) -> i32
func importHTTPRequest(inst *instance, mem api.Memory, stack []uint64) {
	inst.keptHTTP = nil
	data, valid := read(mem, stack[0], stack[1])
	out, validOut := read(mem, stack[3], stack[4])
	switch {
	case !valid || !validOut:
		stack[0] = fail(abi.InvalidArgument)
		return
	case len(data) > inst.p.limits.MaxMessageBytes:
		stack[0] = fail(abi.TooLarge)
		return
	}
	r, err := abi.DecodeHTTPRequest(data)
	if err != nil {
		inst.p.logger.Debug("http request malformed", "error", err)
		stack[0] = fail(abi.Malformed)
		return
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		stack[0] = fail(abi.Malformed)
		return
	}
	if !inst.allowHTTP(u) {
		stack[0] = inst.deny(abi.ImportHTTPRequest, "url", r.URL)
		return
	}
	ctx, cancel := inst.ioContext(inst.ioDeadline(api.DecodeI32(stack[2])))
	defer cancel()
	// The body is copied: the guest's memory may move while the request
	// is in flight (a retry of the transport reads it again).
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(bytes.Clone(r.Body)))
	if err != nil {
		stack[0] = fail(abi.Malformed)
		return
	}
	for _, kv := range r.Header {
		req.Header.Add(kv[0], kv[1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		inst.p.logger.Debug("http request failed", "url", r.URL, "error", err)
		stack[0] = fail(httpCode(err))
		return
	}
	defer resp.Body.Close()
	limit := inst.p.limits.MaxMessageBytes
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		stack[0] = fail(httpCode(err))
		return
	}
	res := abi.HTTPResponse{Status: resp.StatusCode, Body: body}
	for name, values := range resp.Header {
		for _, v := range values {
			if abi.ValidHeaderName(name) && abi.ValidHeaderValue(v) {
				res.Header = append(res.Header, [2]string{name, v})
			}
		}
	}
	enc := abi.AppendHTTPResponse(nil, &res)
	if len(enc) > limit {
		stack[0] = fail(abi.TooLarge)
		return
	}
	if len(enc) > len(out) {
		inst.keptHTTP = enc
	}
	stack[0] = output(out, enc)
}

// httpCode maps a failed request to its code.
func httpCode(err error) abi.Code {
	var uerr *url.Error
	if errors.As(err, &uerr) && uerr.Timeout() || isTimeout(err) {
		return abi.Timeout
	}
	return abi.Unreachable
}

// http_reply(out_ptr, out_cap) -> i32
func importHTTPReply(inst *instance, mem api.Memory, stack []uint64) {
	out, valid := read(mem, stack[0], stack[1])
	switch {
	case !valid:
		stack[0] = fail(abi.InvalidArgument)
	case inst.keptHTTP == nil:
		stack[0] = fail(abi.NotFound)
	default:
		stack[0] = output(out, inst.keptHTTP)
	}
}
