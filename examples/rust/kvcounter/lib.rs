//! kvcounter: enriches temperature readings and keeps running statistics
//! per device in the plugin's KV store, as examples/kvcounter does, with the
//! same content, replies, keys and stored JSON:
//!
//!   {"device":"d1","temperature_c":21.5}  -> the reading in both units and
//!                                            the device's statistics
//!   {"device":"d1"}                       -> the statistics alone
//!   empty                                 -> {"devices":["d1",...]}
//!
//! Config (optional): {"valid_min_c":-40,"valid_max_c":125}.
use edgehost::{json, Error, Message, Plugin, Reply};

/// KEY_PREFIX namespaces the per-device statistics.
const KEY_PREFIX: &str = "device/";
/// MAX_DEVICE keeps keys well inside the 1024-byte KV key limit.
const MAX_DEVICE: usize = 256;

/// The plausible range of a reading, in °C.
struct KvCounter {
    valid_min_c: f64,
    valid_max_c: f64,
}

/// A device's running statistics, stored as JSON under KEY_PREFIX + device.
#[derive(Default)]
struct Stats {
    count: i64,
    min_c: f64,
    max_c: f64,
    sum_c: f64,
    /// The time of the last reading, as JSON (quoted).
    updated: String,
}

/// round2 rounds to two decimals, half away from zero as Go's math.Round.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// quoted is s as Go's %q writes it, for plain text.
fn quoted(s: &str) -> String {
    let mut q = String::new();
    json::write_string(&mut q, s);
    q
}

fn read_range(config: &[u8], min: &mut f64, max: &mut f64) -> Option<&'static str> {
    let mut r = json::Reader::new(config);
    r.object();
    while let Some(k) = r.member() {
        let v = if json::key_is(k, "valid_min_c") {
            &mut *min
        } else if json::key_is(k, "valid_max_c") {
            &mut *max
        } else {
            r.skip();
            continue;
        };
        if !r.null() {
            match r.number() {
                Some(n) => *v = n,
                None => break,
            }
        }
    }
    r.end();
    r.err
}

/// load reads a device's statistics; a device never seen has zero Stats.
fn load(key: &str, device: &str) -> Result<Stats, Error> {
    let mut s = Stats::default();
    let b = match edgehost::kv_get(key)? {
        Some(b) => b,
        None => return Ok(s),
    };
    let mut r = json::Reader::new(&b);
    r.object();
    while let Some(f) = r.member() {
        if json::key_is(f, "count") {
            s.count = r.number().unwrap_or(0.0) as i64;
        } else if json::key_is(f, "min_c") {
            s.min_c = r.number().unwrap_or(0.0);
        } else if json::key_is(f, "max_c") {
            s.max_c = r.number().unwrap_or(0.0);
        } else if json::key_is(f, "sum_c") {
            s.sum_c = r.number().unwrap_or(0.0);
        } else if json::key_is(f, "updated") {
            // kept as the JSON it is, to be written back as it was
            if let Some(raw) = r.raw_value() {
                s.updated = String::from_utf8_lossy(raw).into_owned();
            }
        } else {
            r.skip();
        }
    }
    r.end();
    match r.err {
        Some(why) => Err(format!("kvcounter: stored statistics of {}: {}", quoted(device), why).into()),
        None => Ok(s),
    }
}

/// save stores a device's statistics, as the Go example's json.Marshal of Stats.
fn save(key: &str, s: &Stats) -> Result<(), Error> {
    let mut b = String::from("{\"count\":");
    json::write_number(&mut b, s.count as f64);
    b.push_str(",\"min_c\":");
    json::write_number(&mut b, s.min_c);
    b.push_str(",\"max_c\":");
    json::write_number(&mut b, s.max_c);
    b.push_str(",\"sum_c\":");
    json::write_number(&mut b, s.sum_c);
    b.push_str(",\"updated\":");
    b.push_str(&s.updated);
    b.push('}');
    Ok(edgehost::kv_put(key, b.as_bytes())?)
}

