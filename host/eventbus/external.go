package eventbus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/host/config"
)

// Timing of the external client.
const (
	reconnectMin = 100 * time.Millisecond // first retry delay; doubles to ReconnectMax
	opTimeout    = 10 * time.Second       // bound on connect, subscribe and unsubscribe
)

// external is the client of an external broker. It connects and reconnects
// on its own loop, with exponential backoff and jitter. While it is not
// connected, publishes wait in a bounded FIFO queue, which is drained in
// order on reconnect before new publishes go straight out again. The
// session is persistent (clean session off), so a QoS 1 message paho has
// taken is resent by paho itself after a reconnect.
type external struct {
	m      *Module
	ctx    context.Context
	cancel context.CancelFunc
	cli    paho.Client
	qos    byte
	done   chan struct{} // closed when the loop ends

	mu      sync.Mutex
	online  bool           // connected and queue drained: publish directly
	down    chan struct{}  // closed when the current connection drops
	isDown  bool           // down is closed
	queue   []queued       // FIFO of publishes waiting for the broker
	max     int            // queue bound
	filters map[string]int // broker-side subscriptions, reference counted
}

// queued is one publish waiting for the broker.
type queued struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
}

// startExternal creates the client and starts its connection loop.
func startExternal(ctx context.Context, m *Module) (*external, error) {
	cfg := m.cfg.External
	tc, err := clientTLS(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	x := &external{
		m: m, ctx: ctx, cancel: cancel, qos: byte(m.cfg.QoS), done: make(chan struct{}),
		max: cfg.QueueLen, filters: map[string]int{},
	}
	o := paho.NewClientOptions().
		AddBroker(cfg.URL).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(false).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetOrderMatters(true).
		SetConnectTimeout(opTimeout).
		SetWriteTimeout(opTimeout).
		SetDefaultPublishHandler(func(_ paho.Client, msg paho.Message) {
			m.dispatch(msg.Topic(), msg.Payload(), msg.Qos())
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			m.log.Warn("external broker connection lost; queueing publishes", "url", cfg.URL, "error", err)
			x.mu.Lock()
			x.online = false
			if !x.isDown {
				close(x.down)
				x.isDown = true
			}
			x.mu.Unlock()
		})
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	x.cli = paho.NewClient(o)
	go x.run()
	return x, nil
}

// run connects, drains the queue, waits for the connection to drop, and
// starts over, until ctx ends.
func (x *external) run() {
	defer close(x.done)
	log, url := x.m.log, x.m.cfg.External.URL
	delay, connectedBefore, failedBefore := reconnectMin, false, false
	for x.ctx.Err() == nil {
		x.mu.Lock()
		x.down, x.isDown = make(chan struct{}), false
		down := x.down
		x.mu.Unlock()
		if err := x.connect(); err != nil {
			wait := delay/2 + rand.N(delay/2+1)
			if !failedBefore {
				log.Warn("external broker unreachable; retrying with backoff", "url", url, "error", err)
			} else {
				log.Debug("external broker still unreachable", "url", url, "retry_in", wait, "error", err)
			}
			failedBefore = true
			select {
			case <-x.ctx.Done():
			case <-time.After(wait):
			}
			delay = min(delay*2, x.m.cfg.External.ReconnectMax)
			continue
		}
		if connectedBefore || failedBefore {
			x.m.stats.reconnects.Add(1)
		}
		connectedBefore, failedBefore, delay = true, false, reconnectMin
		x.m.stats.connected.Store(true)
		log.Info("connected to external broker", "url", url, "queued", x.m.stats.depth.Load())
		x.drain(down)
		select {
		case <-down:
		case <-x.ctx.Done():
		}
		x.m.stats.connected.Store(false)
	}
	x.cli.Disconnect(250)
}

// connect opens the connection and (re)subscribes every filter.
func (x *external) connect() error {
	if err := x.wait(x.cli.Connect()); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	x.mu.Lock()
	subs := make(map[string]byte, len(x.filters))
	for f := range x.filters {
		subs[f] = x.qos
	}
	x.mu.Unlock()
	if len(subs) == 0 {
		return nil
	}
	tok := x.cli.SubscribeMultiple(subs, nil)
	if err := x.wait(tok); err != nil {
		x.cli.Disconnect(0)
		return fmt.Errorf("subscribe: %w", err)
	}
	for f, code := range tok.(*paho.SubscribeToken).Result() {
		if code == 0x80 {
			x.m.log.Warn("external broker refused a subscription", "filter", f)
		}
	}
	return nil
}

// drain sends the queued publishes in order, then switches to direct
// publishing; it returns early when the connection drops (down closes) or
// ctx ends. A QoS 1 message paho has taken counts as sent even if the
// connection drops before its ack: paho's session store resends it on
// reconnect. A message the broker side refuses is counted and logged.
func (x *external) drain(down chan struct{}) {
	for {
		x.mu.Lock()
		if len(x.queue) == 0 {
			x.online = !x.isDown
			x.mu.Unlock()
			return
		}
		p := x.queue[0]
		x.mu.Unlock()
		tok := x.cli.Publish(p.topic, p.qos, p.retain, p.payload)
		var err error
		gone := false
		select {
		case <-tok.Done():
			err = tok.Error()
			gone = errors.Is(err, paho.ErrNotConnected)
		case <-down:
			gone = true
		case <-x.ctx.Done():
			return
		}
		if gone && p.qos == 0 || errors.Is(err, paho.ErrNotConnected) {
			return // still queued; sent after the next connect
		}
		x.mu.Lock()
		x.queue[0] = queued{}
		x.queue = x.queue[1:]
		x.mu.Unlock()
		x.m.stats.depth.Add(-1)
		switch {
		case err != nil:
			x.m.stats.rejected.Add(1)
			x.m.log.Warn("queued publish failed", "topic", p.topic, "error", err)
		default:
			x.m.stats.published.Add(1)
		}
		if gone {
			return
		}
	}
}

func (x *external) publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	x.mu.Lock()
	if !x.online {
		err := x.enqueue(topic, payload, qos, retain)
		x.mu.Unlock()
		return err
	}
	// Under mu, so a publish cannot overtake the queue being drained.
	tok := x.cli.Publish(topic, qos, retain, clonePayload(payload))
	if errors.Is(tok.Error(), paho.ErrNotConnected) {
		x.online = false
		err := x.enqueue(topic, payload, qos, retain)
		x.mu.Unlock()
		return err
	}
	down := x.down
	x.mu.Unlock()
	select {
	case <-tok.Done():
	case <-down:
		if qos > 0 {
			// paho keeps it in the session and resends it on reconnect.
			x.m.stats.published.Add(1)
			return nil
		}
		x.m.stats.rejected.Add(1)
		return fmt.Errorf("external broker: connection lost before the qos 0 publish went out")
	case <-ctx.Done():
		return fmt.Errorf("external broker: not confirmed (the broker may still get it): %w", ctx.Err())
	}
	if err := tok.Error(); err != nil {
		x.m.stats.rejected.Add(1)
		return fmt.Errorf("external broker: %w", err)
	}
	x.m.stats.published.Add(1)
	return nil
}

