package main

// The encoders of the twin documents (json.go has the rules): a method
// appendJSON that appends the document as json.Marshal writes it.

import "github.com/edgehost/edgehost/sdk/jsonlite"

// field appends the key of a member (key is its quoted name and colon),
// after a comma unless it is the first member of the object whose
// opening brace is at b[open].
func field(b []byte, open int, key string) []byte {
	if len(b) > open+1 {
		b = append(b, ',')
	}
	return append(b, key...)
}

// appendBase opens a document with its BaseMessage fields.
func appendBase(b []byte, m *BaseMessage) []byte {
	b = append(b, `{"event_id":`...)
	b = jsonlite.AppendString(b, m.EventID)
	b = append(b, `,"timestamp":`...)
	return appendInt(b, m.Timestamp)
}

// appendInt appends n in decimal. The documents of one call carry the
// same timestamp over and over, so the last number's digits are kept.
func appendInt(b []byte, n int64) []byte {
	if 0 <= n && n < 10 {
		return append(b, byte('0'+n))
	}
	if n == lastInt.n && lastInt.len > 0 {
		return append(b, lastInt.digits[len(lastInt.digits)-lastInt.len:]...)
	}
	u := uint64(n)
	if n < 0 {
		u = -u
	}
	var buf [20]byte
	i := len(buf)
	for u >= 100 {
		q := u / 100
		r := u - q*100
		i -= 2
		buf[i], buf[i+1] = twoDigits[2*r], twoDigits[2*r+1]
		u = q
	}
	if u >= 10 {
		i -= 2
		buf[i], buf[i+1] = twoDigits[2*u], twoDigits[2*u+1]
	} else {
		i--
		buf[i] = byte('0' + u)
	}
	if n < 0 {
		i--
		buf[i] = '-'
	}
	lastInt.n, lastInt.digits, lastInt.len = n, buf, len(buf)-i
	return append(b, buf[i:]...)
}

// lastInt is the number appendInt appended last, and its digits (the last
// len bytes of digits).
var lastInt struct {
	n      int64
	digits [20]byte
	len    int
}

const twoDigits = "00010203040506070809" + "10111213141516171819" + "20212223242526272829" + "30313233343536373839" +
	"40414243444546474849" + "50515253545556575859" + "60616263646566676869" + "70717273747576777879" +
	"80818283848586878889" + "90919293949596979899"

func (v *TwinUpdate) appendJSON(b []byte) []byte {
	b = appendBase(b, &v.BaseMessage)
	b = append(b, `,"twin":`...)
	return append(appendTwins(b, v.Twin), '}')
}

func (v *TwinDelta) appendJSON(b []byte) []byte {
	b = appendBase(b, &v.BaseMessage)
	b = append(b, `,"twin":`...)
	b = appendTwins(b, v.Twin)
	b = append(b, `,"delta":`...)
	if v.Delta == nil {
		return append(b, "null}"...)
	}
	b = append(b, '{')
	keys := sortKeys(v.Delta)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonlite.AppendString(appendKey(b, k), v.Delta[k])
	}
	releaseKeys(keys)
	return append(b, "}}"...)
}

func (v *TwinDocument) appendJSON(b []byte) []byte {
	b = appendBase(b, &v.BaseMessage)
	b = append(b, `,"twin":`...)
	if v.Twin == nil {
		return append(b, "null}"...)
	}
	b = append(b, '{')
	keys := sortKeys(v.Twin)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendKey(b, k)
		doc := v.Twin[k]
		if doc == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, `{"last":`...)
		b = doc.Last.appendJSON(b)
		b = append(b, `,"current":`...)
		b = append(doc.Current.appendJSON(b), '}')
	}
	releaseKeys(keys)
	return append(b, "}}"...)
}

func (v *ErrorResult) appendJSON(b []byte) []byte {
	b = appendBase(b, &v.BaseMessage)
	b = append(b, `,"code":`...)
	b = appendInt(b, int64(v.Code))
	b = append(b, `,"reason":`...)
	return append(jsonlite.AppendString(b, v.Reason), '}')
}

func (v *MembershipUpdate) appendJSON(b []byte) []byte {
	b = appendBase(b, &v.BaseMessage)
	b = append(b, `,"added_devices":`...)
	b = appendDevices(b, v.AddDevices)
	b = append(b, `,"removed_devices":`...)
	return append(appendDevices(b, v.RemoveDevices), '}')
}

func (v *MembershipDetail) appendJSON(b []byte) []byte {
	b = appendBase(b, &v.BaseMessage)
	b = append(b, `,"devices":`...)
	return append(appendDevices(b, v.Devices), '}')
}

