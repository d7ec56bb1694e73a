package main

import (
	"errors"
	"strconv"

	"github.com/edgehost/edgehost/sdk"
)

// KubeEdge's result codes and limits.
const (
	codeBadRequest = 400
	codeNotFound   = 404
	codeConflict   = 409
	codeInternal   = 500

	maxKeyLen   = 128
	maxValueLen = 512

	typeDeleted = "deleted"
	typeString  = "string"
)

// reqError is a request refused with a KubeEdge code.
type reqError struct {
	code   int
	reason string
}

func (e *reqError) Error() string { return strconv.Itoa(e.code) + " " + e.reason }

func badRequest(reason string) *reqError { return &reqError{code: codeBadRequest, reason: reason} }

// Reasons edgecore gives on the device's own result topic.
const (
	// reasonNoDevice answers an update of an unknown device.
	reasonNoDevice = "update rejected due to the device is not existed"
	// reasonBodyWrong answers the deletion (null) of a property the
	// device never had.
	reasonBodyWrong = "the request body is wrong"
)

// changes collects what one update did, per property.
type changes struct {
	result map[string]*MsgTwin // twin/update/result (local updates)
	sync   map[string]*MsgTwin // edge_updated, with versions
	doc    map[string]*TwinDoc // twin/update/document
	dirty  bool                // the device record changed and must be saved
}

// theChanges are the changes of the update being applied: one at a time,
// and published before the call ends, so their maps serve every update.
var theChanges = changes{result: map[string]*MsgTwin{}, sync: map[string]*MsgTwin{}, doc: map[string]*TwinDoc{}}

// newChanges returns theChanges, emptied.
func newChanges() *changes {
	ch := &theChanges
	reuse(&ch.result)
	reuse(&ch.sync)
	reuse(&ch.doc)
	ch.dirty = false
	return ch
}

// reuse empties a map kept for reuse, or replaces it when it grew large
// (clearing a map costs as much as its largest size).
func reuse[V any](m *map[string]V) {
	if len(*m) > 64 {
		*m = map[string]V{}
	} else {
		clear(*m)
	}
}

// twinUpdate applies a twin/update from a mapper or app to device id and
// publishes its result, document and delta, and the edge_updated for the
// cloud. The whole update is applied or, on any refusal, none of it.
//
// As in edgecore, the body is checked first, before the device is looked
// up: a body that does not decode, lacks the twin key, or has a key or
// value outside edgecore's character set is answered 400 on
// topicBodyError with an empty event_id.
func twinUpdate(id, topic string, payload []byte, now int64) error {
	var upd TwinUpdate
	if err := upd.decodeJSON(payload); err != nil {
		sdk.LogDebug("twin update body refused", "topic", truncate(topic), "error", err.Error())
		return publishError(topicBodyError, "", now, codeBadRequest, reasonUnmarshal)
	}
	keys := sortKeys(upd.Twin)
	defer releaseKeys(keys)
	if reason := checkUpdate(&upd, keys); reason != "" {
		return publishError(topicBodyError, "", now, codeBadRequest, reason)
	}
	resultTopic := topic + suffixResult
	rec, ok, err := loadDevice(id)
	if err != nil {
		return storeFailed(resultTopic, upd.EventID, now, err)
	}
	if !ok {
		return publishError(resultTopic, upd.EventID, now, codeNotFound, reasonNoDevice)
	}
	ch := newChanges()
	for _, key := range keys {
		if err := applyLocal(rec, key, upd.Twin[key], ch, now); err != nil {
			return publishError(resultTopic, upd.EventID, now, err.code, err.reason)
		}
	}
	if ch.dirty {
		if err := saveDevice(rec); err != nil {
			return err
		}
	}
	base := BaseMessage{EventID: upd.EventID, Timestamp: now}
	return errors.Join(
		publish(resultTopic, (&TwinUpdate{BaseMessage: base, Twin: ch.result}).appendJSON(doc[:0])),
		publishChanges(rec, base, ch),
	)
}

// publishChanges publishes an applied update's document, then the delta
// whenever an expected value is not yet the actual one (after every
// update, even one that changed nothing, as edgecore does), and sends the
// edge_updated upstream. The delta and edge_updated carry a new event id,
// as edgecore's do; the document carries the update's.
func publishChanges(rec *record, base BaseMessage, ch *changes) error {
	var err error
	if len(ch.doc) > 0 {
		err = publish(name(deviceTopicPrefix, rec.ID, suffixTwinUpdate, suffixDocument), (&TwinDocument{BaseMessage: base, Twin: ch.doc}).appendJSON(doc[:0]))
	}
	if d, ok := delta(rec, base); ok {
		d.EventID = newEventID()
		err = errors.Join(err, publish(name(deviceTopicPrefix, rec.ID, suffixTwinUpdate, suffixDelta), d.appendJSON(doc[:0])))
	}
	if len(ch.sync) > 0 {
		sync := TwinUpdate{BaseMessage: BaseMessage{EventID: newEventID(), Timestamp: base.Timestamp}, Twin: ch.sync}
		err = errors.Join(err, upstream(name("device/", rec.ID, "/twin/edge_updated"), sync.appendJSON(doc[:0])))
	}
	return err
}

