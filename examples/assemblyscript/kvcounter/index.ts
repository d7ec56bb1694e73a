// kvcounter: enriches temperature readings and keeps running statistics per
// device in the plugin's KV store, as examples/kvcounter does, with the same
// content, replies, keys and stored JSON:
//
//   {"device":"d1","temperature_c":21.5}  -> the reading in both units and
//                                            the device's statistics
//   {"device":"d1"}                       -> the statistics alone
//   empty                                 -> {"devices":["d1",...]}
//
// Config (optional): {"valid_min_c":-40,"valid_max_c":125}.
import {
  handle, onInit, logError, logInfo, codeName, lastCode, kvGet, kvPut, kvList, now, utf8,
  Code, Field, Request, Reply, REPLY,
} from "../../../sdk/assemblyscript/assembly/index";
import { Reader, keyIs, quote, number, time } from "../../../sdk/assemblyscript/assembly/json";
export * from "../../../sdk/assemblyscript/assembly/exports";

// KEY_PREFIX namespaces the per-device statistics.
const KEY_PREFIX = "device/";
// MAX_DEVICE keeps keys well inside the 1024-byte KV key limit.
const MAX_DEVICE = 256;

// The plausible range of a reading, in °C, set at init.
let validMinC: f64 = -40;
let validMaxC: f64 = 125;

onInit((config: Uint8Array): i32 => {
  let min: f64 = -40, max: f64 = 125;
  if (config.length > 0) {
    const r = Reader.fromBytes(config);
    r.object();
    let k: string | null;
    while ((k = r.member()) != null) {
      const isMin = keyIs(k, "valid_min_c");
      if (!isMin && !keyIs(k, "valid_max_c")) { r.skip(); continue; }
      if (r.null_()) continue;
      const v = r.number();
      if (r.err != null) break;
      if (isMin) min = v; else max = v;
    }
    r.end();
    if (r.err != null) {
      logError("init failed error=" + quote("kvcounter: config: " + r.err!));
      return Code.INTERNAL;
    }
  }
  if (!(min < max)) {
    logError("init failed error=" + quote("kvcounter: config: valid_min_c must be below valid_max_c"));
    return Code.INTERNAL;
  }
  validMinC = min;
  validMaxC = max;
  return 0;
});

// round2 rounds to two decimals, half away from zero as Go's math.Round
// (Math.round rounds half up).
function round2(x: f64): f64 {
  const y = x * 100;
  let t = Math.trunc(y);
  if (Math.abs(y - t) >= 0.5) t += y < 0 ? -1 : 1;
  return t / 100;
}

// A device's running statistics, stored as JSON under KEY_PREFIX + device.
class Stats {
  count: i64 = 0;
  minC: f64 = 0;
  maxC: f64 = 0;
  sumC: f64 = 0;
  updated: string = "\"0001-01-01T00:00:00Z\""; // as JSON (quoted)
}

function listDevices(w: Reply): i32 {
  const keys = kvList(KEY_PREFIX);
  if (keys == null) return w.error("edgehost kv_list " + quote(KEY_PREFIX) + ": " + codeName(lastCode()));
  let out = "{\"devices\":[";
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) out += ",";
    const k = keys[i];
    out += quote(k.startsWith(KEY_PREFIX) ? k.substring(KEY_PREFIX.length) : k);
  }
  w.writeString(out + "]}");
  return REPLY;
}

function isBlank(m: Request): bool {
  const p = m.ptr(Field.CONTENT);
  for (let i = 0; i < m.len(Field.CONTENT); i++) {
    const c = load<u8>(p + i);
    if (c != 32 && c != 9 && c != 10 && c != 13 && c != 11 && c != 12) return false;
  }
  return true;
}

handle((m: Request, w: Reply): i32 => {
  if (isBlank(m)) return listDevices(w);
  let device = "";
  let t: f64 = 0;
  let hasT = false;
  const r = new Reader(m.ptr(Field.CONTENT), m.len(Field.CONTENT));
  if (r.object()) {
    let f: string | null;
    while ((f = r.member()) != null) {
      if (keyIs(f, "device")) {
        if (!r.null_()) {
          const s = r.string();
          if (s == null) r.err = "device is not a string";
          else device = s;
        }
      } else if (keyIs(f, "temperature_c")) {
        if (r.null_()) hasT = false;
        else {
          t = r.number();
          hasT = r.err == null;
          if (!hasT) r.err = "temperature_c is not a number";
        }
      } else r.skip();
    }
  }
  r.end();
  if (r.err != null) return w.error("kvcounter: content is not a reading: " + r.err!);
  const deviceLen = String.UTF8.byteLength(device);
  if (deviceLen == 0 || deviceLen > MAX_DEVICE) return w.error("kvcounter: reading needs a device name of 1 to 256 bytes");

  const key = KEY_PREFIX + device;
  const s = new Stats();
  const stored = kvGet(key);
  if (stored == null && lastCode() != Code.NOT_FOUND) return w.error("edgehost kv_get " + quote(key) + ": " + codeName(lastCode()));
  if (stored != null) {
    const sr = Reader.fromBytes(stored);
    sr.object();
    let f: string | null;
    while ((f = sr.member()) != null) {
      if (keyIs(f, "count")) s.count = <i64>sr.number();
      else if (keyIs(f, "min_c")) s.minC = sr.number();
      else if (keyIs(f, "max_c")) s.maxC = sr.number();
      else if (keyIs(f, "sum_c")) s.sumC = sr.number();
      else if (keyIs(f, "updated")) {
        const raw = sr.rawValue(); // kept as the JSON it is, to be written back as it was
        if (raw != null) s.updated = raw;
      } else sr.skip();
    }
    sr.end();
    if (sr.err != null) return w.error("kvcounter: stored statistics of " + quote(device) + ": " + sr.err!);
  }

  if (hasT) {
    if (t < validMinC || t > validMaxC || isNaN(t)) return w.error("kvcounter: temperature out of the plausible range");
    if (s.count == 0) logInfo("new device device=" + device);
    if (s.count == 0 || t < s.minC) s.minC = t;
    if (s.count == 0 || t > s.maxC) s.maxC = t;
    s.count++;
    s.sumC += t;
    s.updated = time(now());
    const b = "{\"count\":" + s.count.toString() + ",\"min_c\":" + number(s.minC) + ",\"max_c\":" + number(s.maxC) +
      ",\"sum_c\":" + number(s.sumC) + ",\"updated\":" + s.updated + "}";
    const c = kvPut(key, Uint8Array.wrap(utf8(b)));
    if (c < 0) return w.error("edgehost kv_put " + quote(key) + ": " + codeName(c));
  } else if (s.count == 0) {
    return w.error("kvcounter: unknown device " + quote(device));
  }

  let out = "{\"device\":" + quote(device);
  if (hasT) out += ",\"temperature_c\":" + number(t) + ",\"temperature_f\":" + number(round2(t * 9 / 5 + 32));
  out += ",\"count\":" + s.count.toString() + ",\"min_c\":" + number(s.minC) + ",\"max_c\":" + number(s.maxC) +
    ",\"mean_c\":" + number(round2(s.sumC / <f64>s.count)) + ",\"updated\":" + s.updated + "}";
  w.writeString(out);
  return REPLY;
});