// enqueue holds a publish for the broker; mu is held.
func (x *external) enqueue(topic string, payload []byte, qos byte, retain bool) error {
	if len(x.queue) >= x.max {
		x.m.stats.rejected.Add(1)
		x.m.stats.queueFull.Add(1)
		return fmt.Errorf("external broker %s down, %d publishes waiting: %w", x.m.cfg.External.URL, len(x.queue), ErrQueueFull)
	}
	x.queue = append(x.queue, queued{topic: topic, payload: clonePayload(payload), qos: qos, retain: retain})
	x.m.stats.queued.Add(1)
	x.m.stats.depth.Add(1)
	return nil
}

func (x *external) subscribe(s *subscription) error { return x.addFilter(s.filter) }

func (x *external) unsubscribe(s *subscription) { x.removeFilter(s.filter) }

func (x *external) bridge(filter string) error { return x.addFilter(filter) }

func (x *external) unbridge(filter string) { x.removeFilter(filter) }

// addFilter subscribes filter at the broker if it is the first user of it
// and the broker is connected; otherwise the next connect subscribes it.
func (x *external) addFilter(filter string) error {
	x.mu.Lock()
	x.filters[filter]++
	first := x.filters[filter] == 1
	x.mu.Unlock()
	if !first || !x.cli.IsConnectionOpen() {
		return nil
	}
	tok := x.cli.Subscribe(filter, x.qos, nil)
	err := x.wait(tok)
	if err == nil && tok.(*paho.SubscribeToken).Result()[filter] == 0x80 {
		err = fmt.Errorf("broker refused the subscription")
	}
	if err != nil && x.cli.IsConnectionOpen() {
		x.mu.Lock()
		x.filters[filter]--
		if x.filters[filter] == 0 {
			delete(x.filters, filter)
		}
		x.mu.Unlock()
		return fmt.Errorf("external broker: subscribe %q: %w", filter, err)
	}
	return nil
}

// removeFilter unsubscribes filter at the broker when its last user goes.
func (x *external) removeFilter(filter string) {
	x.mu.Lock()
	x.filters[filter]--
	last := x.filters[filter] <= 0
	if last {
		delete(x.filters, filter)
	}
	x.mu.Unlock()
	if last && x.cli.IsConnectionOpen() {
		if err := x.wait(x.cli.Unsubscribe(filter)); err != nil {
			x.m.log.Warn("external broker unsubscribe", "filter", filter, "error", err)
		}
	}
}

// wait waits for a paho token, bounded by opTimeout and ctx.
func (x *external) wait(tok paho.Token) error {
	t := time.NewTimer(opTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return fmt.Errorf("no answer from the broker in %v", opTimeout)
	case <-x.ctx.Done():
		return x.ctx.Err()
	}
}

// close stops the connection loop and disconnects. Publishes still queued
// are dropped and logged with their count.
func (x *external) close() {
	x.cancel()
	<-x.done
	x.mu.Lock()
	n := len(x.queue)
	x.queue = nil
	x.mu.Unlock()
	x.m.stats.depth.Add(-int64(n))
	if n > 0 {
		x.m.log.Warn("stopped with publishes still queued for the external broker", "dropped", n)
	}
}

// clientTLS builds the TLS config for an ssl/tls/mqtts URL or one with TLS
// files, or nil for plain TCP.
func clientTLS(cfg config.External) (*tls.Config, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("eventbus: external broker url %q: %w", cfg.URL, err)
	}
	secure := u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts" || u.Scheme == "wss"
	if !secure && cfg.TLS == nil {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if f := cfg.TLS; f != nil {
		if f.CAFile != "" {
			if tc.RootCAs, err = loadCA(f.CAFile); err != nil {
				return nil, fmt.Errorf("eventbus: external broker tls: %w", err)
			}
		}
		if f.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("eventbus: external broker tls: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
	}
	return tc, nil
}
