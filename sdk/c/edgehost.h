/* edgehost.h — the guest side of the edgehost plugin ABI 1.1 (abi/SPEC.md)
 * for C, in one header, with ABI 1.3's outbound HTTP.
 *
 * Include it in exactly one .c file of the plugin (it defines the module's
 * exports), register the callbacks with EDGEHOST_PLUGIN, and build a WASI
 * reactor:
 *
 *   #include "edgehost.h"
 *
 *   static int handle(const eh_message *m, eh_reply *w) {
 *     eh_reply_write(w, m->content.ptr, m->content.len);
 *     return EH_REPLY;
 *   }
 *   EDGEHOST_PLUGIN(.handle = handle);
 *
 *   clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wl,--strip-all \
 *     -I sdk/c -o p.wasm p.c
 *
 * Conventions: every function that can fail returns an int32_t that is a
 * length or 0 on success and -code (enum eh_code, SPEC §6) on failure, as
 * the imports do. Strings are eh_str views (pointer and length, not
 * NUL-terminated). A message handed to the handler, and data an import
 * returns (eh_kv_get, eh_kv_list, eh_config, eh_request's reply,
 * eh_http_request's response), are views
 * of the SDK's buffers: valid until the handler returns, or until the next
 * call of an SDK function that returns data, whichever is first. Copy what
 * you keep.
 *
 * Not here yet: the device I/O imports (tcp_*, udp_*, serial_*) of ABI 1.2.
 */
#ifndef EDGEHOST_H
#define EDGEHOST_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ABI major version the module states (edgehost_abi_version). */
#define EDGEHOST_ABI_MAJOR 1

/* Codes (SPEC §6). Imports and SDK functions return them negated. */
enum eh_code {
  EH_OK = 0,
  EH_INVALID_ARGUMENT = 1,
  EH_MALFORMED = 2,
  EH_TOO_LARGE = 3,
  EH_NOT_FOUND = 4,
  EH_DENIED = 5,
  EH_TIMEOUT = 6,
  EH_UNAVAILABLE = 7,
  EH_INTERNAL = 8,
  EH_BUSY = 9,
  EH_NO_HANDLER = 10,
  EH_LOOP = 11,
  EH_CLOSED = 12,
  EH_BAD_HANDLE = 13,
  EH_UNREACHABLE = 14,
};

/* Log levels of eh_log (SPEC §5). */
enum eh_level { EH_TRACE = 0, EH_DEBUG = 1, EH_INFO = 2, EH_WARN = 3, EH_ERROR = 4 };

/* What a handler returns: EH_REPLY sends the reply built in its eh_reply,
 * EH_NO_REPLY consumes the message without one, and a positive code
 * (e.g. EH_NO_HANDLER) fails the call with that code. Any other negative
 * value fails the call with EH_INTERNAL. */
#define EH_REPLY 0
#define EH_NO_REPLY (-1)

/* A view of bytes: a string, content, a key. Not NUL-terminated. */
typedef struct {
  const char *ptr;
  size_t len;
} eh_str;

/* EH_LIT("text") is the eh_str of a string literal. */
#define EH_LIT(s) ((eh_str){(s), sizeof(s) - 1})

/* eh_cstr views a NUL-terminated string. */
static inline eh_str eh_cstr(const char *s) { return (eh_str){s, s ? strlen(s) : 0}; }

/* eh_str_eq reports whether a and b hold the same bytes. */
static inline int eh_str_eq(eh_str a, eh_str b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* One message: KubeEdge's beehive message as the envelope carries it
 * (SPEC §2). Empty strings mean "not set". */
typedef struct {
  eh_str id, parent_id, resource_version;
  int64_t timestamp; /* Unix milliseconds; 0 lets the host set it */
  int sync;          /* the sender waits for a reply */
  eh_str source, group, operation, resource;
  eh_str content;
} eh_message;

/* ---- The envelope (SPEC §2) ---- */

#define EH_HEADER_LEN 28
#define EH_MAX_STRING 0xFFFFu
#define EH_MAX_CONTENT 0x7FFFFFFFu

static inline uint16_t eh__le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t eh__le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void eh__put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void eh__put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void eh__put64(uint8_t *p, uint64_t v) { eh__put32(p, (uint32_t)v); eh__put32(p + 4, (uint32_t)(v >> 32)); }

/* eh_utf8_valid reports whether the n bytes at p are valid UTF-8. */
static inline int eh_utf8_valid(const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) { /* eight ASCII bytes at a time */
      uint64_t w;
      memcpy(&w, p + i, 8);
      if ((w & 0x8080808080808080ull) == 0) { i += 8; continue; }
    }
    uint8_t c = p[i];
    if (c < 0x80) { i++; continue; }
    size_t k;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; }
    else return 0;
    if (n - i <= k) return 0;
    for (size_t j = 1; j <= k; j++) {
      if ((p[i + j] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (p[i + j] & 0x3F);
    }
    if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
      return 0;
    i += k + 1;
  }
  return 1;
}

