package sdnotify

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// notifySocket is a fake systemd: a unixgram socket NOTIFY_SOCKET points at.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// next reads the next datagram, or "" after timeout.
func next(t *testing.T, conn *net.UnixConn, timeout time.Duration) string {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(timeout))
	n, err := conn.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func TestReadyOnlyOnceReady(t *testing.T) {
	conn := notifySocket(t)
	var ready atomic.Bool
	var asked atomic.Int32
	readiness := func() (bool, []string) {
		asked.Add(1)
		if ready.Load() {
			return true, nil
		}
		return false, []string{"hub: not connected"}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, readiness, hclog.NewNullLogger()) }()
	defer func() { cancel(); <-done }()

	if got := next(t, conn, 5*time.Second); got != "STATUS=not ready: hub: not connected" {
		t.Fatalf("first notification = %q, want the reason it is not ready", got)
	}
	// Several polls while not ready: none may say READY=1.
	for asked.Load() < 4 {
		if got := next(t, conn, 100*time.Millisecond); strings.Contains(got, "READY=1") {
			t.Fatalf("READY=1 sent while not ready: %q", got)
		}
	}
	ready.Store(true)
	if got := next(t, conn, 5*time.Second); got != "READY=1\nSTATUS=ready" {
		t.Fatalf("after ready: %q, want READY=1", got)
	}

	Stopping(hclog.NewNullLogger())
	if got := next(t, conn, 5*time.Second); got != "STOPPING=1" {
		t.Fatalf("Stopping sent %q", got)
	}
}

func TestWatchdogPings(t *testing.T) {
	conn := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, func() (bool, []string) { return true, nil }, hclog.NewNullLogger())
	}()
	defer func() { cancel(); <-done }()
	pings := 0
	for pings < 3 {
		got := next(t, conn, 5*time.Second)
		switch got {
		case "WATCHDOG=1":
			pings++
		case "READY=1\nSTATUS=ready":
		default:
			t.Fatalf("notification %q, want WATCHDOG=1 pings", got)
		}
	}
}
