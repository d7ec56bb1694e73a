package iogrant

import (
	"net/url"
	"testing"
)

func TestURLPattern(t *testing.T) {
	cases := []struct {
		pattern, url string
		want         bool
	}{
		{"http://127.0.0.1:8080/*", "http://127.0.0.1:8080/a/b?c=1", true},
		{"http://127.0.0.1:8080/*", "http://127.0.0.1:8081/a", false},
		{"http://127.0.0.1:8080/*", "https://127.0.0.1:8080/a", false},
		{"https://API.example.com/v1/*", "https://api.example.com/v1/x/y", true},
		{"https://api.example.com/v1/*", "https://api.example.com:443/v1/", true},
		{"https://api.example.com/v1/*", "https://api.example.com/v2/x", false},
		{"https://api.example.com/v1/*", "https://api.example.com.evil/v1/x", false},
		{"http://h/status", "http://h:80/status", true},
		{"http://h/status", "http://h/status/x", false},
		{"http://h/a/*/c", "http://h/a/b/b/c", true},
		{"http://h/a/*/c", "http://h/a/b/d", false},
		{"http://[::1]:9/*", "http://[::1]:9/x", true},
		{"http://127.0.0.1:*/*", "http://127.0.0.1:8080/a", true},
		{"http://127.0.0.1:*/*", "http://127.0.0.1/a", true},
		{"http://127.0.0.1:*/*", "http://127.0.0.2:8080/a", false},
		{"http://127.0.0.1:*/*", "https://127.0.0.1:8080/a", false},
		{"http://[::1]:*/x", "http://[::1]:9/x", true},
	}
	for _, c := range cases {
		p, err := ParseURLPattern(c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		u, _ := url.Parse(c.url)
		if got := p.Match(u); got != c.want {
			t.Errorf("%s matches %s = %v, want %v", c.pattern, c.url, got, c.want)
		}
	}
	for _, bad := range []string{"ftp://h/", "http:///x", "http://h", "http://u@h/", "http://h/?q", "http://h:0/", "http://h:99999/", "http://h:*", "http://h:1*/"} {
		if _, err := ParseURLPattern(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
