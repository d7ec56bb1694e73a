// Package iogrant parses and matches the device I/O grants of ABI 1.2
// (abi/SPEC.md section 5.2): network endpoints "host:port" for TCP and UDP,
// where host is an address, a CIDR prefix or a DNS name, and serial device
// path globs. It also parses what a guest asks for, so the grant and the
// request are read by the same rules.
package iogrant

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// maxName is the longest DNS name (RFC 1035, without the final dot).
const maxName = 253

// maxPath is the longest serial device path a guest may pass.
const maxPath = 4096

// Endpoint is a compiled TCP or UDP grant: an address prefix (a single
// address is a full-length prefix) or a DNS name, and a port range.
type Endpoint struct {
	prefix netip.Prefix // valid for an address grant
	name   string       // lower case, no final dot, for a name grant
	lo, hi uint16       // the ports, inclusive
}

// Target is an address a guest asks to reach: Addr (an IPv4-mapped IPv6
// address unmapped) or Name, and Port.
type Target struct {
	Addr netip.Addr
	Name string
	Port uint16
}

// ParseEndpoint parses a grant: "10.0.0.5:502", "10.0.0.0/24:502",
// "[fd00::/64]:*", "sensor.local:7000-7010".
func ParseEndpoint(s string) (Endpoint, error) {
	host, port, err := splitHostPort(s)
	if err != nil {
		return Endpoint{}, err
	}
	var e Endpoint
	if e.lo, e.hi, err = parsePorts(port); err != nil {
		return Endpoint{}, fmt.Errorf("%q: %w", s, err)
	}
	bracketed := strings.HasPrefix(s, "[")
	switch {
	case strings.Contains(host, "/"):
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return Endpoint{}, fmt.Errorf("%q: %q is not a CIDR prefix", s, host)
		}
		if err := checkBrackets(s, p.Addr(), bracketed); err != nil {
			return Endpoint{}, err
		}
		if p != p.Masked() {
			return Endpoint{}, fmt.Errorf("%q: prefix %s has bits set past its length; write %s", s, host, p.Masked())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		e.prefix = p
	default:
		if a, err := netip.ParseAddr(host); err == nil {
			if a.Zone() != "" {
				return Endpoint{}, fmt.Errorf("%q: an address with a zone cannot be granted", s)
			}
			if err := checkBrackets(s, a, bracketed); err != nil {
				return Endpoint{}, err
			}
			a = a.Unmap()
			e.prefix = netip.PrefixFrom(a, a.BitLen())
			break
		}
		name, err := parseName(host)
		if err != nil || bracketed {
			return Endpoint{}, fmt.Errorf("%q: %q is not an address, a CIDR prefix or a DNS name", s, host)
		}
		e.name = name
	}
	return e, nil
}

// checkBrackets requires brackets around IPv6 and none around IPv4.
func checkBrackets(s string, a netip.Addr, bracketed bool) error {
	if a.Is4() == bracketed {
		return fmt.Errorf("%q: IPv6 addresses go in brackets, IPv4 addresses do not", s)
	}
	return nil
}

// String returns the grant in canonical form.
func (e Endpoint) String() string {
	host := e.name
	if e.prefix.IsValid() {
		host = e.prefix.String()
		if e.prefix.IsSingleIP() {
			host = e.prefix.Addr().String()
		}
		if e.prefix.Addr().Is6() {
			host = "[" + host + "]"
		}
	}
	port := strconv.Itoa(int(e.lo))
	switch {
	case e.lo == 1 && e.hi == 65535:
		port = "*"
	case e.lo != e.hi:
		port += "-" + strconv.Itoa(int(e.hi))
	}
	return host + ":" + port
}

// Match reports whether the grant admits t: an address grant only an
// address in its prefix, a name grant only that name, each with a port in
// its range.
func (e Endpoint) Match(t Target) bool {
	if t.Port < e.lo || t.Port > e.hi {
		return false
	}
	if e.name != "" {
		return t.Name == e.name
	}
	return t.Addr.IsValid() && e.prefix.Contains(t.Addr)
}

// ParseTarget parses the "host:port" a guest passes: an IPv4 address, an
// IPv6 address in brackets (no zone), or a DNS name, and a port 1-65535.
func ParseTarget(s string) (Target, error) {
	host, port, err := splitHostPort(s)
	if err != nil {
		return Target{}, err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return Target{}, fmt.Errorf("%q: port %q is not 1-65535", s, port)
	}
	t := Target{Port: uint16(n)}
	bracketed := strings.HasPrefix(s, "[")
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return Target{}, fmt.Errorf("%q: addresses with a zone are not allowed", s)
		}
		if err := checkBrackets(s, a, bracketed); err != nil {
			return Target{}, err
		}
		t.Addr = a.Unmap()
		return t, nil
	}
	if t.Name, err = parseName(host); err != nil || bracketed {
		return Target{}, fmt.Errorf("%q: %q is not an address or a DNS name", s, host)
	}
	return t, nil
}

// String returns t as a dial address.
func (t Target) String() string {
	if t.Addr.IsValid() {
		return netip.AddrPortFrom(t.Addr, t.Port).String()
	}
	return t.Name + ":" + strconv.Itoa(int(t.Port))
}

// splitHostPort splits "host:port" and "[host]:port".
func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]:")
		if end < 0 {
			return "", "", fmt.Errorf("%q: want [address]:port", s)
		}
		return s[1:end], s[end+2:], nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", fmt.Errorf("%q: want host:port", s)
	}
	host, port = s[:i], s[i+1:]
	if strings.Contains(host, ":") {
		return "", "", fmt.Errorf("%q: IPv6 addresses go in brackets", s)
	}
	if host == "" {
		return "", "", fmt.Errorf("%q: the host is empty", s)
	}
	return host, port, nil
}

// parsePorts parses "502", "502-510" or "*".
func parsePorts(s string) (lo, hi uint16, err error) {
	if s == "*" {
		return 1, 65535, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		b = a
	}
	l, err1 := strconv.ParseUint(a, 10, 16)
	h, err2 := strconv.ParseUint(b, 10, 16)
	if err1 != nil || err2 != nil || l == 0 || h < l {
		return 0, 0, fmt.Errorf("port %q is not 1-65535, a range lo-hi or *", s)
	}
	return uint16(l), uint16(h), nil
}

// errName is parseName's failure.
var errName = errors.New("not a DNS name")

// parseName checks a DNS host name (letters, digits, "-" within labels of
// 1-63 bytes, the last label not all digits, so no spelling of an IPv4
// address passes as a name) and returns it in lower case without a final
// dot.
func parseName(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > maxName {
		return "", errName
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", errName
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return "", errName
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return "", errName
	}
	return strings.ToLower(s), nil
}

// ValidPath reports whether p is a device path a guest may pass: absolute,
// clean (no ".", ".." or empty elements), without NUL, at most 4096 bytes.
func ValidPath(p string) bool {
	return len(p) <= maxPath && strings.HasPrefix(p, "/") && path.Clean(p) == p && !strings.ContainsRune(p, 0)
}

// ValidPathGlob checks a serial grant: an absolute, clean path whose
// elements may use path.Match wildcards.
func ValidPathGlob(g string) error {
	if !ValidPath(g) {
		return fmt.Errorf("%q is not an absolute, clean path", g)
	}
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Errorf("%q: %w", g, err)
	}
	return nil
}

// MatchPath reports whether a serial grant glob admits path p: "*", "?"
// and "[...]" match within one path element.
func MatchPath(glob, p string) bool {
	ok, err := path.Match(glob, p)
	return ok && err == nil
}
