package eventbus

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/host/config"
	"github.com/hashicorp/go-hclog"
)

// Handler receives one message of a subscription, on the subscription's
// own goroutine. ctx ends when the subscription does: a handler that
// blocks (a bus send with back-pressure) must give up then. payload is the
// handler's to keep.
type Handler func(ctx context.Context, topic string, payload []byte)

// BridgeOwner is the Owner of the bridge's queue in SubscriberStats.
const BridgeOwner = "bridge"

// queue is one subscriber's bounded delivery queue and the goroutine that
// drains it into the subscriber's handler. The brokers only offer to it, so
// a slow handler holds back its own queue and nothing else: not the
// publishing connection, not the other subscribers.
//
// A QoS 0 message that finds the queue full is dropped at once; MQTT
// promises it nothing, and dropping the arrival never evicts a QoS 1
// message already admitted. A QoS 1 message waits for room (the
// publisher's back-pressure) up to its bound, then is refused: clientWait
// for a message from a client connection of the embedded broker, which the
// wait holds back alone, the shorter localWait for one published in
// process or taken from the external broker. After a refusal the queue is
// stalled until the subscriber takes its next message: QoS 1 messages
// meanwhile are refused without waiting. So a subscriber that is slow but
// moving (a twin taking a burst) throttles its publishers and loses
// nothing, while one that is stuck costs a publisher one wait, not one per
// message.
type queue struct {
	owner, filter         string
	handler               Handler
	clientWait, localWait time.Duration
	ch                    chan delivery
	ctx                   context.Context
	cancel                context.CancelFunc
	done                  chan struct{}
	log                   hclog.Logger
	totals                *counters // the module's, which outlive the queue

	// taken counts the messages the goroutine took from ch; stalledAt is
	// taken+1 as of the last refusal, so the queue is stalled while
	// stalledAt == taken+1 (0: never refused).
	taken, stalledAt            atomic.Uint64
	delivered, dropped, refused atomic.Uint64
	warned                      atomic.Bool // the first loss was logged at WARN
}

// delivery is one queued message.
type delivery struct {
	topic   string
	payload []byte
}

// newQueue starts the goroutine of a queue for handler, sized and bounded
// by cfg; close stops it.
func newQueue(owner, filter string, cfg config.EventBus, handler Handler, totals *counters, log hclog.Logger) *queue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &queue{
		owner: owner, filter: filter, handler: handler,
		clientWait: cfg.SubscriberBackpressure, localWait: cfg.LocalBackpressure,
		ch: make(chan delivery, cfg.SubscriberQueue), ctx: ctx, cancel: cancel, done: make(chan struct{}),
		log: log, totals: totals,
	}
	go q.run()
	return q
}

// run hands the queued messages to the handler, in order, until close.
func (q *queue) run() {
	defer close(q.done)
	for {
		select {
		case <-q.ctx.Done():
			return
		case d := <-q.ch:
			if q.ctx.Err() != nil {
				q.dropped.Add(1) // close counts the rest
				q.totals.subDropped.Add(1)
				return
			}
			q.taken.Add(1)
			q.handler(q.ctx, d.topic, d.payload)
			q.delivered.Add(1)
		}
	}
}

// offer queues a message for the subscriber, by the policy of its QoS. It
// copies payload, and never waits longer than the bound for a message from
// a client connection (fromClient) or for any other.
func (q *queue) offer(topic string, payload []byte, qos byte, fromClient bool) {
	q.totals.received.Add(1)
	d := delivery{topic: topic, payload: clonePayload(payload)}
	select {
	case q.ch <- d:
		return
	default:
	}
	if qos == 0 {
		q.dropped.Add(1)
		q.totals.subDropped.Add(1)
		q.lost("dropped a qos 0 message for a subscriber whose queue is full", topic)
		return
	}
	if q.stalledAt.Load() != q.taken.Load()+1 {
		wait := q.localWait
		if fromClient {
			wait = q.clientWait
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case q.ch <- d:
			return
		case <-t.C:
			q.stalledAt.Store(q.taken.Load() + 1)
		case <-q.ctx.Done():
		}
	}
	q.refused.Add(1)
	q.totals.subRefused.Add(1)
	q.lost("refused a qos 1 message for a subscriber whose queue stayed full", topic)
}

// lost logs a dropped or refused message: the queue's first at WARN, the
// rest at DEBUG (they are counted).
func (q *queue) lost(what, topic string) {
	first := q.warned.CompareAndSwap(false, true)
	if !first && !q.log.IsDebug() {
		return
	}
	args := []any{"owner", q.owner, "filter", q.filter, "topic", topic, "queue", cap(q.ch)}
	if first {
		q.log.Warn(what+"; further losses are counted", args...)
		return
	}
	q.log.Debug(what, args...)
}

// close stops the goroutine, after the handler call in progress returns
// (its ctx is cancelled), and counts the messages still queued as dropped.
// A handler must not close its own queue.
func (q *queue) close() {
	q.cancel()
	<-q.done
	if n := uint64(len(q.ch)); n > 0 {
		q.dropped.Add(n)
		q.totals.subDropped.Add(n)
	}
}

// stats is the queue's row of Stats.Subscribers.
func (q *queue) stats() SubscriberStats {
	return SubscriberStats{
		Owner: q.owner, Filter: q.filter,
		Delivered: q.delivered.Load(), Dropped: q.dropped.Load(), Refused: q.refused.Load(),
		Depth: len(q.ch), Capacity: cap(q.ch),
	}
}

// SubscriberStats are the counters of one subscriber's queue.
type SubscriberStats struct {
	// Owner is who subscribed (a plugin's name, BridgeOwner for the
	// bridge); Filter is the topic filter (empty for the bridge, which
	// serves every bridged filter).
	Owner, Filter string
	// Delivered counts messages handed to the subscriber.
	Delivered uint64
	// Dropped counts QoS 0 messages that found the queue full, and
	// messages still queued when the subscription ended.
	Dropped uint64
	// Refused counts QoS 1 messages that found the queue full for
	// subscriberBackpressure (localBackpressure for one published in
	// process or from the external broker), or while it was stalled after
	// such a refusal.
	Refused uint64
	// Depth is how many messages wait now; Capacity how many may.
	Depth, Capacity int
}
