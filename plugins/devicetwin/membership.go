package main

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/sdk"
)

// membershipUpdate applies a membership update of origin (the cloud's, or
// a batch of host/twin's devices dir): devices added (registered, or
// refreshed if known) and removed. The devices dir removes only its own
// devices.
func membershipUpdate(origin string, payload []byte, now int64) error {
	var upd MembershipUpdate
	if err := upd.decodeJSON(payload); err != nil {
		sdk.LogWarn("membership update is not JSON; ignored", "error", err.Error())
		return nil
	}
	var out announcements
	for i := range upd.AddDevices {
		d := &upd.AddDevices[i]
		received := asReceived(d)
		added, err := register(d, origin, now)
		if err != nil {
			return err
		}
		if added {
			out.add(received, true)
		}
	}
	for i := range upd.RemoveDevices {
		d := &upd.RemoveDevices[i]
		only := ""
		if origin == originLocal {
			only = originLocal
		}
		removed, err := unregister(d.ID, only)
		if err != nil {
			return err
		}
		if removed {
			out.add(asReceived(d), false)
		}
	}
	return out.publish(now)
}

// membershipSync replaces the devices of one origin with a full list: the
// cloud's membership detail, or the devices directory host/twin reads.
// Devices of that origin missing from the list are removed; the others
// keep their twins.
func membershipSync(origin string, payload []byte, now int64) error {
	var detail MembershipDetail
	if err := detail.decodeJSON(payload); err != nil {
		sdk.LogWarn("device list is not JSON; ignored", "origin", origin, "error", err.Error())
		return nil
	}
	listed := map[string]bool{}
	var out announcements
	for i := range detail.Devices {
		d := &detail.Devices[i]
		listed[d.ID] = true
		received := asReceived(d)
		added, err := register(d, origin, now)
		if err != nil {
			return err
		}
		if added {
			out.add(received, true)
		}
	}
	all, err := listDevices()
	if err != nil {
		return err
	}
	for _, r := range all {
		if r.Origin != origin || listed[r.ID] {
			continue
		}
		if _, err := unregister(r.ID, ""); err != nil {
			return err
		}
		out.add(brief(&r.Device), false)
	}
	sdk.LogInfo("device list applied", "origin", origin, "devices", strconv.Itoa(len(detail.Devices)),
		"added", strconv.Itoa(out.added), "removed", strconv.Itoa(len(out.devices)-out.added))
	return out.publish(now)
}

// register adds d, or refreshes its description and attributes and adds
// the properties it declares that the twin lacks, keeping the twin's
// values. added reports a new device.
func register(d *Device, origin string, now int64) (added bool, err error) {
	if d.ID == "" || len(d.ID) > maxDeviceID {
		sdk.LogWarn("device without a valid id; ignored", "name", d.Name)
		return false, nil
	}
	rec, ok, err := loadDevice(d.ID)
	if err != nil {
		return false, err
	}
	if !ok {
		rec = &record{Device: Device{ID: d.ID, Name: d.Name, State: d.State, LastOnline: d.LastOnline, Twin: map[string]*MsgTwin{}}}
	}
	rec.Origin = origin
	if d.Name != "" {
		rec.Name = d.Name
	}
	rec.Description, rec.Attributes = d.Description, d.Attributes
	for key, t := range d.Twin {
		if _, have := rec.Twin[key]; have || t == nil {
			continue
		}
		if reason := checkProperty(key, t); reason != "" {
			warnLimited("declared-twin", "declared twin property not registered: edgecore would refuse every update of it",
				"device", d.ID, "twin", truncate(key), "reason", reason)
			continue
		}
		t.ExpectedVersion, t.ActualVersion = nil, nil
		stamp(t.Expected, now)
		stamp(t.Actual, now)
		if t.Optional == nil {
			t.Optional = boolPtr(true)
		}
		if t.Metadata == nil || t.Metadata.Type == "" {
			t.Metadata = &TypeMetadata{Type: typeString}
		}
		rec.Twin[key] = t
	}
	return !ok, saveDevice(rec)
}

// maxDeviceID bounds a device id, keeping its KV key well inside 1024
// bytes.
const maxDeviceID = 512

// stamp gives a declared value its timestamp.
func stamp(v *TwinValue, now int64) {
	if v != nil && v.Value != nil && v.Metadata == nil {
		v.Metadata = &ValueMetadata{Timestamp: now}
	}
}

// unregister removes a device, of origin only unless that is empty;
// removed reports whether it was registered (with that origin).
func unregister(id, only string) (removed bool, err error) {
	rec, ok, err := loadDevice(id)
	if err != nil || !ok || (only != "" && rec.Origin != only) {
		return false, err
	}
	return true, deleteDevice(id)
}

// brief is a device as membership/get/result lists it: without its twin.
func brief(d *Device) Device {
	return Device{ID: d.ID, Name: d.Name, Description: d.Description, State: d.State, LastOnline: d.LastOnline, Attributes: d.Attributes}
}

