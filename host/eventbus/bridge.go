package eventbus

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	bolt "go.etcd.io/bbolt"
)

// sourceBus is the route source of bridged messages: KubeEdge's eventbus
// builds them with its module group, "bus", as the source.
const sourceBus = "bus"

// bridge puts one MQTT message on the bus, as KubeEdge's eventbus does:
// device and node topics to group twin with the topic base64url-encoded as
// the resource and operation "response"; everything else to group hub as an
// upload with the topic as the resource. It never fails: a message it
// cannot deliver is logged and counted.
func (m *Module) bridge(ctx context.Context, topic string, payload []byte) {
	var msg abi.Message
	group := HubGroup
	if IsTwinTopic(topic) {
		// A payload that is not JSON goes on too: the twin answers it 400,
		// as edgecore's does.
		group = TwinGroup
		msg.Route = abi.Route{Source: sourceBus, Group: UserGroup, Operation: abi.OpResponse, Resource: TwinResource(topic)}
	} else {
		msg.Route = abi.Route{Source: sourceBus, Group: UserGroup, Operation: abi.OpUpload, Resource: topic}
	}
	msg.Content = payload // the bridge queue's copy
	err := m.bus.SendToGroup(ctx, group, msg)
	switch {
	case err == nil:
		m.stats.bridged.Add(1)
	case errors.Is(err, bus.ErrNoModule):
		m.stats.unrouted.Add(1)
		m.log.Debug("no module to take a bridged message", "group", group, "topic", topic)
	default:
		m.stats.busFailed.Add(1)
		m.log.Warn("bridged message not delivered", "group", group, "topic", topic, "error", err)
	}
}

// IsTwinTopic reports whether the bridge sends topic to the twin group:
// KubeEdge's $hw/events/device/... and $hw/events/node/... topics.
func IsTwinTopic(topic string) bool {
	return strings.HasPrefix(topic, "$hw/events/device/") || strings.HasPrefix(topic, "$hw/events/node/")
}

// TwinResource is the resource of a twin-bound message for topic: the
// topic in base64url (with padding), as KubeEdge's eventbus encodes it.
func TwinResource(topic string) string {
	return base64.URLEncoding.EncodeToString([]byte(topic))
}

// TopicOfTwinResource decodes a twin-bound message's resource back to its
// MQTT topic.
func TopicOfTwinResource(resource string) (string, error) {
	b, err := base64.URLEncoding.DecodeString(resource)
	if err != nil {
		return "", fmt.Errorf("eventbus: twin resource %.80q is not base64url: %w", resource, err)
	}
	return string(b), nil
}

// serve handles the bus messages sent to the eventbus until ctx ends. A
// request (Header.Sync) gets a reply: operation "response" with content
// "OK", or "error" with the error's text.
func (m *Module) serve(ctx context.Context, ep *bus.Endpoint) error {
	for {
		msg, err := ep.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("eventbus: %w", err)
		}
		err = m.handle(ctx, &msg)
		if err != nil {
			m.log.Warn("bus request failed", "operation", msg.Route.Operation, "resource", msg.Route.Resource, "source", msg.Route.Source, "error", err)
		}
		if !msg.Header.Sync {
			continue
		}
		reply := msg.Reply(abi.OpResponse, []byte("OK"))
		if err != nil {
			reply = msg.Reply(abi.OpError, []byte(err.Error()))
		}
		if err := m.bus.Respond(reply); err != nil {
			m.log.Debug("reply not taken", "id", msg.Header.ID, "error", err)
		}
	}
}

// handle carries out one bus operation.
func (m *Module) handle(ctx context.Context, msg *abi.Message) error {
	topic := msg.Route.Resource
	switch msg.Route.Operation {
	case abi.OpPublish:
		return m.Publish(ctx, topic, msg.Content, byte(m.cfg.QoS), false)
	case abi.OpSubscribe:
		return m.addBridged(topic)
	case OpUnsubscribe:
		return m.removeBridged(topic)
	case OpConnect:
		// The cloud link's state: the eventbus serves local clients
		// alike either way, so there is nothing to do.
		m.log.Debug("cloud link state", "state", string(msg.Content))
		return nil
	}
	m.stats.rejected.Add(1)
	return fmt.Errorf("eventbus: operation %q on %q: %w", msg.Route.Operation, topic, ErrUnsupported)
}

// addBridged persists filter and bridges it on the running brokers.
func (m *Module) addBridged(filter string) error {
	if err := ValidFilter(filter); err != nil {
		m.stats.rejected.Add(1)
		return fmt.Errorf("eventbus: subscribe: %w", err)
	}
	err := m.ns.Update(func(b *bolt.Bucket) error { return b.Put([]byte(filter), []byte{}) })
	if err != nil {
		return fmt.Errorf("eventbus: persist subscription %q: %w", filter, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if slices.Contains(m.bridged, filter) {
		return nil
	}
	for _, b := range m.running {
		if err := b.bridge(filter); err != nil {
			return fmt.Errorf("eventbus: subscribe %q: %w", filter, err)
		}
	}
	m.bridged = append(m.bridged, filter)
	m.publishFilters()
	m.log.Info("bridging topic", "filter", filter)
	return nil
}

// removeBridged forgets a persisted filter and stops bridging it, unless it
// is one of DefaultTopics, which are always bridged.
func (m *Module) removeBridged(filter string) error {
	err := m.ns.Update(func(b *bolt.Bucket) error { return b.Delete([]byte(filter)) })
	if err != nil {
		return fmt.Errorf("eventbus: forget subscription %q: %w", filter, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.Index(m.bridged, filter)
	if i < 0 || slices.Contains(DefaultTopics(), filter) {
		return nil
	}
	for _, b := range m.running {
		b.unbridge(filter)
	}
	m.bridged = slices.Delete(m.bridged, i, i+1)
	m.publishFilters()
	m.log.Info("stopped bridging topic", "filter", filter)
	return nil
}

// loadTopics reads the persisted filters, skipping the defaults.
func (m *Module) loadTopics() ([]string, error) {
	var topics []string
	defaults := DefaultTopics()
	err := m.ns.View(func(b *bolt.Bucket) error {
		return b.ForEach(func(k, _ []byte) error {
			if t := string(k); !slices.Contains(defaults, t) {
				topics = append(topics, t)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("eventbus: load subscriptions: %w", err)
	}
	return topics, nil
}
