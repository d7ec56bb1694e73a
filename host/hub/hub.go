// Package hub is edgehost's cloud link, KubeEdge's edgehub: module
// "websocket" in bus group "hub". It keeps one mutual-TLS websocket to
// CloudCore's cloudhub (or to `edgehost hub serve`, package hub/cloud),
// sends every upstream message through the durable outbox (package
// hub/outbox), and dispatches downstream messages to the bus by route
// group as edgecore does. docs/hub.md describes the link and what differs
// from edgecore.
package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/hub/outbox"
	"github.com/edgehost/edgehost/host/hub/wire"
	"github.com/hashicorp/go-hclog"
)

// Bus names, KubeEdge's.
const (
	// ModuleName and Group are what the hub registers as.
	ModuleName = "websocket"
	Group      = "hub"
	// EventSource is the route source of the connection events.
	EventSource = "edgehub"
	// ConnectionResource and OpConnect route the connection events.
	ConnectionResource = "node/connection"
	OpConnect          = "connect"
	// Connected and Disconnected are the connection events' content.
	Connected    = "cloud_connected"
	Disconnected = "cloud_disconnected"
)

// EventGroups are the bus groups told when the link goes up or down.
var EventGroups = []string{"twin", "meta", "bus", "taskmanager"}

// Defaults for zero Config fields, edgecore's where it has one.
const (
	DefaultHeartbeat        = 15 * time.Second
	DefaultQPS              = 30
	DefaultBurst            = 60
	DefaultReconnectBase    = time.Second
	DefaultReconnectMax     = 30 * time.Second
	DefaultMaxFrameBytes    = 4 << 20
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultWriteTimeout     = 15 * time.Second
	// DefaultCertPort is the certificate service's port on the cloud host.
	DefaultCertPort = 10002
)

// Errors counted in Stats; each refusal wraps one.
var (
	// ErrFrameTooLarge: a downstream frame over MaxFrameBytes, or an
	// upstream message that would encode to one.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrBinaryFrame: a downstream binary frame; the envelope is text.
	ErrBinaryFrame = errors.New("binary frame")
	// ErrUnknownGroup: a downstream route group edgecore does not serve.
	ErrUnknownGroup = errors.New("unknown route group")
	// ErrNoRoute: a downstream user-group message from a source edgecore
	// drops (neither router_eventbus nor router_servicebus).
	ErrNoRoute = errors.New("no route for source")
	// ErrNotConnected: the link is down.
	ErrNotConnected = errors.New("not connected to the cloud")
)

// Config is the hub's settings; zero fields take the defaults.
type Config struct {
	// Server is the cloudhub's host:port.
	Server string
	// NodeName and ProjectID name this node in the cloud.
	NodeName, ProjectID string
	// CertServer is the cloud's certificate service, https://host:port;
	// it is used only to bootstrap a certificate with Token.
	CertServer string
	// Token is the bootstrap token (keadm's, or `edgehost hub token`).
	Token string
	// CertDir holds ca.crt, server.crt and server.key.
	CertDir string
	// Heartbeat is the keepalive and ping period; a link that brings
	// nothing for two heartbeats is taken as dead.
	Heartbeat time.Duration
	// QPS and Burst limit upstream messages (not keepalives); the limit
	// delays, it never drops.
	QPS   float64
	Burst int
	// ReconnectBase and ReconnectMax bound the backoff between dials.
	ReconnectBase, ReconnectMax time.Duration
	// MaxFrameBytes is the largest frame either way.
	MaxFrameBytes int
	// HandshakeTimeout bounds the websocket dial, WriteTimeout a write.
	HandshakeTimeout, WriteTimeout time.Duration
	// RotateCertificates renews the client certificate at 70-90 % of its
	// lifetime with the certificate service, authenticated by the current
	// one, and reconnects with the new one.
	RotateCertificates bool
}