/* eh__ascii reports whether the n bytes at p are all ASCII. */
static inline int eh__ascii(const uint8_t *p, size_t n) {
  uint64_t acc = 0, w;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    memcpy(&w, p + i, 8);
    acc |= w;
  }
  for (; i < n; i++) acc |= p[i];
  return (acc & 0x8080808080808080ull) == 0;
}

/* eh_decode decodes the envelope b (n bytes) into m, whose strings and
 * content then point into b. Returns 0, or -EH_MALFORMED for an envelope
 * SPEC §2 calls malformed (short, trailing bytes, unknown format, a
 * reserved flag bit, a length over the limit, invalid UTF-8). */
static inline int32_t eh_decode(const uint8_t *b, size_t n, eh_message *m) {
  if (n < EH_HEADER_LEN || b[0] != 1 || (b[1] & 0xFE) != 0) return -EH_MALFORMED;
  uint32_t clen = eh__le32(b + 24);
  if (clen > EH_MAX_CONTENT) return -EH_MALFORMED;
  size_t total = EH_HEADER_LEN + (size_t)clen;
  for (int i = 0; i < 7; i++) total += eh__le16(b + 10 + 2 * i);
  if (total != n) return -EH_MALFORMED;
  eh_str *f[7] = {&m->id, &m->parent_id, &m->resource_version, &m->source, &m->group, &m->operation, &m->resource};
  const char *p = (const char *)b + EH_HEADER_LEN;
  for (int i = 0; i < 7; i++) {
    size_t l = eh__le16(b + 10 + 2 * i);
    f[i]->ptr = p;
    f[i]->len = l;
    p += l;
  }
  /* Each string must be UTF-8 on its own (a sequence may not span two
   * fields); when they are all ASCII, as nearly all are, one pass says so. */
  size_t strings = (size_t)(p - (const char *)b) - EH_HEADER_LEN;
  if (!eh__ascii(b + EH_HEADER_LEN, strings))
    for (int i = 0; i < 7; i++)
      if (!eh_utf8_valid((const uint8_t *)f[i]->ptr, f[i]->len)) return -EH_MALFORMED;
  m->sync = b[1] & 1;
  int64_t ts;
  memcpy(&ts, b + 2, 8); /* wasm is little-endian */
  m->timestamp = ts;
  m->content.ptr = p;
  m->content.len = clen;
  return 0;
}

/* eh_encoded_len returns the length of m's envelope. */
static inline size_t eh_encoded_len(const eh_message *m) {
  return EH_HEADER_LEN + m->id.len + m->parent_id.len + m->resource_version.len + m->source.len + m->group.len +
         m->operation.len + m->resource.len + m->content.len;
}

/* eh_encode writes m's envelope into out (cap bytes). Returns its length,
 * -EH_TOO_LARGE if a string is over 65535 bytes or the content over
 * 2^31-1, or -EH_INVALID_ARGUMENT if it does not fit cap. */
static inline int32_t eh_encode(const eh_message *m, uint8_t *out, size_t cap) {
  const eh_str *f[7] = {&m->id, &m->parent_id, &m->resource_version, &m->source, &m->group, &m->operation, &m->resource};
  for (int i = 0; i < 7; i++)
    if (f[i]->len > EH_MAX_STRING) return -EH_TOO_LARGE;
  if (m->content.len > EH_MAX_CONTENT) return -EH_TOO_LARGE;
  size_t n = eh_encoded_len(m);
  if (n > cap || n > 0x7FFFFFFFu) return -EH_INVALID_ARGUMENT;
  out[0] = 1;
  out[1] = m->sync ? 1 : 0;
  eh__put64(out + 2, (uint64_t)m->timestamp);
  uint8_t *q = out + EH_HEADER_LEN;
  for (int i = 0; i < 7; i++) {
    eh__put16(out + 10 + 2 * i, (uint32_t)f[i]->len);
    if (f[i]->len) memcpy(q, f[i]->ptr, f[i]->len);
    q += f[i]->len;
  }
  eh__put32(out + 24, (uint32_t)m->content.len);
  if (m->content.len) memcpy(q, m->content.ptr, m->content.len);
  return (int32_t)n;
}

/* ---- The imports (SPEC §5, §5.1), module edgehost_v1 ---- */

#define EH__IMPORT(name) __attribute__((import_module("edgehost_v1"), import_name(name)))

