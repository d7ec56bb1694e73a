package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/hub/certs"
	"github.com/edgehost/edgehost/host/hub/wire"
	"github.com/gorilla/websocket"
)

// URL returns the websocket address edgecore dials for cfg.
func (c *Config) URL() string {
	return (&url.URL{Scheme: "wss", Host: c.Server, Path: "/" + c.ProjectID + "/" + c.NodeName + "/events"}).String()
}

// Header returns the handshake headers edgecore sends.
func (c *Config) Header() http.Header {
	h := http.Header{}
	h.Set("node_id", c.NodeName)
	h.Set("project_id", c.ProjectID)
	h.Set("ConnectionUse", "msg")
	return h
}

// link keeps the link up until ctx ends: dial, serve, and after a failure
// wait a jittered, growing backoff and dial again.
func (m *Module) link(ctx context.Context) {
	bo := backoff{base: m.cfg.ReconnectBase, max: m.cfg.ReconnectMax}
	for ctx.Err() == nil {
		conn, tlsCfg, err := m.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.dialFailures.Add(1)
			m.setState(false, err)
			m.warn("dial", "cannot reach the cloud; retrying", "url", m.cfg.URL(), "error", err)
		} else {
			bo.reset()
			m.connects.Add(1)
			m.setState(true, nil)
			m.log.Info("connected to the cloud", "url", m.cfg.URL())
			m.broadcast(ctx, Connected)
			err = m.serve(ctx, conn, tlsCfg)
			conn.Close()
			m.disconnects.Add(1)
			m.setState(false, err)
			m.broadcast(context.WithoutCancel(ctx), Disconnected)
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, errRenew) {
				m.log.Info("reconnecting with the renewed certificate")
			} else {
				m.log.Warn("lost the cloud link; reconnecting", "error", err)
			}
		}
		t := time.NewTimer(bo.next())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// dial opens the websocket, first bootstrapping a certificate with the
// token if there is no usable one.
func (m *Module) dial(ctx context.Context) (*websocket.Conn, *tls.Config, error) {
	tlsCfg, err := certs.LoadClient(m.cfg.CertDir, m.cfg.NodeName)
	if errors.Is(err, certs.ErrNoCert) && m.cfg.Token != "" {
		m.note("bootstrap", "no usable client certificate; bootstrapping one with the token", "cert_server", m.cfg.CertServer, "reason", err)
		if err := certs.Bootstrap(ctx, m.cfg.CertServer, m.cfg.Token, m.cfg.NodeName, m.cfg.CertDir); err != nil {
			return nil, nil, err
		}
		m.log.Info("client certificate bootstrapped", "dir", m.cfg.CertDir)
		tlsCfg, err = certs.LoadClient(m.cfg.CertDir, m.cfg.NodeName)
	}
	if err != nil {
		return nil, nil, err
	}
	if m.cfg.RotateCertificates {
		tlsCfg = m.rotate(ctx, tlsCfg)
	}
	d := websocket.Dialer{TLSClientConfig: tlsCfg, HandshakeTimeout: m.cfg.HandshakeTimeout, Proxy: http.ProxyFromEnvironment}
	conn, resp, err := d.DialContext(ctx, m.cfg.URL(), m.cfg.Header())
	if err != nil {
		if resp != nil {
			return nil, nil, fmt.Errorf("dial %s: %w (HTTP %s)", m.cfg.URL(), err, resp.Status)
		}
		return nil, nil, fmt.Errorf("dial %s: %w", m.cfg.URL(), err)
	}
	return conn, tlsCfg, nil
}

// rotate renews the client certificate when it is due and returns the
// config to dial with. A failed renewal keeps the current certificate and
// is retried after 2 s × 2^n, at most 32 s apart, as edgecore's.
func (m *Module) rotate(ctx context.Context, cfg *tls.Config) *tls.Config {
	leaf := cfg.Certificates[0].Leaf
	if serial := leaf.SerialNumber.String(); serial != m.renewSerial {
		m.renewSerial, m.renewAt, m.renewTries = serial, certs.RenewAt(leaf), 0
	}
	if time.Now().Before(m.renewAt) {
		return cfg
	}
	err := certs.Renew(ctx, m.cfg.CertServer, m.cfg.NodeName, m.cfg.CertDir, cfg)
	var next *tls.Config
	if err == nil {
		next, err = certs.LoadClient(m.cfg.CertDir, m.cfg.NodeName)
	}
	if err != nil {
		m.rotationFailures.Add(1)
		m.renewAt = time.Now().Add(min(2*time.Second<<min(m.renewTries, 4), 32*time.Second))
		m.renewTries++
		m.warn("rotate", "certificate renewal failed; keeping the current one", "expires", leaf.NotAfter, "error", err)
		return cfg
	}
	m.rotations.Add(1)
	m.log.Info("client certificate renewed", "expires", next.Certificates[0].Leaf.NotAfter)
	return next
}

