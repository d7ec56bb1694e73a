package main

import (
	"errors"
	"unsafe"

	"github.com/edgehost/edgehost/sdk"
)

// Where the plugin's messages go.
const (
	// busGroup is the eventbus's group: a message with operation "publish"
	// is published on the MQTT topic in its resource.
	busGroup = "bus"
	// upstreamGroup is host/twin's upstream endpoint: it sends what arrives
	// there to the cloud link as KubeEdge's twin module would (source
	// "twin", route group "resource"), since a plugin's source is always
	// its own name and its route group is the bus group it reaches.
	upstreamGroup = "twin-upstream"
)

// KubeEdge's topic pieces.
const (
	deviceTopicPrefix = "$hw/events/device/"
	nodeTopicPrefix   = "$hw/events/node/"
	suffixTwinUpdate  = "/twin/update"
	suffixTwinGet     = "/twin/get"
	suffixStateUpdate = "/state/update"
	suffixMemberGet   = "/membership/get"
	suffixResult      = "/result"
	suffixDelta       = "/delta"
	suffixDocument    = "/document"
	suffixMemberUpd   = "/membership/updated"
)

// doc is the buffer the documents the plugin sends and stores are encoded
// into (doc[:0] for each). The host copies what it is given, so one
// buffer serves every document, one at a time.
var doc []byte

// publish sends the JSON document b to the eventbus, to be published on
// topic. Under the runtime's per-call outbox it leaves only after the
// call's KV writes are committed, so a result never announces state that
// is not on disk.
func publish(topic string, b []byte) error {
	doc = b[:0]
	m := sdk.Message{Route: sdk.Route{Group: busGroup, Operation: "publish", Resource: topic}, Content: b}
	if err := sdk.Send(&m); err != nil {
		return errors.Join(errors.New("publish on "+topic), err)
	}
	return nil
}

// upstream sends the JSON document b to the cloud link as an update of
// resource, e.g. device/{id}/twin/edge_updated.
func upstream(resource string, b []byte) error {
	doc = b[:0]
	m := sdk.Message{Route: sdk.Route{Group: upstreamGroup, Operation: "update", Resource: resource}, Content: b}
	if err := sdk.Send(&m); err != nil {
		return errors.Join(errors.New("send "+resource+" upstream"), err)
	}
	return nil
}

// nameBuf holds the topic or resource name builds.
var nameBuf []byte

// name joins parts into a topic or resource for a message sent at once: a
// view of nameBuf, valid until the next name (the host copies what it is
// sent).
func name(parts ...string) string {
	b := nameBuf[:0]
	for _, p := range parts {
		b = append(b, p...)
	}
	nameBuf = b
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// publishError publishes a failed request's result on topic.
func publishError(topic, eventID string, now int64, code int, reason string) error {
	r := ErrorResult{BaseMessage: BaseMessage{EventID: eventID, Timestamp: now}, Code: code, Reason: reason}
	return publish(topic, r.appendJSON(doc[:0]))
}

// storeFailed logs a failed read of the device store and publishes a 500
// result on topic. Nothing was written yet, so the call may succeed.
func storeFailed(topic, eventID string, now int64, err error) error {
	sdk.LogError("device store read failed", "topic", topic, "error", err.Error())
	return publishError(topic, eventID, now, codeInternal, "the device store failed")
}
