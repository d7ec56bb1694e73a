// Command devicetwin is edgehost's device twin: KubeEdge's twin protocol as
// a wasm plugin. It keeps the device registry and each device's twin
// (expected and actual values, their timestamps and {cloud, edge}
// versions) in the host's KV store, and answers KubeEdge's MQTT API:
//
//	$hw/events/device/{id}/twin/update  → .../twin/update/result, .../delta, .../document
//	$hw/events/device/{id}/twin/get     → .../twin/get/result
//	$hw/events/device/{id}/state/update → .../state/update/result
//	$hw/events/node/{node}/membership/get → .../membership/get/result
//
// and publishes $hw/events/node/{node}/membership/updated when devices come
// and go, all as edgecore v1.23 does (docs/twin.md lists what differs).
// Local edits go to the cloud as device/{id}/twin/edge_updated and states
// as device/{id}/state/update; the cloud's twin/cloud_updated and
// membership messages are applied under KubeEdge's version rules.
//
// host/twin, the daemon's "twin" module, hands it every message of the twin
// group, one at a time per device, and the devices of the devices
// directory as a device list. docs/twin.md describes the whole.
//
// Config (optional): {"node_name": "edge-1"}, the node's name in
// membership/updated topics.
package main

import (
	"encoding/base64"
	"errors"
	"strings"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
)

// Config is the plugin's configuration.
type Config struct {
	// NodeName is this node's name, for membership/updated topics.
	NodeName string `json:"node_name"`
}

// config is this instance's configuration, set at init.
var config Config

// Route facts of the messages the plugin receives.
const (
	// sourceEventbus is the source of what the eventbus bridges from MQTT:
	// the resource is the topic in base64url.
	sourceEventbus = "bus"
	// sourceDevicesDir is the source host/twin gives the device list it
	// reads from the devices directory.
	sourceDevicesDir = "devicesdir"
	resourceDetail   = "membership/detail"
	suffixCloudTwin  = "/twin/cloud_updated"
)

func init() {
	sdk.OnInit(func(raw []byte) error {
		var c Config
		if len(raw) > 0 {
			if err := c.decodeJSON(raw); err != nil {
				return errors.Join(errors.New("devicetwin: config"), err)
			}
		}
		config = c
		return nil
	})
	sdk.Handle(handle)
}

func main() {}

// handle applies one message. It answers every message with an empty
// "response" once the message is applied, so host/twin knows when it may
// hand the plugin the device's next one. A failure to store or send fails
// the call, so none of its writes commit.
func handle(m *sdk.Message) (*sdk.Message, error) {
	now := sdk.Now().UnixMilli()
	var err error
	if m.Route.Source == sourceEventbus {
		err = fromMQTT(m.Route.Resource, m.Content, now)
	} else {
		err = fromCloud(m, now)
	}
	if err != nil {
		sdk.LogError("message not applied", "resource", m.Route.Resource, "source", m.Route.Source, "error", err.Error())
		return nil, abi.Internal
	}
	return m.Reply(nil), nil
}

// fromMQTT applies a message a mapper or app published.
func fromMQTT(resource string, payload []byte, now int64) error {
	n := base64.URLEncoding.DecodedLen(len(resource))
	if cap(topicBuf) < n {
		topicBuf = make([]byte, n)
	}
	n, err := base64.URLEncoding.Decode(topicBuf[:n], unsafe.Slice(unsafe.StringData(resource), len(resource)))
	if err != nil {
		sdk.LogWarn("eventbus message with a resource that is not base64url; ignored", "resource", truncate(resource))
		return nil
	}
	// The topic is a view of topicBuf, valid until the next message, as
	// the resource itself is a view of the SDK's exchange buffer: what
	// the plugin keeps or sends of either is copied (concatenated or
	// encoded) first.
	topic := unsafe.String(unsafe.SliceData(topicBuf), n)
	if rest, ok := strings.CutPrefix(topic, deviceTopicPrefix); ok {
		for _, s := range []struct {
			suffix string
			apply  func(id, topic string, payload []byte, now int64) error
		}{
			{suffixTwinUpdate, twinUpdate},
			{suffixTwinGet, twinGet},
			{suffixStateUpdate, stateUpdate},
		} {
			if id, ok := strings.CutSuffix(rest, s.suffix); ok {
				if !validDeviceID(id) {
					return badDeviceTopic(id, topic, payload, now)
				}
				return s.apply(id, topic, payload, now)
			}
		}
	}
	if rest, ok := strings.CutPrefix(topic, nodeTopicPrefix); ok && strings.HasSuffix(rest, suffixMemberGet) {
		return membershipGet(topic, payload, now)
	}
	// Among these: twin/cloud_updated, which edgecore takes from MQTT as a
	// cloud edit; edgehost takes cloud edits from the cloud link only.
	warnLimited("topic", "twin topic not handled; ignored", "topic", truncate(topic))
	return nil
}

// origin is whose devices a membership message changes: host/twin's
// devices dir (which hands its devices over in batches of membership
// updates) or the cloud.
func origin(m *sdk.Message) string {
	if m.Route.Source == sourceDevicesDir {
		return originLocal
	}
	return originCloud
}

// topicBuf holds the topic of the MQTT message being handled.
var topicBuf []byte

// fromCloud applies a message from the cloud, or host/twin's device list.
func fromCloud(m *sdk.Message, now int64) error {
	r := m.Route.Resource
	switch {
	case r == resourceDetail:
		return membershipSync(origin(m), m.Content, now)
	case strings.Contains(r, "membership") && m.Route.Operation == abi.OpUpdate:
		return membershipUpdate(origin(m), m.Content, now)
	case strings.HasPrefix(r, "device/") && strings.HasSuffix(r, suffixCloudTwin):
		return cloudUpdate(strings.TrimSuffix(strings.TrimPrefix(r, "device/"), suffixCloudTwin), m.Content, now)
	}
	sdk.LogDebug("message not handled", "source", m.Route.Source, "operation", m.Route.Operation, "resource", truncate(r))
	return nil
}
