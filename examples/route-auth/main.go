// Command route-auth is an edgehost route plugin (abi/SPEC.md section
// 10): the servicebus hands it the cloud's HTTP requests for the local
// services it receives, in the framing of the outbound HTTP import, and
// it answers with an HTTP response in the same framing. Its policy:
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
// Given an app's request to the cloud (operation upload, edgecore's
// {"method","targetURL","payload"}), it refuses a target starting with one
// of upstream_deny and rewrites a target prefix by upstream_rewrite.
//
// Config: {"tokens": ["t1"], "token_prefix": "token/", "strip_prefix":
// "/api/", "add_prefix": "/v1/", "add_header": {"X-Edge-Route":
// "route-auth"}, "upstream_deny": ["http://10.0.0.9/"], "upstream_rewrite":
// {"http://old/": "http://new/"}}.
package main

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/jsonlite"
)

// Config is the plugin's configuration. It is read with sdk/jsonlite, as
// the app requests are: encoding/json (and fmt) would add ~1 MB to the
// module and ~5 MB of machine code on the host.
type Config struct {
	Tokens      []string
	TokenPrefix string
	StripPrefix string
	AddPrefix   string
	AddHeader   map[string]string
	// UpstreamDeny and UpstreamRewrite are the policy for apps' requests
	// to the cloud: target URL prefixes refused, and prefixes replaced.
	UpstreamDeny    []string
	UpstreamRewrite map[string]string
}

// decodeJSON reads the config's JSON into c.
func (c *Config) decodeJSON(raw []byte) error {
	d := jsonlite.NewDecoder(raw)
	strs := func(p *[]string) {
		if d.Null() {
			*p = nil
			return
		}
		*p = (*p)[:0] // as encoding/json fills a slice
		d.Array(func(int) {
			var v string
			d.String(&v)
			*p = append(*p, v)
		})
	}
	strMap := func(p *map[string]string) {
		if *p == nil {
			*p = map[string]string{}
		}
		d.Object(nil, func(key string) {
			var v string
			d.String(&v)
			(*p)[key] = v
		})
	}
	d.Object([]string{"tokens", "token_prefix", "strip_prefix", "add_prefix", "add_header", "upstream_deny", "upstream_rewrite"},
		func(name string) {
			switch name {
			case "tokens":
				strs(&c.Tokens)
			case "token_prefix":
				d.String(&c.TokenPrefix)
			case "strip_prefix":
				d.String(&c.StripPrefix)
			case "add_prefix":
				d.String(&c.AddPrefix)
			case "add_header":
				strMap(&c.AddHeader)
			case "upstream_deny":
				strs(&c.UpstreamDeny)
			case "upstream_rewrite":
				strMap(&c.UpstreamRewrite)
			}
		})
	return d.Finish()
}

// cachePrefix keys the kept answers, by {port}:{path}.
const cachePrefix = "cache/"

// staleLine marks an answer from the cache.
const staleLine = "X-Edgehost-Cache: stale\n"

var (
	config = Config{TokenPrefix: "token/"}
	// addHeader is config.AddHeader as header lines, made once.
	addHeader sdk.HTTPHeader
)

func init() {
	sdk.OnInit(func(raw []byte) error {
		if len(raw) > 0 {
			if err := config.decodeJSON(raw); err != nil {
				return errors.New("route-auth: config: " + err.Error())
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
		for k, v := range config.AddHeader {
			addHeader.Add(k, v)
		}
		return nil
	})
	sdk.Handle(handle)
}

// handle answers one request.
func handle(m *sdk.Message) (*sdk.Message, error) {
	if m.Route.Operation == "upload" {
		return upstream(m)
	}
	req, err := sdk.RouteRequest(m)
	if err != nil {
		return m.ReplyHTTP(400, nil, []byte("route-auth: "+err.Error())), nil
	}
	if !authorized(req.Header.Get("Authorization")) {
		return m.ReplyHTTP(401, sdk.HTTPHeader{{"Www-Authenticate", "Bearer"}}, []byte("route-auth: missing or unknown bearer token")), nil
	}
	if config.StripPrefix != "" {
		origin, path := splitURL(req.URL)
		if rest, ok := strings.CutPrefix(path, config.StripPrefix); ok {
			req.URL = origin + config.AddPrefix + rest
		}
	}
	req.Header.Del("Authorization")
	for _, kv := range addHeader {
		req.Header.Set(kv[0], kv[1])
	}
	key := cachePrefix + m.Route.Resource
	resp, err := sdk.HTTPForward(req, 0)
	switch {
	case errors.Is(err, sdk.ErrUnreachable) || errors.Is(err, sdk.ErrTimeout):
		if req.Method == "GET" {
			if kept, ok, kerr := sdk.KVGet(key); kerr == nil && ok {
				return m.Reply(markStale(kept)), nil
			}
		}
		return m.ReplyHTTP(502, nil, []byte("route-auth: service unreachable and nothing cached: "+err.Error())), nil
	case err != nil:
		return nil, err
	}
	if req.Method == "GET" && bytes.HasPrefix(resp, []byte("200\n")) {
		if err := sdk.KVPut(key, resp); err != nil {
			sdk.LogWarn("answer not cached", "resource", m.Route.Resource, "error", err.Error())
		}
	}
	return m.Reply(resp), nil
}

// upstream applies the policy to an app's request to the cloud: an error
// refuses it, a reply is the request to send.
func upstream(m *sdk.Message) (*sdk.Message, error) {
	req := map[string][]byte{}
	d := jsonlite.NewDecoder(m.Content)
	d.Object(nil, func(key string) { req[key] = d.Raw() })
	if err := d.Finish(); err != nil {
		return nil, errors.New("route-auth: not an app request: " + err.Error())
	}
	var target string
	td := jsonlite.NewDecoder(req["targetURL"])
	td.String(&target)
	if err := td.Finish(); err != nil || req["targetURL"] == nil {
		return nil, errors.New("route-auth: targetURL is not a string")
	}
	for _, p := range config.UpstreamDeny {
		if strings.HasPrefix(target, p) {
			return nil, errors.New("route-auth: target " + target + " is denied (upstream_deny " + p + ")")
		}
	}
	for from, to := range config.UpstreamRewrite {
		if rest, ok := strings.CutPrefix(target, from); ok {
			req["targetURL"] = jsonlite.AppendString(nil, to+rest)
			// The members in key order, as encoding/json writes a map.
			out := []byte{'{'}
			for i, k := range slices.Sorted(maps.Keys(req)) {
				if i > 0 {
					out = append(out, ',')
				}
				out = jsonlite.AppendString(out, k)
				out = append(out, ':')
				out = append(out, req[k]...)
			}
			return m.Reply(append(out, '}')), nil
		}
	}
	return m.Reply(m.Content), nil
}

// splitURL splits an absolute URL into its origin (scheme://host:port)
// and the rest, which starts with "/" (or is empty).
func splitURL(u string) (origin, path string) {
	_, after, ok := strings.Cut(u, "://")
	if !ok {
		return "", u
	}
	if i := strings.IndexByte(after, '/'); i >= 0 {
		n := len(u) - len(after) + i
		return u[:n], u[n:]
	}
	return u, ""
}

// markStale inserts the stale header line after a kept response's status
// line.
func markStale(resp []byte) []byte {
	i := bytes.IndexByte(resp, '\n') + 1
	out := make([]byte, 0, len(resp)+len(staleLine))
	out = append(out, resp[:i]...)
	out = append(out, staleLine...)
	return append(out, resp[i:]...)
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

func main() {}