// asReceived is a device as edgecore's membership/updated carries it
// (dttype.MarshalMembershipUpdate): as the cloud or the devices directory
// gave it, its twins without versions and a deleted twin as null. It
// copies what register changes in place (the twins and their values).
func asReceived(d *Device) Device {
	out := *d
	if d.Twin == nil {
		return out
	}
	out.Twin = make(map[string]*MsgTwin, len(d.Twin))
	for key, t := range d.Twin {
		if t == nil || isDeleted(t) {
			out.Twin[key] = nil
			continue
		}
		c := clone(t, false)
		for _, side := range [...]**TwinValue{&c.Expected, &c.Actual} {
			if *side != nil {
				v := **side
				*side = &v
			}
		}
		out.Twin[key] = c
	}
	return out
}

// announcements are the devices one membership message added or removed,
// to be announced on membership/updated.
type announcements struct {
	devices []Device // added ones first
	added   int
}

// add records an added (or removed) device.
func (a *announcements) add(d Device, added bool) {
	if added {
		a.devices = slices.Insert(a.devices, a.added, d)
		a.added++
		return
	}
	a.devices = append(a.devices, d)
}

// publish announces each device on membership/updated in a message of its
// own with a new event id, as edgecore does, if the node's name is
// configured.
func (a *announcements) publish(now int64) error {
	if len(a.devices) == 0 {
		return nil
	}
	if config.NodeName == "" {
		sdk.LogWarn("devices added or removed, but node_name is not configured: membership/updated not published")
		return nil
	}
	topic := nodeTopicPrefix + config.NodeName + suffixMemberUpd
	var err error
	for i := range a.devices {
		u := MembershipUpdate{BaseMessage: BaseMessage{EventID: newEventID(), Timestamp: now}}
		if i < a.added {
			u.AddDevices = a.devices[i : i+1]
		} else {
			u.RemoveDevices = a.devices[i : i+1]
		}
		err = errors.Join(err, publish(topic, u.appendJSON(doc[:0])))
	}
	return err
}

// membershipGet publishes the registered devices on membership/get/result:
// the configured node's, whatever node the request named, as edgecore
// does (the request's own result topic without a node_name).
func membershipGet(topic string, payload []byte, now int64) error {
	resultTopic := topic + suffixResult
	if config.NodeName != "" {
		resultTopic = nodeTopicPrefix + config.NodeName + suffixMemberGet + suffixResult
	}
	var req BaseMessage
	if err := req.decodeJSON(payload); err != nil {
		return publishError(resultTopic, "", now, codeBadRequest, "Unmarshal membership get request failed: "+err.Error())
	}
	all, err := listDevices()
	if err != nil {
		return storeFailed(resultTopic, req.EventID, now, err)
	}
	out := MembershipDetail{BaseMessage: BaseMessage{EventID: req.EventID, Timestamp: now}, Devices: make([]Device, 0, len(all))}
	for _, r := range all {
		out.Devices = append(out.Devices, brief(&r.Device))
	}
	return publish(resultTopic, out.appendJSON(doc[:0]))
}

// deviceStates are the states state/update accepts, compared without
// case (edgecore's dtcommon constants; mapper-framework reports "ok").
var deviceStates = []string{"online", "offline", "ok", "unknown", "unhealthy"}

// stateUpdate records a device's state, publishes state/update/result and
// sends the state upstream as device/{id}/state/update, as edgecore's
// dealDeviceStateUpdate does: the state is kept as sent; lastOnlineTime is
// now for online and ok and cleared for the others; the result has a new
// event id. A body that does not decode, an unknown device or state gets
// no answer, as in edgecore; each is logged.
func stateUpdate(id, topic string, payload []byte, now int64) error {
	var upd StateUpdate
	if err := upd.decodeJSON(payload); err != nil {
		warnLimited("state-body", "state update body does not decode; ignored, as edgecore does", "topic", truncate(topic), "error", err.Error())
		return nil
	}
	state := strings.ToLower(upd.State)
	if !slices.Contains(deviceStates, state) {
		warnLimited("state-value", "state update with an unknown state; ignored, as edgecore does", "device", id,
			"state", truncate(upd.State), "want", strings.Join(deviceStates, ","))
		return nil
	}
	rec, ok, err := loadDevice(id)
	if err != nil {
		return err
	}
	if !ok {
		warnLimited("state-device", "state update for an unknown device; ignored, as edgecore does", "device", id)
		return nil
	}
	rec.State, rec.LastOnline = upd.State, ""
	if state == "online" || state == "ok" {
		rec.LastOnline = time.UnixMilli(now).UTC().Format(time.RFC3339)
	}
	if err := saveDevice(rec); err != nil {
		return err
	}
	res := StateResult{BaseMessage: BaseMessage{EventID: newEventID(), Timestamp: now},
		Device: DeviceState{Name: rec.Name, State: rec.State, LastOnline: rec.LastOnline}}
	b := res.appendJSON(doc[:0])
	// The cloud takes this content as a JSON string holding the document
	// (§1.1 of the contract); the bus carries the document's text, and the
	// cloud link sends a state/update's content as a string.
	return errors.Join(publish(topic+suffixResult, b), upstream(name("device/", id, suffixStateUpdate), b))
}
