package sdk

import (
	"errors"
	"strconv"
	"time"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// Level is a log level of the log import.
type Level int32

// Log levels (SPEC §5).
const (
	LevelTrace Level = Level(abi.LogTrace)
	LevelDebug Level = Level(abi.LogDebug)
	LevelInfo  Level = Level(abi.LogInfo)
	LevelWarn  Level = Level(abi.LogWarn)
	LevelError Level = Level(abi.LogError)
)

// logBuf holds the line being logged, reused.
var logBuf []byte

// Log writes one line to the plugin's log: msg followed by the key/value
// pairs in kv as " key=value" (values with spaces or quotes are quoted; an
// odd final value is logged under the key "!BADKEY").
func Log(level Level, msg string, kv ...string) {
	b := append(logBuf[:0], msg...)
	for i := 0; i < len(kv); i += 2 {
		key, val := "!BADKEY", kv[i]
		if i+1 < len(kv) {
			key, val = kv[i], kv[i+1]
		}
		b = append(b, ' ')
		b = append(b, key...)
		b = append(b, '=')
		if needsQuote(val) {
			b = strconv.AppendQuote(b, val)
		} else {
			b = append(b, val...)
		}
	}
	logBuf = b
	hostLog(int32(level), unsafe.String(unsafe.SliceData(b), len(b)))
}

// needsQuote reports whether a log value must be quoted to stay one token.
func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == '"' || c == '=' || c >= 0x7f {
			return true
		}
	}
	return false
}

// LogDebug logs at debug level; see Log.
func LogDebug(msg string, kv ...string) { Log(LevelDebug, msg, kv...) }

// LogInfo logs at info level; see Log.
func LogInfo(msg string, kv ...string) { Log(LevelInfo, msg, kv...) }

// LogWarn logs at warn level; see Log.
func LogWarn(msg string, kv ...string) { Log(LevelWarn, msg, kv...) }

// LogError logs at error level; see Log.
func LogError(msg string, kv ...string) { Log(LevelError, msg, kv...) }

// hostError is a failure code returned by an import. It unwraps to the
// abi.Code, so errors.Is(err, abi.NotFound) works.
type hostError struct {
	op, arg string
	code    abi.Code
}

func (e *hostError) Error() string {
	s := "edgehost " + e.op
	if e.arg != "" {
		s += " " + strconv.Quote(e.arg)
	}
	return s + ": " + e.code.String()
}

func (e *hostError) Unwrap() error { return e.code }

// wrapError adds context to an error.
type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg + ": " + e.err.Error() }

func (e *wrapError) Unwrap() error { return e.err }

// wrap returns err with msg in front.
func wrap(msg string, err error) error { return &wrapError{msg: msg, err: err} }

// check turns an import's result into an error when it is negative.
func check(op, arg string, r int32) error {
	if r >= 0 {
		return nil
	}
	return &hostError{op: op, arg: arg, code: abi.Code(-r)}
}

// Send puts m on the host's message bus. The host sets the source to the
// plugin's name, and the ID and timestamp when they are empty/zero.
func Send(m *Message) error {
	env, err := encode(m)
	if err != nil {
		return wrap("edgehost send", err)
	}
	return check("send", "", hostSend(env))
}

// Request sends m with Sync set and waits up to timeout for its reply (zero
// or less: the host's default; a positive timeout is rounded up to a whole
// millisecond). The reply is the caller's: it shares no memory with the SDK.
// A timeout is abi.Timeout; a missing target abi.Unavailable.
func Request(m *Message, timeout time.Duration) (*Message, error) {
	r := *m
	r.Header.Sync = true
	env, err := encode(&r)
	if err != nil {
		return nil, wrap("edgehost request", err)
	}
	ms := millis(timeout)
	b, err := fetch("request", "",
		func(o []byte) int32 { return hostRequest(env, ms, o) },
		hostRequestReply)
	if err != nil {
		return nil, err
	}
	reply := new(Message)
	if err := abi.Decode(b, (*abi.Message)(reply)); err != nil {
		return nil, wrap("edgehost request: reply", err)
	}
	return reply, nil
}

// KVGet returns a copy of the value stored under key, and whether it
// exists. Within one export call it sees that call's own writes.
func KVGet(key string) ([]byte, bool, error) {
	get := func(o []byte) int32 { return hostKVGet(key, o) }
	b, err := fetch("kv_get", key, get, get)
	if errors.Is(err, abi.NotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return append(make([]byte, 0, len(b)), b...), true, nil
}

// KVPut stores val under key (1–1024 bytes). The writes of one export call
// are committed together when it returns successfully (SPEC §5).
func KVPut(key string, val []byte) error {
	return check("kv_put", key, hostKVPut(key, val))
}

// KVDelete deletes key; deleting a missing key is not an error.
func KVDelete(key string) error {
	return check("kv_delete", key, hostKVDelete(key))
}

// KVList returns the keys that start with prefix, in byte order.
func KVList(prefix string) ([]string, error) {
	list := func(o []byte) int32 { return hostKVList(prefix, o) }
	b, err := fetch("kv_list", prefix, list, list)
	if err != nil {
		return nil, err
	}
	var keys []string
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, &hostError{op: "kv_list", arg: prefix, code: abi.Malformed}
		}
		n := int(b[0]) | int(b[1])<<8
		if len(b) < 2+n {
			return nil, &hostError{op: "kv_list", arg: prefix, code: abi.Malformed}
		}
		keys = append(keys, string(b[2:2+n]))
		b = b[2+n:]
	}
	return keys, nil
}

// Now returns the host's wall-clock time.
func Now() time.Time {
	return time.Unix(0, hostNow())
}

// Config returns a copy of the plugin's config bytes, the same bytes
// OnInit received.
func Config() ([]byte, error) {
	b, err := fetch("config", "", hostConfig, hostConfig)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// maxFetches bounds the calls fetch makes for one datum, in case the data
// keeps growing between calls.
const maxFetches = 4

// fetch runs an import that returns data (SPEC §3) with the reused in
// buffer: when the data does not fit, it grows the buffer and calls again,
// the second time through again (request_reply for request). The result
// aliases in and is valid until the next import call.
func fetch(op, arg string, first, again func(out []byte) int32) ([]byte, error) {
	if in == nil {
		in = make([]byte, minBuffer)
	}
	call := first
	for range maxFetches {
		n := call(in)
		if n < 0 {
			return nil, &hostError{op: op, arg: arg, code: abi.Code(-n)}
		}
		if int(n) <= len(in) {
			return in[:n], nil
		}
		in = make([]byte, max(int(n), 2*len(in)))
		call = again
	}
	return nil, &hostError{op: op, arg: arg, code: abi.TooLarge}
}
