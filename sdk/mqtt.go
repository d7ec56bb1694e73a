package sdk

// MQTT through the daemon's eventbus (ABI 1.1, SPEC §5.1). A plugin that
// calls these needs a host of ABI 1.1 or later, and grants for the topics
// it uses.

// MQTTSource and MQTTOperation mark a message delivered to the handler from
// one of the plugin's MQTT subscriptions; its Resource is the topic and its
// Content the payload.
const (
	MQTTSource    = "eventbus"
	MQTTOperation = "publish"
)

// MQTTPublish publishes payload on topic at QoS 0 or 1. It returns once the
// eventbus has taken the message (for an external broker that is down, once
// it is queued).
func MQTTPublish(topic string, payload []byte, qos byte, retain bool) error {
	r := int32(0)
	if retain {
		r = 1
	}
	return check("mqtt_publish", topic, hostMQTTPublish(topic, payload, int32(qos), r))
}

// MQTTSubscribe subscribes the plugin to filter (MQTT wildcards + and #
// allowed). Matching messages arrive at the handler as messages from
// MQTTSource. The subscription belongs to the plugin, not to one instance,
// and lasts until MQTTUnsubscribe or until the plugin is unloaded;
// subscribing twice is harmless.
func MQTTSubscribe(filter string) error {
	return check("mqtt_subscribe", filter, hostMQTTSubscribe(filter))
}

// MQTTUnsubscribe ends a subscription made with MQTTSubscribe.
func MQTTUnsubscribe(filter string) error {
	return check("mqtt_unsubscribe", filter, hostMQTTUnsubscribe(filter))
}

// MQTTTopic returns the topic of a message delivered from an MQTT
// subscription, and whether m is one.
func (m *Message) MQTTTopic() (string, bool) {
	if m.Route.Source == MQTTSource && m.Route.Operation == MQTTOperation {
		return m.Route.Resource, true
	}
	return "", false
}
