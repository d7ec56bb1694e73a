package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/wasm"
)

// EventBus is the MQTT service plugins publish and subscribe through (ABI
// 1.1): the daemon's eventbus module, whose errors already match the ABI
// codes a plugin should see.
type EventBus interface {
	// Publish sends payload on topic; it does not keep payload.
	Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error
	// Subscribe calls handler for every message matching filter until the
	// returned function is called, from a goroutine of the subscription's
	// own, so a plugin slow to take its messages holds back no one else;
	// owner (the plugin's name) labels the subscription's counters.
	Subscribe(owner, filter string, handler eventbus.Handler) (unsubscribe func(), err error)
}

// subscriptions are one plugin's MQTT subscriptions. They belong to the
// plugin, not to a version: an upgrade keeps them (the new version's init
// subscribes again, which is harmless), disabling or removing the plugin
// and stopping the host end them.
type subscriptions struct {
	mu    sync.Mutex
	unsub map[string]func() // filter -> its eventbus unsubscribe
	// sorted is the filters of unsub in order, for the delivery path.
	sorted atomic.Pointer[[]string]
}

// update refreshes sorted; mu is held.
func (s *subscriptions) update() {
	list := make([]string, 0, len(s.unsub))
	for f := range s.unsub {
		list = append(list, f)
	}
	slices.Sort(list)
	s.sorted.Store(&list)
}

// first reports whether filter is the first of the plugin's filters that
// matches topic: with overlapping filters ("a/+" and "a/#"), only that one
// delivers, so a message reaches the plugin once.
func (s *subscriptions) first(filter, topic string) bool {
	list := s.sorted.Load()
	if list == nil {
		return true
	}
	for _, f := range *list {
		if f >= filter {
			return true
		}
		if eventbus.Match(f, topic) {
			return false
		}
	}
	return true
}

// filters returns the subscribed filters, sorted.
func (s *subscriptions) filters() []string {
	if list := s.sorted.Load(); list != nil {
		return slices.Clone(*list)
	}
	return nil
}

// pluginMQTT is the eventbus as one plugin sees it through the MQTT
// imports: it implements wasm.MQTT for every version of h.
type pluginMQTT struct {
	m *Module
	h *hosted
}

// Publish implements wasm.MQTT.
func (p pluginMQTT) Publish(ctx context.Context, _, topic string, payload []byte, qos byte, retain bool) error {
	return p.m.events.Publish(ctx, topic, payload, qos, retain)
}

// Subscribe implements wasm.MQTT.
func (p pluginMQTT) Subscribe(_, filter string) error { return p.m.subscribe(p.h, filter) }

// Unsubscribe implements wasm.MQTT.
func (p pluginMQTT) Unsubscribe(_, filter string) error {
	p.h.subs.mu.Lock()
	unsub := p.h.subs.unsub[filter]
	delete(p.h.subs.unsub, filter)
	p.h.subs.update()
	p.h.subs.mu.Unlock()
	if unsub != nil {
		unsub()
		p.h.logger.Info("mqtt unsubscribed", "filter", filter)
	}
	return nil
}

// mqttFor returns what serves h's MQTT imports: nil, so they fail with
// unavailable, when the daemon has no eventbus.
func (m *Module) mqttFor(h *hosted) wasm.MQTT {
	if m.events == nil {
		return nil
	}
	return pluginMQTT{m: m, h: h}
}

// subscribe subscribes h to filter once: a repeated subscribe is a no-op.
func (m *Module) subscribe(h *hosted, filter string) error {
	if m.events == nil {
		return fmt.Errorf("plugin %q: mqtt subscribe %q: %w", h.name, filter, errNoEventBus)
	}
	h.subs.mu.Lock()
	defer h.subs.mu.Unlock()
	if _, ok := h.subs.unsub[filter]; ok {
		return nil
	}
	unsub, err := m.events.Subscribe(h.name, filter, func(ctx context.Context, topic string, payload []byte) {
		if h.subs.first(filter, topic) {
			m.deliver(ctx, h, topic, payload)
		}
	})
	if err != nil {
		return fmt.Errorf("plugin %q: mqtt subscribe %q: %w", h.name, filter, err)
	}
	if h.subs.unsub == nil {
		h.subs.unsub = map[string]func(){}
	}
	h.subs.unsub[filter] = unsub
	h.subs.update()
	h.logger.Info("mqtt subscribed", "filter", filter)
	return nil
}

// errNoEventBus: the daemon runs without an eventbus.
var errNoEventBus = abi.NewError("the eventbus is disabled", abi.Unavailable)

// unsubscribeAll ends every MQTT subscription of h.
func (m *Module) unsubscribeAll(h *hosted) {
	h.subs.mu.Lock()
	subs := h.subs.unsub
	h.subs.unsub = nil
	h.subs.update()
	h.subs.mu.Unlock()
	for _, unsub := range subs {
		unsub()
	}
	if len(subs) > 0 {
		h.logger.Info("mqtt subscriptions ended", "count", len(subs))
	}
}

// deliver hands an MQTT message to h's own bus endpoint as the envelope of
// abi/SPEC.md section 5.1. It runs on the subscription's goroutine, never
// the broker's: a full plugin queue holds it back (the bus's back-pressure)
// up to the bus's send timeout, or until the subscription ends (ctx), then
// the message is dropped and counted. Meanwhile the subscription's own
// eventbus queue fills and loses what it cannot hold, counted there.
func (m *Module) deliver(ctx context.Context, h *hosted, topic string, payload []byte) {
	err := m.bus.Send(ctx, h.name, abi.Message{
		Route:   abi.Route{Source: eventbus.ModuleName, Group: eventbus.ModuleGroup, Operation: abi.OpPublish, Resource: topic},
		Content: payload, // the subscription queue's own copy
	})
	if err != nil {
		if h.mqttDropped.Add(1) == 1 {
			h.logger.Warn("mqtt message not delivered to the plugin; further drops are counted", "topic", topic, "error", err)
		} else {
			h.logger.Debug("mqtt message not delivered to the plugin", "topic", topic, "error", err)
		}
	}
}

// isMQTTDelivery reports whether msg is an MQTT message deliver made: a
// reply to it is dropped.
func isMQTTDelivery(msg *abi.Message) bool {
	return !msg.Header.Sync && msg.Route.Source == eventbus.ModuleName &&
		msg.Route.Group == eventbus.ModuleGroup && msg.Route.Operation == abi.OpPublish
}

// subscribeTopics subscribes a config plugin to its configured topics.
func (m *Module) subscribeTopics(h *hosted, topics []string) error {
	var errs []error
	for _, f := range topics {
		errs = append(errs, m.subscribe(h, f))
	}
	return errors.Join(errs...)
}
