package iogrant

import (
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"10.0.0.5:502", "10.0.0.5:502", ""},
		{"10.0.0.0/24:502", "10.0.0.0/24:502", ""},
		{"sensor.local:7000", "sensor.local:7000", ""},
		{"Sensor.Local.:7000", "sensor.local:7000", ""},
		{"127.0.0.1:*", "127.0.0.1:*", ""},
		{"127.0.0.1:1-65535", "127.0.0.1:*", ""},
		{"10.0.0.5:502-510", "10.0.0.5:502-510", ""},
		{"[fd00::5]:502", "[fd00::5]:502", ""},
		{"[fd00::/64]:502", "[fd00::/64]:502", ""},
		{"[::ffff:10.0.0.5]:502", "10.0.0.5:502", ""},
		{"[::ffff:10.0.0.0/120]:502", "10.0.0.0/24:502", ""},
		{"10.0.0.5/24:502", "", "bits set past its length; write 10.0.0.0/24"},
		{"10.0.0.5", "", "want host:port"},
		{"10.0.0.5:0", "", "not 1-65535"},
		{"10.0.0.5:65536", "", "not 1-65535"},
		{"10.0.0.5:510-502", "", "not 1-65535"},
		{"10.0.0.5:-5", "", "not 1-65535"},
		{":502", "", "host is empty"},
		{"fd00::5:502", "", "brackets"},
		{"[10.0.0.5]:502", "", "brackets"},
		{"[fe80::1%eth0]:502", "", "zone"},
		{"127.1:80", "", "not an address, a CIDR prefix or a DNS name"},
		{"a..b:80", "", "not an address"},
		{"-a.b:80", "", "not an address"},
		{"a_b:80", "", "not an address"},
		{"*.plant:80", "", "not an address"},
		{"[sensor.local]:80", "", "not an address"},
		{"10.0.0.0/33:80", "", "not a CIDR prefix"},
	} {
		e, err := ParseEndpoint(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("ParseEndpoint(%q): %v", c.in, err)
		case c.err == "" && e.String() != c.want:
			t.Errorf("ParseEndpoint(%q) = %s, want %s", c.in, e, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseEndpoint(%q) = %v, %v; want error %q", c.in, e, err, c.err)
		}
	}
}

func TestEndpointMatch(t *testing.T) {
	grants := []string{"10.0.0.5:502", "10.0.1.0/24:502-503", "sensor.local:7000", "127.0.0.1:*", "[fd00::/64]:502"}
	for _, c := range []struct {
		target string
		want   bool
	}{
		{"10.0.0.5:502", true},
		{"10.0.0.5:503", false},
		{"10.0.0.6:502", false},
		{"10.0.1.77:503", true},
		{"10.0.1.77:504", false},
		{"10.0.2.1:502", false},
		{"[::ffff:10.0.0.5]:502", true},
		{"sensor.local:7000", true},
		{"SENSOR.local.:7000", true},
		{"sensor.local:7001", false},
		{"other.local:7000", false},
		{"sensor.local.evil:7000", false},
		{"127.0.0.1:1", true},
		{"127.0.0.1:65535", true},
		{"localhost:80", false}, // a name never matches an address grant
		{"[fd00::1234]:502", true},
		{"[fd01::1]:502", false},
	} {
		tg, err := ParseTarget(c.target)
		if err != nil {
			t.Fatalf("ParseTarget(%q): %v", c.target, err)
		}
		got := false
		for _, g := range grants {
			e, err := ParseEndpoint(g)
			if err != nil {
				t.Fatal(err)
			}
			got = got || e.Match(tg)
		}
		if got != c.want {
			t.Errorf("%s: allowed %v, want %v", c.target, got, c.want)
		}
	}
	// An address grant does not admit the address spelled as a name, and
	// a name grant does not admit an address its name resolves to.
	name, _ := ParseEndpoint("localhost:80")
	if tg, _ := ParseTarget("127.0.0.1:80"); name.Match(tg) {
		t.Error("name grant admitted an address")
	}
}

func TestParseTargetRefuses(t *testing.T) {
	for _, s := range []string{"", "x", "10.0.0.5:0", "10.0.0.5:*", "10.0.0.0/24:80", "127.1:80", "0x7f.1:80",
		"[fe80::1%lo]:80", "::1:80", "a b:80", "a:80:90", "[::1]80", strings.Repeat("a.", 130) + "b:80"} {
		if tg, err := ParseTarget(s); err == nil {
			t.Errorf("ParseTarget(%q) = %+v, want an error", s, tg)
		}
	}
}

func TestPaths(t *testing.T) {
	for _, c := range []struct {
		glob, path string
		want       bool
	}{
		{"/dev/ttyUSB*", "/dev/ttyUSB0", true},
		{"/dev/ttyUSB*", "/dev/ttyUSB0/x", false},
		{"/dev/ttyS0", "/dev/ttyS0", true},
		{"/dev/ttyS0", "/dev/ttyS1", false},
		{"/dev/pts/*", "/dev/pts/3", true},
		{"/dev/tty[AU]*", "/dev/ttyAMA0", true},
	} {
		if err := ValidPathGlob(c.glob); err != nil {
			t.Fatal(err)
		}
		if got := ValidPath(c.path) && MatchPath(c.glob, c.path); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.glob, c.path, got, c.want)
		}
	}
	for _, g := range []string{"dev/ttyS0", "/dev/../etc/x", "/dev//ttyS0", "/dev/ttyS0/", "/dev/[", ""} {
		if ValidPathGlob(g) == nil {
			t.Errorf("ValidPathGlob(%q) accepted it", g)
		}
	}
	for _, p := range []string{"/dev/../etc/passwd", "/dev/./ttyS0", "relative", "/dev/tty\x00S0"} {
		if ValidPath(p) {
			t.Errorf("ValidPath(%q) accepted it", p)
		}
	}
}

// FuzzEndpoint: a grant that parses prints in a form that parses to the
// same grant, and matching never panics.
func FuzzEndpoint(f *testing.F) {
	for _, s := range []string{"10.0.0.5:502", "10.0.0.0/24:502", "sensor.local:7000", "127.0.0.1:*",
		"[fd00::/64]:1-2", "[::ffff:1.2.3.4]:9", "a.b.c:65535"} {
		f.Add(s, "10.0.0.5:502")
	}
	f.Fuzz(func(t *testing.T, grant, target string) {
		e, err := ParseEndpoint(grant)
		if err != nil {
			return
		}
		again, err := ParseEndpoint(e.String())
		if err != nil || again != e {
			t.Fatalf("%q printed as %q, which parses to %v, %v", grant, e.String(), again, err)
		}
		if tg, err := ParseTarget(target); err == nil {
			e.Match(tg)
			if back, err := ParseTarget(tg.String()); err != nil || back != tg {
				t.Fatalf("target %q printed as %q, which parses to %+v, %v", target, tg.String(), back, err)
			}
		}
	})
}
