/* kvcounter: enriches temperature readings and keeps running statistics
 * per device in the plugin's KV store, as examples/kvcounter does, with the
 * same content, replies, keys and stored JSON:
 *
 *   {"device":"d1","temperature_c":21.5}  -> the reading in both units and
 *                                            the device's statistics
 *   {"device":"d1"}                       -> the statistics alone
 *   empty                                 -> {"devices":["d1",...]}
 *
 * Config (optional): {"valid_min_c":-40,"valid_max_c":125}. */
#include "edgehost.h"
#include "edgehost_json.h"

/* The plausible range of a reading, in °C, set at init. */
static double valid_min_c = -40, valid_max_c = 125;

/* keys namespace the per-device statistics. */
#define KEY_PREFIX "device/"
/* MAX_DEVICE keeps keys well inside the 1024-byte KV key limit. */
#define MAX_DEVICE 256

/* A device's running statistics, stored as JSON under KEY_PREFIX device. */
typedef struct {
  int64_t count;
  double min_c, max_c, sum_c;
  eh_buf updated; /* the time of the last reading, as JSON (quoted) */
} stats;

/* Buffers reused from call to call. */
static eh_buf device, key, out, scratch;

/* read_range reads the config's range into *min, *max; NULL or why not. */
static const char *read_range(eh_str config, double *min, double *max) {
  eh_json j = eh_json_start(config);
  eh_str k;
  if (!eh_json_object(&j)) return j.err;
  while (eh_json_member(&j, &k) > 0) {
    double *v = eh_json_key_is(k, "valid_min_c") ? min : eh_json_key_is(k, "valid_max_c") ? max : 0;
    if (!v) eh_json_skip(&j);
    else if (!eh_json_null(&j) && !eh_json_number(&j, v)) break;
  }
  if (j.err || !eh_json_end(&j)) return j.err;
  return 0;
}

static int init(eh_str config) {
  double min = -40, max = 125;
  if (config.len > 0) {
    const char *err = read_range(config, &min, &max);
    if (err) {
      eh_logf(EH_ERROR, "init failed error=\"kvcounter: config: %s\"", err);
      return EH_INTERNAL;
    }
  }
  if (!(min < max)) {
    eh_log(EH_ERROR, EH_LIT("init failed error=\"kvcounter: config: valid_min_c must be below valid_max_c\""));
    return EH_INTERNAL;
  }
  valid_min_c = min, valid_max_c = max;
  return 0;
}

/* round2 rounds to two decimals, half away from zero as Go's math.Round. */
static double round2(double x) { return round(x * 100) / 100; }

static int is_blank(eh_str s) {
  for (size_t i = 0; i < s.len; i++)
    if (!strchr(" \t\n\r\v\f", s.ptr[i])) return 0;
  return 1;
}

/* load reads a device's statistics (zero for a device never seen); 0 or
 * -code, or 1 with *why set when what is stored does not parse. */
static int32_t load(eh_str k, stats *s, const char **why) {
  eh_str v;
  s->count = 0, s->min_c = s->max_c = s->sum_c = 0;
  s->updated.len = 0;
  int32_t r = eh_kv_get(k, &v);
  if (r == -EH_NOT_FOUND) return 0;
  if (r < 0) return r;
  eh_json j = eh_json_start(v);
  eh_str f;
  if (!eh_json_object(&j)) return *why = j.err, 1;
  while (eh_json_member(&j, &f) > 0) {
    double d;
    if (eh_json_key_is(f, "count")) {
      if (eh_json_number(&j, &d)) s->count = (int64_t)d;
    } else if (eh_json_key_is(f, "min_c")) eh_json_number(&j, &s->min_c);
    else if (eh_json_key_is(f, "max_c")) eh_json_number(&j, &s->max_c);
    else if (eh_json_key_is(f, "sum_c")) eh_json_number(&j, &s->sum_c);
    else if (eh_json_key_is(f, "updated")) {
      /* kept as the JSON it is, to be written back as it was */
      const char *start = (eh_json_peek(&j), j.p);
      if (eh_json_skip(&j)) {
        s->updated.len = 0;
        eh_buf_write(&s->updated, start, (size_t)(j.p - start));
      }
    } else eh_json_skip(&j);
  }
  if (j.err || !eh_json_end(&j)) return *why = j.err, 1;
  return 0;
}

/* save stores a device's statistics, as the Go example's json.Marshal of Stats. */
static int32_t save(eh_str k, const stats *s) {
  scratch.len = 0;
  eh_buf_puts(&scratch, "{\"count\":");
  eh_json_write_number(&scratch, (double)s->count);
  eh_buf_puts(&scratch, ",\"min_c\":");
  eh_json_write_number(&scratch, s->min_c);
  eh_buf_puts(&scratch, ",\"max_c\":");
  eh_json_write_number(&scratch, s->max_c);
  eh_buf_puts(&scratch, ",\"sum_c\":");
  eh_json_write_number(&scratch, s->sum_c);
  eh_buf_puts(&scratch, ",\"updated\":");
  eh_buf_write(&scratch, s->updated.ptr, s->updated.len);
  eh_buf_puts(&scratch, "}");
  if (scratch.failed) return -EH_INTERNAL;
  return eh_kv_put(k, eh_buf_str(&scratch));
}

