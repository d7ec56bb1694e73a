// mqtt-echo: republishes every payload it receives on examples/echo/in to
// examples/echo/out, as examples/mqtt-echo does. Its config may rename the
// topics: {"in": "a/b", "out": "c/d"}.
import {
  handle, onInit, logError, codeName, mqttSubscribe, mqttPublishRaw, Field, Request, Reply, NO_REPLY,
} from "../../../sdk/assemblyscript/assembly/index";
import { Reader, keyIs, quote } from "../../../sdk/assemblyscript/assembly/json";
export * from "../../../sdk/assemblyscript/assembly/exports";

// The topics, read once at init.
let topicIn = "examples/echo/in";
let topicOut = "examples/echo/out";

onInit((config: Uint8Array): i32 => {
  if (config.length > 0) {
    const r = Reader.fromBytes(config);
    r.object();
    let key: string | null;
    while ((key = r.member()) != null) {
      const isIn = keyIs(key, "in");
      if (!isIn && !keyIs(key, "out")) { r.skip(); continue; }
      if (r.null_()) continue;
      const s = r.string();
      if (s == null) break;
      if (isIn) topicIn = s; else topicOut = s;
    }
    r.end();
    if (r.err != null) {
      logError("init failed error=" + quote("mqtt-echo config: " + r.err!));
      return 8; // internal
    }
  }
  const c = mqttSubscribe(topicIn);
  if (c < 0) {
    logError("init failed error=" + quote("edgehost mqtt_subscribe " + quote(topicIn) + ": " + codeName(c)));
    return -c;
  }
  return 0;
});

handle((m: Request, w: Reply): i32 => {
  const topic = m.mqttTopic();
  if (topic == null || topic != topicIn) return w.error("mqtt-echo handles only MQTT messages on " + topicIn);
  // QoS 0; the host copies the payload before mqttPublishRaw returns.
  const c = mqttPublishRaw(topicOut, m.ptr(Field.CONTENT), m.len(Field.CONTENT), 0, false);
  if (c < 0) return w.error("edgehost mqtt_publish " + quote(topicOut) + ": " + codeName(c));
  return NO_REPLY;
});
