package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/plugins"
)

const devioPlugin = "devio"

// tcpServer is a real TCP server on loopback: each connection is handed to
// serve, or with a nil serve held open, unread, until the test ends. conns
// receives every accepted connection.
type tcpServer struct {
	ln    net.Listener
	conns chan net.Conn
	wg    sync.WaitGroup
	stop  chan struct{}
}

func startTCPServer(t *testing.T, serve func(net.Conn)) *tcpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{ln: ln, conns: make(chan net.Conn, 32), stop: make(chan struct{})}
	if serve == nil {
		serve = func(net.Conn) { <-s.stop }
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns <- c
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() { close(s.stop); ln.Close(); s.wg.Wait() })
	return s
}

func (s *tcpServer) addr() string { return s.ln.Addr().String() }

// echo copies what it reads back.
func echo(c net.Conn) { _, _ = io.Copy(c, c) }

// devCall sends op with content to the devio plugin and returns its reply.
func devCall(t *testing.T, p *Plugin, op, content string) string {
	t.Helper()
	_, reply := call(t, p, op, content)
	return reply
}

// openHandle opens a handle with op and returns its number.
func openHandle(t *testing.T, p *Plugin, op, content string) int {
	t.Helper()
	r := devCall(t, p, op, content)
	h, ok := strings.CutPrefix(r, "h ")
	if !ok {
		t.Fatalf("%s %s: %q, want a handle", op, content, r)
	}
	n, _ := strconv.Atoi(h)
	return n
}

// TestTCPDeviceIO: a plugin connects to a real echo server, and the
// connection outlives the call: write in one call, read in the next. The
// bytes and the open handle are counted.
func TestTCPDeviceIO(t *testing.T) {
	srv := startTCPServer(t, echo)
	p := load(t, devioPlugin, PluginConfig{})
	h := openHandle(t, p, "tcp", srv.addr()+" 1000")
	if got := devCall(t, p, "write", fmt.Sprintf("%d hello device", h)); got != "n 12" {
		t.Fatalf("write: %q", got)
	}
	var got string
	for len(got) < len("hello device") {
		r := devCall(t, p, "read", fmt.Sprintf("%d 64 1000", h))
		data, ok := strings.CutPrefix(r, "data ")
		if !ok {
			t.Fatalf("read: %q", r)
		}
		got += data
	}
	if got != "hello device" {
		t.Fatalf("read %q", got)
	}
	// A read returns at most out_cap bytes; the rest stays for the next.
	devCall(t, p, "write", fmt.Sprintf("%d abcdef", h))
	if r := devCall(t, p, "read", fmt.Sprintf("%d 2 1000", h)); r != "data ab" {
		t.Fatalf("read of 2: %q", r)
	}
	st := p.Status()
	if st.IOHandles != 1 || st.IOBytesOut != 18 || st.IOBytesIn != 14 {
		t.Errorf("status: handles %d, out %d, in %d; want 1, 18, 14", st.IOHandles, st.IOBytesOut, st.IOBytesIn)
	}
	if r := devCall(t, p, "close", strconv.Itoa(h)); r != "ok" {
		t.Fatalf("close: %q", r)
	}
	if st := p.Status(); st.IOHandles != 0 {
		t.Errorf("handles after close = %d", st.IOHandles)
	}
}

// TestTCPReadTimeoutKeepsInstance: a read from a device that never answers
// returns timeout (its own, or the call's less the reserve) instead of
// trapping; the instance stays in service and the connection usable.
func TestTCPReadTimeoutKeepsInstance(t *testing.T) {
	srv := startTCPServer(t, nil)
	p := load(t, devioPlugin, PluginConfig{Limits: Limits{CallTimeout: time.Second}})
	h := openHandle(t, p, "tcp", srv.addr()+" 0")
	server := <-srv.conns
	for _, timeout := range []string{"100", "0"} { // its own; the call's
		if r := devCall(t, p, "read", fmt.Sprintf("%d 16 %s", h, timeout)); r != "code 6" {
			t.Fatalf("read with timeout %s ms from a silent device: %q, want code 6", timeout, r)
		}
	}
	if st := p.Status(); st.Faults != 0 || st.IOHandles != 1 {
		t.Fatalf("after timeouts: faults %d, handles %d", st.Faults, st.IOHandles)
	}
	if _, err := server.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	if r := devCall(t, p, "read", fmt.Sprintf("%d 16 1000", h)); r != "data late" {
		t.Fatalf("read after the timeouts: %q", r)
	}
}

