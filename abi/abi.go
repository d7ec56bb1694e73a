package abi

import "strconv"

// Version of the ABI this package describes. The major version is in the
// import module name; minor features are detected by the imports a plugin
// uses (SPEC.md, "Versioning").
const (
	Major = 1
	Minor = 3
)

// ImportModule is the wasm import module under which the host provides its
// functions to plugins of this major version.
const ImportModule = "edgehost_v1"

// Exports a plugin provides (SPEC.md, "Exports").
const (
	// ExportABIVersion returns the plugin's ABI major version: () -> i32.
	ExportABIVersion = "edgehost_abi_version"
	// ExportBuffer returns a guest buffer of at least n bytes: (n i32) -> i32.
	ExportBuffer = "edgehost_buffer"
	// ExportInit initialises the plugin with the config in the exchange
	// buffer: (config_len i32) -> i32.
	ExportInit = "edgehost_init"
	// ExportHandle handles the envelope in the exchange buffer and returns
	// the reply's location: (msg_len i32) -> i64.
	ExportHandle = "edgehost_handle"
	// ExportTick is the optional periodic callback: () -> i32.
	ExportTick = "edgehost_tick"
	// ExportStop is the optional callback before an instance is discarded: () -> ().
	ExportStop = "edgehost_stop"
)

// Imports the host provides in ImportModule (SPEC.md, "Imports").
const (
	ImportLog          = "log"
	ImportSend         = "send"
	ImportRequest      = "request"
	ImportRequestReply = "request_reply"
	ImportKVGet        = "kv_get"
	ImportKVPut        = "kv_put"
	ImportKVDelete     = "kv_delete"
	ImportKVList       = "kv_list"
	ImportNow          = "now"
	ImportConfig       = "config"

	// ABI 1.1: MQTT through the eventbus.
	ImportMQTTPublish     = "mqtt_publish"
	ImportMQTTSubscribe   = "mqtt_subscribe"
	ImportMQTTUnsubscribe = "mqtt_unsubscribe"

	// ABI 1.2: device I/O (SPEC.md section 5.2).
	ImportTCPConnect  = "tcp_connect"
	ImportTCPRead     = "tcp_read"
	ImportTCPWrite    = "tcp_write"
	ImportTCPClose    = "tcp_close"
	ImportUDPOpen     = "udp_open"
	ImportUDPSend     = "udp_send"
	ImportUDPRecv     = "udp_recv"
	ImportUDPClose    = "udp_close"
	ImportSerialOpen  = "serial_open"
	ImportSerialRead  = "serial_read"
	ImportSerialWrite = "serial_write"
	ImportSerialClose = "serial_close"

	// ABI 1.3: outbound HTTP (SPEC.md section 5.3).
	ImportHTTPRequest = "http_request"
	ImportHTTPReply   = "http_reply"
)

// MaxHandles is the most device I/O handles one instance holds open
// (SPEC.md section 5.2).
const MaxHandles = 16

// MaxDatagram is the largest datagram udp_send sends.
const MaxDatagram = 65507

// Serial parities of serial_open.
const (
	ParityNone int32 = 0
	ParityOdd  int32 = 1
	ParityEven int32 = 2
)

// Log levels for ImportLog.
const (
	LogTrace int32 = 0
	LogDebug int32 = 1
	LogInfo  int32 = 2
	LogWarn  int32 = 3
	LogError int32 = 4
)

// Code is an ABI status code. Imports return a failure as the negated code;
// the numbers are fixed forever and new ones are only ever appended.
type Code int32

// Status codes (SPEC.md, "Error codes").
const (
	OK              Code = 0
	InvalidArgument Code = 1
	Malformed       Code = 2
	TooLarge        Code = 3
	NotFound        Code = 4
	Denied          Code = 5
	Timeout         Code = 6
	Unavailable     Code = 7
	Internal        Code = 8
	Busy            Code = 9
	NoHandler       Code = 10
	Loop            Code = 11
	// Closed: a device stream is over (end of stream, reset, hang-up).
	Closed Code = 12
	// BadHandle: not an open device handle of this transport and instance.
	BadHandle Code = 13
	// Unreachable: a device cannot be reached (refused, no route, name not
	// resolved, device absent).
	Unreachable Code = 14
)

var codeNames = [...]string{
	OK:              "ok",
	InvalidArgument: "invalid argument",
	Malformed:       "malformed",
	TooLarge:        "too large",
	NotFound:        "not found",
	Denied:          "denied",
	Timeout:         "timeout",
	Unavailable:     "unavailable",
	Internal:        "internal",
	Busy:            "busy",
	NoHandler:       "no handler",
	Loop:            "loop",
	Closed:          "closed",
	BadHandle:       "bad handle",
	Unreachable:     "unreachable",
}

// String returns the code's name as SPEC.md spells it.
func (c Code) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "code " + strconv.Itoa(int(c))
}

// Error makes a Code usable as an error.
func (c Code) Error() string { return "edgehost abi: " + c.String() }

// PackReply packs a reply's location as edgehost_handle returns it:
// length in the high 32 bits, pointer in the low 32 bits.
func PackReply(ptr, length uint32) int64 {
	return int64(uint64(length)<<32 | uint64(ptr))
}

// UnpackReply splits edgehost_handle's result. A negative result is a failure
// and returns its Code.
func UnpackReply(r int64) (ptr, length uint32, code Code) {
	if r < 0 {
		return 0, 0, Code(-r)
	}
	return uint32(r), uint32(uint64(r) >> 32), OK
}

// codedError is an error with its own message that also matches an ABI
// code under errors.Is.
type codedError struct {
	msg  string
	code Code
}

func (e *codedError) Error() string { return e.msg }

func (e *codedError) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.code
}

// NewError returns an error with message msg for which errors.Is(err, code)
// holds, so host modules can give plugins the right code while keeping
// their own sentinels and messages.
func NewError(msg string, code Code) error { return &codedError{msg: msg, code: code} }
