//! mqtt-echo: republishes every payload it receives on examples/echo/in to
//! examples/echo/out, as examples/mqtt-echo does. Its config may rename the
//! topics: {"in": "a/b", "out": "c/d"}.
use edgehost::{json, Error, Message, Plugin, Reply};

struct MqttEcho {
    topic_in: String,
    topic_out: String,
}

/// read_topics sets the topics from the config's "in" and "out".
fn read_topics(config: &[u8], p: &mut MqttEcho) -> Result<(), &'static str> {
    let mut r = json::Reader::new(config);
    r.object();
    while let Some(key) = r.member() {
        let topic = if json::key_is(key, "in") {
            &mut p.topic_in
        } else if json::key_is(key, "out") {
            &mut p.topic_out
        } else {
            r.skip();
            continue;
        };
        if !r.null() {
            if let Some(s) = r.string() {
                *topic = s;
            }
        }
    }
    r.end();
    r.err.map_or(Ok(()), Err)
}

impl Plugin for MqttEcho {
    fn init(config: &[u8]) -> Result<Self, Error> {
        let mut p = MqttEcho { topic_in: "examples/echo/in".into(), topic_out: "examples/echo/out".into() };
        if !config.is_empty() {
            read_topics(config, &mut p).map_err(|e| format!("mqtt-echo config: {}", e))?;
        }
        // A refused subscription fails init with its code, as in the Go SDK.
        edgehost::mqtt_subscribe(&p.topic_in).map_err(|e| {
            edgehost::log_error("init failed", &[("error", &e.to_string())]);
            Error::Code(e.code)
        })?;
        Ok(p)
    }

    fn handle(&mut self, m: &Message, _w: &mut Reply) -> Result<(), Error> {
        if m.mqtt_topic() != Some(self.topic_in.as_str()) {
            return Err(format!("mqtt-echo handles only MQTT messages on {}", self.topic_in).into());
        }
        // QoS 0; the host copies the payload before mqtt_publish returns.
        edgehost::mqtt_publish(&self.topic_out, m.content, 0, false)?;
        Err(Error::NoReply)
    }
}

edgehost::plugin!(MqttEcho);
