package eventbus

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/edgehost/edgehost/host/config"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// embedded is the built-in mochi-mqtt broker. The module publishes and
// subscribes through mochi's inline client, in process.
type embedded struct {
	m   *Module
	srv *mqtt.Server
}

// startEmbedded starts the broker listening on the configured address.
func startEmbedded(m *Module) (*embedded, error) {
	cfg := m.cfg.Embedded
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumQos = 1
	// Per client, at most MaxInflight unacknowledged QoS 1 messages and
	// MaxPendingWrites packets waiting for the socket: the broker's memory
	// bound per client is their sum times the largest packet.
	caps.MaximumInflight = uint16(cfg.MaxInflight)
	caps.MaximumClientWritesPending = int32(cfg.MaxPendingWrites)
	// A hard cap on what a client may make the broker buffer: the payload
	// limit plus the largest topic and header. OnPublish applies the exact
	// payload limit.
	caps.MaximumPacketSize = uint32(m.cfg.MaxPayloadBytes + 65535 + 16)
	over := &overflows{m: m, warned: map[string]bool{}}
	srv := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Capabilities: caps,
		Logger: slog.New(&slogAdapter{log: m.log.Named("broker"), quota: func(client string) {
			over.drop(client, "maxInflight unacknowledged qos 1 messages", "", &m.stats.inflightDropped)
		}}),
	})
	h := &hook{m: m, users: map[string][]byte{}, acl: cfg.ACL, over: over}
	for _, u := range cfg.Users {
		h.users[u.Username] = []byte(u.Password)
	}
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("eventbus: embedded broker hook: %w", err)
	}
	tc, err := serverTLS(cfg.TLS)
	if err != nil {
		return nil, err
	}
	l := &listener{id: "edgehost", addr: cfg.Address, tls: tc, conns: map[net.Conn]struct{}{}}
	if err := srv.AddListener(l); err != nil {
		return nil, listenError(cfg.Address, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("eventbus: embedded broker on %s: %w", cfg.Address, err)
	}
	return &embedded{m: m, srv: srv}, nil
}

func (e *embedded) publish(_ context.Context, topic string, payload []byte, qos byte, retain bool) error {
	if err := e.srv.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	e.m.stats.published.Add(1)
	return nil
}

func (e *embedded) subscribe(s *subscription) error {
	return e.inline(s.filter, s.id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		s.q.offer(pk.TopicName, pk.Payload, pk.FixedHeader.Qos, fromClient(pk))
	})
}

// fromClient tells whether a client connection published pk, rather than
// the module itself through the inline client.
func fromClient(pk packets.Packet) bool { return pk.Origin != mqtt.InlineClientId }

func (e *embedded) unsubscribe(s *subscription) { e.unline(s.filter, s.id, "unsubscribe") }

func (e *embedded) bridge(filter string) error {
	return e.inline(filter, bridgeID, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		e.m.offerBridge(pk.TopicName, pk.Payload, pk.FixedHeader.Qos, fromClient(pk))
	})
}

func (e *embedded) unbridge(filter string) { e.unline(filter, bridgeID, "unbridge") }

// inlineFilters are the filters an inline subscription to filter takes in
// mochi. mochi's inline subscriptions do not apply MQTT's rule that "a/#"
// also matches "a" (its client subscriptions do), so a filter ending in
// "/#" is also subscribed at its parent level. mochi hands a message to an
// inline subscriber id once, whichever of its filters match, so nothing is
// delivered twice.
func inlineFilters(filter string) []string {
	if parent, ok := strings.CutSuffix(filter, "/#"); ok {
		return []string{filter, parent}
	}
	return []string{filter}
}

// inline subscribes the inline subscriber id to filter's inline filters.
func (e *embedded) inline(filter string, id int, fn mqtt.InlineSubFn) error {
	fs := inlineFilters(filter)
	for i, f := range fs {
		if err := e.srv.Subscribe(f, id, fn); err != nil {
			for _, done := range fs[:i] {
				e.srv.Unsubscribe(done, id)
			}
			return fmt.Errorf("embedded broker: %w", err)
		}
	}
	return nil
}

