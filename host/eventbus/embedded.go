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
	"os"

	"github.com/edgehost/edgehost/host/config"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// embedded is the built-in mochi-mqtt broker. The module publishes and
// subscribes through mochi's inline client, in process.
type embedded struct {
	m   *Module
	ctx context.Context
	srv *mqtt.Server
}

// startEmbedded starts the broker listening on the configured address.
func startEmbedded(ctx context.Context, m *Module) (*embedded, error) {
	cfg := m.cfg.Embedded
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumQos = 1
	// A hard cap on what a client may make the broker buffer: the payload
	// limit plus the largest topic and header. OnPublish applies the exact
	// payload limit.
	caps.MaximumPacketSize = uint32(m.cfg.MaxPayloadBytes + 65535 + 16)
	srv := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Capabilities: caps,
		Logger:       slog.New(&slogAdapter{log: m.log.Named("broker")}),
	})
	h := &hook{m: m, users: map[string][]byte{}, acl: cfg.ACL}
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
	l := listeners.NewTCP(listeners.Config{ID: "edgehost", Address: cfg.Address, TLSConfig: tc})
	if err := srv.AddListener(l); err != nil {
		return nil, fmt.Errorf("eventbus: embedded broker listen on %s: %w", cfg.Address, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("eventbus: embedded broker on %s: %w", cfg.Address, err)
	}
	return &embedded{m: m, ctx: ctx, srv: srv}, nil
}

func (e *embedded) publish(_ context.Context, topic string, payload []byte, qos byte, retain bool) error {
	if err := e.srv.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	e.m.stats.published.Add(1)
	return nil
}

func (e *embedded) subscribe(s *subscription) error {
	err := e.srv.Subscribe(s.filter, s.id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		s.handler(pk.TopicName, pk.Payload)
	})
	if err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	return nil
}

func (e *embedded) unsubscribe(s *subscription) {
	if err := e.srv.Unsubscribe(s.filter, s.id); err != nil {
		e.m.log.Warn("embedded broker unsubscribe", "filter", s.filter, "error", err)
	}
}

func (e *embedded) bridge(filter string) error {
	err := e.srv.Subscribe(filter, bridgeID, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		e.m.bridge(e.ctx, pk.TopicName, pk.Payload)
	})
	if err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	return nil
}

func (e *embedded) unbridge(filter string) {
	if err := e.srv.Unsubscribe(filter, bridgeID); err != nil {
		e.m.log.Warn("embedded broker unbridge", "filter", filter, "error", err)
	}
}

func (e *embedded) close() {
	if err := e.srv.Close(); err != nil {
		e.m.log.Warn("embedded broker close", "error", err)
	}
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
// payload limit, and counting of malformed packets.
type hook struct {
	mqtt.HookBase
	m     *Module
	users map[string][]byte
	acl   []config.ACLRule
}

// ID implements mqtt.Hook.
func (h *hook) ID() string { return "edgehost-eventbus" }

// Provides implements mqtt.Hook.
func (h *hook) Provides(b byte) bool {
	return bytes.IndexByte([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnDisconnect}, b) >= 0
}

// OnConnectAuthenticate accepts anyone when no users are configured, else
// only a configured username with its password.
func (h *hook) OnConnectAuthenticate(_ *mqtt.Client, pk packets.Packet) bool {
	if len(h.users) == 0 {
		return true
	}
	want, ok := h.users[string(pk.Connect.Username)]
	return ok && subtle.ConstantTimeCompare(want, pk.Connect.Password) == 1
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

// OnDisconnect counts clients dropped for a malformed or oversized packet.
func (h *hook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	var code packets.Code
	if errors.As(err, &code) && (code == packets.ErrPacketTooLarge || code.Code == packets.ErrMalformedPacket.Code || code.Code == packets.ErrProtocolViolation.Code) {
		h.m.stats.rejected.Add(1)
		h.m.log.Warn("disconnected a client for a bad packet", "client", cl.ID, "error", err)
	}
}
