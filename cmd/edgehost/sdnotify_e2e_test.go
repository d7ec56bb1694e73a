package main

import (
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeSystemd is a unixgram socket NOTIFY_SOCKET points the daemon at, as
// systemd does for a Type=notify service.
type fakeSystemd struct{ conn *net.UnixConn }

func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	path := filepath.Join(shortDataDir(t), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return &fakeSystemd{conn: conn}
}

// await reads notifications until one contains want, returning those
// before it; it fails the test after timeout.
func (s *fakeSystemd) await(t *testing.T, want string, timeout time.Duration, d *daemonProc) []string {
	t.Helper()
	var seen []string
	buf := make([]byte, 4096)
	s.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			t.Fatalf("no %q from the daemon (got %q): %v\nlogs:\n%s", want, seen, err, d.logs)
		}
		msg := string(buf[:n])
		if strings.Contains(msg, want) {
			return seen
		}
		seen = append(seen, msg)
	}
}

// The daemon says READY=1 only once /readyz says ready: while the cloud is
// unreachable it sends STATUS= with the reason and no READY=1, and it says
// STOPPING=1 at SIGTERM.
func TestSystemdNotify(t *testing.T) {
	bin := buildBinary(t)

	t.Run("ready", func(t *testing.T) {
		sd := newFakeSystemd(t)
		dataDir := shortDataDir(t)
		cfg := writeConfig(t, dataDir, "modules:\n  eventbus:\n    embedded:\n      address: "+freeAddr(t)+"\n")
		d := launch(t, bin, "--config", cfg, "--data-dir", dataDir)
		sd.await(t, "READY=1", 60*time.Second, d)
		if code, body := readyz(t, dataDir); code != http.StatusOK {
			t.Fatalf("READY=1 sent but /readyz = %d %s", code, body)
		}
		d.stop(t)
		sd.await(t, "STOPPING=1", 5*time.Second, d)
	})

	t.Run("not ready", func(t *testing.T) {
		sd := newFakeSystemd(t)
		dataDir := shortDataDir(t)
		cfg := writeConfig(t, dataDir, "modules:\n  eventbus:\n    embedded:\n      address: "+freeAddr(t)+"\n"+
			"  hub:\n    enable: true\n    server: 127.0.0.1:1\n    nodeName: n1\n    token: a.b.c.d\n")
		d := launch(t, bin, "--config", cfg, "--data-dir", dataDir)
		before := sd.await(t, "STATUS=not ready: ", 60*time.Second, d)
		d.awaitStatus(t, bin, dataDir, false, "hub: not connected to the cloud")
		d.stop(t)
		rest := sd.await(t, "STOPPING=1", 5*time.Second, d)
		for _, m := range append(before, rest...) {
			if strings.Contains(m, "READY=1") {
				t.Fatalf("READY=1 sent while /readyz said not ready: %q", append(before, rest...))
			}
		}
	})
}