// unline undoes inline; what names the operation in a warning.
func (e *embedded) unline(filter string, id int, what string) {
	for _, f := range inlineFilters(filter) {
		if err := e.srv.Unsubscribe(f, id); err != nil {
			e.m.log.Warn("embedded broker "+what, "filter", f, "error", err)
		}
	}
}

// close stops the broker. Clients may be connecting meanwhile: the
// listener's Close, which mochi calls first, sees to it that none is still
// being set up when mochi waits for its clients to finish.
func (e *embedded) close() {
	if err := e.srv.Close(); err != nil {
		e.m.log.Warn("embedded broker close", "error", err)
	}
}

// listener is the broker's TCP (or TLS) listener, in place of mochi's
// listeners.TCP, whose Close races with connections still being accepted.
// mochi counts a connection in its clients' WaitGroup (Add) from the
// goroutine that handles it, while Server.Close, after closing the
// listeners, Waits on that WaitGroup: a connection accepted as the broker
// closes is Added concurrently with the Wait, which the WaitGroup forbids,
// and the Wait also waits for connections mochi never stops, such as one
// that has not sent CONNECT yet and so is not among the clients it
// disconnects. This listener admits connections only until Close and
// tracks them, and its Close (called by Server.Close before the Wait)
// returns only once every connection it admitted has been handled, so the
// Wait finds no connection in flight and no Add after it.
type listener struct {
	id   string
	addr string
	tls  *tls.Config // nil for plain TCP
	ln   net.Listener
	log  *slog.Logger

	mu       sync.Mutex
	closed   bool                  // under mu; no connection is admitted after
	conns    map[net.Conn]struct{} // admitted and not yet handled, under mu
	handling sync.WaitGroup        // one per conns entry; Added under mu
}

// ID implements listeners.Listener.
func (l *listener) ID() string { return l.id }

// Address implements listeners.Listener: the bound address once listening.
func (l *listener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

// Protocol implements listeners.Listener.
func (l *listener) Protocol() string { return "tcp" }

// Init implements listeners.Listener: it binds the address.
func (l *listener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	if l.tls != nil {
		ln = tls.NewListener(ln, l.tls)
	}
	l.ln = ln
	return nil
}

// Serve implements listeners.Listener: it hands each accepted connection
// to establish, in a goroutine of its own, until Close.
func (l *listener) Serve(establish listeners.EstablishFn) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if !l.isClosed() {
				l.log.Error("embedded broker stopped accepting connections", "error", err)
			}
			return
		}
		if !l.admit(conn) {
			conn.Close()
			return
		}
		go func() {
			defer l.release(conn)
			if err := establish(l.id, conn); err != nil {
				l.log.Warn("client connection ended", "error", err)
			}
		}()
	}
}

// admit tracks conn unless the listener is closed.
func (l *listener) admit(conn net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[conn] = struct{}{}
	l.handling.Add(1)
	return true
}

// release forgets conn once mochi is done with it.
func (l *listener) release(conn net.Conn) {
	l.mu.Lock()
	delete(l.conns, conn)
	l.mu.Unlock()
	l.handling.Done()
}

func (l *listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Close implements listeners.Listener. It stops accepting, lets mochi
// disconnect its clients (closeClients), closes the connections that are
// not yet clients, and waits until mochi has finished with every
// connection.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
	}
	closeClients(l.id)
	l.mu.Lock()
	left := slices.Collect(maps.Keys(l.conns))
	l.mu.Unlock()
	for _, conn := range left {
		// The TCP connection itself: a TLS Close would first write an
		// alert, and wait behind a write stuck on a peer that stopped
		// reading.
		if tc, ok := conn.(*tls.Conn); ok {
			conn = tc.NetConn()
		}
		conn.Close()
	}
	l.handling.Wait()
}

