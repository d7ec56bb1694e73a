package iogrant

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// URLPattern is a compiled outbound HTTP grant of ABI 1.3 (abi/SPEC.md
// section 5.3): scheme and host exactly, the port exactly or any ("*"),
// the path as a glob whose "*" matches any run of characters, "/"
// included.
type URLPattern struct {
	scheme, host string   // host lower case, IPv6 without brackets
	port         string   // "*": any
	path         []string // the path split at each "*"
}

// anyPort is the port of a pattern that matches every port.
const anyPort = "*"

// ParseURLPattern parses "http://127.0.0.1:8080/*",
// "https://api.example.com/v1/*" or "http://127.0.0.1:*/*" (any port).
func ParseURLPattern(s string) (URLPattern, error) {
	// url.Parse takes no "*" for a port: parse the pattern with a
	// placeholder port and put the wildcard back.
	wild := false
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		authority, path, slash := strings.Cut(rest, "/")
		if host, ok := strings.CutSuffix(authority, ":*"); ok && slash {
			wild, s = true, scheme+"://"+host+":1/"+path
		}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return URLPattern{}, fmt.Errorf("%q is not a URL: %v", s, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return URLPattern{}, fmt.Errorf("%q: scheme must be http or https", s)
	case u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return URLPattern{}, fmt.Errorf("%q: want scheme://host[:port]/path, without user info, query or fragment", s)
	case !strings.HasPrefix(u.EscapedPath(), "/"):
		return URLPattern{}, fmt.Errorf("%q: the path must start with /", s)
	}
	port, err := urlPort(u)
	if err != nil {
		return URLPattern{}, fmt.Errorf("%q: %w", s, err)
	}
	if wild {
		port = anyPort
	}
	return URLPattern{scheme: u.Scheme, host: strings.ToLower(u.Hostname()), port: port, path: strings.Split(u.EscapedPath(), "*")}, nil
}

// urlPort is u's port, the scheme's when it has none.
func urlPort(u *url.URL) (string, error) {
	p := u.Port()
	if p == "" {
		if u.Scheme == "https" {
			return "443", nil
		}
		return "80", nil
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q is not 1..65535", p)
	}
	return p, nil
}

// Match reports whether u (an absolute http or https URL) is granted by
// p; the query is not matched.
func (p *URLPattern) Match(u *url.URL) bool {
	if u.Scheme != p.scheme || !strings.EqualFold(u.Hostname(), p.host) {
		return false
	}
	if port, err := urlPort(u); err != nil || (p.port != anyPort && port != p.port) {
		return false
	}
	return matchStars(p.path, u.EscapedPath())
}

// matchStars matches s against the parts of a pattern split at its "*"s.
func matchStars(parts []string, s string) bool {
	if len(parts) == 1 {
		return s == parts[0]
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}
