//go:build wasip1

package sdk

import (
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// The exports of SPEC §4. Their pointers are offsets into linear memory;
// on wasm a Go pointer converted to uintptr is exactly that.

//go:wasmexport edgehost_abi_version
func exportABIVersion() int32 { return abi.Major }

//go:wasmexport edgehost_buffer
func exportBuffer(n int32) int32 {
	b := exchangeBuffer(n)
	if b == nil {
		return 0
	}
	return ptr(b)
}

//go:wasmexport edgehost_init
func exportInit(configLen int32) int32 { return int32(initPlugin(configLen)) }

//go:wasmexport edgehost_handle
func exportHandle(msgLen int32) int64 {
	reply, code := handleMessage(msgLen)
	if code != abi.OK {
		return -int64(code)
	}
	if len(reply) == 0 {
		return 0
	}
	return abi.PackReply(uint32(ptr(reply)), uint32(len(reply)))
}

//go:wasmexport edgehost_tick
func exportTick() int32 { return int32(tick()) }

//go:wasmexport edgehost_stop
func exportStop() { stop() }

// Little-endian loads and stores through pointers, for the envelope code:
// wasm is little-endian and allows unaligned access, so they are plain
// loads and stores, with none of the bounds checks of encoding/binary.

func le16(p unsafe.Pointer) uint16 { return *(*uint16)(p) }

func le32(p unsafe.Pointer) uint32 { return *(*uint32)(p) }

func le64(p unsafe.Pointer) uint64 { return *(*uint64)(p) }

func putLE16(p unsafe.Pointer, v uint16) { *(*uint16)(p) = v }

func putLE32(p unsafe.Pointer, v uint32) { *(*uint32)(p) = v }

func putLE64(p unsafe.Pointer, v uint64) { *(*uint64)(p) = v }

// ptr returns the linear-memory offset of b's first byte.
func ptr(b []byte) int32 { return int32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// The imports of SPEC §5. A string parameter is passed as (ptr, len).

//go:wasmimport edgehost_v1 log
func importLog(level int32, msg string)

//go:wasmimport edgehost_v1 send
func importSend(env string) int32

//go:wasmimport edgehost_v1 request
func importRequest(env string, timeoutMS int32, out *byte, outCap int32) int32

//go:wasmimport edgehost_v1 request_reply
func importRequestReply(out *byte, outCap int32) int32

//go:wasmimport edgehost_v1 kv_get
func importKVGet(key string, out *byte, outCap int32) int32

//go:wasmimport edgehost_v1 kv_put
func importKVPut(key, val string) int32

//go:wasmimport edgehost_v1 kv_delete
func importKVDelete(key string) int32

//go:wasmimport edgehost_v1 kv_list
func importKVList(prefix string, out *byte, outCap int32) int32

//go:wasmimport edgehost_v1 now
func importNow() int64

//go:wasmimport edgehost_v1 config
func importConfig(out *byte, outCap int32) int32

//go:wasmimport edgehost_v1 mqtt_publish
func importMQTTPublish(topic, payload string, qos, retain int32) int32

//go:wasmimport edgehost_v1 mqtt_subscribe
func importMQTTSubscribe(filter string) int32

//go:wasmimport edgehost_v1 mqtt_unsubscribe
func importMQTTUnsubscribe(filter string) int32

//go:wasmimport edgehost_v1 tcp_connect
func importTCPConnect(addr string, timeoutMS int32) int32

//go:wasmimport edgehost_v1 tcp_read
func importTCPRead(h int32, out *byte, outCap, timeoutMS int32) int32

//go:wasmimport edgehost_v1 tcp_write
func importTCPWrite(h int32, data string, timeoutMS int32) int32

//go:wasmimport edgehost_v1 tcp_close
func importTCPClose(h int32) int32

//go:wasmimport edgehost_v1 udp_open
func importUDPOpen(addr string) int32

//go:wasmimport edgehost_v1 udp_send
func importUDPSend(h int32, data string, timeoutMS int32) int32

//go:wasmimport edgehost_v1 udp_recv
func importUDPRecv(h int32, out *byte, outCap, timeoutMS int32) int32

//go:wasmimport edgehost_v1 udp_close
func importUDPClose(h int32) int32

//go:wasmimport edgehost_v1 serial_open
func importSerialOpen(path string, baud, dataBits, parity, stopBits int32) int32

//go:wasmimport edgehost_v1 serial_read
func importSerialRead(h int32, out *byte, outCap, timeoutMS int32) int32

//go:wasmimport edgehost_v1 serial_write
func importSerialWrite(h int32, data string, timeoutMS int32) int32

//go:wasmimport edgehost_v1 serial_close
func importSerialClose(h int32) int32

//go:wasmimport edgehost_v1 http_request
func importHTTPRequest(req string, timeoutMS int32, out *byte, outCap int32) int32

//go:wasmimport edgehost_v1 http_reply
func importHTTPReply(out *byte, outCap int32) int32

// str views b as a string for an import that only reads it.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func hostLog(level int32, msg string) { importLog(level, msg) }

func hostSend(env []byte) int32 { return importSend(str(env)) }

func hostRequest(env []byte, timeoutMS int32, out []byte) int32 {
	return importRequest(str(env), timeoutMS, unsafe.SliceData(out), int32(len(out)))
}

func hostRequestReply(out []byte) int32 {
	return importRequestReply(unsafe.SliceData(out), int32(len(out)))
}

func hostKVGet(key string, out []byte) int32 {
	return importKVGet(key, unsafe.SliceData(out), int32(len(out)))
}

func hostKVPut(key string, val []byte) int32 { return importKVPut(key, str(val)) }

func hostKVDelete(key string) int32 { return importKVDelete(key) }

func hostKVList(prefix string, out []byte) int32 {
	return importKVList(prefix, unsafe.SliceData(out), int32(len(out)))
}

func hostNow() int64 { return importNow() }

func hostConfig(out []byte) int32 { return importConfig(unsafe.SliceData(out), int32(len(out))) }

func hostMQTTPublish(topic string, payload []byte, qos, retain int32) int32 {
	return importMQTTPublish(topic, str(payload), qos, retain)
}

func hostMQTTSubscribe(filter string) int32 { return importMQTTSubscribe(filter) }

func hostMQTTUnsubscribe(filter string) int32 { return importMQTTUnsubscribe(filter) }

func hostTCPConnect(addr string, timeoutMS int32) int32 { return importTCPConnect(addr, timeoutMS) }

func hostTCPRead(h int32, out []byte, timeoutMS int32) int32 {
	return importTCPRead(h, unsafe.SliceData(out), int32(len(out)), timeoutMS)
}

func hostTCPWrite(h int32, data []byte, timeoutMS int32) int32 {
	return importTCPWrite(h, str(data), timeoutMS)
}

func hostTCPClose(h int32) int32 { return importTCPClose(h) }

func hostUDPOpen(addr string) int32 { return importUDPOpen(addr) }

func hostUDPSend(h int32, data []byte, timeoutMS int32) int32 {
	return importUDPSend(h, str(data), timeoutMS)
}

func hostUDPRecv(h int32, out []byte, timeoutMS int32) int32 {
	return importUDPRecv(h, unsafe.SliceData(out), int32(len(out)), timeoutMS)
}

func hostUDPClose(h int32) int32 { return importUDPClose(h) }

func hostSerialOpen(path string, baud, dataBits, parity, stopBits int32) int32 {
	return importSerialOpen(path, baud, dataBits, parity, stopBits)
}

func hostSerialRead(h int32, out []byte, timeoutMS int32) int32 {
	return importSerialRead(h, unsafe.SliceData(out), int32(len(out)), timeoutMS)
}

func hostSerialWrite(h int32, data []byte, timeoutMS int32) int32 {
	return importSerialWrite(h, str(data), timeoutMS)
}

func hostSerialClose(h int32) int32 { return importSerialClose(h) }

func hostHTTPRequest(req []byte, timeoutMS int32, out []byte) int32 {
	return importHTTPRequest(str(req), timeoutMS, unsafe.SliceData(out), int32(len(out)))
}

func hostHTTPReply(out []byte) int32 { return importHTTPReply(unsafe.SliceData(out), int32(len(out))) }