/// list_devices replies with the names of the devices seen so far.
fn list_devices(w: &mut Reply) -> Result<(), Error> {
    let keys = edgehost::kv_list(KEY_PREFIX)?;
    let mut out = String::from("{\"devices\":[");
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_string(&mut out, k.strip_prefix(KEY_PREFIX).unwrap_or(k));
    }
    out.push_str("]}");
    w.write_str(&out);
    Ok(())
}

impl Plugin for KvCounter {
    fn init(config: &[u8]) -> Result<Self, Error> {
        let (mut min, mut max) = (-40.0, 125.0);
        if !config.is_empty() {
            if let Some(why) = read_range(config, &mut min, &mut max) {
                return Err(format!("kvcounter: config: {}", why).into());
            }
        }
        if !(min < max) {
            return Err("kvcounter: config: valid_min_c must be below valid_max_c".into());
        }
        Ok(KvCounter { valid_min_c: min, valid_max_c: max })
    }

    fn handle(&mut self, m: &Message, w: &mut Reply) -> Result<(), Error> {
        if m.content.iter().all(|c| b" \t\n\r\x0b\x0c".contains(c)) {
            return list_devices(w);
        }
        let mut device = String::new();
        let mut t: Option<f64> = None;
        let mut r = json::Reader::new(m.content);
        if r.object() {
            while let Some(f) = r.member() {
                if json::key_is(f, "device") {
                    if !r.null() {
                        match r.string() {
                            Some(s) => device = s,
                            None => r.err = Some("device is not a string"),
                        }
                    }
                } else if json::key_is(f, "temperature_c") {
                    if r.null() {
                        t = None;
                    } else {
                        t = r.number();
                        if t.is_none() {
                            r.err = Some("temperature_c is not a number");
                        }
                    }
                } else {
                    r.skip();
                }
            }
        }
        r.end();
        if let Some(why) = r.err {
            return Err(format!("kvcounter: content is not a reading: {}", why).into());
        }
        if device.is_empty() || device.len() > MAX_DEVICE {
            return Err("kvcounter: reading needs a device name of 1 to 256 bytes".into());
        }
        let key = format!("{}{}", KEY_PREFIX, device);
        let mut s = load(&key, &device)?;
        if let Some(t) = t {
            if t < self.valid_min_c || t > self.valid_max_c || t.is_nan() {
                return Err("kvcounter: temperature out of the plausible range".into());
            }
            if s.count == 0 {
                edgehost::log_info("new device", &[("device", &device)]);
            }
            if s.count == 0 || t < s.min_c {
                s.min_c = t;
            }
            if s.count == 0 || t > s.max_c {
                s.max_c = t;
            }
            s.count += 1;
            s.sum_c += t;
            s.updated.clear();
            json::write_time(&mut s.updated, edgehost::now());
            save(&key, &s)?;
        } else if s.count == 0 {
            return Err(format!("kvcounter: unknown device {}", quoted(&device)).into());
        }
        let mut out = String::from("{\"device\":");
        json::write_string(&mut out, &device);
        if let Some(t) = t {
            out.push_str(",\"temperature_c\":");
            json::write_number(&mut out, t);
            out.push_str(",\"temperature_f\":");
            json::write_number(&mut out, round2(t * 9.0 / 5.0 + 32.0));
        }
        out.push_str(",\"count\":");
        json::write_number(&mut out, s.count as f64);
        out.push_str(",\"min_c\":");
        json::write_number(&mut out, s.min_c);
        out.push_str(",\"max_c\":");
        json::write_number(&mut out, s.max_c);
        out.push_str(",\"mean_c\":");
        json::write_number(&mut out, round2(s.sum_c / s.count as f64));
        out.push_str(",\"updated\":");
        out.push_str(&s.updated);
        out.push('}');
        w.write_str(&out);
        Ok(())
    }
}

edgehost::plugin!(KvCounter);