// renewLoop renews the certificate of a live link when it is due and then
// ends the session (errRenew), so the link comes back with the new one; a
// failed renewal leaves the link up and is retried.
func (m *Module) renewLoop(ctx context.Context, cfg *tls.Config, done chan<- error) {
	for {
		t := time.NewTimer(time.Until(m.renewAt))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if next := m.rotate(ctx, cfg); next != cfg {
			done <- errRenew
			return
		}
	}
}

// broadcast tells the local modules the link's state, as edgehub does.
func (m *Module) broadcast(ctx context.Context, state string) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.WriteTimeout)
	defer cancel()
	for _, g := range EventGroups {
		msg := abi.Message{Route: abi.Route{Source: EventSource, Group: g, Operation: OpConnect, Resource: ConnectionResource},
			Content: []byte(state)}
		if err := m.bus.Broadcast(ctx, g, msg); err != nil && !errors.Is(err, bus.ErrNoModule) {
			m.warn("broadcast:"+g, "connection event not delivered", "group", g, "state", state, "error", err)
		}
	}
}

// errRenew ends a session whose certificate was renewed.
var errRenew = errors.New("client certificate renewed; reconnecting with the new one")

// Window bounds what is written but not yet acknowledged by a pong.
const (
	windowFrames = 1024
	readBatch    = 64
	readBytes    = 1 << 20
)

// session is one connected link.
type session struct {
	m    *Module
	conn *websocket.Conn
	wmu  sync.Mutex // serialises data writes (control frames have their own lock)

	acked atomic.Uint64 // highest outbox seq the cloud has read
	ackc  chan struct{} // acked moved
	wake  chan struct{} // the writer may continue
}

// serve runs the link until it fails or ctx ends. The writer sends the
// keepalive (at once, then every heartbeat), a ping every heartbeat, and
// the outbox in order behind the rate limit; each ping carries the outbox
// seq written last, and its pong, which the cloud's reader sends only
// after reading every frame before it, acknowledges up to that seq. The
// reader dispatches downstream frames; a read deadline of two heartbeats,
// pushed on by every frame, ping and pong, notices a half-open link.
func (m *Module) serve(ctx context.Context, conn *websocket.Conn, tlsCfg *tls.Config) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &session{m: m, conn: conn, ackc: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
	conn.SetPongHandler(s.pong)
	conn.SetPingHandler(s.ping)
	readErr := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { readErr <- s.read(ctx) })
	wg.Go(func() { s.ackLoop(ctx) })
	if m.cfg.RotateCertificates && tlsCfg != nil {
		wg.Go(func() { m.renewLoop(ctx, tlsCfg, readErr) })
	}
	err := s.write(ctx, readErr)
	if ctx.Err() != nil && err == nil {
		// Shutting down: say so rather than vanish.
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "edgehost shutting down"),
			time.Now().Add(time.Second))
	}
	cancel()
	conn.Close() // ends the reader
	wg.Wait()
	return err
}

func (s *session) deadline() time.Time { return time.Now().Add(2 * s.m.cfg.Heartbeat) }

// pong acknowledges the outbox up to the seq it carries.
func (s *session) pong(data string) error {
	s.conn.SetReadDeadline(s.deadline())
	if seq, err := strconv.ParseUint(data, 10, 64); err == nil {
		for {
			old := s.acked.Load()
			if seq <= old || s.acked.CompareAndSwap(old, seq) {
				break
			}
		}
		signal(s.ackc)
		signal(s.wake)
	}
	return nil
}

// ping answers the cloud's ping, as gorilla's default handler does.
func (s *session) ping(data string) error {
	s.conn.SetReadDeadline(s.deadline())
	err := s.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.m.cfg.WriteTimeout))
	if errors.Is(err, websocket.ErrCloseSent) {
		return nil
	}
	return err
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// ackLoop removes what the cloud has read from the outbox.
func (s *session) ackLoop(ctx context.Context) {
	var done uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.ackc:
		}
		if seq := s.acked.Load(); seq > done {
			if err := s.m.box.Ack(seq); err != nil {
				s.m.warn("ack", "outbox ack failed; the entries will be sent again", "seq", seq, "error", err)
				continue
			}
			done = seq
		}
	}
}

// write is the session's writer loop.
func (s *session) write(ctx context.Context, readErr <-chan error) error {
	hb := time.NewTicker(s.m.cfg.Heartbeat)
	defer hb.Stop()
	if err := s.keepalive(); err != nil {
		return err
	}
	var cursor, pinged uint64
	tick := func() error {
		if err := s.keepalive(); err != nil {
			return err
		}
		pinged = cursor
		return s.sendPing(cursor)
	}
	for {
		// Between frames: the heartbeat and the reader's failure come
		// first.
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			return err
		case <-hb.C:
			if err := tick(); err != nil {
				return err
			}
		default:
		}
		if cursor-s.acked.Load() < windowFrames {
			es, err := s.m.box.Read(cursor, readBatch, readBytes)
			if err != nil {
				return fmt.Errorf("read outbox: %w", err)
			}
			if cursor == 0 && len(es) > 0 {
				// The window counts from the oldest entry, not from seq 0.
				s.acked.CompareAndSwap(0, es[0].Seq-1)
			}
			for _, e := range es {
				if err := s.m.lim.wait(ctx); err != nil {
					return nil
				}
				if err := s.writeFrame(e.Frame); err != nil {
					return err
				}
				s.m.framesOut.Add(1)
				cursor = e.Seq
			}
			if len(es) > 0 {
				continue
			}
		}
		if cursor > pinged {
			// Ask for the acknowledgement of what was just written.
			pinged = cursor
			if err := s.sendPing(cursor); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			return err
		case <-hb.C:
			if err := tick(); err != nil {
				return err
			}
		case <-s.m.box.Appended():
		case <-s.wake:
		}
	}
}

