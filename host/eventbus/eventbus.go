// Package eventbus is edgehost's MQTT side: an embedded broker (mochi-mqtt)
// by default, a client of an external MQTT 3.1.1 broker (paho) such as
// mosquitto, or both, bridged to the bus by KubeEdge's topic contract so
// existing mappers and apps work unchanged.
//
// Upstream, the bridge subscribes DefaultTopics plus every topic the bus
// asked it to subscribe. A message on $hw/events/device/... or
// $hw/events/node/... goes to bus group "twin" shaped as KubeEdge's
// eventbus shapes it (source "bus", group "user", operation "response",
// resource the base64url of the topic, content the payload); any other goes
// to group "hub" (operation "upload", resource the topic). Downstream, the
// module "eventbus" in group "bus" takes operations "subscribe" and
// "unsubscribe" (resource = filter, persisted in the store) and "publish"
// (resource = topic, content = payload).
//
// Other host code publishes and subscribes with Module.Publish and
// Module.Subscribe, which work in every mode. Every subscription, and the
// bridge, has a bounded queue and a goroutine of its own (queue.go), so a
// slow subscriber holds back only itself; what its full queue loses is
// counted per subscriber in Stats.Subscribers. With an external broker,
// publishes made while it is unreachable wait in a bounded queue and go out,
// in order, once it is back; a full queue fails the publish with
// ErrQueueFull. Every rejection is counted in Stats.
package eventbus

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/store"
	"github.com/hashicorp/go-hclog"
)

// Bus names, KubeEdge's.
const (
	// ModuleName and ModuleGroup are what the eventbus registers as.
	ModuleName  = "eventbus"
	ModuleGroup = "bus"
	// TwinGroup receives device and node topics; HubGroup receives uploads.
	TwinGroup = "twin"
	HubGroup  = "hub"
	// UserGroup is the route group of every bridged message.
	UserGroup = "user"
	// OpUnsubscribe is the bus operation that drops a bridged topic (abi
	// has OpSubscribe and OpPublish).
	OpUnsubscribe = "unsubscribe"
	// OpConnect is the operation of the cloud link's node/connection news
	// (cloud_connected, cloud_disconnected), which KubeEdge's edgehub
	// sends to group bus as well as to twin and meta.
	OpConnect = "connect"
)

// DefaultTopics returns the filters the bridge always subscribes: KubeEdge's
// (a device id is {namespace}/{name}: two levels), then two of edgehost's
// own for single-level device ids (KubeEdge before v1.13), which edgecore
// leaves unanswered and the twin answers with a 400 naming the problem.
func DefaultTopics() []string {
	return []string{
		"$hw/events/upload/#",
		"$hw/events/device/+/+/state/update",
		"$hw/events/device/+/+/twin/+",
		"$hw/events/node/+/membership/get",
		"SYS/dis/upload_records",
		"+/user/#",
		"$hw/events/device/+/state/update",
		"$hw/events/device/+/twin/+",
	}
}

// Module is the eventbus. Create it with New and run it under the
// supervisor; Publish and Subscribe are safe for concurrent use at any time
// (Publish fails with ErrNotRunning while the module is not running;
// subscriptions made then take effect when it starts).
type Module struct {
	cfg config.EventBus
	bus *bus.Bus
	ns  *store.Namespace
	log hclog.Logger

	mu      sync.Mutex // guards subs, nextID, bridged and broker changes
	subs    map[int]*subscription
	nextID  int
	bridged []string                        // bridge filters: defaults + persisted
	running []broker                        // under mu; brokers is its lock-free copy
	brokers atomic.Pointer[[]broker]        // nil when not running
	filters atomic.Pointer[[]string]        // copy of bridged for the external dispatch
	subList atomic.Pointer[[]*subscription] // copy of subs for the external dispatch
	bridgeQ atomic.Pointer[queue]           // the bridge's queue; nil before the first Run

	stats counters
}

// subscription is one Subscribe call: its filter and the queue its
// messages go through.
type subscription struct {
	id     int
	filter string
	q      *queue
}

// broker is one MQTT side the module publishes to and subscribes on: the
// embedded broker or the external client.
type broker interface {
	publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error
	subscribe(s *subscription) error
	unsubscribe(s *subscription)
	bridge(filter string) error
	unbridge(filter string)
	close()
}

// bridgeID is the inline subscription id of every bridge filter: mochi
// keys a message's inline subscribers by id, so overlapping bridge filters
// still bridge a message once. Subscribe ids start above it.
const bridgeID = 1