EH__IMPORT("log") void eh__imp_log(int32_t level, const void *p, int32_t n);
EH__IMPORT("send") int32_t eh__imp_send(const void *p, int32_t n);
EH__IMPORT("request") int32_t eh__imp_request(const void *p, int32_t n, int32_t timeout_ms, void *out, int32_t cap);
EH__IMPORT("request_reply") int32_t eh__imp_request_reply(void *out, int32_t cap);
EH__IMPORT("kv_get") int32_t eh__imp_kv_get(const void *k, int32_t kn, void *out, int32_t cap);
EH__IMPORT("kv_put") int32_t eh__imp_kv_put(const void *k, int32_t kn, const void *v, int32_t vn);
EH__IMPORT("kv_delete") int32_t eh__imp_kv_delete(const void *k, int32_t kn);
EH__IMPORT("kv_list") int32_t eh__imp_kv_list(const void *p, int32_t pn, void *out, int32_t cap);
EH__IMPORT("now") int64_t eh__imp_now(void);
EH__IMPORT("config") int32_t eh__imp_config(void *out, int32_t cap);
/* ABI 1.1: a module that uses these declares "abi": "1.1" in its manifest.
 * They are linked only when called. */
EH__IMPORT("mqtt_publish") int32_t eh__imp_mqtt_publish(const void *t, int32_t tn, const void *p, int32_t pn, int32_t qos, int32_t retain);
EH__IMPORT("mqtt_subscribe") int32_t eh__imp_mqtt_subscribe(const void *f, int32_t fn);
EH__IMPORT("mqtt_unsubscribe") int32_t eh__imp_mqtt_unsubscribe(const void *f, int32_t fn);
/* ABI 1.2 (device I/O: tcp_*, udp_*, serial_*) is not in this SDK yet. */
/* ABI 1.3: a module that uses these declares "abi": "1.3" and an http grant. */
EH__IMPORT("http_request") int32_t eh__imp_http_request(const void *p, int32_t n, int32_t timeout_ms, void *out, int32_t cap);
EH__IMPORT("http_reply") int32_t eh__imp_http_reply(void *out, int32_t cap);

/* The SDK's buffers, each growing only when a call needs more. */
static struct {
  uint8_t *exchange; /* the host writes config and messages here */
  size_t exchange_cap;
  uint8_t *in; /* data from imports: KV values, key lists, replies */
  size_t in_cap;
  uint8_t *msg; /* envelopes sent with eh_send and eh_request */
  size_t msg_cap;
  char line[1024]; /* eh_logf's line */
} eh__buf;

#define EH__MIN_BUFFER 4096

/* eh__reserve makes *b hold at least n bytes (its contents are not kept). */
static int eh__reserve(uint8_t **b, size_t *cap, size_t n) {
  if (n <= *cap && *b) return 1;
  size_t size = n < EH__MIN_BUFFER ? EH__MIN_BUFFER : n;
  if (size < 2 * *cap) size = 2 * *cap;
  uint8_t *p = (uint8_t *)malloc(size);
  if (!p) return 0;
  free(*b);
  *b = p;
  *cap = size;
  return 1;
}

/* eh_log writes one line to the plugin's log. */
static inline void eh_log(int level, eh_str msg) { eh__imp_log(level, msg.ptr, (int32_t)msg.len); }

/* eh_logf formats a line as printf does (at most 1023 bytes) and logs it. */
static inline __attribute__((format(printf, 2, 3))) void eh_logf(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(eh__buf.line, sizeof eh__buf.line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof eh__buf.line) n = sizeof eh__buf.line - 1;
  eh__imp_log(level, eh__buf.line, n);
}

/* eh_code_name names a code (either sign), as SPEC §6 does. */
static inline const char *eh_code_name(int32_t code) {
  static const char *names[] = {"ok", "invalid argument", "malformed", "too large", "not found", "denied",
                                "timeout", "unavailable", "internal", "busy", "no handler", "loop",
                                "closed", "bad handle", "unreachable"};
  if (code < 0) code = -code;
  return code < (int32_t)(sizeof names / sizeof names[0]) ? names[code] : "unknown code";
}

/* eh__fetch runs an import that returns data (SPEC §3) into the in buffer:
 * call(again, arg, out, cap) makes the import call, again when the data
 * did not fit the first time (request_reply, for a request). fetch grows
 * the buffer and calls again as needed, and returns the length, or -code.
 * Each wrapper passes its own call, so a module imports only what it uses
 * (an import is a capability the manifest must grant). */
typedef int32_t (*eh__call)(int again, const void *arg, uint8_t *out, int32_t cap);

static int32_t eh__fetch(eh__call call, const void *arg, eh_str *out) {
  if (!eh__reserve(&eh__buf.in, &eh__buf.in_cap, EH__MIN_BUFFER)) return -EH_INTERNAL;
  for (int tries = 0; tries < 4; tries++) {
    int32_t cap = (int32_t)eh__buf.in_cap;
    int32_t n = call(tries > 0, arg, eh__buf.in, cap);
    if (n < 0) return n;
    if (n <= cap) {
      out->ptr = (const char *)eh__buf.in;
      out->len = (size_t)n;
      return n;
    }
    if (!eh__reserve(&eh__buf.in, &eh__buf.in_cap, (size_t)n)) return -EH_INTERNAL;
  }
  return -EH_TOO_LARGE;
}

static int32_t eh__call_kv_get(int again, const void *arg, uint8_t *out, int32_t cap) {
  const eh_str *k = (const eh_str *)arg;
  (void)again;
  return eh__imp_kv_get(k->ptr, (int32_t)k->len, out, cap);
}

