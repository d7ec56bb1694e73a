package wasm

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/iogrant"
	"github.com/tetratelabs/wazero/api"
)

// Device I/O (abi/SPEC.md section 5.2, ABI 1.2): the guest reaches TCP
// streams, connected UDP sockets and serial lines through handles into a
// per-instance table; the host owns the sockets and file descriptors.

// ioKind is a handle's transport.
type ioKind uint8

const (
	ioTCP ioKind = iota + 1
	ioUDP
	ioSerial
)

// deviceConn is what a handle holds: a net.Conn or a serial line's
// *os.File, both with deadlines from Go's poller.
type deviceConn interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// ioHandle is one open handle.
type ioHandle struct {
	id   int32
	kind ioKind
	conn deviceConn
	// over is set once a stream has ended (abi.Closed): every further read
	// or write returns it too.
	over bool
}

// ioTable is an instance's open handles. Only the goroutine holding the
// instance touches it.
type ioTable struct {
	open []*ioHandle
	last int32 // the last handle given out; numbers are not reused
}

// noDeadline is the zero time: no deadline.
var noDeadline time.Time

// maxIOReserve caps the part of the call's time device waits leave to the
// guest (SPEC: a tenth of the call timeout, at most 100 ms).
const maxIOReserve = 100 * time.Millisecond

// addHandle gives conn a new handle, or returns abi.Busy when the instance holds
// abi.MaxHandles already (then the caller closes conn).
func (inst *instance) addHandle(kind ioKind, conn deviceConn) (int32, abi.Code) {
	t := &inst.io
	if len(t.open) >= abi.MaxHandles {
		return 0, abi.Busy
	}
	if t.last == 1<<31-1 {
		// Two billion opens in one instance: no numbers left that were
		// never given out. Refuse rather than reuse.
		return 0, abi.Busy
	}
	t.last++
	t.open = append(t.open, &ioHandle{id: t.last, kind: kind, conn: conn})
	inst.p.ioOpen.Add(1)
	return t.last, abi.OK
}

// lookupHandle returns the open handle id of kind, or nil.
func (inst *instance) lookupHandle(id int32, kind ioKind) *ioHandle {
	for _, h := range inst.io.open {
		if h.id == id && h.kind == kind {
			return h
		}
	}
	return nil
}

// closeHandle closes and frees handle id of kind.
func (inst *instance) closeHandle(id int32, kind ioKind) abi.Code {
	for i, h := range inst.io.open {
		if h.id == id && h.kind == kind {
			inst.io.open = append(inst.io.open[:i], inst.io.open[i+1:]...)
			inst.p.ioOpen.Add(-1)
			if err := h.conn.Close(); err != nil {
				inst.p.logger.Debug("close device handle", "handle", id, "error", err)
			}
			return abi.OK
		}
	}
	return abi.BadHandle
}

// closeIO closes every handle of the instance, as it ends.
func (inst *instance) closeIO() {
	for _, h := range inst.io.open {
		if err := h.conn.Close(); err != nil {
			inst.p.logger.Debug("close device handle", "handle", h.id, "error", err)
		}
	}
	inst.p.ioOpen.Add(-int64(len(inst.io.open)))
	inst.io.open = nil
}

// ioDeadline is when a device wait with the guest's timeout_ms ends: at
// that timeout (if > 0), and no later than the call's deadline less the
// reserve that leaves the guest time to return.
func (inst *instance) ioDeadline(timeoutMS int32) time.Time {
	reserve := min(inst.p.limits.CallTimeout/10, maxIOReserve)
	d := inst.deadline.Add(-reserve)
	if timeoutMS > 0 {
		if own := time.Now().Add(time.Duration(timeoutMS) * time.Millisecond); own.Before(d) {
			d = own
		}
	}
	return d
}

