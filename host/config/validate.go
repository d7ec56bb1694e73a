package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// problems collects validation errors, each naming its key.
type problems struct{ errs []error }

func (p *problems) add(key, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

// err joins the problems, one per line, or is nil if there are none.
func (p *problems) err() error { return errors.Join(p.errs...) }

func (p *problems) index(key string, i int) string { return key + "[" + strconv.Itoa(i) + "]" }

func (p *problems) positive(key string, v int) {
	if v <= 0 {
		p.add(key, "must be > 0, got %d", v)
	}
}

func (p *problems) positiveDuration(key string, d time.Duration) {
	if d <= 0 {
		p.add(key, "must be > 0, got %s", d)
	}
}

func (p *problems) oneOf(key, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		p.add(key, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	}
}

func (p *problems) absPath(key, v string) {
	if !filepath.IsAbs(v) {
		p.add(key, "must be an absolute path, got %q", v)
	}
}

func (p *problems) hostPort(key, v string) {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		p.add(key, "must be host:port, got %q", v)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		p.add(key, "port must be 1..65535, got %q", port)
	}
}

// brokerURL checks an MQTT broker URL and returns its host:port, or "" if
// it is bad.
func (p *problems) brokerURL(key, v string) string {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		p.add(key, "must be a broker URL such as tcp://127.0.0.1:1883, got %q", v)
		return ""
	}
	schemes := []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}
	if !slices.Contains(schemes, u.Scheme) {
		p.add(key, "scheme must be one of %s, got %q", strings.Join(schemes, ", "), u.Scheme)
		return ""
	}
	return u.Host
}

// pathElement checks a name that becomes one element of a URL path and a
// certificate name.
func (p *problems) pathElement(key, v string) {
	if v == "" || len(v) > 253 || strings.ContainsAny(v, "/?#% \t\r\n") {
		p.add(key, "must be 1-253 characters without / ? # %% or spaces, got %q", v)
	}
}