static int32_t eh__call_kv_list(int again, const void *arg, uint8_t *out, int32_t cap) {
  const eh_str *k = (const eh_str *)arg;
  (void)again;
  return eh__imp_kv_list(k->ptr, (int32_t)k->len, out, cap);
}

static int32_t eh__call_config(int again, const void *arg, uint8_t *out, int32_t cap) {
  (void)again, (void)arg;
  return eh__imp_config(out, cap);
}

/* A request's envelope and timeout, for eh__call_request. */
typedef struct {
  const uint8_t *env;
  int32_t len, timeout_ms;
} eh__req;

static int32_t eh__call_request(int again, const void *arg, uint8_t *out, int32_t cap) {
  const eh__req *r = (const eh__req *)arg;
  return again ? eh__imp_request_reply(out, cap) : eh__imp_request(r->env, r->len, r->timeout_ms, out, cap);
}

/* eh__encode_msg encodes m into the msg buffer; returns its length or -code. */
static int32_t eh__encode_msg(const eh_message *m) {
  if (!eh__reserve(&eh__buf.msg, &eh__buf.msg_cap, eh_encoded_len(m))) return -EH_INTERNAL;
  return eh_encode(m, eh__buf.msg, eh__buf.msg_cap);
}

/* eh_send puts m on the host's message bus; 0 once queued. The host sets
 * the source to the plugin's name, and an empty id and a zero timestamp. */
static inline int32_t eh_send(const eh_message *m) {
  int32_t n = eh__encode_msg(m);
  return n < 0 ? n : eh__imp_send(eh__buf.msg, n);
}

/* eh_request sends m with sync set and waits up to timeout_ms (<= 0: the
 * host's default) for its reply, decoded into *reply as views of the SDK's
 * in buffer (see the conventions above). A reply larger than the buffer is
 * fetched with request_reply. Returns 0, or -code (-EH_TIMEOUT, ...). */
static inline int32_t eh_request(const eh_message *m, int32_t timeout_ms, eh_message *reply) {
  eh_message r = *m;
  r.sync = 1;
  int32_t n = eh__encode_msg(&r);
  if (n < 0) return n;
  eh_str env;
  eh__req req = {eh__buf.msg, n, timeout_ms};
  n = eh__fetch(eh__call_request, &req, &env);
  if (n < 0) return n;
  return eh_decode((const uint8_t *)env.ptr, env.len, reply);
}

/* eh_kv_get views the value stored under key in *val and returns its
 * length; -EH_NOT_FOUND if the key is absent. Within one export call it
 * sees that call's own writes. */
static inline int32_t eh_kv_get(eh_str key, eh_str *val) { return eh__fetch(eh__call_kv_get, &key, val); }

/* eh_kv_put stores val under key (1-1024 bytes). The writes of one export
 * call are committed together when it returns successfully (SPEC §5). */
static inline int32_t eh_kv_put(eh_str key, eh_str val) {
  return eh__imp_kv_put(key.ptr, (int32_t)key.len, val.ptr, (int32_t)val.len);
}

/* eh_kv_delete deletes key; 0 whether or not it existed. */
static inline int32_t eh_kv_delete(eh_str key) { return eh__imp_kv_delete(key.ptr, (int32_t)key.len); }

/* eh_kv_list views in *list the keys starting with prefix, in byte order,
 * as the host encodes them (u16 length, bytes); walk them with eh_kv_next.
 * Returns the list's length or -code. */
static inline int32_t eh_kv_list(eh_str prefix, eh_str *list) { return eh__fetch(eh__call_kv_list, &prefix, list); }

/* eh_kv_next takes the next key off *list: 1 and *key set, 0 at the end,
 * -EH_MALFORMED if the list is broken. */
static inline int32_t eh_kv_next(eh_str *list, eh_str *key) {
  if (list->len == 0) return 0;
  if (list->len < 2) return -EH_MALFORMED;
  size_t n = eh__le16((const uint8_t *)list->ptr);
  if (list->len < 2 + n) return -EH_MALFORMED;
  key->ptr = list->ptr + 2;
  key->len = n;
  list->ptr += 2 + n;
  list->len -= 2 + n;
  return 1;
}

/* eh_now returns the host's wall-clock time in Unix nanoseconds. */
static inline int64_t eh_now(void) { return eh__imp_now(); }

/* eh_config views the plugin's config bytes (those init received) in *config. */
static inline int32_t eh_config(eh_str *config) { return eh__fetch(eh__call_config, 0, config); }

/* MQTT (ABI 1.1). */

/* The route of a message delivered from an MQTT subscription. */
#define EH_MQTT_SOURCE "eventbus"
#define EH_MQTT_OPERATION "publish"

/* eh_mqtt_publish publishes payload on topic at QoS 0 or 1, retained if
 * retain is not 0; 0 once the eventbus has taken it. */