// applyLocal applies one property of a local update, already checked by
// checkUpdate: a value (expected, actual or both) sets it and bumps its
// edge version; a changed optional flag or metadata is an edit too; null
// deletes an optional property. Versions given in the update must not be
// older than the twin's (409 otherwise, an edgehost addition).
func applyLocal(rec *record, key string, msg *MsgTwin, ch *changes, now int64) *reqError {
	cur, exists := rec.Twin[key]
	live := exists && !isDeleted(cur)
	if msg == nil {
		if !exists {
			return badRequest(reasonBodyWrong)
		}
		deleteLocal(cur, key, ch)
		return nil
	}
	if live && (conflict(cur.ExpectedVersion, msg.ExpectedVersion) || conflict(cur.ActualVersion, msg.ActualVersion)) {
		return &reqError{code: codeConflict, reason: "version conflict on twin " + strconv.Quote(key) + ": the update is based on an older version"}
	}
	valueType := typeString
	if live {
		valueType = typeOf(cur)
	} else if msg.Metadata != nil && msg.Metadata.Type != "" {
		valueType = msg.Metadata.Type
	}
	if err := validateValues(valueType, msg); err != nil {
		return err
	}
	c := new(change)
	var last *MsgTwin
	if live {
		last = withoutVersions(&c.last, cur)
	}
	if !exists {
		cur = &MsgTwin{Optional: boolPtr(true)}
		rec.Twin[key] = cur
	}
	sync := &c.sync
	changed := false
	switch {
	case !live:
		if msg.Optional != nil {
			cur.Optional = boolPtr(*msg.Optional)
		}
		cur.Metadata = &TypeMetadata{Type: valueType}
		changed = true
	case msg.Optional != nil && !*msg.Optional && isOptional(cur):
		cur.Optional = boolPtr(false)
		changed = true
	}
	// edgecore counts metadata that differs from the twin's as an edit,
	// though it keeps the twin's type (so a mapper's "Updated" changes
	// nothing but the document).
	if live && msg.Metadata != nil && msg.Metadata.Type != typeOf(cur) {
		changed = true
	}
	// A new property's empty value is not kept: edgecore stores it, but
	// its twin (dttype.DeviceTwinToMsgTwin) has no such side.
	if v := valueOf(msg.Expected); v != nil && (live || *v != "") {
		cur.Expected, cur.ExpectedVersion = setValue(*v, cur.ExpectedVersion, now)
		sync.Expected, sync.ExpectedVersion = cur.Expected, cur.ExpectedVersion
		changed = true
	}
	if v := valueOf(msg.Actual); v != nil && (live || *v != "") {
		cur.Actual, cur.ActualVersion = setValue(*v, cur.ActualVersion, now)
		sync.Actual, sync.ActualVersion = cur.Actual, cur.ActualVersion
		changed = true
	}
	if !changed {
		return nil
	}
	ch.dirty = true
	sync.Optional, sync.Metadata = cur.Optional, cur.Metadata
	ch.sync[key] = sync
	ch.result[key] = withoutVersions(&c.result, sync)
	c.doc = TwinDoc{Last: last, Current: withoutVersions(&c.current, cur)}
	ch.doc[key] = &c.doc
	return nil
}

// deleteLocal applies a local delete (null) of property key, cur, as edgecore's
// dealTwinDelete does: an optional live property becomes a tombstone (type
// "deleted", kept for its versions; result null, document current null);
// a non-optional one is left alone, with no result entry; an
// already-deleted one is left alone too, but, as in edgecore, its document
// (last = the tombstone, current null) and an empty edge_updated entry
// still go out.
func deleteLocal(cur *MsgTwin, key string, ch *changes) {
	switch {
	case !isOptional(cur) && !isDeleted(cur):
	case isDeleted(cur):
		ch.doc[key] = &TwinDoc{Last: clone(cur, false)}
		ch.sync[key] = &MsgTwin{}
	default:
		last := clone(cur, false)
		bump(&cur.ExpectedVersion)
		bump(&cur.ActualVersion)
		cur.Expected, cur.Actual, cur.Metadata = nil, nil, &TypeMetadata{Type: typeDeleted}
		ch.result[key] = nil
		ch.sync[key] = clone(cur, true)
		ch.doc[key] = &TwinDoc{Last: last}
		ch.dirty = true
	}
}

// change is what a local edit makes of one property, in one allocation:
// the property before and after (without versions), and its parts of the
// update's edge_updated (with versions), result and document.
type change struct {
	last, current, sync, result MsgTwin
	doc                         TwinDoc
}

// withoutVersions copies t into *dst without its versions, as clone does,
// and returns dst.
func withoutVersions(dst, t *MsgTwin) *MsgTwin {
	*dst = *t
	dst.ExpectedVersion, dst.ActualVersion = nil, nil
	return dst
}

