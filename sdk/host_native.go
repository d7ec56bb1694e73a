//go:build !wasip1

package sdk

import (
	"encoding/binary"
	"unsafe"

	"github.com/edgehost/edgehost/sdk/internal/hostcall"
)

// In a native build the imports go to the fake host package sdktest
// installs, and the exports are registered for it to call.

func init() {
	hostcall.Exports = hostcall.Guest{
		Buffer: exchangeBuffer,
		Init:   initPlugin,
		Handle: handleMessage,
		Tick:   tick,
		Stop:   stop,
	}
}

// host returns the installed fake host.
func host() hostcall.Host {
	h := hostcall.Current
	if h == nil {
		panic("edgehost sdk: no host: natively, SDK functions run only inside a call made by sdktest (Host.Call, Init, Tick, Stop or Run)")
	}
	return h
}

func hostLog(level int32, msg string) { host().Log(level, msg) }

func hostSend(env []byte) int32 { return host().Send(env) }

func hostRequest(env []byte, timeoutMS int32, out []byte) int32 {
	return host().Request(env, timeoutMS, out)
}

func hostRequestReply(out []byte) int32 { return host().RequestReply(out) }

func hostKVGet(key string, out []byte) int32 { return host().KVGet(key, out) }

func hostKVPut(key string, val []byte) int32 { return host().KVPut(key, val) }

func hostKVDelete(key string) int32 { return host().KVDelete(key) }

func hostKVList(prefix string, out []byte) int32 { return host().KVList(prefix, out) }

func hostNow() int64 { return host().Now() }

func hostConfig(out []byte) int32 { return host().Config(out) }

func hostMQTTPublish(topic string, payload []byte, qos, retain int32) int32 {
	return host().MQTTPublish(topic, payload, qos, retain)
}

func hostMQTTSubscribe(filter string) int32 { return host().MQTTSubscribe(filter) }

func hostMQTTUnsubscribe(filter string) int32 { return host().MQTTUnsubscribe(filter) }

func hostTCPConnect(addr string, timeoutMS int32) int32 { return host().TCPConnect(addr, timeoutMS) }

func hostHTTPRequest(req []byte, timeoutMS int32, out []byte) int32 {
	return host().HTTPRequest(req, timeoutMS, out)
}

func hostHTTPReply(out []byte) int32 { return host().HTTPReply(out) }

func hostTCPRead(h int32, out []byte, timeoutMS int32) int32 {
	return host().TCPRead(h, out, timeoutMS)
}

func hostTCPWrite(h int32, data []byte, timeoutMS int32) int32 {
	return host().TCPWrite(h, data, timeoutMS)
}

func hostTCPClose(h int32) int32 { return host().TCPClose(h) }

func hostUDPOpen(addr string) int32 { return host().UDPOpen(addr) }

func hostUDPSend(h int32, data []byte, timeoutMS int32) int32 {
	return host().UDPSend(h, data, timeoutMS)
}

func hostUDPRecv(h int32, out []byte, timeoutMS int32) int32 {
	return host().UDPRecv(h, out, timeoutMS)
}

func hostUDPClose(h int32) int32 { return host().UDPClose(h) }

func hostSerialOpen(path string, baud, dataBits, parity, stopBits int32) int32 {
	return host().SerialOpen(path, baud, dataBits, parity, stopBits)
}

func hostSerialRead(h int32, out []byte, timeoutMS int32) int32 {
	return host().SerialRead(h, out, timeoutMS)
}

func hostSerialWrite(h int32, data []byte, timeoutMS int32) int32 {
	return host().SerialWrite(h, data, timeoutMS)
}

func hostSerialClose(h int32) int32 { return host().SerialClose(h) }

// Little-endian loads and stores through pointers, for the envelope code,
// on any native byte order.

func le16(p unsafe.Pointer) uint16 { return binary.LittleEndian.Uint16((*[2]byte)(p)[:]) }

func le32(p unsafe.Pointer) uint32 { return binary.LittleEndian.Uint32((*[4]byte)(p)[:]) }

func le64(p unsafe.Pointer) uint64 { return binary.LittleEndian.Uint64((*[8]byte)(p)[:]) }

func putLE16(p unsafe.Pointer, v uint16) { binary.LittleEndian.PutUint16((*[2]byte)(p)[:], v) }

func putLE32(p unsafe.Pointer, v uint32) { binary.LittleEndian.PutUint32((*[4]byte)(p)[:], v) }

func putLE64(p unsafe.Pointer, v uint64) { binary.LittleEndian.PutUint64((*[8]byte)(p)[:], v) }
