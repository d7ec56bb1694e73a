// Command route-auth is an edgehost route plugin (abi/SPEC.md section
// 10): the servicebus hands it the cloud's HTTP requests for the local
// services it receives, KubeEdge's HTTPRequest as content, and it answers
// with an HTTPResponse. Its policy:
//
//   - a request must carry "Authorization: Bearer T" where T is a token
//     stored in KV under token_prefix + T (config "tokens" seeds them at
//     init); otherwise it is answered 401 and goes nowhere;
//   - a path starting with strip_prefix has it replaced by add_prefix
//     (/api/... to /v1/...), and the headers in add_header are added; the
//     Authorization header is not passed on;
//   - the request is forwarded to http://127.0.0.1:{port}{path} through
//     the host's http_request, within the plugin's http grant;
//   - a 200 answer to a GET is kept in KV, and answered, marked
//     "X-Edgehost-Cache: stale", when the service cannot be reached.
//
// Config: {"tokens": ["t1"], "token_prefix": "token/", "strip_prefix":
// "/api/", "add_prefix": "/v1/", "add_header": {"X-Edge-Route":
// "route-auth"}}.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/edgehost/edgehost/sdk"
)

// Config is the plugin's configuration.
type Config struct {
	Tokens      []string          `json:"tokens"`
	TokenPrefix string            `json:"token_prefix"`
	StripPrefix string            `json:"strip_prefix"`
	AddPrefix   string            `json:"add_prefix"`
	AddHeader   map[string]string `json:"add_header"`
}

// request and response are KubeEdge's HTTPRequest and HTTPResponse.
type request struct {
	Header http.Header `json:"header"`
	Body   []byte      `json:"body"`
	Method string      `json:"method"`
	URL    string      `json:"url"`
}

type response struct {
	Header     http.Header `json:"header"`
	StatusCode int         `json:"status_code"`
	Body       []byte      `json:"body"`
}

// cachePrefix keys the kept answers, by {port}:{path}.
const cachePrefix = "cache/"

var config = Config{TokenPrefix: "token/"}

func init() {
	sdk.OnInit(func(raw []byte) error {
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &config); err != nil {
				return fmt.Errorf("route-auth: config: %w", err)
			}
		}
		if config.TokenPrefix == "" {
			return errors.New("route-auth: config: token_prefix must not be empty")
		}
		for _, t := range config.Tokens {
			if err := sdk.KVPut(config.TokenPrefix+t, []byte{1}); err != nil {
				return err
			}
		}
		return nil
	})
	sdk.Handle(handle)
}

// handle answers one request.
func handle(m *sdk.Message) (*sdk.Message, error) {
	var req request
	if err := json.Unmarshal(m.Content, &req); err != nil {
		return answer(m, response{StatusCode: http.StatusBadRequest, Body: []byte("route-auth: not an HTTPRequest: " + err.Error())})
	}
	if req.Method == "" {
		req.Method = m.Route.Operation
	}
	port, path, ok := strings.Cut(m.Route.Resource, ":")
	if !ok {
		return answer(m, response{StatusCode: http.StatusBadRequest, Body: []byte("route-auth: resource is not {port}:{path}")})
	}
	if !authorized(req.Header.Get("Authorization")) {
		return answer(m, response{StatusCode: http.StatusUnauthorized, Header: http.Header{"Www-Authenticate": {"Bearer"}},
			Body: []byte("route-auth: missing or unknown bearer token")})
	}
	if config.StripPrefix != "" && strings.HasPrefix(path, config.StripPrefix) {
		path = config.AddPrefix + path[len(config.StripPrefix):]
	}
	header := http.Header{}
	for k, vs := range req.Header {
		if http.CanonicalHeaderKey(k) != "Authorization" {
			header[k] = vs
		}
	}
	for k, v := range config.AddHeader {
		header.Set(k, v)
	}
	key := cachePrefix + m.Route.Resource
	resp, err := sdk.HTTPDo(req.Method, "http://127.0.0.1:"+port+path, sdk.HTTPHeader(header), req.Body, 0)
	switch {
	case errors.Is(err, sdk.ErrUnreachable) || errors.Is(err, sdk.ErrTimeout):
		if kept, ok, kerr := sdk.KVGet(key); kerr == nil && ok && req.Method == http.MethodGet {
			var r response
			if json.Unmarshal(kept, &r) == nil {
				r.Header.Set("X-Edgehost-Cache", "stale")
				return answer(m, r)
			}
		}
		return answer(m, response{StatusCode: http.StatusBadGateway, Body: []byte("route-auth: service unreachable and nothing cached: " + err.Error())})
	case err != nil:
		return nil, err
	}
	out := response{Header: http.Header(resp.Header), StatusCode: resp.Status, Body: resp.Body}
	if req.Method == http.MethodGet && resp.Status == http.StatusOK {
		if b, err := json.Marshal(out); err == nil {
			if err := sdk.KVPut(key, b); err != nil {
				sdk.LogWarn("answer not cached", "resource", m.Route.Resource, "error", err.Error())
			}
		}
	}
	return answer(m, out)
}

// authorized reports whether the Authorization value names a stored token.
func authorized(v string) bool {
	token, ok := strings.CutPrefix(v, "Bearer ")
	if !ok || token == "" {
		return false
	}
	_, found, err := sdk.KVGet(config.TokenPrefix + token)
	return err == nil && found
}

func answer(m *sdk.Message, r response) (*sdk.Message, error) {
	if r.Header == nil {
		r.Header = http.Header{}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return m.Reply(b), nil
}

func main() {}
