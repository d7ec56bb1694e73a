// Package hostcall connects package sdk to a host in native (non-wasip1)
// builds, where there is no wasm runtime: package sdktest installs a Host
// here, and package sdk registers its export functions here so sdktest can
// call them as a wasm host would.
//
// Both sides speak the raw ABI of abi/SPEC.md with slices in place of
// pointers: results are lengths or negated codes, and an import that returns
// data writes nothing when the data is longer than out.
package hostcall

import "github.com/edgehost/edgehost/abi"

// Host is the host side of the edgehost_v1 imports.
type Host interface {
	Log(level int32, msg string)
	Send(env []byte) int32
	Request(env []byte, timeoutMS int32, out []byte) int32
	RequestReply(out []byte) int32
	KVGet(key string, out []byte) int32
	KVPut(key string, val []byte) int32
	KVDelete(key string) int32
	KVList(prefix string, out []byte) int32
	Now() int64
	Config(out []byte) int32
	MQTTPublish(topic string, payload []byte, qos, retain int32) int32
	MQTTSubscribe(filter string) int32
	MQTTUnsubscribe(filter string) int32
	TCPConnect(addr string, timeoutMS int32) int32
	TCPRead(h int32, out []byte, timeoutMS int32) int32
	TCPWrite(h int32, data []byte, timeoutMS int32) int32
	TCPClose(h int32) int32
	UDPOpen(addr string) int32
	UDPSend(h int32, data []byte, timeoutMS int32) int32
	UDPRecv(h int32, out []byte, timeoutMS int32) int32
	UDPClose(h int32) int32
	SerialOpen(path string, baud, dataBits, parity, stopBits int32) int32
	SerialRead(h int32, out []byte, timeoutMS int32) int32
	SerialWrite(h int32, data []byte, timeoutMS int32) int32
	SerialClose(h int32) int32
	HTTPRequest(req []byte, timeoutMS int32, out []byte) int32
	HTTPReply(out []byte) int32
}

// Guest is the plugin's side: its exports.
type Guest struct {
	// Buffer returns the exchange buffer, at least n bytes, or nil.
	Buffer func(n int32) []byte
	// Init runs edgehost_init on the config in the exchange buffer.
	Init func(configLen int32) abi.Code
	// Handle runs edgehost_handle on the envelope in the exchange buffer
	// and returns the reply envelope (empty: no reply), valid until the
	// next call.
	Handle func(msgLen int32) ([]byte, abi.Code)
	// Tick runs edgehost_tick.
	Tick func() abi.Code
	// Stop runs edgehost_stop.
	Stop func()
}

// Current is the host the SDK's imports call; nil outside a call.
var Current Host

// Exports are the plugin's exports, registered by package sdk at init.
var Exports Guest
