// The imports of abi/SPEC.md §5 and §5.1, module edgehost_v1. A module
// imports only those its code calls (each is a capability the manifest
// must grant).

@external("edgehost_v1", "log")
export declare function _log(level: i32, ptr: usize, len: i32): void;
@external("edgehost_v1", "send")
export declare function _send(ptr: usize, len: i32): i32;
@external("edgehost_v1", "request")
export declare function _request(ptr: usize, len: i32, timeoutMs: i32, out: usize, cap: i32): i32;
@external("edgehost_v1", "request_reply")
export declare function _requestReply(out: usize, cap: i32): i32;
@external("edgehost_v1", "kv_get")
export declare function _kvGet(key: usize, keyLen: i32, out: usize, cap: i32): i32;
@external("edgehost_v1", "kv_put")
export declare function _kvPut(key: usize, keyLen: i32, val: usize, valLen: i32): i32;
@external("edgehost_v1", "kv_delete")
export declare function _kvDelete(key: usize, keyLen: i32): i32;
@external("edgehost_v1", "kv_list")
export declare function _kvList(prefix: usize, prefixLen: i32, out: usize, cap: i32): i32;
@external("edgehost_v1", "now")
export declare function _now(): i64;
@external("edgehost_v1", "config")
export declare function _config(out: usize, cap: i32): i32;

// ABI 1.1: a module that calls these declares "abi": "1.1".
@external("edgehost_v1", "mqtt_publish")
export declare function _mqttPublish(topic: usize, topicLen: i32, payload: usize, payloadLen: i32, qos: i32, retain: i32): i32;
@external("edgehost_v1", "mqtt_subscribe")
export declare function _mqttSubscribe(filter: usize, filterLen: i32): i32;
@external("edgehost_v1", "mqtt_unsubscribe")
export declare function _mqttUnsubscribe(filter: usize, filterLen: i32): i32;

// ABI 1.2 (device I/O: tcp_*, udp_*, serial_*) is not in this SDK yet.

// ABI 1.3: a module that calls these declares "abi": "1.3" and an http grant.
@external("edgehost_v1", "http_request")
export declare function _httpRequest(ptr: usize, len: i32, timeoutMs: i32, out: usize, cap: i32): i32;
@external("edgehost_v1", "http_reply")
export declare function _httpReply(out: usize, cap: i32): i32;