func (v *StateResult) appendJSON(b []byte) []byte {
	b = append(appendBase(b, &v.BaseMessage), `,"device":`...)
	open := len(b)
	b = append(b, '{')
	for _, f := range [...]struct{ key, val string }{
		{`"name":`, v.Device.Name}, {`"state":`, v.Device.State}, {`"lastOnlineTime":`, v.Device.LastOnline},
	} {
		if f.val != "" {
			b = jsonlite.AppendString(field(b, open, f.key), f.val)
		}
	}
	return append(b, "}}"...)
}

// appendJSON appends the device as stored: the device and its origin.
func (v *record) appendJSON(b []byte) []byte {
	open := len(b)
	b = v.Device.appendFields(append(b, '{'))
	if v.Origin != "" {
		b = jsonlite.AppendString(field(b, open, `"origin":`), v.Origin)
	}
	return append(b, '}')
}

func (v *Device) appendJSON(b []byte) []byte {
	return append(v.appendFields(append(b, '{')), '}')
}

// appendFields appends the device's members, after its opening brace.
func (v *Device) appendFields(b []byte) []byte {
	b = append(b, `"id":`...)
	b = jsonlite.AppendString(b, v.ID)
	for _, f := range [...]struct{ key, val string }{
		{`,"name":`, v.Name}, {`,"description":`, v.Description}, {`,"state":`, v.State}, {`,"last_online":`, v.LastOnline},
	} {
		if f.val != "" {
			b = jsonlite.AppendString(append(b, f.key...), f.val)
		}
	}
	if len(v.Attributes) > 0 {
		b = append(b, `,"attributes":{`...)
		keys := sortKeys(v.Attributes)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = v.Attributes[k].appendJSON(appendKey(b, k))
		}
		releaseKeys(keys)
		b = append(b, '}')
	}
	if len(v.Twin) > 0 {
		b = append(b, `,"twin":`...)
		b = appendTwins(b, v.Twin)
	}
	return b
}

func appendDevices(b []byte, devices []Device) []byte {
	if devices == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range devices {
		if i > 0 {
			b = append(b, ',')
		}
		b = devices[i].appendJSON(b)
	}
	return append(b, ']')
}

// appendTwins appends a twin's properties.
func appendTwins(b []byte, twins map[string]*MsgTwin) []byte {
	if twins == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	keys := sortKeys(twins)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = twins[k].appendJSON(appendKey(b, k))
	}
	releaseKeys(keys)
	return append(b, '}')
}

// appendJSON appends the property, or null for none.
func (v *MsgTwin) appendJSON(b []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	open := len(b)
	b = append(b, '{')
	if v.Expected != nil {
		b = v.Expected.appendJSON(field(b, open, `"expected":`))
	}
	if v.Actual != nil {
		b = v.Actual.appendJSON(field(b, open, `"actual":`))
	}
	if v.Optional != nil {
		b = jsonlite.AppendBool(field(b, open, `"optional":`), *v.Optional)
	}
	if v.Metadata != nil {
		b = v.Metadata.appendJSON(field(b, open, `"metadata":`))
	}
	if v.ExpectedVersion != nil {
		b = v.ExpectedVersion.appendJSON(field(b, open, `"expected_version":`))
	}
	if v.ActualVersion != nil {
		b = v.ActualVersion.appendJSON(field(b, open, `"actual_version":`))
	}
	return append(b, '}')
}

func (v *TwinValue) appendJSON(b []byte) []byte {
	open := len(b)
	b = append(b, '{')
	if v.Value != nil {
		b = jsonlite.AppendString(field(b, open, `"value":`), *v.Value)
	}
	if v.Metadata != nil {
		b = field(b, open, `"metadata":`)
		if v.Metadata.Timestamp == 0 {
			b = append(b, "{}"...)
		} else {
			b = append(appendInt(append(b, `{"timestamp":`...), v.Metadata.Timestamp), '}')
		}
	}
	return append(b, '}')
}

func (v *TypeMetadata) appendJSON(b []byte) []byte {
	if v.Type == "" {
		return append(b, "{}"...)
	}
	return append(jsonlite.AppendString(append(b, `{"type":`...), v.Type), '}')
}

func (v *TwinVersion) appendJSON(b []byte) []byte {
	b = appendInt(append(b, `{"cloud":`...), v.Cloud)
	return append(appendInt(append(b, `,"edge":`...), v.Edge), '}')
}

// appendJSON appends the attribute, or null for none.
func (v *MsgAttr) appendJSON(b []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = jsonlite.AppendString(append(b, `{"value":`...), v.Value)
	if v.Optional != nil {
		b = jsonlite.AppendBool(append(b, `,"optional":`...), *v.Optional)
	}
	if v.Metadata != nil {
		b = v.Metadata.appendJSON(append(b, `,"metadata":`...))
	}
	return append(b, '}')
}
