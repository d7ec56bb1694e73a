package main

// The JSON documents of KubeEdge's device twin (edge/pkg/devicetwin/dttype),
// field for field: what mappers and apps send and receive on the
// $hw/events/device/... topics, and what goes to and comes from the cloud.

// BaseMessage opens every twin document.
type BaseMessage struct {
	EventID   string `json:"event_id"`
	Timestamp int64  `json:"timestamp"`
}

// ValueMetadata is a twin value's metadata: when it was set (Unix ms).
type ValueMetadata struct {
	Timestamp int64 `json:"timestamp,omitempty"`
}

// TwinValue is one side of a twin property, expected or actual.
type TwinValue struct {
	Value    *string        `json:"value,omitempty"`
	Metadata *ValueMetadata `json:"metadata,omitempty"`
}

// TypeMetadata carries a property's value type: string, int, float,
// boolean, or "deleted" for a property deleted softly (kept for its
// versions).
type TypeMetadata struct {
	Type string `json:"type,omitempty"`
}

// TwinVersion orders the edits of one side of a property: Cloud counts the
// cloud's edits, Edge the edge's.
type TwinVersion struct {
	Cloud int64 `json:"cloud"`
	Edge  int64 `json:"edge"`
}

// MsgTwin is one twin property.
type MsgTwin struct {
	Expected        *TwinValue    `json:"expected,omitempty"`
	Actual          *TwinValue    `json:"actual,omitempty"`
	Optional        *bool         `json:"optional,omitempty"`
	Metadata        *TypeMetadata `json:"metadata,omitempty"`
	ExpectedVersion *TwinVersion  `json:"expected_version,omitempty"`
	ActualVersion   *TwinVersion  `json:"actual_version,omitempty"`
}

// MsgAttr is one device attribute.
type MsgAttr struct {
	Value    string        `json:"value"`
	Optional *bool         `json:"optional,omitempty"`
	Metadata *TypeMetadata `json:"metadata,omitempty"`
}

// Device is a device as membership messages carry it.
type Device struct {
	ID          string              `json:"id"`
	Name        string              `json:"name,omitempty"`
	Description string              `json:"description,omitempty"`
	State       string              `json:"state,omitempty"`
	LastOnline  string              `json:"last_online,omitempty"`
	Attributes  map[string]*MsgAttr `json:"attributes,omitempty"`
	Twin        map[string]*MsgTwin `json:"twin,omitempty"`
}

// TwinUpdate is the content of twin/update, of its result, of the cloud's
// twin/cloud_updated and of the edge's twin/edge_updated.
type TwinUpdate struct {
	BaseMessage
	Twin map[string]*MsgTwin `json:"twin"`
}

// TwinDelta is the content of twin/update/delta: the twins that have an
// expected value, and the expected values the actual ones lag behind.
type TwinDelta struct {
	BaseMessage
	Twin  map[string]*MsgTwin `json:"twin"`
	Delta map[string]string   `json:"delta"`
}

// TwinDoc is one property's change: its state before and after (null for
// a property that did not exist, or does not any more).
type TwinDoc struct {
	Last    *MsgTwin `json:"last"`
	Current *MsgTwin `json:"current"`
}

// TwinDocument is the content of twin/update/document.
type TwinDocument struct {
	BaseMessage
	Twin map[string]*TwinDoc `json:"twin"`
}

// ErrorResult is a failed request's result.
type ErrorResult struct {
	BaseMessage
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// MembershipUpdate adds and removes devices: from the cloud, and published
// on membership/updated.
type MembershipUpdate struct {
	BaseMessage
	AddDevices    []Device `json:"added_devices"`
	RemoveDevices []Device `json:"removed_devices"`
}

// MembershipDetail is the full device list: membership/get/result, and the
// device list of a full sync (the cloud's membership/detail, or the devices
// directory).
type MembershipDetail struct {
	BaseMessage
	Devices []Device `json:"devices"`
}

// StateUpdate is the content of state/update.
type StateUpdate struct {
	BaseMessage
	State string `json:"state"`
}

// DeviceState is a device's state in a state/update result: edgecore's
// DeviceCloudMsg, whose fields are all omitempty (an offline device has no
// lastOnlineTime).
type DeviceState struct {
	Name       string `json:"name,omitempty"`
	State      string `json:"state,omitempty"`
	LastOnline string `json:"lastOnlineTime,omitempty"`
}

// StateResult is the content of state/update/result.
type StateResult struct {
	BaseMessage
	Device DeviceState `json:"device"`
}
