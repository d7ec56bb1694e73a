package sdk

import (
	"io"
	"math"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// Device I/O (ABI 1.2, SPEC §5.2): TCP connections, connected UDP sockets
// and serial lines, opened through the host within the plugin's tcp, udp
// and serial grants. A connection belongs to the instance that opened it
// and outlives the call: keep it in a global and use it on the next tick
// or message. When the instance ends the host closes it.
//
// Every read and write waits at most its timeout (SetTimeout; zero: until
// shortly before the call's own timeout) and then fails with ErrTimeout;
// the connection stays usable.

// Errors of the device I/O functions; they are the abi codes, so
// errors.Is(err, sdk.ErrTimeout) and errors.Is(err, abi.Timeout) agree.
var (
	// ErrTimeout: the wait ended before anything was read or written.
	ErrTimeout error = abi.Timeout
	// ErrDenied: the address or path is outside the plugin's grants.
	ErrDenied error = abi.Denied
	// ErrClosed: the stream is over (the peer closed or reset it, the line
	// hung up). TCPConn and SerialPort reads report it as io.EOF.
	ErrClosed error = abi.Closed
	// ErrBadHandle: the connection was closed, or is not of this instance.
	ErrBadHandle error = abi.BadHandle
	// ErrUnreachable: refused, no route, the name does not resolve, the
	// device is absent or busy.
	ErrUnreachable error = abi.Unreachable
	// ErrTooManyHandles: the instance has abi.MaxHandles open already.
	ErrTooManyHandles error = abi.Busy
)

// stream is what TCPConn, UDPConn and SerialPort share: a handle, the
// wait of each read and write, and the transport's imports.
type stream struct {
	handle  int32
	timeout int32 // ms; 0: the call's remaining time
	op      string
	read    func(h int32, out []byte, timeoutMS int32) int32
	write   func(h int32, data []byte, timeoutMS int32) int32
	close   func(h int32) int32
}

// Handle returns the host's handle number (SPEC §5.2), for logs.
func (s *stream) Handle() int32 { return s.handle }

// SetTimeout sets how long each later Read and Write may wait; zero or
// less waits until shortly before the call's timeout. It is rounded up to
// a whole millisecond.
func (s *stream) SetTimeout(d time.Duration) { s.timeout = millis(d) }

// Read reads what has arrived, at most len(p) bytes, waiting for at least
// one. At the end of a TCP or serial stream it returns io.EOF.
func (s *stream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := s.read(s.handle, p, s.timeout)
	if n >= 0 {
		return int(n), nil
	}
	if abi.Code(-n) == abi.Closed && s.op != "udp" {
		return 0, io.EOF
	}
	return 0, &hostError{op: s.op + " read", code: abi.Code(-n)}
}

// Write writes p. When the wait ends part way it returns the bytes
// written and an error matching ErrTimeout.
func (s *stream) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := s.write(s.handle, p, s.timeout)
	switch {
	case n < 0:
		return 0, &hostError{op: s.op + " write", code: abi.Code(-n)}
	case int(n) < len(p):
		return int(n), &hostError{op: s.op + " write", code: abi.Timeout}
	}
	return int(n), nil
}

// Close closes the connection; closing it again returns ErrBadHandle.
func (s *stream) Close() error {
	return check(s.op+" close", "", s.close(s.handle))
}

// TCPConn is a TCP connection made through the host. It is an
// io.ReadWriteCloser.
type TCPConn struct{ stream }

// DialTCP connects to addr ("10.0.0.5:502", "[fd00::5]:502",
// "sensor.local:7000"), waiting at most timeout (zero: until shortly before
// the call's timeout). The plugin needs a tcp grant for addr.
func DialTCP(addr string, timeout time.Duration) (*TCPConn, error) {
	h := hostTCPConnect(addr, millis(timeout))
	if h < 0 {
		return nil, &hostError{op: "tcp_connect", arg: addr, code: abi.Code(-h)}
	}
	return &TCPConn{stream{handle: h, op: "tcp", read: hostTCPRead, write: hostTCPWrite, close: hostTCPClose}}, nil
}

// UDPConn is a UDP socket connected to one peer through the host: Write
// sends one datagram, Read receives one (at most len(p) bytes of it; the
// rest of a longer one is lost).
type UDPConn struct{ stream }

// DialUDP opens a UDP socket to addr. The plugin needs a udp grant for it.
func DialUDP(addr string) (*UDPConn, error) {
	h := hostUDPOpen(addr)
	if h < 0 {
		return nil, &hostError{op: "udp_open", arg: addr, code: abi.Code(-h)}
	}
	return &UDPConn{stream{handle: h, op: "udp", read: hostUDPRecv, write: hostUDPSend, close: hostUDPClose}}, nil
}

// Parity is a serial line's parity.
type Parity int32

// Parities.
const (
	ParityNone Parity = Parity(abi.ParityNone)
	ParityOdd  Parity = Parity(abi.ParityOdd)
	ParityEven Parity = Parity(abi.ParityEven)
)

// SerialConfig is a serial line's framing. Zero DataBits means 8, zero
// StopBits 1.
type SerialConfig struct {
	Baud     int
	DataBits int
	Parity   Parity
	StopBits int
}

// SerialPort is a serial line opened through the host, in raw mode. It is
// an io.ReadWriteCloser.
type SerialPort struct{ stream }

// OpenSerial opens the serial device at path ("/dev/ttyUSB0") with cfg.
// The plugin needs a serial grant for the path.
func OpenSerial(path string, cfg SerialConfig) (*SerialPort, error) {
	if cfg.DataBits == 0 {
		cfg.DataBits = 8
	}
	if cfg.StopBits == 0 {
		cfg.StopBits = 1
	}
	h := hostSerialOpen(path, clampInt32(cfg.Baud), clampInt32(cfg.DataBits), int32(cfg.Parity), clampInt32(cfg.StopBits))
	if h < 0 {
		return nil, &hostError{op: "serial_open", arg: path, code: abi.Code(-h)}
	}
	return &SerialPort{stream{handle: h, op: "serial", read: hostSerialRead, write: hostSerialWrite, close: hostSerialClose}}, nil
}

// millis converts a timeout to whole milliseconds, rounded up; zero or
// less is 0 (no bound of its own).
func millis(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	ms := d.Milliseconds()
	if time.Duration(ms)*time.Millisecond < d {
		ms++
	}
	return int32(min(ms, math.MaxInt32))
}

func clampInt32(v int) int32 {
	return int32(max(min(v, math.MaxInt32), math.MinInt32))
}
