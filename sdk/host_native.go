//go:build !wasip1

package sdk

import "github.com/edgehost/edgehost/sdk/internal/hostcall"

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
