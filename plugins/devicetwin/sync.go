package main

import "github.com/edgehost/edgehost/sdk"

// cloudUpdate applies the cloud's twin/cloud_updated to device id under
// KubeEdge's version rules: each side of a property is taken only with a
// version, and only if that version is not older than the twin's in either
// counter. A side refused that way is answered with the edge's current
// state in an edge_updated, so the cloud catches up; what was taken is
// published as a document and, if the device now lags, a delta.
func cloudUpdate(id string, payload []byte, now int64) error {
	var upd TwinUpdate
	if err := upd.decodeJSON(payload); err != nil {
		sdk.LogWarn("cloud twin update is not JSON; ignored", "device", id, "error", err.Error())
		return nil
	}
	rec, ok, err := loadDevice(id)
	if err != nil {
		return err
	}
	if !ok {
		sdk.LogWarn("cloud twin update for an unknown device; ignored", "device", id, "event_id", upd.EventID)
		return nil
	}
	ch := newChanges()
	keys := sortKeys(upd.Twin)
	defer releaseKeys(keys)
	for _, key := range keys {
		if msg := upd.Twin[key]; msg != nil && checkProperty(key, msg) == "" {
			applyCloud(rec, key, msg, ch, now)
		}
	}
	if len(ch.doc) > 0 {
		if err := saveDevice(rec); err != nil {
			return err
		}
	}
	base := BaseMessage{EventID: upd.EventID, Timestamp: now}
	return publishChanges(rec, base, ch)
}

// applyCloud applies one property of a cloud update. A refused side puts
// the property's edge state into ch.sync; an accepted change goes into
// ch.doc.
func applyCloud(rec *record, key string, msg *MsgTwin, ch *changes, now int64) {
	cur, exists := rec.Twin[key]
	live := exists && !isDeleted(cur)
	refuse := func() {
		if exists {
			ch.sync[key] = clone(cur, true)
		}
	}
	if msg.Metadata != nil && msg.Metadata.Type == typeDeleted {
		if !live {
			return
		}
		if !newer(cur.ExpectedVersion, msg.ExpectedVersion, true) || !newer(cur.ActualVersion, msg.ActualVersion, true) {
			refuse()
			return
		}
		last := clone(cur, false)
		adopt(&cur.ExpectedVersion, msg.ExpectedVersion)
		adopt(&cur.ActualVersion, msg.ActualVersion)
		cur.Expected, cur.Actual, cur.Metadata = nil, nil, &TypeMetadata{Type: typeDeleted}
		ch.doc[key] = &TwinDoc{Last: last}
		return
	}
	valueType := typeString
	switch {
	case live:
		valueType = typeOf(cur)
	case msg.Metadata != nil && msg.Metadata.Type != "":
		valueType = msg.Metadata.Type
	}
	exp, act := valueOf(msg.Expected), valueOf(msg.Actual)
	if validateValues(valueType, msg) != nil {
		sdk.LogWarn("cloud twin value does not fit its type; ignored", "device", rec.ID, "twin", key, "type", valueType)
		return
	}
	var curExpV, curActV *TwinVersion
	if exists {
		curExpV, curActV = cur.ExpectedVersion, cur.ActualVersion
	}
	if exp != nil && !newer(curExpV, msg.ExpectedVersion, false) || act != nil && !newer(curActV, msg.ActualVersion, false) {
		sdk.LogInfo("cloud twin update refused: the edge has newer edits", "device", rec.ID, "twin", key)
		refuse()
		return
	}
	if exp == nil && act == nil {
		return
	}
	var last *MsgTwin
	if live {
		last = clone(cur, false)
	} else {
		if !exists {
			cur = &MsgTwin{Optional: boolPtr(true)}
			rec.Twin[key] = cur
		}
		if msg.Optional != nil {
			cur.Optional = boolPtr(*msg.Optional)
		}
		cur.Metadata = &TypeMetadata{Type: valueType}
	}
	if exp != nil {
		cur.Expected = &TwinValue{Value: exp, Metadata: &ValueMetadata{Timestamp: now}}
		adopt(&cur.ExpectedVersion, msg.ExpectedVersion)
	}
	if act != nil {
		cur.Actual = &TwinValue{Value: act, Metadata: &ValueMetadata{Timestamp: now}}
		adopt(&cur.ActualVersion, msg.ActualVersion)
	}
	ch.doc[key] = &TwinDoc{Last: last, Current: clone(cur, false)}
}

// newer is KubeEdge's version rule for a cloud edit: a request version is
// required (except for a delete, where none means "delete whatever you
// have"), and neither of its counters may be behind the twin's.
func newer(cur, req *TwinVersion, deleting bool) bool {
	if req == nil {
		return deleting
	}
	return cur == nil || cur.Cloud <= req.Cloud && cur.Edge <= req.Edge
}

// adopt takes the cloud's version for a side, when it gave one.
func adopt(cur **TwinVersion, req *TwinVersion) {
	if req != nil {
		*cur = cloneVersion(req)
	}
}
