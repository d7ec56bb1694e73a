package main

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/sdk"
)

// membershipUpdate applies a membership update of origin (the cloud's, or
// a batch of host/twin's devices dir): devices added (registered, or
// refreshed if known) and removed. The devices dir removes only its own
// devices.
func membershipUpdate(eventID, origin string, payload []byte, now int64) error {
	var upd MembershipUpdate
	if err := upd.decodeJSON(payload); err != nil {
		sdk.LogWarn("membership update is not JSON; ignored", "error", err.Error())
		return nil
	}
	out := MembershipUpdate{BaseMessage: BaseMessage{EventID: eventID, Timestamp: now}}
	for i := range upd.AddDevices {
		added, err := register(&upd.AddDevices[i], origin, now)
		if err != nil {
			return err
		}
		if added {
			out.AddDevices = append(out.AddDevices, brief(&upd.AddDevices[i]))
		}
	}
	for _, d := range upd.RemoveDevices {
		only := ""
		if origin == originLocal {
			only = originLocal
		}
		removed, err := unregister(d.ID, only)
		if err != nil {
			return err
		}
		if removed {
			out.RemoveDevices = append(out.RemoveDevices, brief(&d))
		}
	}
	return announce(out)
}

// membershipSync replaces the devices of one origin with a full list: the
// cloud's membership detail, or the devices directory host/twin reads.
// Devices of that origin missing from the list are removed; the others
// keep their twins.
func membershipSync(eventID, origin string, payload []byte, now int64) error {
	var detail MembershipDetail
	if err := detail.decodeJSON(payload); err != nil {
		sdk.LogWarn("device list is not JSON; ignored", "origin", origin, "error", err.Error())
		return nil
	}
	listed := map[string]bool{}
	out := MembershipUpdate{BaseMessage: BaseMessage{EventID: eventID, Timestamp: now}}
	for i := range detail.Devices {
		d := &detail.Devices[i]
		listed[d.ID] = true
		added, err := register(d, origin, now)
		if err != nil {
			return err
		}
		if added {
			out.AddDevices = append(out.AddDevices, brief(d))
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
		out.RemoveDevices = append(out.RemoveDevices, brief(&r.Device))
	}
	sdk.LogInfo("device list applied", "origin", origin, "devices", strconv.Itoa(len(detail.Devices)),
		"added", strconv.Itoa(len(out.AddDevices)), "removed", strconv.Itoa(len(out.RemoveDevices)))
	return announce(out)
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
		if _, have := rec.Twin[key]; have || t == nil || checkProperty(key, t) != nil {
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

// brief is a device as membership results list it.
func brief(d *Device) Device {
	return Device{ID: d.ID, Name: d.Name, Description: d.Description, State: d.State, LastOnline: d.LastOnline}
}

// announce publishes a membership change on membership/updated, if there
// was one and the node's name is configured.
func announce(u MembershipUpdate) error {
	if len(u.AddDevices) == 0 && len(u.RemoveDevices) == 0 {
		return nil
	}
	if config.NodeName == "" {
		sdk.LogWarn("devices added or removed, but node_name is not configured: membership/updated not published")
		return nil
	}
	return publish(nodeTopicPrefix+config.NodeName+suffixMemberUpd, u.appendJSON(doc[:0]))
}

// membershipGet publishes the registered devices on membership/get/result.
func membershipGet(topic string, payload []byte, now int64) error {
	resultTopic := topic + suffixResult
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

// deviceStates are the states state/update accepts.
var deviceStates = []string{"online", "offline", "unknown"}

// stateUpdate records a device's state, publishes state/update/result and
// sends the state upstream.
func stateUpdate(id, topic string, payload []byte, now int64) error {
	resultTopic := topic + suffixResult
	var upd StateUpdate
	if err := upd.decodeJSON(payload); err != nil {
		return publishError(resultTopic, "", now, codeBadRequest, "Unmarshal device state request failed: "+err.Error())
	}
	state := strings.ToLower(upd.State)
	valid := false
	for _, s := range deviceStates {
		valid = valid || s == state
	}
	if !valid {
		return publishError(resultTopic, upd.EventID, now, codeBadRequest, "Unknown state "+truncate(upd.State)+": want online, offline or unknown")
	}
	rec, ok, err := loadDevice(id)
	if err != nil {
		return storeFailed(resultTopic, upd.EventID, now, err)
	}
	if !ok {
		return publishError(resultTopic, upd.EventID, now, codeNotFound, reasonNoDevice)
	}
	rec.State = state
	rec.LastOnline = time.UnixMilli(now).UTC().Format(time.RFC3339)
	if err := saveDevice(rec); err != nil {
		return err
	}
	res := StateResult{BaseMessage: BaseMessage{EventID: upd.EventID, Timestamp: now},
		Device: DeviceState{Name: rec.Name, State: rec.State, LastOnline: rec.LastOnline}}
	b := res.appendJSON(doc[:0])
	return errors.Join(publish(resultTopic, b), upstream("device/"+id+"/state", b))
}