// New returns the eventbus for cfg, which Parse has validated. st holds the
// subscribed topics (namespace "eventbus"); log is named "eventbus".
func New(cfg config.EventBus, b *bus.Bus, st *store.Store, log hclog.Logger) *Module {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Module{
		cfg:    cfg,
		bus:    b,
		ns:     st.Namespace(ModuleName),
		log:    log.Named(ModuleName),
		subs:   map[int]*subscription{},
		nextID: bridgeID + 1,
	}
}

// Name implements supervisor.Module.
func (m *Module) Name() string { return ModuleName }

// Run starts the brokers and the bridge, calls ready once the embedded
// broker listens (an external broker is connected in the background, with
// publishes queued meanwhile) and serves bus messages until ctx ends.
func (m *Module) Run(ctx context.Context, ready func()) error {
	ep, err := m.bus.Register(ModuleName, ModuleGroup)
	if err != nil {
		return fmt.Errorf("eventbus: %w", err)
	}
	defer ep.Close()
	persisted, err := m.loadTopics()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.bridged = slices.Concat(DefaultTopics(), persisted)
	m.publishFilters()
	m.mu.Unlock()

	// The bridge's queue is closed after the brokers (defers run last
	// first), so no broker offers to it once it is closed.
	bq := newQueue(BridgeOwner, "", m.cfg, m.bridge, &m.stats, m.log)
	defer bq.close()
	m.bridgeQ.Store(bq)
	var brokers []broker
	stop := func() {
		m.mu.Lock()
		m.running = nil
		m.brokers.Store(nil)
		m.mu.Unlock()
		for _, b := range brokers {
			b.close()
		}
	}
	defer stop()
	if m.cfg.Mode != "external" {
		e, err := startEmbedded(m)
		if err != nil {
			return err
		}
		brokers = append(brokers, e)
	}
	if m.cfg.Mode != "embedded" {
		x, err := startExternal(ctx, m)
		if err != nil {
			return err
		}
		brokers = append(brokers, x)
	}
	if err := m.attach(brokers); err != nil {
		return err
	}
	m.log.Info("eventbus ready", "mode", m.cfg.Mode, "embedded", m.cfg.Embedded.Address, "external", m.cfg.External.URL)
	ready()
	return m.serve(ctx, ep)
}

// attach bridges the filters and the current subscriptions on the started
// brokers and makes them the ones Publish uses.
func (m *Module) attach(brokers []broker) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range brokers {
		for _, f := range m.bridged {
			if err := b.bridge(f); err != nil {
				return fmt.Errorf("eventbus: bridge %q: %w", f, err)
			}
		}
		for _, s := range m.subs {
			if err := b.subscribe(s); err != nil {
				return fmt.Errorf("eventbus: subscribe %q: %w", s.filter, err)
			}
		}
	}
	m.running = brokers
	m.brokers.Store(&brokers)
	return nil
}

// Publish sends payload on topic with the given QoS (0 or 1) to every
// broker of the mode. With the embedded broker it returns once the message
// is queued for the local subscribers (and sent or queued for the
// broker's clients): a subscriber's full queue makes it wait at most
// localBackpressure (QoS 1) and never fails it. With an external
// broker it returns once the message is written (QoS 0) or acknowledged
// (QoS 1), or once it is queued while the broker is unreachable. An
// invalid topic (ErrInvalidTopic), a payload over the limit
// (ErrPayloadTooLarge) and a full queue of publishes for the external
// broker (ErrQueueFull) are rejected and counted. Publish does not keep
// payload after it returns.
func (m *Module) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	if err := m.checkPublish(topic, payload, qos); err != nil {
		m.stats.rejected.Add(1)
		return err
	}
	bs := m.brokers.Load()
	if bs == nil {
		m.stats.rejected.Add(1)
		return fmt.Errorf("eventbus: publish %q: %w", topic, ErrNotRunning)
	}
	var errs []error
	for _, b := range *bs {
		if err := b.publish(ctx, topic, payload, qos, retain); err != nil {
			errs = append(errs, fmt.Errorf("eventbus: publish %q: %w", topic, err))
		}
	}
	return errors.Join(errs...)
}