// TestTCPEndOfStreamAndStaleHandles: the peer closing is end of stream
// (io.EOF in the SDK, code 12 underneath, and for every read after it); a
// closed, unknown or foreign handle is a bad handle.
func TestTCPEndOfStreamAndStaleHandles(t *testing.T) {
	srv := startTCPServer(t, func(c net.Conn) {})
	p := load(t, devioPlugin, PluginConfig{})
	h := openHandle(t, p, "tcp", srv.addr()+" 1000")
	if r := devCall(t, p, "read", fmt.Sprintf("%d 16 1000", h)); r != "eof" {
		t.Fatalf("read after the peer closed: %q, want eof", r)
	}
	if r := devCall(t, p, "rawread", fmt.Sprintf("%d 16", h)); r != "code 12" {
		t.Fatalf("raw read after the end: %q, want code 12", r)
	}
	if r := devCall(t, p, "write", fmt.Sprintf("%d x", h)); r != "code 12" {
		t.Fatalf("write after the end: %q, want code 12", r)
	}
	devCall(t, p, "close", strconv.Itoa(h))
	if r := devCall(t, p, "close", strconv.Itoa(h)); r != "code 13" {
		t.Fatalf("second close: %q, want code 13", r)
	}
	if r := devCall(t, p, "rawread", fmt.Sprintf("%d 16", h)); r != "code 13" {
		t.Fatalf("read of a closed handle: %q, want code 13", r)
	}
	if r := devCall(t, p, "rawread", "77 16"); r != "code 13" {
		t.Fatalf("read of a handle never given: %q, want code 13", r)
	}
	udp := startUDPEcho(t)
	u := openHandle(t, p, "udp", udp)
	if u == h {
		t.Fatalf("handle %d given out again", h)
	}
	if r := devCall(t, p, "rawread", fmt.Sprintf("%d 16", u)); r != "code 13" {
		t.Fatalf("tcp_read of a UDP handle: %q, want code 13", r)
	}
	if r := devCall(t, p, "rawread", fmt.Sprintf("%d 0", u)); r != "code 1" {
		t.Fatalf("read with out_cap 0: %q, want code 1", r)
	}
}

// TestDeviceHandleLimit: an instance holds at most 16 handles.
func TestDeviceHandleLimit(t *testing.T) {
	srv := startTCPServer(t, echo)
	p := load(t, devioPlugin, PluginConfig{})
	for range 16 {
		openHandle(t, p, "tcp", srv.addr()+" 1000")
	}
	if r := devCall(t, p, "tcp", srv.addr()+" 1000"); r != "code 9" {
		t.Fatalf("17th connect: %q, want code 9", r)
	}
	if st := p.Status(); st.IOHandles != 16 {
		t.Errorf("handles = %d", st.IOHandles)
	}
}

// TestDeviceHandlesClosedWithInstance: a trap discards the instance, and
// the host closes its connections: the device sees end of stream.
func TestDeviceHandlesClosedWithInstance(t *testing.T) {
	srv := startTCPServer(t, nil)
	p := load(t, devioPlugin, PluginConfig{})
	openHandle(t, p, "tcp", srv.addr()+" 1000")
	server := <-srv.conns
	_, _, err := p.Handle(context.Background(), message("trap", ""))
	var fe *FaultError
	if !errors.As(err, &fe) || fe.Kind != FaultTrap {
		t.Fatalf("trap: %v", err)
	}
	assertEOF(t, server)
	if st := p.Status(); st.IOHandles != 0 {
		t.Errorf("handles after the fault = %d", st.IOHandles)
	}
	// The fresh instance has no handles from the old one.
	if r := devCall(t, p, "rawread", "1 16"); r != "code 13" {
		t.Errorf("the old instance's handle in the new one: %q, want code 13", r)
	}
}

// assertEOF waits for the peer of c to close it.
func assertEOF(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("device side: read %d, %v; want EOF", n, err)
	}
}