// serverTLS builds the listener's TLS config, or nil for plain TCP.
func serverTLS(files *config.TLSFiles) (*tls.Config, error) {
	if files == nil {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("eventbus: embedded broker tls: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if files.CAFile != "" {
		pool, err := loadCA(files.CAFile)
		if err != nil {
			return nil, fmt.Errorf("eventbus: embedded broker tls: %w", err)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// loadCA reads a PEM bundle into a pool.
func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %q holds no PEM certificate", path)
	}
	return pool, nil
}

// hook is the embedded broker's policy: credentials, the topic ACL, the
// payload limit, and counting of malformed packets and of messages dropped
// for a client the broker cannot send to fast enough.
type hook struct {
	mqtt.HookBase
	m     *Module
	users map[string][]byte
	acl   []config.ACLRule
	over  *overflows
	// refusals counts refused connections by username: the first of each
	// is a WARN, the rest debug with the count.
	refusalsMu sync.Mutex
	refusals   map[string]uint64
}

// ID implements mqtt.Hook.
func (h *hook) ID() string { return "edgehost-eventbus" }

// Provides implements mqtt.Hook.
func (h *hook) Provides(b byte) bool {
	return bytes.IndexByte([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnDisconnect,
		mqtt.OnPublishDropped, mqtt.OnPacketIDExhausted}, b) >= 0
}

// OnConnectAuthenticate accepts anyone when no users are configured, else
// only a configured username with its password.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if len(h.users) == 0 {
		return true
	}
	user := string(pk.Connect.Username)
	want, ok := h.users[user]
	if ok && subtle.ConstantTimeCompare(want, pk.Connect.Password) == 1 {
		return true
	}
	h.refused(cl, user, ok)
	return false
}

// refused logs a connection refused for its credentials.
func (h *hook) refused(cl *mqtt.Client, user string, known bool) {
	why := "unknown username"
	if known {
		why = "wrong password"
	}
	h.refusalsMu.Lock()
	if h.refusals == nil {
		h.refusals = map[string]uint64{}
	}
	h.refusals[user]++
	n := h.refusals[user]
	h.refusalsMu.Unlock()
	log := h.m.log.Named("broker")
	args := []any{"reason", why, "username", user, "client_id", cl.ID, "remote", cl.Net.Remote, "refused_so_far", n}
	if n == 1 {
		log.Warn("mqtt connection refused: bad credentials (later refusals for this username are logged at debug)", args...)
		return
	}
	log.Debug("mqtt connection refused: bad credentials", args...)
}

// OnACLCheck allows everything when no rules are configured, else what one
// of the client's rules grants. topic is a topic name on publish and
// delivery and a filter on subscribe; a rule must cover all of it.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if len(h.acl) == 0 {
		return true
	}
	user := string(cl.Properties.Username)
	for _, r := range h.acl {
		if (r.Username == "" || r.Username == user) && (write && r.Write || !write && r.Read) && covers(r.Topic, topic) {
			return true
		}
	}
	return false
}

// OnPublish rejects a client's payload over the limit: the message is
// dropped and counted and the client disconnected, the only refusal MQTT
// 3.1.1 can express.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline || len(pk.Payload) <= h.m.cfg.MaxPayloadBytes {
		return pk, nil
	}
	h.m.stats.rejected.Add(1)
	h.m.log.Warn("rejected a publish larger than maxPayloadBytes; disconnecting the client",
		"client", cl.ID, "topic", pk.TopicName, "bytes", len(pk.Payload), "max", h.m.cfg.MaxPayloadBytes)
	cl.Stop(packets.ErrPacketTooLarge)
	return pk, packets.ErrRejectPacket
}

// OnPublishDropped counts a message dropped because the client had
// MaxPendingWrites packets waiting to be written.
func (h *hook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.over.drop(cl.ID, "maxPendingWrites packets waiting to be written", pk.TopicName, &h.m.stats.writesDropped)
}

// OnPacketIDExhausted counts a QoS 1 message dropped because every packet
// id of the client was in flight.
func (h *hook) OnPacketIDExhausted(cl *mqtt.Client, pk packets.Packet) {
	h.over.drop(cl.ID, "no free packet id", pk.TopicName, &h.m.stats.inflightDropped)
}

// OnDisconnect counts clients dropped for a malformed or oversized packet,
// and ends the client's rate limit on overflow warnings.
func (h *hook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	h.over.forget(cl.ID)
	var code packets.Code
	if errors.As(err, &code) && (code == packets.ErrPacketTooLarge || code.Code == packets.ErrMalformedPacket.Code || code.Code == packets.ErrProtocolViolation.Code) {
		h.m.stats.rejected.Add(1)
		h.m.log.Warn("disconnected a client for a bad packet", "client", cl.ID, "error", err)
	}
}