// ioContext is the context of a dial or a name lookup: it ends at deadline,
// when the caller gives up, or when the plugin closes.
func (inst *instance) ioContext(deadline time.Time) (context.Context, context.CancelFunc) {
	parent := inst.callCtx
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithDeadline(parent, deadline)
	stop := context.AfterFunc(inst.p.ioCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// interruptible arranges that a wait on conn ends at once when the caller
// gives up or the plugin closes, by moving conn's deadlines to the past;
// call the result when the wait is over.
func (inst *instance) interruptible(conn deviceConn) (stop func()) {
	interrupt := func() {
		past := time.Unix(1, 0)
		_ = conn.SetReadDeadline(past)
		_ = conn.SetWriteDeadline(past)
	}
	stopPlugin := context.AfterFunc(inst.p.ioCtx, interrupt)
	if inst.callCtx == nil || inst.callCtx.Done() == nil {
		return func() { stopPlugin() }
	}
	stopCall := context.AfterFunc(inst.callCtx, interrupt)
	return func() { stopPlugin(); stopCall() }
}

// isTimeout reports whether err is a wait that ended (deadline,
// cancellation).
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled)
}

// isUnreachable reports whether err says the peer cannot be reached.
func isUnreachable(err error) bool {
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, syscall.EHOSTDOWN)
}

// openCode maps a failed dial or open to its code.
func openCode(err error) abi.Code {
	if isTimeout(err) {
		return abi.Timeout
	}
	return abi.Unreachable
}

// streamCode maps a failed read or write to its code, marking h's stream
// over when it is.
func streamCode(h *ioHandle, err error) abi.Code {
	switch {
	case isTimeout(err):
		return abi.Timeout
	case h.kind == ioUDP && isUnreachable(err):
		// ICMP port unreachable on a connected socket: it stays usable.
		return abi.Unreachable
	case h.kind == ioUDP && !errors.Is(err, net.ErrClosed):
		return abi.Unreachable
	}
	h.over = true
	return abi.Closed
}

// readTarget reads and parses the "host:port" at (ptr, n).
func readTarget(mem api.Memory, ptr, n uint64) (iogrant.Target, bool) {
	b, ok := read(mem, ptr, n)
	if !ok || len(b) > 300 {
		return iogrant.Target{}, false
	}
	t, err := iogrant.ParseTarget(string(b))
	return t, err == nil
}

// ioRead reads into out from handle id of kind (the read imports).
func (inst *instance) ioRead(kind ioKind, id int32, out []byte, timeoutMS int32) uint64 {
	h := inst.lookupHandle(id, kind)
	switch {
	case h == nil:
		return fail(abi.BadHandle)
	case h.over:
		return fail(abi.Closed)
	}
	if err := h.conn.SetReadDeadline(inst.ioDeadline(timeoutMS)); err != nil {
		return fail(streamCode(h, err))
	}
	stop := inst.interruptible(h.conn)
	n, err := h.conn.Read(out)
	stop()
	inst.p.ioIn.Add(uint64(n))
	switch {
	case n > 0:
		// Data first: an error that came with it shows at the next read.
		return ok(n)
	case err == nil, errors.Is(err, io.EOF):
		// A read of nothing without an error is the end of the stream
		// (a serial line hung up); a zero-length datagram is data.
		if kind == ioUDP && err == nil {
			return ok(0)
		}
		h.over = true
		return fail(abi.Closed)
	}
	return fail(streamCode(h, err))
}

// ioWrite writes data to handle id of kind (the write and send imports).
func (inst *instance) ioWrite(kind ioKind, id int32, data []byte, timeoutMS int32) uint64 {
	h := inst.lookupHandle(id, kind)
	switch {
	case h == nil:
		return fail(abi.BadHandle)
	case h.over:
		return fail(abi.Closed)
	}
	if err := h.conn.SetWriteDeadline(inst.ioDeadline(timeoutMS)); err != nil {
		return fail(streamCode(h, err))
	}
	stop := inst.interruptible(h.conn)
	n, err := h.conn.Write(data)
	stop()
	inst.p.ioOut.Add(uint64(n))
	if err == nil {
		return ok(n)
	}
	code := streamCode(h, err)
	if n > 0 && kind != ioUDP {
		return ok(n)
	}
	return fail(code)
}