static inline int32_t eh_mqtt_publish(eh_str topic, eh_str payload, int qos, int retain) {
  return eh__imp_mqtt_publish(topic.ptr, (int32_t)topic.len, payload.ptr, (int32_t)payload.len, qos, retain ? 1 : 0);
}

/* eh_mqtt_subscribe subscribes the plugin (not the instance) to filter. */
static inline int32_t eh_mqtt_subscribe(eh_str filter) {
  return eh__imp_mqtt_subscribe(filter.ptr, (int32_t)filter.len);
}

/* eh_mqtt_unsubscribe ends the subscription to filter. */
static inline int32_t eh_mqtt_unsubscribe(eh_str filter) {
  return eh__imp_mqtt_unsubscribe(filter.ptr, (int32_t)filter.len);
}

/* eh_mqtt_topic sets *topic and returns 1 if m was delivered from an MQTT
 * subscription; else 0. */
static inline int eh_mqtt_topic(const eh_message *m, eh_str *topic) {
  if (!eh_str_eq(m->source, EH_LIT(EH_MQTT_SOURCE)) || !eh_str_eq(m->operation, EH_LIT(EH_MQTT_OPERATION))) return 0;
  *topic = m->resource;
  return 1;
}

/* ---- Outbound HTTP (ABI 1.3, SPEC §5.3) and route plugins (SPEC §10) ---- */

/* Headers travel as their lines, SPEC §5.3's framing: "Name: value\n",
 * one line per value, in order (EH_LIT("Accept: text/plain\nX-A: 1\n")).
 * Walk them with eh_http_next_header. */

/* An HTTP request: what eh_http_request sends, and the cloud request a
 * route plugin receives (eh_route_request). */
typedef struct {
  eh_str method, url; /* url absolute: http://127.0.0.1:{port}{path} for a route's request */
  eh_str headers;     /* header lines */
  eh_str body;
} eh_http_req;

/* An HTTP response: views of the SDK's in buffer (eh_http_request) or of
 * the bytes parsed (eh_http_parse_response). */
typedef struct {
  int status;
  eh_str headers; /* header lines */
  eh_str body;
  eh_str raw; /* the whole response, framed: a route plugin's reply content as it is */
} eh_http_response;

/* eh_http_next_header takes the next line off *lines: 1 with *name and
 * *value set, 0 at the end, -EH_MALFORMED for a line without ": ". */
static inline int32_t eh_http_next_header(eh_str *lines, eh_str *name, eh_str *value) {
  if (lines->len == 0) return 0;
  const char *lf = (const char *)memchr(lines->ptr, '\n', lines->len);
  size_t n = lf ? (size_t)(lf - lines->ptr) : lines->len;
  size_t i = 0;
  while (i + 1 < n && !(lines->ptr[i] == ':' && lines->ptr[i + 1] == ' ')) i++;
  if (i == 0 || i + 1 >= n) return -EH_MALFORMED;
  *name = (eh_str){lines->ptr, i};
  *value = (eh_str){lines->ptr + i + 2, n - i - 2};
  size_t skip = lf ? n + 1 : n;
  lines->ptr += skip;
  lines->len -= skip;
  return 1;
}

/* eh__lines splits b at its first empty line: *lines the header lines
 * before it (each ending in LF), *rest what follows it. 0, or -EH_MALFORMED. */
static int32_t eh__lines(eh_str b, eh_str *lines, eh_str *rest) {
  size_t i = 0;
  while (i < b.len && b.ptr[i] != '\n') {
    const char *lf = (const char *)memchr(b.ptr + i, '\n', b.len - i);
    if (!lf) return -EH_MALFORMED;
    i = (size_t)(lf - b.ptr) + 1;
  }
  if (i >= b.len) return -EH_MALFORMED;
  *lines = (eh_str){b.ptr, i};
  *rest = (eh_str){b.ptr + i + 1, b.len - i - 1};
  return 0;
}

/* eh_http_parse_response parses raw, a response in SPEC §5.3's framing
 * (STATUS LF, header lines, LF, body), into *r, whose views point into
 * raw. 0, or -EH_MALFORMED. */
static inline int32_t eh_http_parse_response(eh_str raw, eh_http_response *r) {
  if (raw.len < 4 || raw.ptr[3] != '\n') return -EH_MALFORMED;
  int status = 0;
  for (int i = 0; i < 3; i++) {
    if (raw.ptr[i] < '0' || raw.ptr[i] > '9') return -EH_MALFORMED;
    status = status * 10 + (raw.ptr[i] - '0');
  }
  if (eh__lines((eh_str){raw.ptr + 4, raw.len - 4}, &r->headers, &r->body) < 0) return -EH_MALFORMED;
  r->status = status;
  r->raw = raw;
  return 0;
}

/* eh_route_request parses the cloud request a route plugin receives, m's
 * content (SPEC §10): METHOD SP URL LF, header lines, LF, body. *r's views
 * point into m. 0, or -EH_MALFORMED. */
