//go:build !wasip1

package sdktest

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/iogrant"
)

// Device I/O (SPEC §5.2) in the fake host: real TCP and UDP sockets, opened
// within Host.TCP and Host.UDP as the daemon checks its grants; serial
// lines are not provided (serial_open returns abi.Unavailable). Unlike the
// daemon, the fake host bounds a wait only by the timeout the plugin
// passes, or by DefaultIOTimeout.

// DefaultIOTimeout bounds a device wait for which the plugin passes no
// timeout of its own (the daemon bounds it by the call's timeout).
const DefaultIOTimeout = 5 * time.Second

// device is one open handle of the fake host.
type device struct {
	conn net.Conn
	udp  bool
	over bool
}

// OpenHandles returns the number of device handles the plugin holds open.
func (h *Host) OpenHandles() int { return len(h.devices) }

// CloseHandles closes the plugin's device handles, as the daemon does when
// an instance ends. The handle numbers are not reused.
func (h *Host) CloseHandles() {
	for id, d := range h.devices {
		d.conn.Close()
		delete(h.devices, id)
	}
}

func allowed(grants []string, t iogrant.Target) bool {
	for _, g := range grants {
		if e, err := iogrant.ParseEndpoint(g); err == nil && e.Match(t) {
			return true
		}
	}
	return false
}

func ioDeadline(timeoutMS int32) time.Time {
	if timeoutMS <= 0 {
		return time.Now().Add(DefaultIOTimeout)
	}
	return time.Now().Add(time.Duration(timeoutMS) * time.Millisecond)
}

func (i imports) open(network, addr string, grants []string, timeoutMS int32) int32 {
	h := i.h
	t, err := iogrant.ParseTarget(addr)
	switch {
	case err != nil:
		return -int32(abi.InvalidArgument)
	case !allowed(grants, t):
		return -int32(abi.Denied)
	case len(h.devices) >= abi.MaxHandles:
		return -int32(abi.Busy)
	}
	conn, err := net.DialTimeout(network, t.String(), time.Until(ioDeadline(timeoutMS)))
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return -int32(abi.Timeout)
		}
		return -int32(abi.Unreachable)
	}
	if h.devices == nil {
		h.devices = map[int32]*device{}
	}
	h.lastHandle++
	h.devices[h.lastHandle] = &device{conn: conn, udp: network == "udp"}
	return h.lastHandle
}

func (i imports) device(id int32, udp bool) (*device, int32) {
	d := i.h.devices[id]
	switch {
	case d == nil || d.udp != udp:
		return nil, -int32(abi.BadHandle)
	case d.over:
		return nil, -int32(abi.Closed)
	}
	return d, 0
}

func ioCode(d *device, err error) int32 {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return -int32(abi.Timeout)
	case d.udp || errors.Is(err, syscall.ECONNREFUSED):
		return -int32(abi.Unreachable)
	}
	d.over = true
	return -int32(abi.Closed)
}

func (i imports) read(id int32, out []byte, timeoutMS int32, udp bool) int32 {
	d, code := i.device(id, udp)
	switch {
	case d == nil:
		return code
	case len(out) == 0:
		return -int32(abi.InvalidArgument)
	}
	_ = d.conn.SetReadDeadline(ioDeadline(timeoutMS))
	n, err := d.conn.Read(out)
	switch {
	case n > 0 || (udp && err == nil):
		return int32(n)
	case errors.Is(err, io.EOF):
		d.over = true
		return -int32(abi.Closed)
	}
	return ioCode(d, err)
}

func (i imports) write(id int32, data []byte, timeoutMS int32, udp bool) int32 {
	d, code := i.device(id, udp)
	if d == nil {
		return code
	}
	if udp && len(data) > abi.MaxDatagram {
		return -int32(abi.TooLarge)
	}
	_ = d.conn.SetWriteDeadline(ioDeadline(timeoutMS))
	n, err := d.conn.Write(data)
	if err != nil && (n == 0 || udp) {
		return ioCode(d, err)
	}
	return int32(n)
}

func (i imports) close(id int32, udp bool) int32 {
	d := i.h.devices[id]
	if d == nil || d.udp != udp {
		return -int32(abi.BadHandle)
	}
	d.conn.Close()
	delete(i.h.devices, id)
	return 0
}

func (i imports) TCPConnect(addr string, timeoutMS int32) int32 {
	return i.open("tcp", addr, i.h.TCP, timeoutMS)
}

func (i imports) TCPRead(h int32, out []byte, timeoutMS int32) int32 {
	return i.read(h, out, timeoutMS, false)
}

func (i imports) TCPWrite(h int32, data []byte, timeoutMS int32) int32 {
	return i.write(h, data, timeoutMS, false)
}

func (i imports) TCPClose(h int32) int32 { return i.close(h, false) }

func (i imports) UDPOpen(addr string) int32 { return i.open("udp", addr, i.h.UDP, 0) }

func (i imports) UDPSend(h int32, data []byte, timeoutMS int32) int32 {
	return i.write(h, data, timeoutMS, true)
}

func (i imports) UDPRecv(h int32, out []byte, timeoutMS int32) int32 {
	return i.read(h, out, timeoutMS, true)
}

func (i imports) UDPClose(h int32) int32 { return i.close(h, true) }

func (i imports) SerialOpen(string, int32, int32, int32, int32) int32 {
	return -int32(abi.Unavailable)
}

func (i imports) SerialRead(int32, []byte, int32) int32 { return -int32(abi.BadHandle) }

func (i imports) SerialWrite(int32, []byte, int32) int32 { return -int32(abi.BadHandle) }

func (i imports) SerialClose(int32) int32 { return -int32(abi.BadHandle) }
