//go:build !wasip1

package sdk_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/sdktest"
)

// TestTCPConnNatively: mapper code using sdk.DialTCP runs in a native unit
// test against a real server, with the fake host checking its tcp grant;
// the connection survives between calls, a silent device times out, and
// the end of the stream is io.EOF, so bufio works on it.
func TestTCPConnNatively(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hangUp := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
			c.Write([]byte("temp 21.5\n"))
		}
		<-hangUp
		c.Close()
	}()
	h := sdktest.New()
	var conn *sdk.TCPConn
	var dialErr error
	run := func(f func()) {
		t.Helper()
		if err := h.Run(f); err != nil {
			t.Fatal(err)
		}
	}
	run(func() { _, dialErr = sdk.DialTCP(ln.Addr().String(), time.Second) })
	if !errors.Is(dialErr, sdk.ErrDenied) || !errors.Is(dialErr, abi.Denied) {
		t.Fatalf("dial without a grant: %v, want ErrDenied", dialErr)
	}
	h.TCP = []string{"127.0.0.1:*"}
	run(func() { conn, dialErr = sdk.DialTCP(ln.Addr().String(), time.Second) })
	if dialErr != nil {
		t.Fatalf("dial: %v", dialErr)
	}
	var line string
	run(func() {
		if _, err := conn.Write([]byte("read temp\n")); err != nil {
			t.Errorf("write: %v", err)
		}
		conn.SetTimeout(5 * time.Second)
		line, err = bufio.NewReader(conn).ReadString('\n')
	})
	if err != nil || line != "temp 21.5\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	var n int
	run(func() {
		conn.SetTimeout(50 * time.Millisecond)
		if _, err := conn.Read(make([]byte, 8)); !errors.Is(err, sdk.ErrTimeout) {
			t.Errorf("read of a silent device: %v, want ErrTimeout", err)
		}
	})
	close(hangUp)
	run(func() {
		conn.SetTimeout(5 * time.Second)
		n, err = conn.Read(make([]byte, 8))
	})
	if n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d, %v; want io.EOF", n, err)
	}
	run(func() {
		if err := conn.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := conn.Close(); !errors.Is(err, sdk.ErrBadHandle) {
			t.Errorf("second close: %v, want ErrBadHandle", err)
		}
	})
	if h.OpenHandles() != 0 {
		t.Errorf("open handles = %d", h.OpenHandles())
	}
}