static inline int32_t eh_route_request(const eh_message *m, eh_http_req *r) {
  eh_str c = m->content;
  const char *lf = (const char *)memchr(c.ptr, '\n', c.len);
  if (!lf) return -EH_MALFORMED;
  size_t n = (size_t)(lf - c.ptr);
  const char *sp = (const char *)memchr(c.ptr, ' ', n);
  if (!sp || sp == c.ptr) return -EH_MALFORMED;
  r->method = (eh_str){c.ptr, (size_t)(sp - c.ptr)};
  r->url = (eh_str){sp + 1, n - (size_t)(sp - c.ptr) - 1};
  return eh__lines((eh_str){lf + 1, c.len - n - 1}, &r->headers, &r->body);
}

/* A framed request and its timeout, for eh__call_http. */
typedef struct {
  const uint8_t *req;
  int32_t len, timeout_ms;
} eh__http;

static int32_t eh__call_http(int again, const void *arg, uint8_t *out, int32_t cap) {
  const eh__http *h = (const eh__http *)arg;
  return again ? eh__imp_http_reply(out, cap) : eh__imp_http_request(h->req, h->len, h->timeout_ms, out, cap);
}

/* eh_http_request makes r through the host and waits up to timeout_ms (<= 0:
 * until shortly before the call's own timeout) for the whole response,
 * parsed into *resp as views of the SDK's in buffer (see the conventions
 * above; a response larger than the buffer is fetched with http_reply). r's
 * header lines may omit the last LF. A status the server sends (404, 500)
 * is a response; redirects are not followed. Returns 0, or -code:
 * -EH_DENIED outside the plugin's http grant, -EH_TIMEOUT when the wait
 * ended, -EH_UNREACHABLE when the server cannot be reached, -EH_MALFORMED
 * for a request the framing refuses (a Host or Content-Length header...). */
static inline int32_t eh_http_request(const eh_http_req *r, int32_t timeout_ms, eh_http_response *resp) {
  int lf = r->headers.len > 0 && r->headers.ptr[r->headers.len - 1] != '\n';
  size_t n = r->method.len + 1 + r->url.len + 1 + r->headers.len + (size_t)lf + 1 + r->body.len;
  if (n > 0x7FFFFFFFu) return -EH_TOO_LARGE;
  if (!eh__reserve(&eh__buf.msg, &eh__buf.msg_cap, n)) return -EH_INTERNAL;
  uint8_t *q = eh__buf.msg;
  memcpy(q, r->method.ptr, r->method.len), q += r->method.len;
  *q++ = ' ';
  memcpy(q, r->url.ptr, r->url.len), q += r->url.len;
  *q++ = '\n';
  if (r->headers.len) memcpy(q, r->headers.ptr, r->headers.len), q += r->headers.len;
  if (lf) *q++ = '\n';
  *q++ = '\n';
  if (r->body.len) memcpy(q, r->body.ptr, r->body.len);
  eh__http h = {eh__buf.msg, (int32_t)n, timeout_ms};
  eh_str raw;
  int32_t c = eh__fetch(eh__call_http, &h, &raw);
  if (c < 0) return c;
  return eh_http_parse_response(raw, resp);
}


/* eh_reply builds the reply of a handler: content appended with
 * eh_reply_write / eh_reply_printf goes straight to its place in the reply
 * envelope, in a buffer the SDK reuses. By default the reply has the
 * request's route with operation "response", the request's resource
 * version and timestamp 0 (the host sets the time); the eh_reply_set_*
 * functions change that. Its fields are the SDK's: use the functions. */
typedef struct {
  uint8_t *buf; /* the envelope: room for the head, then the content */
  size_t cap, head, len;
  unsigned set;
  int failed; /* an allocation failed: the call fails with EH_INTERNAL */
  eh_str operation, source, group, resource, version;
  int64_t timestamp;
} eh_reply;

enum { EH__SET_OP = 1, EH__SET_ROUTE = 2, EH__SET_VERSION = 4 };

/* eh__room makes room for n more bytes of content. */
static int eh__room(eh_reply *w, size_t n) {
  size_t need = w->head + w->len + n;
  if (need <= w->cap) return 1;
  size_t size = 2 * w->cap > need ? 2 * w->cap : need;
  if (size < EH__MIN_BUFFER) size = EH__MIN_BUFFER;
  uint8_t *p = (uint8_t *)realloc(w->buf, size);
  if (!p) {
    w->failed = 1;
    return 0;
  }
  w->buf = p;
  w->cap = size;
  return 1;
}

/* eh_reply_write appends n bytes at p to the reply's content. */
static inline void eh_reply_write(eh_reply *w, const void *p, size_t n) {
  if (n == 0 || !eh__room(w, n)) return;
  memcpy(w->buf + w->head + w->len, p, n);
  w->len += n;
}

/* eh_reply_write_str appends s to the reply's content. */
static inline void eh_reply_write_str(eh_reply *w, eh_str s) { eh_reply_write(w, s.ptr, s.len); }

