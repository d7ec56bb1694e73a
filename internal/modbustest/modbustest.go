// Package modbustest runs Modbus TCP devices for tests: a well-behaved
// register bank served by github.com/simonvetter/modbus's server, and
// misbehaving servers (malformed replies, wrong transaction ids,
// exceptions, silence) written here on a plain TCP listener. Both are real
// TCP peers on 127.0.0.1.
package modbustest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
)

// Bank is a device's coils, discrete inputs, holding and input registers,
// safe for concurrent use; unset addresses read as zero. It keeps when
// each request arrived, per client connection.
type Bank struct {
	mu       sync.Mutex
	coils    map[uint16]bool
	discrete map[uint16]bool
	holding  map[uint16]uint16
	input    map[uint16]uint16
	arrivals map[string][]time.Time
}

// NewBank returns an empty bank.
func NewBank() *Bank {
	return &Bank{coils: map[uint16]bool{}, discrete: map[uint16]bool{}, holding: map[uint16]uint16{}, input: map[uint16]uint16{},
		arrivals: map[string][]time.Time{}}
}

// SetHolding sets holding registers from addr on.
func (b *Bank) SetHolding(addr uint16, vals ...uint16) { b.set(b.holding, addr, vals) }

// SetInput sets input registers from addr on.
func (b *Bank) SetInput(addr uint16, vals ...uint16) { b.set(b.input, addr, vals) }

// SetCoil sets one coil.
func (b *Bank) SetCoil(addr uint16, v bool) { b.mu.Lock(); b.coils[addr] = v; b.mu.Unlock() }

// SetDiscrete sets one discrete input.
func (b *Bank) SetDiscrete(addr uint16, v bool) { b.mu.Lock(); b.discrete[addr] = v; b.mu.Unlock() }

// Holding returns the holding register at addr.
func (b *Bank) Holding(addr uint16) uint16 { b.mu.Lock(); defer b.mu.Unlock(); return b.holding[addr] }

// Coil returns the coil at addr.
func (b *Bank) Coil(addr uint16) bool { b.mu.Lock(); defer b.mu.Unlock(); return b.coils[addr] }

// Arrivals returns when each request arrived, in order, by the client's
// address (one entry per connection).
func (b *Bank) Arrivals() map[string][]time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string][]time.Time, len(b.arrivals))
	for k, v := range b.arrivals {
		out[k] = append([]time.Time(nil), v...)
	}
	return out
}

func (b *Bank) set(m map[uint16]uint16, addr uint16, vals []uint16) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, v := range vals {
		m[addr+uint16(i)] = v
	}
}

func (b *Bank) arrived(client string) { b.arrivals[client] = append(b.arrivals[client], time.Now()) }

// HandleCoils implements modbus.RequestHandler.
func (b *Bank) HandleCoils(req *modbus.CoilsRequest) ([]bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.arrived(req.ClientAddr)
	out := make([]bool, req.Quantity)
	for i := range out {
		a := req.Addr + uint16(i)
		if req.IsWrite {
			b.coils[a] = req.Args[i]
		}
		out[i] = b.coils[a]
	}
	return out, nil
}

// HandleDiscreteInputs implements modbus.RequestHandler.
func (b *Bank) HandleDiscreteInputs(req *modbus.DiscreteInputsRequest) ([]bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.arrived(req.ClientAddr)
	out := make([]bool, req.Quantity)
	for i := range out {
		out[i] = b.discrete[req.Addr+uint16(i)]
	}
	return out, nil
}

// HandleHoldingRegisters implements modbus.RequestHandler. Addresses from
// 0xFF00 on do not exist (an exception 2, illegal data address).
func (b *Bank) HandleHoldingRegisters(req *modbus.HoldingRegistersRequest) ([]uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.arrived(req.ClientAddr)
	if int(req.Addr)+int(req.Quantity) > 0xFF00 {
		return nil, modbus.ErrIllegalDataAddress
	}
	out := make([]uint16, req.Quantity)
	for i := range out {
		a := req.Addr + uint16(i)
		if req.IsWrite {
			b.holding[a] = req.Args[i]
		}
		out[i] = b.holding[a]
	}
	return out, nil
}

// HandleInputRegisters implements modbus.RequestHandler.
func (b *Bank) HandleInputRegisters(req *modbus.InputRegistersRequest) ([]uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.arrived(req.ClientAddr)
	out := make([]uint16, req.Quantity)
	for i := range out {
		out[i] = b.input[req.Addr+uint16(i)]
	}
	return out, nil
}

// Server is a bank served over Modbus TCP.
type Server struct {
	// Addr is where it listens, host:port.
	Addr string
	bank *Bank
	srv  *modbus.ModbusServer
}

// Serve serves bank over Modbus TCP on a free port of 127.0.0.1 until
// the test ends.
func Serve(t testing.TB, bank *Bank) *Server {
	t.Helper()
	s := &Server{Addr: FreeAddr(t), bank: bank}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start serves the bank on Addr (again, after Stop).
func (s *Server) Start() error {
	srv, err := modbus.NewServer(&modbus.ServerConfiguration{URL: "tcp://" + s.Addr, Timeout: time.Minute, MaxClients: 16}, s.bank)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	s.srv = srv
	return nil
}

// Stop closes the listener and every client's connection.
func (s *Server) Stop() {
	if s.srv != nil {
		_ = s.srv.Stop()
		s.srv = nil
	}
}

// FreeAddr returns a 127.0.0.1 address with a port free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Fault is how a misbehaving server answers every request.
type Fault int

// Faults.
const (
	// Malformed replies with a byte count that disagrees with the data.
	Malformed Fault = iota
	// WrongTransaction replies well, but with the next transaction id.
	WrongTransaction
	// Exception replies with exception 2 (illegal data address).
	Exception
	// Silent reads requests and never answers.
	Silent
)

// ServeFault serves a misbehaving device on a free port of 127.0.0.1
// until the test ends, and returns its address.
func ServeFault(t testing.TB, f Fault) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Go(func() { serveFault(c, f) })
		}
	})
	return l.Addr().String()
}

func serveFault(c net.Conn, f Fault) {
	defer c.Close()
	hdr := make([]byte, 7)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		pdu := make([]byte, int(binary.BigEndian.Uint16(hdr[4:]))-1)
		if _, err := io.ReadFull(c, pdu); err != nil || len(pdu) == 0 {
			return
		}
		tx, unit, fc := binary.BigEndian.Uint16(hdr), hdr[6], pdu[0]
		var reply []byte
		switch f {
		case Malformed:
			reply = []byte{fc, 4, 0, 1} // says 4 bytes, carries 2
		case WrongTransaction:
			tx++
			reply = []byte{fc, 2, 0, 1}
		case Exception:
			reply = []byte{fc | 0x80, 2}
		case Silent:
			continue
		}
		out := binary.BigEndian.AppendUint16(nil, tx)
		out = append(out, 0, 0)
		out = binary.BigEndian.AppendUint16(out, uint16(len(reply)+1))
		out = append(out, unit)
		out = append(out, reply...)
		if _, err := c.Write(out); err != nil && !errors.Is(err, net.ErrClosed) {
			return
		}
	}
}