// readOut returns the guest's read buffer, or false when it is outside
// memory or empty.
func readOut(mem api.Memory, ptr, n uint64) ([]byte, bool) {
	out, valid := read(mem, ptr, n)
	return out, valid && len(out) > 0
}

// tcp_connect(addr_ptr, addr_len, timeout_ms) -> i32
func importTCPConnect(inst *instance, mem api.Memory, stack []uint64) {
	t, valid := readTarget(mem, stack[0], stack[1])
	switch {
	case !valid:
		stack[0] = fail(abi.InvalidArgument)
		return
	case !inst.allowTCP(t):
		stack[0] = inst.deny(abi.ImportTCPConnect, "address", t.String())
		return
	case len(inst.io.open) >= abi.MaxHandles:
		stack[0] = fail(abi.Busy)
		return
	}
	ctx, cancel := inst.ioContext(inst.ioDeadline(api.DecodeI32(stack[2])))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.String())
	cancel()
	if err != nil {
		inst.p.logger.Debug("tcp connect failed", "address", t.String(), "error", err)
		stack[0] = fail(openCode(err))
		return
	}
	stack[0] = inst.opened(ioTCP, conn, t.String())
}

// opened puts a new connection in the handle table and returns the result
// for the guest.
func (inst *instance) opened(kind ioKind, conn deviceConn, what string) uint64 {
	id, code := inst.addHandle(kind, conn)
	if code != abi.OK {
		conn.Close()
		return fail(code)
	}
	inst.p.logger.Debug("device handle opened", "handle", id, "device", what)
	return ok(int(id))
}

// tcp_read(handle, out_ptr, out_cap, timeout_ms) -> i32
func importTCPRead(inst *instance, mem api.Memory, stack []uint64) {
	out, valid := readOut(mem, stack[1], stack[2])
	if !valid {
		stack[0] = fail(abi.InvalidArgument)
		return
	}
	stack[0] = inst.ioRead(ioTCP, api.DecodeI32(stack[0]), out, api.DecodeI32(stack[3]))
}

// tcp_write(handle, ptr, len, timeout_ms) -> i32
func importTCPWrite(inst *instance, mem api.Memory, stack []uint64) {
	data, valid := read(mem, stack[1], stack[2])
	if !valid {
		stack[0] = fail(abi.InvalidArgument)
		return
	}
	stack[0] = inst.ioWrite(ioTCP, api.DecodeI32(stack[0]), data, api.DecodeI32(stack[3]))
}

// tcp_close(handle) -> i32
func importTCPClose(inst *instance, _ api.Memory, stack []uint64) {
	stack[0] = closeResult(inst.closeHandle(api.DecodeI32(stack[0]), ioTCP))
}

func closeResult(c abi.Code) uint64 {
	if c != abi.OK {
		return fail(c)
	}
	return ok(0)
}

// udp_open(addr_ptr, addr_len) -> i32
func importUDPOpen(inst *instance, mem api.Memory, stack []uint64) {
	t, valid := readTarget(mem, stack[0], stack[1])
	switch {
	case !valid:
		stack[0] = fail(abi.InvalidArgument)
		return
	case !inst.allowUDP(t):
		stack[0] = inst.deny(abi.ImportUDPOpen, "address", t.String())
		return
	case len(inst.io.open) >= abi.MaxHandles:
		stack[0] = fail(abi.Busy)
		return
	}
	// Dialling UDP sends nothing; only a name lookup can wait.
	ctx, cancel := inst.ioContext(inst.ioDeadline(0))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", t.String())
	cancel()
	if err != nil {
		inst.p.logger.Debug("udp open failed", "address", t.String(), "error", err)
		stack[0] = fail(openCode(err))
		return
	}
	stack[0] = inst.opened(ioUDP, conn, t.String())
}