// keepalive writes KubeEdge's keepalive; it bypasses the outbox and the
// rate limit.
func (s *session) keepalive() error {
	msg := abi.Message{Header: abi.Header{ID: bus.NewID(), Timestamp: time.Now().UnixMilli()},
		Route: abi.Route{Source: ModuleName, Group: "resource", Operation: abi.OpKeepalive, Resource: "node"}, Content: []byte("ping")}
	frame, err := wire.Encode(msg, wire.KindString)
	if err != nil {
		return err
	}
	if err := s.writeFrame(frame); err != nil {
		return err
	}
	s.m.keepalives.Add(1)
	return nil
}

func (s *session) sendPing(seq uint64) error {
	err := s.conn.WriteControl(websocket.PingMessage, strconv.AppendUint(nil, seq, 10), time.Now().Add(s.m.cfg.WriteTimeout))
	if err != nil {
		return fmt.Errorf("write ping: %w", err)
	}
	return nil
}

func (s *session) writeFrame(frame []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(s.m.cfg.WriteTimeout))
	if err := s.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// read is the session's reader loop: every frame is dispatched or
// refused with a counted error; only a broken link ends it.
func (s *session) read(ctx context.Context) error {
	limit := int64(s.m.cfg.MaxFrameBytes)
	for {
		s.conn.SetReadDeadline(s.deadline())
		typ, r, err := s.conn.NextReader()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		data, err := io.ReadAll(io.LimitReader(r, limit+1))
		if err != nil {
			return fmt.Errorf("read frame: %w", err)
		}
		switch {
		case int64(len(data)) > limit:
			n, err := io.Copy(io.Discard, r)
			if err != nil {
				return fmt.Errorf("read frame: %w", err)
			}
			s.m.refuse("too_large", fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, int64(len(data))+n, limit), nil)
			continue
		case typ != websocket.TextMessage:
			s.m.refuse("binary", fmt.Errorf("%w of %d bytes", ErrBinaryFrame, len(data)), nil)
			continue
		}
		d, err := wire.Decode(data)
		if err != nil {
			s.m.refuse("malformed", err, nil)
			continue
		}
		if err := s.m.dispatch(ctx, d.Message); err != nil {
			continue
		}
		s.m.framesIn.Add(1)
	}
}

// refuse counts and logs a downstream frame that is not delivered.
func (m *Module) refuse(reason string, err error, msg *abi.Message) {
	m.mu.Lock()
	m.refused[reason]++
	m.mu.Unlock()
	args := []any{"reason", reason, "error", err}
	if msg != nil {
		args = append(args, "msg_id", msg.Header.ID, "source", msg.Route.Source, "group", msg.Route.Group,
			"operation", msg.Route.Operation, "resource", msg.Route.Resource)
	}
	m.warn("refuse:"+reason, "downstream frame refused", args...)
}

// dispatch hands a downstream message to the bus by its route group, as
// edgecore's message handlers do (kubeedge-contract.md section 1.2).
func (m *Module) dispatch(ctx context.Context, msg abi.Message) error {
	var err error
	switch r := msg.Route; r.Group {
	case "resource", "func":
		if m.respond(msg) {
			return nil
		}
		err = m.bus.SendToGroup(ctx, "meta", msg)
	case "twin":
		err = m.bus.SendToGroup(ctx, "twin", msg)
	case "user":
		if m.respond(msg) {
			return nil
		}
		switch r.Source {
		case "router_eventbus":
			err = m.bus.Send(ctx, "eventbus", msg)
		case "router_servicebus":
			err = m.bus.Send(ctx, "servicebus", msg)
		default:
			err := fmt.Errorf("%w %q in group user", ErrNoRoute, r.Source)
			m.refuse("no_route", err, &msg)
			return err
		}
	case "taskmanager":
		err = m.bus.SendToGroup(ctx, "taskmanager", msg)
	default:
		err := fmt.Errorf("%w %q", ErrUnknownGroup, r.Group)
		m.refuse("unknown_group", err, &msg)
		return err
	}
	if err != nil {
		m.refuse("undeliverable", err, &msg)
	}
	return err
}

// respond delivers a reply to the bus request waiting for it, if any.
func (m *Module) respond(msg abi.Message) bool {
	return msg.Header.ParentID != "" && m.bus.Respond(msg) == nil
}
