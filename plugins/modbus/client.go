package main

import (
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/edgehost/edgehost/plugins/modbus/mbap"
	"github.com/edgehost/edgehost/sdk"
)

// maxConns is how many device connections an instance keeps open; the
// least recently used is closed to make room. The host allows 16 handles
// an instance; the rest is headroom.
const maxConns = 12

// conn is an open connection to one Modbus TCP server, kept across calls
// (a handle lives as long as its instance).
type conn struct {
	addr    string
	tcp     *sdk.TCPConn
	tx      uint16
	lastReq time.Time // when the last request went out, for the gap
	used    time.Time // for closing the least recently used
	buf     []byte
}

// conns are this instance's connections by address.
var conns = map[string]*conn{}

// errConnect marks an error of connecting, which makes the device offline.
var errConnect = errors.New("cannot connect")

// connFor returns the open connection to addr, connecting if there is
// none. fresh says whether it was made now.
func connFor(addr string, timeout time.Duration, now time.Time) (c *conn, fresh bool, err error) {
	if c := conns[addr]; c != nil {
		c.used = now
		return c, false, nil
	}
	if len(conns) >= maxConns {
		closeLRU()
	}
	tcp, err := sdk.DialTCP(addr, timeout)
	if errors.Is(err, sdk.ErrTooManyHandles) {
		closeLRU()
		tcp, err = sdk.DialTCP(addr, timeout)
	}
	if err != nil {
		return nil, false, &wrapped{errConnect.Error() + " to " + addr + ": " + err.Error(), []error{errConnect, err}}
	}
	c = &conn{addr: addr, tcp: tcp, used: now, buf: make([]byte, 0, mbap.MaxADU)}
	conns[addr] = c
	return c, true, nil
}

func closeLRU() {
	var old *conn
	for _, c := range conns {
		if old == nil || c.used.Before(old.used) {
			old = c
		}
	}
	if old != nil {
		old.close()
	}
}

// close closes the connection and forgets it; the next request connects
// again.
func (c *conn) close() {
	_ = c.tcp.Close()
	delete(conns, c.addr)
}

// transact sends r to the device and returns the data of its reply. A
// connection found broken (closed by the peer, a stale handle) is made
// again once; a timeout, a malformed reply or a wrong transaction id
// closes it, since a late or stray reply would answer the next request.
func transact(d *device, r *mbap.Request) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		c, fresh, err := connFor(d.addr, d.timeout, time.Now())
		if err != nil {
			return nil, err
		}
		data, err := c.roundTrip(d, r)
		if err == nil {
			return data, nil
		}
		var exc *mbap.Exception
		if errors.As(err, &exc) {
			return nil, err
		}
		c.close()
		broken := errors.Is(err, io.EOF) || errors.Is(err, sdk.ErrClosed) || errors.Is(err, sdk.ErrBadHandle)
		if !broken || fresh || attempt > 0 {
			return nil, err
		}
	}
}

// roundTrip writes one request and reads its reply, pacing requests to
// the device by its gap.
func (c *conn) roundTrip(d *device, r *mbap.Request) ([]byte, error) {
	if d.gap > 0 {
		if wait := d.gap - time.Since(c.lastReq); wait > 0 {
			time.Sleep(wait)
		}
	}
	c.tx++
	tx := c.tx
	c.buf = r.Append(c.buf[:0], tx, d.unit)
	c.tcp.SetTimeout(d.timeout)
	c.lastReq = time.Now()
	if _, err := c.tcp.Write(c.buf); err != nil {
		return nil, wrap("send to "+d.addr+": ", err)
	}
	// Read the header, then the rest of the frame its length names.
	c.buf = c.buf[:0]
	want := mbap.HeaderLen
	for len(c.buf) < want {
		n, err := c.tcp.Read(c.buf[len(c.buf):cap(c.buf)])
		if err != nil {
			if errors.Is(err, sdk.ErrTimeout) {
				return nil, wrap("no reply from "+d.addr+" within "+d.timeout.String()+": ", err)
			}
			return nil, wrap("reply from "+d.addr+": ", err)
		}
		c.buf = c.buf[:len(c.buf)+n]
		if l, err := mbap.FrameLen(c.buf); err == nil {
			want = l
		} else if !errors.Is(err, mbap.ErrShort) {
			return nil, wrap("reply from "+d.addr+": ", err)
		}
	}
	f, _, err := mbap.Decode(c.buf[:want])
	if err != nil {
		return nil, wrap("reply from "+d.addr+": ", err)
	}
	if len(c.buf) > want {
		return nil, &wrapped{"reply from " + d.addr + ": " + mbap.ErrMalformed.Error() + ": " + strconv.Itoa(len(c.buf)-want) + " bytes past the frame", []error{mbap.ErrMalformed}}
	}
	data, err := r.Check(f, tx, d.unit)
	if err != nil {
		return nil, wrap("reply from "+d.addr+": ", err)
	}
	return data, nil
}