func (m *Module) checkPublish(topic string, payload []byte, qos byte) error {
	if err := ValidTopic(topic); err != nil {
		return fmt.Errorf("eventbus: publish: %w", err)
	}
	if qos > 1 {
		return fmt.Errorf("eventbus: publish %q: qos %d: %w (0 or 1)", topic, qos, ErrUnsupported)
	}
	if len(payload) > m.cfg.MaxPayloadBytes {
		return fmt.Errorf("eventbus: publish %q: payload of %d bytes is larger than %d: %w", topic, len(payload), m.cfg.MaxPayloadBytes, ErrPayloadTooLarge)
	}
	return nil
}

// Subscribe calls handler for every message matching filter on every broker
// of the mode (so twice in mode both if both brokers carry it). The
// messages go through a queue of subscriberQueue messages drained by a
// goroutine of the subscription's own, which calls handler in order: a
// slow handler delays only its own messages, and loses those its full queue
// cannot take (QoS 0 at once, QoS 1 after a bounded wait), counted
// under owner, who subscribes (a plugin's name), in Stats.Subscribers. The
// returned function unsubscribes: it cancels the ctx of the handler call in
// progress, waits for it to return and drops what is still queued. It is
// safe to call more than once, but not from handler.
func (m *Module) Subscribe(owner, filter string, handler Handler) (unsubscribe func(), err error) {
	if err := ValidFilter(filter); err != nil {
		return nil, fmt.Errorf("eventbus: subscribe: %w", err)
	}
	if handler == nil {
		return nil, fmt.Errorf("eventbus: subscribe %q: nil handler: %w", filter, ErrUnsupported)
	}
	s := &subscription{filter: filter, q: newQueue(owner, filter, m.cfg, handler, &m.stats, m.log)}
	if err := m.add(s); err != nil {
		s.q.close() // not under mu, as in unsubscribe
		return nil, fmt.Errorf("eventbus: subscribe %q: %w", filter, err)
	}
	var once sync.Once
	return func() { once.Do(func() { m.unsubscribe(s) }) }, nil
}

// add gives s an id and subscribes it on the running brokers, or on none.
func (m *Module) add(s *subscription) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.id = m.nextID
	for i, b := range m.running {
		if err := b.subscribe(s); err != nil {
			for _, b := range m.running[:i] {
				b.unsubscribe(s)
			}
			return err
		}
	}
	m.nextID++
	m.subs[s.id] = s
	m.publishSubs()
	return nil
}

// unsubscribe takes s off the brokers, then stops its queue; not under mu,
// so a handler call that subscribes or unsubscribes something else can
// finish meanwhile.
func (m *Module) unsubscribe(s *subscription) {
	m.mu.Lock()
	delete(m.subs, s.id)
	m.publishSubs()
	for _, b := range m.running {
		b.unsubscribe(s)
	}
	m.mu.Unlock()
	s.q.close()
}

// publishSubs refreshes the lock-free copy of subs; mu is held.
func (m *Module) publishSubs() {
	list := make([]*subscription, 0, len(m.subs))
	for _, s := range m.subs {
		list = append(list, s)
	}
	m.subList.Store(&list)
}

// publishFilters refreshes the lock-free copy of bridged; mu is held.
func (m *Module) publishFilters() {
	f := slices.Clone(m.bridged)
	m.filters.Store(&f)
}

// dispatch hands a message that arrived from the external broker to the
// bridge (once, if any bridge filter matches) and to each matching
// subscription: paho delivers it once for all of them.
func (m *Module) dispatch(topic string, payload []byte, qos byte) {
	if len(payload) > m.cfg.MaxPayloadBytes {
		m.stats.rejected.Add(1)
		m.log.Warn("dropped a message larger than maxPayloadBytes from the external broker", "topic", topic, "bytes", len(payload))
		return
	}
	if f := m.filters.Load(); f != nil && slices.ContainsFunc(*f, func(f string) bool { return Match(f, topic) }) {
		m.offerBridge(topic, payload, qos, false)
	}
	if subs := m.subList.Load(); subs != nil {
		for _, s := range *subs {
			if Match(s.filter, topic) {
				s.q.offer(topic, payload, qos, false)
			}
		}
	}
}

// offerBridge queues a message for the bridge; fromClient tells whether a
// client connection of the embedded broker published it.
func (m *Module) offerBridge(topic string, payload []byte, qos byte, fromClient bool) {
	if q := m.bridgeQ.Load(); q != nil {
		q.offer(topic, payload, qos, fromClient)
	}
}

