package main

import (
	"errors"
	"strconv"
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

// reasonNoDevice is KubeEdge's reason for an update of an unknown device.
const reasonNoDevice = "update rejected due to the device is not existed"

// changes collects what one update did, per property.
type changes struct {
	result map[string]*MsgTwin // twin/update/result (local updates)
	sync   map[string]*MsgTwin // edge_updated, with versions
	doc    map[string]*TwinDoc // twin/update/document
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
func twinUpdate(id, topic string, payload []byte, now int64) error {
	resultTopic := topic + suffixResult
	var upd TwinUpdate
	if err := upd.decodeJSON(payload); err != nil {
		return publishError(resultTopic, "", now, codeBadRequest, "Unmarshal update request body failed, Please check the request")
	}
	rec, ok, err := loadDevice(id)
	if err != nil {
		return storeFailed(resultTopic, upd.EventID, now, err)
	}
	if !ok {
		return publishError(resultTopic, upd.EventID, now, codeNotFound, reasonNoDevice)
	}
	if upd.Twin == nil {
		return publishError(resultTopic, upd.EventID, now, codeBadRequest, "Update twin error, the update request body not have key:twin")
	}
	ch := newChanges()
	keys := sortKeys(upd.Twin)
	defer releaseKeys(keys)
	for _, key := range keys {
		if err := applyLocal(rec, key, upd.Twin[key], ch, now); err != nil {
			return publishError(resultTopic, upd.EventID, now, err.code, err.reason)
		}
	}
	if len(ch.doc) > 0 {
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

// publishChanges publishes an applied update's document and, when the
// device's actual values now lag its expected ones, the delta; and sends
// its edge_updated upstream.
func publishChanges(rec *record, base BaseMessage, ch *changes) error {
	var err error
	if len(ch.doc) > 0 {
		err = publish(name(deviceTopicPrefix, rec.ID, suffixTwinUpdate, suffixDocument), (&TwinDocument{BaseMessage: base, Twin: ch.doc}).appendJSON(doc[:0]))
		if d, ok := delta(rec, base); ok {
			err = errors.Join(err, publish(name(deviceTopicPrefix, rec.ID, suffixTwinUpdate, suffixDelta), d.appendJSON(doc[:0])))
		}
	}
	if len(ch.sync) > 0 {
		err = errors.Join(err, upstream(name("device/", rec.ID, "/twin/edge_updated"), (&TwinUpdate{BaseMessage: base, Twin: ch.sync}).appendJSON(doc[:0])))
	}
	return err
}

// applyLocal applies one property of a local update: a value (expected,
// actual or both) sets it and bumps its edge version; null deletes an
// optional property. Versions given in the update must not be older than
// the twin's (409 otherwise).
func applyLocal(rec *record, key string, msg *MsgTwin, ch *changes, now int64) *reqError {
	if err := checkProperty(key, msg); err != nil {
		return err
	}
	cur, exists := rec.Twin[key]
	live := exists && !isDeleted(cur)
	if msg == nil {
		if !live {
			return badRequest("The request body is wrong: twin " + strconv.Quote(key) + " does not exist")
		}
		if !isOptional(cur) {
			return badRequest("twin " + strconv.Quote(key) + " is not optional and cannot be deleted")
		}
		last := clone(cur, false)
		bump(&cur.ExpectedVersion)
		bump(&cur.ActualVersion)
		cur.Expected, cur.Actual, cur.Metadata = nil, nil, &TypeMetadata{Type: typeDeleted}
		ch.result[key] = nil
		ch.sync[key] = clone(cur, true)
		ch.doc[key] = &TwinDoc{Last: last}
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
	if !live {
		if msg.Optional != nil {
			cur.Optional = boolPtr(*msg.Optional)
		}
		cur.Metadata = &TypeMetadata{Type: valueType}
		changed = true
	} else if msg.Optional != nil && !*msg.Optional && isOptional(cur) {
		cur.Optional = boolPtr(false)
		changed = true
	}
	if v := valueOf(msg.Expected); v != nil {
		cur.Expected, cur.ExpectedVersion = setValue(*v, cur.ExpectedVersion, now)
		sync.Expected, sync.ExpectedVersion = cur.Expected, cur.ExpectedVersion
		changed = true
	}
	if v := valueOf(msg.Actual); v != nil {
		cur.Actual, cur.ActualVersion = setValue(*v, cur.ActualVersion, now)
		sync.Actual, sync.ActualVersion = cur.Actual, cur.ActualVersion
		changed = true
	}
	if !changed {
		return nil
	}
	sync.Optional, sync.Metadata = cur.Optional, cur.Metadata
	ch.sync[key] = sync
	ch.result[key] = withoutVersions(&c.result, sync)
	c.doc = TwinDoc{Last: last, Current: withoutVersions(&c.current, cur)}
	ch.doc[key] = &c.doc
	return nil
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

// checkProperty enforces KubeEdge's limits: keys up to 128 bytes, values up
// to 512.
func checkProperty(key string, msg *MsgTwin) *reqError {
	if key == "" || len(key) > maxKeyLen {
		return badRequest("the twin key " + strconv.Quote(truncate(key)) + " must be 1 to 128 bytes long")
	}
	if msg == nil {
		return nil
	}
	for _, v := range []*string{valueOf(msg.Expected), valueOf(msg.Actual)} {
		if v != nil && len(*v) > maxValueLen {
			return badRequest("the value of twin " + strconv.Quote(key) + " is " + strconv.Itoa(len(*v)) + " bytes, over the limit of 512")
		}
	}
	return nil
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

// delta is KubeEdge's twin/update/delta: every live property with an
// expected value, and the expected values where the actual one differs.
func delta(rec *record, base BaseMessage) (TwinDelta, bool) {
	reuse(&deltaTwin)
	reuse(&deltaValues)
	d := TwinDelta{BaseMessage: base, Twin: deltaTwin, Delta: deltaValues}
	for key, t := range rec.Twin {
		if isDeleted(t) || t.Expected == nil {
			continue
		}
		d.Twin[key] = clone(t, false)
		exp, act := valueOf(t.Expected), valueOf(t.Actual)
		if exp != nil && *exp != "" && (act == nil || *act != *exp) {
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