// udp_send(handle, ptr, len, timeout_ms) -> i32
func importUDPSend(inst *instance, mem api.Memory, stack []uint64) {
	data, valid := read(mem, stack[1], stack[2])
	switch {
	case !valid:
		stack[0] = fail(abi.InvalidArgument)
	case len(data) > abi.MaxDatagram:
		stack[0] = fail(abi.TooLarge)
	default:
		stack[0] = inst.ioWrite(ioUDP, api.DecodeI32(stack[0]), data, api.DecodeI32(stack[3]))
	}
}

// udp_recv(handle, out_ptr, out_cap, timeout_ms) -> i32
func importUDPRecv(inst *instance, mem api.Memory, stack []uint64) {
	out, valid := readOut(mem, stack[1], stack[2])
	if !valid {
		stack[0] = fail(abi.InvalidArgument)
		return
	}
	stack[0] = inst.ioRead(ioUDP, api.DecodeI32(stack[0]), out, api.DecodeI32(stack[3]))
}

// udp_close(handle) -> i32
func importUDPClose(inst *instance, _ api.Memory, stack []uint64) {
	stack[0] = closeResult(inst.closeHandle(api.DecodeI32(stack[0]), ioUDP))
}

// serial_open(path_ptr, path_len, baud, data_bits, parity, stop_bits) -> i32
func importSerialOpen(inst *instance, mem api.Memory, stack []uint64) {
	b, valid := read(mem, stack[0], stack[1])
	path := string(b)
	line := serialLine{baud: api.DecodeI32(stack[2]), dataBits: api.DecodeI32(stack[3]),
		parity: api.DecodeI32(stack[4]), stopBits: api.DecodeI32(stack[5])}
	switch {
	case !valid || !iogrant.ValidPath(path) || !line.valid():
		stack[0] = fail(abi.InvalidArgument)
		return
	case !inst.allowSerial(path):
		stack[0] = inst.deny(abi.ImportSerialOpen, "path", path)
		return
	case len(inst.io.open) >= abi.MaxHandles:
		stack[0] = fail(abi.Busy)
		return
	}
	f, code := openSerial(path, line)
	if code != abi.OK {
		inst.p.logger.Debug("serial open failed", "path", path, "code", code.String())
		stack[0] = fail(code)
		return
	}
	stack[0] = inst.opened(ioSerial, f, path)
}

// serial_read(handle, out_ptr, out_cap, timeout_ms) -> i32
func importSerialRead(inst *instance, mem api.Memory, stack []uint64) {
	out, valid := readOut(mem, stack[1], stack[2])
	if !valid {
		stack[0] = fail(abi.InvalidArgument)
		return
	}
	stack[0] = inst.ioRead(ioSerial, api.DecodeI32(stack[0]), out, api.DecodeI32(stack[3]))
}

// serial_write(handle, ptr, len, timeout_ms) -> i32
func importSerialWrite(inst *instance, mem api.Memory, stack []uint64) {
	data, valid := read(mem, stack[1], stack[2])
	if !valid {
		stack[0] = fail(abi.InvalidArgument)
		return
	}
	stack[0] = inst.ioWrite(ioSerial, api.DecodeI32(stack[0]), data, api.DecodeI32(stack[3]))
}

// serial_close(handle) -> i32
func importSerialClose(inst *instance, _ api.Memory, stack []uint64) {
	stack[0] = closeResult(inst.closeHandle(api.DecodeI32(stack[0]), ioSerial))
}

// serialLine is a serial line's settings as serial_open takes them.
type serialLine struct {
	baud, dataBits, parity, stopBits int32
}

// serialBauds are the rates serial_open accepts (SPEC section 5.2).
var serialBauds = []int32{50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
	57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000}

func (l serialLine) valid() bool {
	baudOK := false
	for _, b := range serialBauds {
		baudOK = baudOK || b == l.baud
	}
	return baudOK && l.dataBits >= 5 && l.dataBits <= 8 &&
		l.parity >= abi.ParityNone && l.parity <= abi.ParityEven && (l.stopBits == 1 || l.stopBits == 2)
}