func (c *Config) defaults() {
	if c.CertServer == "" {
		if host, _, err := net.SplitHostPort(c.Server); err == nil {
			c.CertServer = "https://" + net.JoinHostPort(host, strconv.Itoa(DefaultCertPort))
		}
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.QPS <= 0 {
		c.QPS = DefaultQPS
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.ReconnectBase <= 0 {
		c.ReconnectBase = DefaultReconnectBase
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
}

// RefusedReasons and UpstreamRefusedReasons are the keys of
// Stats.Refused and Stats.UpstreamRefused.
var (
	RefusedReasons         = []string{"too_large", "binary", "malformed", "unknown_group", "no_route", "undeliverable"}
	UpstreamRefusedReasons = []string{"too_large", "encode", "outbox_full", "outbox_error"}
)

// Stats are the link's counters; Outbox holds the queue's.
type Stats struct {
	// Connected is true while the link is up, since ConnectedSince (or,
	// while down, since the link went down).
	Connected bool
	Since     time.Time
	// Connects counts links made, Disconnects links lost, DialFailures
	// dials (and certificate bootstraps) that failed.
	Connects, Disconnects, DialFailures uint64
	// FramesIn counts downstream frames dispatched, FramesOut upstream
	// messages written, Keepalives keepalives written.
	FramesIn, FramesOut, Keepalives uint64
	// Refused counts downstream frames refused, by reason: "too_large",
	// "binary", "malformed", "unknown_group", "no_route", and
	// "undeliverable" (the bus send failed). UpstreamRefused counts
	// upstream messages refused before the outbox: "too_large",
	// "encode", "outbox_full", "outbox_error".
	Refused, UpstreamRefused map[string]uint64
	// Rotations counts certificates renewed, RotationFailures renewals
	// that failed (retried with backoff while the current one is valid).
	Rotations, RotationFailures uint64
	// LastError is why the link last went down or failed to come up.
	LastError string
	// Outbox is the durable queue's state.
	Outbox outbox.Stats
}

// Module is the cloud link. Create it with New and run it under the
// supervisor.
type Module struct {
	bus *bus.Bus
	box *outbox.Outbox
	cfg Config
	log hclog.Logger
	lim *limiter

	connected atomic.Bool
	connects, disconnects, dialFailures,
	framesIn, framesOut, keepalives,
	rotations, rotationFailures atomic.Uint64

	// Certificate renewal, used by the link goroutine only.
	renewAt     time.Time
	renewSerial string
	renewTries  int

	mu        sync.Mutex
	since     time.Time
	lastErr   string
	refused   map[string]uint64
	upRefused map[string]uint64
	warned    map[string]bool
}

// New returns the hub over b, sending through box.
func New(b *bus.Bus, box *outbox.Outbox, cfg Config, log hclog.Logger) *Module {
	cfg.defaults()
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Module{bus: b, box: box, cfg: cfg, log: log.Named("hub"), lim: newLimiter(cfg.QPS, cfg.Burst),
		since: time.Now(), refused: map[string]uint64{}, upRefused: map[string]uint64{}, warned: map[string]bool{}}
}

// Name implements supervisor.Module.
func (m *Module) Name() string { return "hub" }

// Connected reports whether the link is up (edgecore's IsConnected).
func (m *Module) Connected() bool { return m.connected.Load() }

// Run implements supervisor.Module: it takes upstream messages into the
// outbox and keeps the link up until ctx ends. It is ready once it takes
// messages; the link's state is in NotReady.
func (m *Module) Run(ctx context.Context, ready func()) error {
	ep, err := m.bus.Register(ModuleName, Group)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	defer ep.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { m.intake(ctx, ep) })
	wg.Go(func() { m.expireLoop(ctx) })
	ready()
	m.log.Info("hub ready", "server", m.cfg.Server, "node", m.cfg.NodeName)
	m.link(ctx)
	return nil
}

// intakeBatch is the most upstream messages committed in one fsync.
const intakeBatch = 256

// intake moves upstream messages from the bus into the outbox, a batch per
// commit: everything queued when the first arrives.
func (m *Module) intake(ctx context.Context, ep *bus.Endpoint) {
	drained, stop := context.WithCancel(context.Background())
	stop() // a done context: Receive returns only what is already queued
	msgs := make([]abi.Message, 0, intakeBatch)
	frames := make([][]byte, 0, intakeBatch)
	for {
		msg, err := ep.Receive(ctx)
		if err != nil {
			return
		}
		msgs = append(msgs[:0], msg)
		for len(msgs) < intakeBatch {
			msg, err := ep.Receive(drained)
			if err != nil {
				break
			}
			msgs = append(msgs, msg)
		}
		frames = frames[:0]
		kept := msgs[:0]
		for _, msg := range msgs {
			frame, err := m.encodeUpstream(msg)
			if err != nil {
				m.refuseUpstream(msg, err)
				continue
			}
			frames = append(frames, frame)
			kept = append(kept, msg)
		}
		if len(frames) == 0 {
			continue
		}
		seqs, err := m.box.AppendBatch(frames)
		for _, msg := range kept[len(seqs):] {
			m.refuseUpstream(msg, err)
		}
	}
}

// encodeUpstream makes msg's frame, refusing one over the frame limit.
func (m *Module) encodeUpstream(msg abi.Message) ([]byte, error) {
	frame, err := wire.Encode(msg, wire.UpstreamKind(msg))
	if err != nil {
		return nil, err
	}
	if len(frame) > m.cfg.MaxFrameBytes {
		return nil, fmt.Errorf("upstream %s %s: %d bytes over %d: %w", msg.Route.Operation, msg.Route.Resource, len(frame), m.cfg.MaxFrameBytes, ErrFrameTooLarge)
	}
	return frame, nil
}

// refuseUpstream counts and logs an upstream message that will not be
// sent, and answers its requester, if one waits, with an error.
func (m *Module) refuseUpstream(msg abi.Message, err error) {
	reason := "outbox_error"
	switch {
	case errors.Is(err, ErrFrameTooLarge):
		reason = "too_large"
	case errors.Is(err, wire.ErrContent), errors.Is(err, wire.ErrMissingField):
		reason = "encode"
	case errors.Is(err, outbox.ErrFull):
		reason = "outbox_full"
	}
	m.mu.Lock()
	m.upRefused[reason]++
	m.mu.Unlock()
	m.warn("upstream:"+reason, "upstream message refused", "reason", reason, "msg_id", msg.Header.ID,
		"resource", msg.Route.Resource, "error", err)
	if msg.Header.Sync {
		reply := msg.Reply(abi.OpError, []byte(err.Error()))
		_ = m.bus.Respond(reply)
	}
}

// expireLoop removes outbox entries past their TTL while the link is down
// (while it is up, every read does).
func (m *Module) expireLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := m.box.Expire(); err != nil {
				m.warn("expire", "outbox expiry failed", "error", err)
			} else if n > 0 {
				m.log.Warn("outbox entries expired unsent", "entries", n)
			}
		}
	}
}