// setValue is a local edit of one side: the value, stamped now, and the
// next edge version.
func setValue(v string, ver *TwinVersion, now int64) (*TwinValue, *TwinVersion) {
	e := &sideEdit{text: v, stamp: ValueMetadata{Timestamp: now}}
	if ver != nil {
		e.version = *ver
	}
	e.version.Edge++
	e.value = TwinValue{Value: &e.text, Metadata: &e.stamp}
	return &e.value, &e.version
}

// sideEdit is what setValue makes, in one allocation.
type sideEdit struct {
	value   TwinValue
	text    string
	stamp   ValueMetadata
	version TwinVersion
}

// validateValues checks the update's values against the property's type.
func validateValues(valueType string, msg *MsgTwin) *reqError {
	for _, v := range []*string{valueOf(msg.Expected), valueOf(msg.Actual)} {
		if v == nil {
			continue
		}
		if reason := validateValue(valueType, *v); reason != "" {
			return badRequest(reason)
		}
	}
	return nil
}

// validateValue is KubeEdge's dtcommon.ValidateValue: "" when value fits
// valueType, else the reason.
func validateValue(valueType, value string) string {
	switch valueType {
	case "", typeString, typeDeleted:
		return ""
	case "int", "integer":
		if _, err := strconv.ParseInt(value, 10, 64); err != nil {
			return "the value is not int or integer"
		}
	case "float":
		if _, err := strconv.ParseFloat(value, 64); err != nil {
			return "the value is not float"
		}
	case "boolean":
		if value != "true" && value != "false" {
			return "the bool value must be true or false"
		}
	default:
		return "the value type is not allowed"
	}
	return ""
}

// conflict reports whether an update based on version req is behind the
// twin's version cur. An update without a version never conflicts.
func conflict(cur, req *TwinVersion) bool {
	return cur != nil && req != nil && (cur.Cloud > req.Cloud || cur.Edge > req.Edge)
}

// delta is KubeEdge's twin/update/delta (dttype.BuildDeviceTwinDelta):
// every live property with a non-empty expected value, and those expected
// values the actual one differs from. ok is false when there are none of
// the latter: edgecore publishes no delta then.
func delta(rec *record, base BaseMessage) (d TwinDelta, ok bool) {
	reuse(&deltaTwin)
	reuse(&deltaValues)
	d = TwinDelta{BaseMessage: base, Twin: deltaTwin, Delta: deltaValues}
	for key, t := range rec.Twin {
		exp := valueOf(t.Expected)
		if isDeleted(t) || exp == nil || *exp == "" {
			continue
		}
		d.Twin[key] = clone(t, false)
		if act := valueOf(t.Actual); act == nil || *act != *exp {
			d.Delta[key] = *exp
		}
	}
	return d, len(d.Delta) > 0
}

// deltaTwin and deltaValues hold the delta being published, reused.
var (
	deltaTwin   = map[string]*MsgTwin{}
	deltaValues = map[string]string{}
)

// twinGet publishes the device's live properties on twin/get/result.
func twinGet(id, topic string, payload []byte, now int64) error {
	resultTopic := topic + suffixResult
	var req BaseMessage
	if err := req.decodeJSON(payload); err != nil {
		return publishError(resultTopic, "", now, codeBadRequest, "Unmarshal twin info failed: "+err.Error())
	}
	rec, ok, err := loadDevice(id)
	if err != nil {
		return storeFailed(resultTopic, req.EventID, now, err)
	}
	if !ok {
		return publishError(resultTopic, req.EventID, now, codeNotFound, "Device "+id+" not found while getting twin")
	}
	twin := map[string]*MsgTwin{}
	for key, t := range rec.Twin {
		if !isDeleted(t) {
			twin[key] = clone(t, false)
		}
	}
	return publish(resultTopic, (&TwinUpdate{BaseMessage: BaseMessage{EventID: req.EventID, Timestamp: now}, Twin: twin}).appendJSON(doc[:0]))
}

// clone copies t, with its versions or without, as it is now. The copy
// shares t's parts (values, versions, metadata): the plugin never changes
// a twin's part in place, it replaces it (see setValue, bump, adopt).
func clone(t *MsgTwin, versions bool) *MsgTwin {
	if t == nil {
		return nil
	}
	c := *t
	if !versions {
		c.ExpectedVersion, c.ActualVersion = nil, nil
	}
	return &c
}

func cloneVersion(v *TwinVersion) *TwinVersion {
	if v == nil {
		return nil
	}
	c := *v
	return &c
}

// bump counts a local edit in *v, if the side has a version: a new
// version replaces it (see clone).
func bump(v **TwinVersion) {
	if *v != nil {
		*v = &TwinVersion{Cloud: (*v).Cloud, Edge: (*v).Edge + 1}
	}
}

func valueOf(v *TwinValue) *string {
	if v == nil {
		return nil
	}
	return v.Value
}

func isDeleted(t *MsgTwin) bool { return t.Metadata != nil && t.Metadata.Type == typeDeleted }

func isOptional(t *MsgTwin) bool { return t.Optional == nil || *t.Optional }

func typeOf(t *MsgTwin) string {
	if t.Metadata == nil || t.Metadata.Type == "" {
		return typeString
	}
	return t.Metadata.Type
}

func boolPtr(b bool) *bool { return &b }

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
