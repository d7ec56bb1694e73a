package wasm

import (
	"bytes"
	"context"
	"slices"
	"unicode/utf8"

	"github.com/edgehost/edgehost/abi"
	"github.com/tetratelabs/wazero/api"
)

// MQTT is the daemon's eventbus as a plugin sees it through the MQTT
// imports (abi/SPEC.md section 5.1, ABI 1.1). plugin is the calling
// plugin's name. Errors map to codes as for Host: an error matching an
// abi.Code under errors.Is (as the eventbus's do) reaches the guest as that
// code.
type MQTT interface {
	// Publish publishes payload on topic; it must not keep payload after
	// it returns.
	Publish(ctx context.Context, plugin, topic string, payload []byte, qos byte, retain bool) error
	// Subscribe subscribes the plugin (not one instance) to filter; a
	// repeated subscribe is harmless.
	Subscribe(plugin, filter string) error
	// Unsubscribe ends the plugin's subscription to filter, if any.
	Unsubscribe(plugin, filter string) error
}

// maxTopicLen is the longest MQTT topic or filter (a 16-bit length).
const maxTopicLen = 65535

// validTopic reports whether b is a topic name (filter false) or a topic
// filter (filter true) as MQTT 3.1.1 section 4.7 allows them: 1 to 65535
// bytes of UTF-8 without NUL; a name has no wildcard; in a filter "+" fills
// a whole level and "#" is a whole last level. It mirrors the eventbus's
// checks so a bad topic is refused (-1) before grants are consulted.
func validTopic(b []byte, filter bool) bool {
	if len(b) == 0 || len(b) > maxTopicLen || bytes.IndexByte(b, 0) >= 0 || !utf8.Valid(b) {
		return false
	}
	if !filter {
		return bytes.IndexByte(b, '+') < 0 && bytes.IndexByte(b, '#') < 0
	}
	for rest := b; ; {
		level := rest
		i := bytes.IndexByte(rest, '/')
		if i >= 0 {
			level, rest = rest[:i], rest[i+1:]
		}
		if len(level) > 1 && (bytes.IndexByte(level, '+') >= 0 || bytes.IndexByte(level, '#') >= 0) {
			return false
		}
		if i < 0 {
			return true
		}
		if len(level) == 1 && level[0] == '#' {
			return false // "#" before the last level
		}
	}
}

// topicString returns b as a string, reusing the instance's last topic when
// it is the same, so a plugin publishing on one topic does not allocate for
// it on every call.
func (inst *instance) topicString(b []byte) string {
	if string(b) != inst.lastTopic {
		inst.lastTopic = string(b)
	}
	return inst.lastTopic
}

// mqtt_publish(topic_ptr, topic_len, payload_ptr, payload_len, qos, retain) -> i32
func importMQTTPublish(inst *instance, mem api.Memory, stack []uint64) {
	topicBytes, okTopic := read(mem, stack[0], stack[1])
	payload, okPayload := read(mem, stack[2], stack[3])
	qos := api.DecodeI32(stack[4])
	switch {
	case !okTopic || !okPayload || qos < 0 || qos > 1 || !validTopic(topicBytes, false):
		stack[0] = fail(abi.InvalidArgument)
		return
	case len(payload) > inst.p.limits.MaxMessageBytes:
		stack[0] = fail(abi.TooLarge)
		return
	}
	topic := inst.topicString(topicBytes)
	retain := api.DecodeI32(stack[5]) == 1
	switch {
	case !inst.allowPublish(topic):
		stack[0] = inst.deny(abi.ImportMQTTPublish, "topic", topic)
		return
	case inst.p.mqtt == nil:
		stack[0] = fail(abi.Unavailable)
		return
	case inst.holding():
		inst.hold(held{publish: true, topic: topic, payload: slices.Clone(payload), qos: byte(qos), retain: retain})
		stack[0] = ok(0)
		return
	}
	if err := inst.p.mqtt.Publish(inst.callCtx, inst.p.name, topic, payload, byte(qos), retain); err != nil {
		stack[0] = fail(codeOf(err, abi.Unavailable))
		return
	}
	stack[0] = ok(0)
}

// readFilter returns a topic filter from guest memory, or false when the
// memory or the filter is invalid.
func readFilter(mem api.Memory, ptr, n uint64) (string, bool) {
	b, ok := read(mem, ptr, n)
	if !ok || !validTopic(b, true) {
		return "", false
	}
	return string(b), true
}

// mqtt_subscribe(filter_ptr, filter_len) -> i32
func importMQTTSubscribe(inst *instance, mem api.Memory, stack []uint64) {
	filter, valid := readFilter(mem, stack[0], stack[1])
	switch {
	case !valid:
		stack[0] = fail(abi.InvalidArgument)
	case !inst.allowSubscribe(filter):
		stack[0] = inst.deny(abi.ImportMQTTSubscribe, "filter", filter)
	case inst.p.mqtt == nil:
		stack[0] = fail(abi.Unavailable)
	default:
		if err := inst.p.mqtt.Subscribe(inst.p.name, filter); err != nil {
			inst.p.logger.Warn("mqtt subscribe failed", "filter", filter, "error", err)
			stack[0] = fail(codeOf(err, abi.Unavailable))
			return
		}
		stack[0] = ok(0)
	}
}

// mqtt_unsubscribe(filter_ptr, filter_len) -> i32. Ending a subscription
// needs no more than the import's grant: a plugin can only end its own.
func importMQTTUnsubscribe(inst *instance, mem api.Memory, stack []uint64) {
	filter, valid := readFilter(mem, stack[0], stack[1])
	switch {
	case !valid:
		stack[0] = fail(abi.InvalidArgument)
	case inst.p.mqtt == nil:
		stack[0] = fail(abi.Unavailable)
	default:
		if err := inst.p.mqtt.Unsubscribe(inst.p.name, filter); err != nil {
			stack[0] = fail(codeOf(err, abi.Unavailable))
			return
		}
		stack[0] = ok(0)
	}
}