// TestBlockedReadEndsAtClose: a guest blocked reading a silent device does
// not hold up Close: the wait ends (timeout), the call finishes and the
// connection is closed. The call timeout is an hour, so without the
// interruption the test would hang.
func TestBlockedReadEndsAtClose(t *testing.T) {
	srv := startTCPServer(t, nil)
	p, err := testRuntime.Load(context.Background(), compile(t, devioPlugin),
		PluginConfig{Name: "devio-close", Limits: Limits{CallTimeout: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	h := openHandle(t, p, "tcp", srv.addr()+" 0")
	server := <-srv.conns
	done := make(chan string, 1)
	go func() {
		reply, _, err := p.Handle(context.Background(), message("read", fmt.Sprintf("%d 16 0", h)))
		done <- fmt.Sprintf("%s %v", reply.Content, err)
	}()
	// Once the call holds the instance, Close ends its wait whether the
	// guest is in the read already or gets there after Close began.
	for !inFlight(p) {
		time.Sleep(time.Millisecond)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r != "code 6 <nil>" {
		t.Fatalf("blocked read at close: %q, want code 6", r)
	}
	assertEOF(t, server)
}

// inFlight reports whether p has an instance out of its pool.
func inFlight(p *Plugin) bool { return len(p.idle) == 0 }

// TestDeviceGrantsDeniedAndCounted: with a real policy, connecting outside
// the tcp grant is denied and counted; a name is admitted only by a name
// grant, never by the address it resolves to.
func TestDeviceGrantsDeniedAndCounted(t *testing.T) {
	srv := startTCPServer(t, echo)
	other := startTCPServer(t, echo)
	pol := plugins.NewPolicy(plugins.Capabilities{TCP: []string{srv.addr()}}, nil)
	var logs logBuffer
	p := load(t, devioPlugin, PluginConfig{Grants: pol, Logger: newLogger(&logs)})
	_, port, _ := net.SplitHostPort(srv.addr())
	for _, c := range []struct{ content, want string }{
		{srv.addr() + " 1000", "h 1"},
		{other.addr() + " 1000", "code 5"},        // another port
		{"localhost:" + port + " 1000", "code 5"}, // a name, not granted as a name
		{"127.1:" + port + " 1000", "code 1"},     // not an address nor a name
	} {
		if r := devCall(t, p, "tcp", c.content); r != c.want {
			t.Errorf("tcp %s: %q, want %q", c.content, r, c.want)
		}
	}
	if r := devCall(t, p, "udp", srv.addr()); r != "code 5" {
		t.Errorf("udp without a udp grant: %q", r)
	}
	if r := devCall(t, p, "serial", "/dev/ttyS0 9600 8 0 1"); r != "code 5" {
		t.Errorf("serial without a serial grant: %q", r)
	}
	if st := p.Status(); st.Denied != 4 {
		t.Errorf("denied = %d, want 4", st.Denied)
	}
	if !strings.Contains(logs.String(), "capability denied: import=tcp_connect address="+other.addr()) {
		t.Errorf("denial not logged:\n%s", logs.String())
	}
	// A name grant admits the name, and the host resolves it.
	named := plugins.NewPolicy(plugins.Capabilities{TCP: []string{"localhost:" + port}}, nil)
	q := load(t, devioPlugin, PluginConfig{Name: "devio-named", Grants: named})
	if r := devCall(t, q, "tcp", "localhost:"+port+" 1000"); !strings.HasPrefix(r, "h ") {
		t.Errorf("tcp to a granted name: %q", r)
	}
	if r := devCall(t, q, "tcp", srv.addr()+" 1000"); r != "code 5" {
		t.Errorf("tcp to the address of a granted name: %q, want code 5", r)
	}
}

// TestTCPConnectRefused: a closed port is unreachable (14).
func TestTCPConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := load(t, devioPlugin, PluginConfig{})
	if r := devCall(t, p, "tcp", addr+" 1000"); r != "code 14" {
		t.Fatalf("connect to a closed port: %q, want code 14", r)
	}
}

// startUDPEcho starts a real UDP socket that sends every datagram back,
// and returns its address.
func startUDPEcho(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(bytes.ToUpper(buf[:n]), from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

// TestUDPDeviceIO: datagrams to and from a real UDP socket; a receive with
// nothing to receive times out; a closed port is unreachable, and the
// socket stays usable.
func TestUDPDeviceIO(t *testing.T) {
	addr := startUDPEcho(t)
	p := load(t, devioPlugin, PluginConfig{})
	h := openHandle(t, p, "udp", addr)
	if r := devCall(t, p, "write", fmt.Sprintf("%d ping", h)); r != "n 4" {
		t.Fatalf("send: %q", r)
	}
	if r := devCall(t, p, "read", fmt.Sprintf("%d 64 1000", h)); r != "data PING" {
		t.Fatalf("recv: %q", r)
	}
	if r := devCall(t, p, "read", fmt.Sprintf("%d 64 100", h)); r != "code 6" {
		t.Fatalf("recv with nothing sent: %q, want code 6", r)
	}
	// A datagram longer than the buffer is cut to it.
	devCall(t, p, "write", fmt.Sprintf("%d abcdefgh", h))
	if r := devCall(t, p, "read", fmt.Sprintf("%d 3 1000", h)); r != "data ABC" {
		t.Fatalf("recv into 3 bytes: %q", r)
	}

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().String()
	pc.Close()
	u := openHandle(t, p, "udp", closed)
	devCall(t, p, "write", fmt.Sprintf("%d ping", u))
	if r := devCall(t, p, "read", fmt.Sprintf("%d 64 1000", u)); r != "code 14" {
		t.Fatalf("recv from a closed port: %q, want code 14", r)
	}
	if r := devCall(t, p, "write", fmt.Sprintf("%d again", u)); r != "n 5" {
		t.Fatalf("send after unreachable: %q", r)
	}
}

// BenchmarkTCPDeviceRoundTrip: one request and its answer between a plugin
// and a real loopback echo server, as a mapper polls a device: a call that
// writes 12 bytes, then a call that reads them back.
func BenchmarkTCPDeviceRoundTrip(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go echo(c)
		}
	}()
	p, err := testRuntime.Load(context.Background(), compile(b, devioPlugin), PluginConfig{Name: "devio-bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := context.Background()
	do := func(op, content string) string {
		reply, _, err := p.Handle(ctx, message(op, content))
		if err != nil {
			b.Fatal(err)
		}
		return string(reply.Content)
	}
	h := strings.TrimPrefix(do("tcp", ln.Addr().String()+" 1000"), "h ")
	write, read := h+" 0103000a0001", h+" 64 1000"
	for b.Loop() {
		do("write", write)
		if r := do("read", read); len(r) < len("data x") {
			b.Fatalf("read: %q", r)
		}
	}
}