/* list_devices replies with the names of the devices seen so far. */
static int list_devices(eh_reply *w) {
  eh_str list, k;
  int32_t r = eh_kv_list(EH_LIT(KEY_PREFIX), &list);
  if (r < 0) return eh_reply_errorf(w, "edgehost kv_list \"" KEY_PREFIX "\": %s", eh_code_name(r));
  out.len = 0;
  eh_buf_puts(&out, "{\"devices\":[");
  for (int first = 1; (r = eh_kv_next(&list, &k)) > 0; first = 0) {
    if (!first) eh_buf_puts(&out, ",");
    size_t skip = k.len >= sizeof KEY_PREFIX - 1 ? sizeof KEY_PREFIX - 1 : 0;
    eh_json_write_string(&out, (eh_str){k.ptr + skip, k.len - skip});
  }
  if (r < 0) return eh_reply_errorf(w, "edgehost kv_list \"" KEY_PREFIX "\": %s", eh_code_name(r));
  eh_buf_puts(&out, "]}");
  eh_reply_write(w, out.ptr, out.len);
  return EH_REPLY;
}

static int handle(const eh_message *m, eh_reply *w) {
  if (is_blank(m->content)) return list_devices(w);
  double t = 0;
  int has_t = 0;
  device.len = 0;
  eh_json j = eh_json_start(m->content);
  eh_str f;
  if (eh_json_object(&j)) {
    while (eh_json_member(&j, &f) > 0) {
      if (eh_json_key_is(f, "device")) {
        if (!eh_json_null(&j)) {
          device.len = 0;
          if (!eh_json_string(&j, &device)) j.err = "device is not a string";
        }
      } else if (eh_json_key_is(f, "temperature_c")) {
        if (eh_json_null(&j)) has_t = 0;
        else if (eh_json_number(&j, &t)) has_t = 1;
        else j.err = "temperature_c is not a number";
      } else {
        eh_json_skip(&j);
      }
    }
  }
  if (j.err || !eh_json_end(&j)) return eh_reply_errorf(w, "kvcounter: content is not a reading: %s", j.err);
  if (device.len == 0 || device.len > MAX_DEVICE)
    return eh_reply_error(w, EH_LIT("kvcounter: reading needs a device name of 1 to 256 bytes"));

  key.len = 0;
  eh_buf_puts(&key, KEY_PREFIX);
  eh_buf_write(&key, device.ptr, device.len);
  if (key.failed || device.failed) return EH_INTERNAL;
  static stats s; /* static: its buffer is reused */
  const char *why = 0;
  int32_t r = load(eh_buf_str(&key), &s, &why);
  if (r < 0) return eh_reply_errorf(w, "edgehost kv_get \"%.*s\": %s", (int)key.len, key.ptr, eh_code_name(r));
  if (r > 0)
    return eh_reply_errorf(w, "kvcounter: stored statistics of \"%.*s\": %s", (int)device.len, device.ptr, why);

  if (has_t) {
    if (t < valid_min_c || t > valid_max_c || isnan(t))
      return eh_reply_error(w, EH_LIT("kvcounter: temperature out of the plausible range"));
    if (s.count == 0) {
      scratch.len = 0;
      eh_json_write_string(&scratch, eh_buf_str(&device)); /* quoted when needed, as the Go SDK's log does */
      int plain = scratch.len == device.len + 2;
      for (size_t i = 0; plain && i < device.len; i++)
        if ((unsigned char)device.ptr[i] <= ' ' || device.ptr[i] == '=' || (unsigned char)device.ptr[i] >= 0x7f) plain = 0;
      if (plain) eh_logf(EH_INFO, "new device device=%.*s", (int)device.len, device.ptr);
      else eh_logf(EH_INFO, "new device device=%.*s", (int)scratch.len, scratch.ptr);
    }
    if (s.count == 0 || t < s.min_c) s.min_c = t;
    if (s.count == 0 || t > s.max_c) s.max_c = t;
    s.count++;
    s.sum_c += t;
    s.updated.len = 0;
    eh_json_write_time(&s.updated, eh_now());
    r = save(eh_buf_str(&key), &s);
    if (r < 0) return eh_reply_errorf(w, "edgehost kv_put \"%.*s\": %s", (int)key.len, key.ptr, eh_code_name(r));
  } else if (s.count == 0) {
    scratch.len = 0;
    eh_json_write_string(&scratch, eh_buf_str(&device));
    return eh_reply_errorf(w, "kvcounter: unknown device %.*s", (int)scratch.len, scratch.ptr);
  }

  out.len = 0;
  eh_buf_puts(&out, "{\"device\":");
  eh_json_write_string(&out, eh_buf_str(&device));
  if (has_t) {
    eh_buf_puts(&out, ",\"temperature_c\":");
    eh_json_write_number(&out, t);
    eh_buf_puts(&out, ",\"temperature_f\":");
    eh_json_write_number(&out, round2(t * 9 / 5 + 32));
  }
  eh_buf_puts(&out, ",\"count\":");
  eh_json_write_number(&out, (double)s.count);
  eh_buf_puts(&out, ",\"min_c\":");
  eh_json_write_number(&out, s.min_c);
  eh_buf_puts(&out, ",\"max_c\":");
  eh_json_write_number(&out, s.max_c);
  eh_buf_puts(&out, ",\"mean_c\":");
  eh_json_write_number(&out, round2(s.sum_c / (double)s.count));
  eh_buf_puts(&out, ",\"updated\":");
  eh_buf_write(&out, s.updated.ptr, s.updated.len);
  eh_buf_puts(&out, "}");
  if (out.failed) return EH_INTERNAL;
  eh_reply_write(w, out.ptr, out.len);
  return EH_REPLY;
}

EDGEHOST_PLUGIN(.init = init, .handle = handle);
