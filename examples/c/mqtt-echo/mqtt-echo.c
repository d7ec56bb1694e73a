/* mqtt-echo: republishes every payload it receives on examples/echo/in to
 * examples/echo/out, as examples/mqtt-echo does. Its config may rename the
 * topics: {"in": "a/b", "out": "c/d"}. */
#include "edgehost.h"
#include "edgehost_json.h"

/* The topics, read once at init. */
static eh_buf in_topic, out_topic;

/* read_topics sets the topics from the config's "in" and "out". */
static const char *read_topics(eh_str config) {
  eh_json j = eh_json_start(config);
  eh_str key;
  if (!eh_json_object(&j)) return j.err;
  while (eh_json_member(&j, &key) > 0) {
    eh_buf *topic = eh_json_key_is(key, "in") ? &in_topic : eh_json_key_is(key, "out") ? &out_topic : 0;
    if (!topic) {
      eh_json_skip(&j);
    } else if (!eh_json_null(&j)) {
      topic->len = 0;
      eh_json_string(&j, topic);
    }
  }
  if (j.err || !eh_json_end(&j)) return j.err;
  return 0;
}

static int init(eh_str config) {
  eh_buf_puts(&in_topic, "examples/echo/in");
  eh_buf_puts(&out_topic, "examples/echo/out");
  if (config.len > 0) {
    const char *err = read_topics(config);
    if (err) {
      eh_logf(EH_ERROR, "init failed error=\"mqtt-echo config: %s\"", err);
      return EH_INTERNAL;
    }
  }
  int32_t r = eh_mqtt_subscribe(eh_buf_str(&in_topic));
  if (r < 0) {
    eh_logf(EH_ERROR, "init failed error=\"edgehost mqtt_subscribe: %s\"", eh_code_name(r));
    return -r;
  }
  return 0;
}

static int handle(const eh_message *m, eh_reply *w) {
  eh_str topic;
  if (!eh_mqtt_topic(m, &topic) || !eh_str_eq(topic, eh_buf_str(&in_topic)))
    return eh_reply_errorf(w, "mqtt-echo handles only MQTT messages on %.*s", (int)in_topic.len, in_topic.ptr);
  /* QoS 0; the host copies the payload before eh_mqtt_publish returns. */
  int32_t r = eh_mqtt_publish(eh_buf_str(&out_topic), m->content, 0, 0);
  if (r < 0)
    return eh_reply_errorf(w, "edgehost mqtt_publish \"%.*s\": %s", (int)out_topic.len, out_topic.ptr, eh_code_name(r));
  return EH_NO_REPLY;
}

EDGEHOST_PLUGIN(.init = init, .handle = handle);