/* eh_reply_printf appends printf-formatted text to the reply's content. */
static inline __attribute__((format(printf, 2, 3))) void eh_reply_printf(eh_reply *w, const char *fmt, ...) {
  va_list ap;
  for (int pass = 0; pass < 2; pass++) {
    size_t room = w->cap - w->head - w->len;
    va_start(ap, fmt);
    int n = vsnprintf((char *)w->buf + w->head + w->len, room, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < room) {
      w->len += (size_t)n;
      return;
    }
    if (!eh__room(w, (size_t)n + 1)) return;
  }
}

/* eh_reply_reset drops the content written so far. */
static inline void eh_reply_reset(eh_reply *w) { w->len = 0; }

/* eh_reply_set_operation sets the reply's operation (default "response"). */
static inline void eh_reply_set_operation(eh_reply *w, eh_str op) {
  w->operation = op;
  w->set |= EH__SET_OP;
}

/* eh_reply_set_route sets the reply's whole route in place of the request's. */
static inline void eh_reply_set_route(eh_reply *w, eh_str source, eh_str group, eh_str operation, eh_str resource) {
  w->source = source, w->group = group, w->operation = operation, w->resource = resource;
  w->set |= EH__SET_ROUTE | EH__SET_OP;
}

/* eh_reply_set_resource_version sets the reply's resource version. */
static inline void eh_reply_set_resource_version(eh_reply *w, eh_str v) {
  w->version = v;
  w->set |= EH__SET_VERSION;
}

/* eh_reply_set_timestamp sets the reply's timestamp (Unix ms; 0: the host's time). */
static inline void eh_reply_set_timestamp(eh_reply *w, int64_t ms) { w->timestamp = ms; }

/* eh_reply_error turns the reply into an application failure, as SPEC §4
 * asks: the request's route with operation "error", no resource version
 * and msg as the content (what was written is dropped). It returns
 * EH_REPLY, so a handler can `return eh_reply_error(w, ...)`. */
static inline int eh_reply_error(eh_reply *w, eh_str msg) {
  w->len = 0;
  w->set = EH__SET_OP | EH__SET_VERSION;
  w->operation = EH_LIT("error");
  w->version = (eh_str){0, 0};
  w->timestamp = 0;
  eh_reply_write(w, msg.ptr, msg.len);
  return EH_REPLY;
}

/* eh_reply_errorf is eh_reply_error with printf-formatted text. */
static inline __attribute__((format(printf, 2, 3))) int eh_reply_errorf(eh_reply *w, const char *fmt, ...) {
  eh_reply_error(w, (eh_str){0, 0});
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(eh__buf.line, sizeof eh__buf.line, fmt, ap);
  va_end(ap);
  if (n > 0) eh_reply_write(w, eh__buf.line, (size_t)n < sizeof eh__buf.line ? (size_t)n : sizeof eh__buf.line - 1);
  return EH_REPLY;
}

/* eh_reply_http writes a route plugin's answer (SPEC §10) into the reply:
 * status (100-999), header lines (the last LF may be omitted) and body in
 * SPEC §5.3's response framing. A forwarder replies with the response it
 * got as it is instead: eh_reply_write_str(w, resp.raw). Returns EH_REPLY. */
static inline int eh_reply_http(eh_reply *w, int status, eh_str headers, eh_str body) {
  w->len = 0;
  eh_reply_printf(w, "%03d\n", status);
  eh_reply_write_str(w, headers);
  if (headers.len > 0 && headers.ptr[headers.len - 1] != '\n') eh_reply_write(w, "\n", 1);
  eh_reply_write(w, "\n", 1);
  eh_reply_write_str(w, body);
  return EH_REPLY;
}

/* ---- Registration and the exports (SPEC §4) ---- */

/* The plugin's callbacks; any may be NULL.
 * - init gets the config (opaque bytes, possibly empty; a view: copy what
 *   you keep) and returns 0, or a positive code to refuse to start (log
 *   the reason first: only the code reaches the host).
 * - handle handles one message (a view, valid during the call) and builds
 *   its reply in w; see EH_REPLY. Without it every message fails with
 *   EH_NO_HANDLER.
 * - tick does periodic work; 0 or a positive code.
 * - stop runs before an orderly discard of the instance. */
typedef struct {
  int (*init)(eh_str config);
  int (*handle)(const eh_message *m, eh_reply *w);
  int (*tick)(void);
  void (*stop)(void);
} eh_plugin;

/* EDGEHOST_PLUGIN(.handle = h, .init = i, ...) registers the callbacks. */
#define EDGEHOST_PLUGIN(...) const eh_plugin edgehost_plugin = {__VA_ARGS__}
extern const eh_plugin edgehost_plugin;

#define EH__EXPORT(name) __attribute__((export_name(name), visibility("default")))

EH__EXPORT("edgehost_abi_version") int32_t edgehost_abi_version(void) { return EDGEHOST_ABI_MAJOR; }