// warn logs the first occurrence of a kind of problem at WARN and the rest
// at DEBUG; Stats counts them all.
func (m *Module) warn(kind, msg string, args ...any) {
	m.mu.Lock()
	first := !m.warned[kind]
	m.warned[kind] = true
	m.mu.Unlock()
	if first {
		m.log.Warn(msg+" (further ones at debug level; see /metrics)", args...)
		return
	}
	m.log.Debug(msg, args...)
}

// note logs the first occurrence of a kind of event at INFO and the rest
// at DEBUG.
func (m *Module) note(kind, msg string, args ...any) {
	m.mu.Lock()
	first := !m.warned[kind]
	m.warned[kind] = true
	m.mu.Unlock()
	if first {
		m.log.Info(msg, args...)
		return
	}
	m.log.Debug(msg, args...)
}

// setState records the link going up or down.
func (m *Module) setState(up bool, err error) {
	m.mu.Lock()
	m.since = time.Now()
	if err != nil {
		m.lastErr = err.Error()
	}
	m.mu.Unlock()
	m.connected.Store(up)
}

// Stats returns the link's and the outbox's counters.
func (m *Module) Stats() Stats {
	m.mu.Lock()
	s := Stats{Since: m.since, LastError: m.lastErr, Refused: map[string]uint64{}, UpstreamRefused: map[string]uint64{}}
	for k, v := range m.refused {
		s.Refused[k] = v
	}
	for k, v := range m.upRefused {
		s.UpstreamRefused[k] = v
	}
	m.mu.Unlock()
	s.Connected = m.connected.Load()
	s.Connects, s.Disconnects, s.DialFailures = m.connects.Load(), m.disconnects.Load(), m.dialFailures.Load()
	s.FramesIn, s.FramesOut, s.Keepalives = m.framesIn.Load(), m.framesOut.Load(), m.keepalives.Load()
	s.Rotations, s.RotationFailures = m.rotations.Load(), m.rotationFailures.Load()
	s.Outbox = m.box.Stats()
	return s
}

// NotReady implements supervisor.Checker: a reason while the link is down,
// and while the outbox is nine-tenths full.
func (m *Module) NotReady() []string {
	var out []string
	st := m.Stats()
	if !st.Connected {
		r := fmt.Sprintf("hub: not connected to the cloud %s since %s", m.cfg.Server, st.Since.Format(time.RFC3339))
		if st.LastError != "" {
			r += ": " + st.LastError
		}
		out = append(out, fmt.Sprintf("%s (%d messages wait in the outbox)", r, st.Outbox.Depth))
	}
	if st.Outbox.Bytes*10 >= st.Outbox.MaxBytes*9 {
		out = append(out, fmt.Sprintf("hub: the outbox holds %d of %d bytes; new upstream messages are refused when it is full",
			st.Outbox.Bytes, st.Outbox.MaxBytes))
	}
	return out
}
