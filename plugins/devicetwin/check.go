package main

import (
	"strconv"
	"strings"

	"github.com/edgehost/edgehost/sdk"
)

// edgecore's answers to a twin/update body it refuses before it looks the
// device up (dttype.UnmarshalDeviceTwinUpdate). They go to
// topicBodyError with an empty event_id.
const (
	reasonUnmarshal = "Unmarshal update request body failed, please check the request"
	reasonNoTwinKey = "Update twin error, key:twin does not exist"
	reasonBadKey    = "The key of twin must only include upper or lowercase letters, number, english, and special letter - _ . , : / @ # and the length of key should be less than 128 bytes"
	reasonBadValue  = "The value of twin must only include upper or lowercase letters, number, english, and special letter - _ . , : / @ # and the length of value should be less than 512 bytes"
)

// topicBodyError is where edgecore publishes the result of an update whose
// body it refuses: the device topic with an empty device id.
const topicBodyError = deviceTopicPrefix + suffixTwinUpdate + suffixResult

// twinChars are the bytes edgecore allows in twin keys and values
// (dtcommon.ValidateTwinKey/ValidateTwinValue, ^[a-zA-Z0-9-_.,:/@#]{1,n}$).
var twinChars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.,:/@#", byte(c)) >= 0
	}
	return t
}()

// validTwinText reports whether s is 1 to max bytes of twinChars.
func validTwinText(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !twinChars[s[i]] {
			return false
		}
	}
	return true
}

// checkUpdate is edgecore's check of a twin/update body, in its order: a
// twin key must exist, every key must be valid, and so must every
// non-empty expected and actual value. It returns edgecore's reason, or ""
// for a body it takes; keys are the body's keys, sorted.
func checkUpdate(upd *TwinUpdate, keys []string) string {
	if upd.Twin == nil {
		return reasonNoTwinKey
	}
	for _, key := range keys {
		if reason := checkProperty(key, upd.Twin[key]); reason != "" {
			sdk.LogDebug("twin update refused", "twin", truncate(key), "reason", reason)
			return reason
		}
	}
	return ""
}

// checkProperty checks one property's key and values as checkUpdate does.
func checkProperty(key string, msg *MsgTwin) string {
	if !validTwinText(key, maxKeyLen) {
		return reasonBadKey
	}
	if msg == nil {
		return ""
	}
	for _, v := range [...]*string{valueOf(msg.Expected), valueOf(msg.Actual)} {
		if v != nil && *v != "" && !validTwinText(*v, maxValueLen) {
			return reasonBadValue
		}
	}
	return ""
}

// validDeviceID reports whether id is KubeEdge v1.23's {namespace}/{name}:
// two non-empty levels.
func validDeviceID(id string) bool {
	ns, name, ok := strings.Cut(id, "/")
	return ok && ns != "" && name != "" && !strings.Contains(name, "/")
}

// badDeviceTopic answers a request whose topic does not carry a
// {namespace}/{name} device id, such as the single-level ids of KubeEdge
// before v1.13 ($hw/events/device/thermo-0/twin/update): 400 on the
// request topic's result topic, with the request's event_id when the body
// has one. edgecore does not subscribe such topics and never answers.
func badDeviceTopic(id, topic string, payload []byte, now int64) error {
	var req BaseMessage
	if req.decodeJSON(payload) != nil {
		req.EventID = ""
	}
	reason := "the device id " + strconv.Quote(truncate(id)) + " in the topic is not {namespace}/{name}: KubeEdge v1.23 topics are $hw/events/device/{namespace}/{name}/..."
	warnLimited("device-id", "request on a topic without a {namespace}/{name} device id; answered 400", "topic", truncate(topic))
	return publishError(topic+suffixResult, req.EventID, now, codeBadRequest, reason)
}

// warnings counts, per kind, the warnings this instance logged.
var warnings = map[string]int{}

// warnLimited logs the first warning of each kind at WARN and the ones
// after it at debug, with their count, so a client that repeats a mistake
// does not flood the log.
func warnLimited(kind, msg string, kv ...string) {
	n := warnings[kind] + 1
	warnings[kind] = n
	if n == 1 {
		sdk.LogWarn(msg, kv...)
		return
	}
	sdk.LogDebug(msg, append(kv, "times", strconv.Itoa(n))...)
}
