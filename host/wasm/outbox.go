package wasm

import (
	"context"

	"github.com/edgehost/edgehost/abi"
)

// held is a send or an MQTT publish the guest made after its call had
// buffered KV writes: it goes out only once those writes are committed, so
// a message never announces state that is then lost (abi/SPEC.md section 5,
// KV semantics). Its data is the host's own copy.
type held struct {
	publish bool
	msg     abi.Message // a send
	topic   string      // a publish: topic, payload, qos, retain
	payload []byte
	qos     byte
	retain  bool
}

// holding reports whether a send or publish made now must be held: the
// call has buffered KV writes.
func (inst *instance) holding() bool { return len(inst.tx.ops) > 0 }

// hold adds h to the call's outbox.
func (inst *instance) hold(h held) { inst.outbox = append(inst.outbox, h) }

// flush sends held messages in order after their call's KV writes
// committed. A message that fails now has already been accepted (the
// guest saw 0): the failure is logged and counted in Status.HeldFailed.
// The caller giving up does not stop it: the state it reports is
// committed.
func (p *Plugin) flush(ctx context.Context, outbox []held) {
	ctx = context.WithoutCancel(ctx)
	for i := range outbox {
		h := &outbox[i]
		var err error
		if h.publish {
			err = p.mqtt.Publish(ctx, p.name, h.topic, h.payload, h.qos, h.retain)
		} else {
			err = p.host.Send(ctx, p.name, &h.msg)
		}
		if err != nil {
			p.health.heldFailed.Add(1)
			if h.publish {
				p.logger.Error("held mqtt publish failed after its call committed", "topic", h.topic, "error", err)
			} else {
				p.logger.Error("held send failed after its call committed", "group", h.msg.Route.Group,
					"operation", h.msg.Route.Operation, "resource", h.msg.Route.Resource, "error", err)
			}
		}
	}
}

// abort discards what a failed call buffered: its KV writes and the
// messages held behind them.
func (inst *instance) abort() {
	if n := len(inst.outbox); n > 0 {
		inst.p.logger.Debug("dropped held messages with the failed call's KV writes", "messages", n)
		clear(inst.outbox)
		inst.outbox = inst.outbox[:0]
	}
	inst.tx.reset()
}