// Stats is a snapshot of the eventbus's counters.
type Stats struct {
	// Published counts messages handed to a broker: one per broker (two in
	// mode both), and a queued one when it goes out.
	Published uint64
	// Received counts messages taken from a broker for the bridge or a
	// subscription: offered to its queue, so including those the queue
	// then dropped or refused (once per queue).
	Received uint64
	// Bridged counts messages the bridge put on the bus.
	Bridged uint64
	// Unrouted counts bridged messages whose bus group had no module
	// (bus.ErrNoModule); BusFailed counts other failed bus sends (a full
	// queue until the deadline, a closed bus).
	Unrouted, BusFailed uint64
	// Rejected counts messages refused: an invalid topic, a payload over
	// the limit or malformed, a full queue, a malformed or oversized MQTT
	// packet from a client of the embedded broker, a bad bus request.
	Rejected uint64
	// QueueFull counts the publishes of Rejected refused for a full queue.
	QueueFull uint64
	// Queued counts publishes that waited for the external broker;
	// QueueDepth is how many wait now.
	Queued     uint64
	QueueDepth int
	// Reconnects counts connections to the external broker after one was
	// lost or failed; Connected tells whether it is up now.
	Reconnects uint64
	Connected  bool
	// Subscribers has a row per subscriber queue: the bridge's and one per
	// owner and filter of Subscribe (subscriptions with both the same are
	// summed). An ended subscription's row goes with it.
	Subscribers []SubscriberStats
	// SubscriberDropped and SubscriberRefused are the sums of the rows'
	// Dropped and Refused over every queue there has been, ended ones too.
	SubscriberDropped, SubscriberRefused uint64
	// InflightDropped counts messages the embedded broker dropped for a
	// client that had MaxInflight QoS 1 messages unacknowledged (or no
	// packet id left); WritesDropped those dropped for a client with
	// MaxPendingWrites packets waiting to be written.
	InflightDropped, WritesDropped uint64
}

// counters are the module's live counters.
type counters struct {
	published, received, bridged, unrouted, busFailed atomic.Uint64
	rejected, queueFull, queued, reconnects           atomic.Uint64
	subDropped, subRefused                            atomic.Uint64
	inflightDropped, writesDropped                    atomic.Uint64
	depth                                             atomic.Int64
	connected                                         atomic.Bool
}

// Stats returns the module's counters.
func (m *Module) Stats() Stats {
	c := &m.stats
	return Stats{
		Published: c.published.Load(), Received: c.received.Load(), Bridged: c.bridged.Load(),
		Unrouted: c.unrouted.Load(), BusFailed: c.busFailed.Load(), Rejected: c.rejected.Load(),
		QueueFull: c.queueFull.Load(), Queued: c.queued.Load(), QueueDepth: int(c.depth.Load()),
		Reconnects: c.reconnects.Load(), Connected: c.connected.Load(),
		Subscribers:       m.subscriberStats(),
		SubscriberDropped: c.subDropped.Load(), SubscriberRefused: c.subRefused.Load(),
		InflightDropped: c.inflightDropped.Load(), WritesDropped: c.writesDropped.Load(),
	}
}

// subscriberStats returns the rows of Stats.Subscribers: the bridge's
// first, then by owner and filter.
func (m *Module) subscriberStats() []SubscriberStats {
	var rows []SubscriberStats
	if q := m.bridgeQ.Load(); q != nil {
		rows = append(rows, q.stats())
	}
	m.mu.Lock()
	subs := make([]SubscriberStats, 0, len(m.subs))
	for _, s := range m.subs {
		subs = append(subs, s.q.stats())
	}
	m.mu.Unlock()
	slices.SortFunc(subs, func(a, b SubscriberStats) int {
		return cmp.Or(cmp.Compare(a.Owner, b.Owner), cmp.Compare(a.Filter, b.Filter))
	})
	for _, r := range subs {
		if n := len(rows); n > 0 && rows[n-1].Owner == r.Owner && rows[n-1].Filter == r.Filter {
			last := &rows[n-1]
			last.Delivered, last.Dropped, last.Refused = last.Delivered+r.Delivered, last.Dropped+r.Dropped, last.Refused+r.Refused
			last.Depth, last.Capacity = last.Depth+r.Depth, last.Capacity+r.Capacity
			continue
		}
		rows = append(rows, r)
	}
	return rows
}

// clonePayload copies a payload that outlives the call it came with.
func clonePayload(p []byte) []byte {
	if p == nil {
		return []byte{}
	}
	return bytes.Clone(p)
}
