package main

import (
	"encoding/json"
	"errors"

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

// publish sends doc as JSON to the eventbus, to be published on topic.
// Under the runtime's per-call outbox it leaves only after the call's KV
// writes are committed, so a result never announces state that is not on
// disk.
func publish(topic string, doc any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return errors.Join(errors.New("encode the document for "+topic), err)
	}
	m := sdk.Message{Route: sdk.Route{Group: busGroup, Operation: "publish", Resource: topic}, Content: b}
	if err := sdk.Send(&m); err != nil {
		return errors.Join(errors.New("publish on "+topic), err)
	}
	return nil
}

// upstream sends doc to the cloud link as an update of resource, e.g.
// device/{id}/twin/edge_updated.
func upstream(resource string, doc any) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return errors.Join(errors.New("encode "+resource), err)
	}
	m := sdk.Message{Route: sdk.Route{Group: upstreamGroup, Operation: "update", Resource: resource}, Content: b}
	if err := sdk.Send(&m); err != nil {
		return errors.Join(errors.New("send "+resource+" upstream"), err)
	}
	return nil
}

// publishError publishes a failed request's result on topic.
func publishError(topic, eventID string, now int64, code int, reason string) error {
	return publish(topic, ErrorResult{BaseMessage: BaseMessage{EventID: eventID, Timestamp: now}, Code: code, Reason: reason})
}

// storeFailed logs a failed read of the device store and publishes a 500
// result on topic. Nothing was written yet, so the call may succeed.
func storeFailed(topic, eventID string, now int64, err error) error {
	sdk.LogError("device store read failed", "topic", topic, "error", err.Error())
	return publishError(topic, eventID, now, codeInternal, "the device store failed")
}