/* The exchange buffer: at least n bytes (any n, not only powers of two),
 * moved only when a larger one is asked for. */
EH__EXPORT("edgehost_buffer") int32_t edgehost_buffer(int32_t n) {
  if (n < 0 || !eh__reserve(&eh__buf.exchange, &eh__buf.exchange_cap, (size_t)n)) return 0;
  return (int32_t)(uintptr_t)eh__buf.exchange;
}

EH__EXPORT("edgehost_init") int32_t edgehost_init(int32_t config_len) {
  if (config_len < 0 || (size_t)config_len > eh__buf.exchange_cap) return EH_INVALID_ARGUMENT;
  if (!edgehost_plugin.init) return EH_OK;
  int r = edgehost_plugin.init((eh_str){(const char *)eh__buf.exchange, (size_t)config_len});
  return r > 0 ? r : r < 0 ? EH_INTERNAL : EH_OK;
}

EH__EXPORT("edgehost_tick") int32_t edgehost_tick(void) {
  if (!edgehost_plugin.tick) return EH_OK;
  int r = edgehost_plugin.tick();
  return r > 0 ? r : r < 0 ? EH_INTERNAL : EH_OK;
}

EH__EXPORT("edgehost_stop") void edgehost_stop(void) {
  if (edgehost_plugin.stop) edgehost_plugin.stop();
}

/* The request being handled and its reply, reused from call to call. */
static eh_message eh__request;
static eh_reply eh__reply;

/* eh__finish writes the head of the reply to the request m in front of
 * its content and returns the envelope's location for edgehost_handle. */
static int64_t eh__finish(const eh_message *m, eh_reply *w) {
  eh_str op = w->set & EH__SET_OP ? w->operation : EH_LIT("response");
  eh_str version = w->set & EH__SET_VERSION ? w->version : m->resource_version;
  int route = (w->set & EH__SET_ROUTE) != 0;
  /* No id (the host gives one); parent_id is the request's id. */
  eh_str f[7] = {{0, 0}, m->id, version, route ? w->source : m->source, route ? w->group : m->group, op,
                 route ? w->resource : m->resource};
  size_t head = EH_HEADER_LEN;
  for (int i = 0; i < 7; i++) {
    if (f[i].len > EH_MAX_STRING) {
      eh_log(EH_ERROR, EH_LIT("handle: reply does not fit the envelope"));
      return -EH_TOO_LARGE;
    }
    head += f[i].len;
  }
  if (w->len > EH_MAX_CONTENT || head + w->len > 0x7FFFFFFFu) {
    eh_log(EH_ERROR, EH_LIT("handle: reply does not fit the envelope"));
    return -EH_TOO_LARGE;
  }
  if (head != w->head) { /* a head other than the default: move the content */
    if (head > w->head && !eh__room(w, head - w->head)) return -EH_INTERNAL;
    memmove(w->buf + head, w->buf + w->head, w->len);
  }
  uint8_t *b = w->buf;
  b[0] = 1;
  b[1] = 0;
  eh__put64(b + 2, (uint64_t)w->timestamp);
  uint8_t *q = b + EH_HEADER_LEN;
  for (int i = 0; i < 7; i++) {
    eh__put16(b + 10 + 2 * i, (uint32_t)f[i].len);
    if (f[i].len) memcpy(q, f[i].ptr, f[i].len);
    q += f[i].len;
  }
  eh__put32(b + 24, (uint32_t)w->len);
  size_t total = head + w->len;
  return (int64_t)((uint64_t)total << 32 | (uint32_t)(uintptr_t)b);
}

EH__EXPORT("edgehost_handle") int64_t edgehost_handle(int32_t n) {
  if (n < 0 || (size_t)n > eh__buf.exchange_cap) return -EH_INVALID_ARGUMENT;
  if (!edgehost_plugin.handle) return -EH_NO_HANDLER;
  eh_message *m = &eh__request;
  if (eh_decode(eh__buf.exchange, (size_t)n, m) < 0) {
    eh_log(EH_ERROR, EH_LIT("handle: malformed envelope"));
    return -EH_MALFORMED;
  }
  eh_reply *w = &eh__reply;
  /* Room in front of the content for the default head: the request's
   * strings less its parent_id, with operation "response". */
  w->head = EH_HEADER_LEN + m->id.len + m->resource_version.len + m->source.len + m->group.len + 8 + m->resource.len;
  w->len = 0;
  w->set = 0;
  w->failed = 0;
  w->timestamp = 0;
  if (!eh__room(w, 0)) return -EH_INTERNAL;
  int r = edgehost_plugin.handle(m, w);
  if (r == EH_NO_REPLY) return 0;
  if (r > 0) return -(int64_t)r;
  if (r < 0) return -EH_INTERNAL;
  if (w->failed) {
    eh_log(EH_ERROR, EH_LIT("handle: out of memory for the reply"));
    return -EH_INTERNAL;
  }
  return eh__finish(m, w);
}

#endif /* EDGEHOST_H */
