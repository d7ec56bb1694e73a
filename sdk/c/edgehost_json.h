/* edgehost_json.h — a small JSON reader and writer for edgehost C plugins
 * (content and config are JSON by convention), with the output rules of
 * Go's encoding/json so C and Go plugins answer alike: strings escaped as
 * Go escapes them, numbers in their shortest form that reads back exactly,
 * times as RFC 3339 with nanoseconds. Include it after edgehost.h.
 *
 * Reading walks one value at a time; keys are compared as Go does
 * (eh_json_key_is: ASCII case-insensitive):
 *
 *   eh_json j = eh_json_start(m->content);
 *   eh_str key;
 *   if (!eh_json_object(&j)) ...;           // j.err says why
 *   while (eh_json_member(&j, &key) > 0) {
 *     if (eh_json_key_is(key, "t")) eh_json_number(&j, &t);
 *     else eh_json_skip(&j);
 *   }
 *   if (j.err || !eh_json_end(&j)) ...;
 */
#ifndef EDGEHOST_JSON_H
#define EDGEHOST_JSON_H

#include <errno.h>
#include <math.h>

#include "edgehost.h"

/* ---- A growable byte buffer ---- */

/* eh_buf is a growable byte buffer; the zero value is empty. */
typedef struct {
  char *ptr;
  size_t len, cap;
  int failed; /* an allocation failed: the contents are incomplete */
} eh_buf;

/* eh_buf_write appends n bytes at p. */
static inline void eh_buf_write(eh_buf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t size = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n;
    if (size < 256) size = 256;
    char *q = (char *)realloc(b->ptr, size);
    if (!q) {
      b->failed = 1;
      return;
    }
    b->ptr = q, b->cap = size;
  }
  if (n) memcpy(b->ptr + b->len, p, n);
  b->len += n;
}

/* eh_buf_puts appends a NUL-terminated string. */
static inline void eh_buf_puts(eh_buf *b, const char *s) { eh_buf_write(b, s, strlen(s)); }

/* eh_buf_str views the buffer's contents. */
static inline eh_str eh_buf_str(const eh_buf *b) { return (eh_str){b->ptr, b->len}; }

/* eh_buf_free releases the buffer and empties it. */
static inline void eh_buf_free(eh_buf *b) {
  free(b->ptr);
  *b = (eh_buf){0, 0, 0, 0};
}

/* ---- Reading ---- */

/* eh_json is a position in a JSON text; err is set (to a short reason) at
 * the first error, after which every call fails. */
typedef struct {
  const char *p, *end;
  const char *err;
  int first; /* at the first member of the object entered last */
} eh_json;

/* eh_json_start returns a reader over s. */
static inline eh_json eh_json_start(eh_str s) { return (eh_json){s.ptr, s.ptr + s.len, 0, 0}; }

static inline void eh__json_ws(eh_json *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static inline int eh__json_fail(eh_json *j, const char *why) {
  if (!j->err) j->err = why;
  return 0;
}

/* eh_json_peek returns the next value's first byte, or 0 at the end. */
static inline char eh_json_peek(eh_json *j) {
  eh__json_ws(j);
  return j->err || j->p >= j->end ? 0 : *j->p;
}

/* eh_json_object enters an object: 1, or 0 if the next value is not one. */
static inline int eh_json_object(eh_json *j) {
  if (eh_json_peek(j) != '{') return eh__json_fail(j, "not an object");
  j->p++;
  j->first = 1;
  return 1;
}

/* eh_json_key_is reports whether the raw key equals name, ignoring ASCII
 * case as Go's encoding/json does. */
static inline int eh_json_key_is(eh_str key, const char *name) {
  size_t n = strlen(name);
  if (key.len != n) return 0;
  for (size_t i = 0; i < n; i++) {
    char a = key.ptr[i], b = name[i];
    if (a >= 'A' && a <= 'Z') a += 'a' - 'A';
    if (b >= 'A' && b <= 'Z') b += 'a' - 'A';
    if (a != b) return 0;
  }
  return 1;
}

/* eh__json_raw_string consumes a string, viewing its raw bytes (escapes
 * left in) in *raw. */
static inline int eh__json_raw_string(eh_json *j, eh_str *raw) {
  if (eh_json_peek(j) != '"') return eh__json_fail(j, "not a string");
  const char *s = ++j->p;
  while (j->p < j->end && *j->p != '"') {
    if ((unsigned char)*j->p < 0x20) return eh__json_fail(j, "control character in a string");
    if (*j->p == '\\') j->p++;
    j->p++;
  }
  if (j->p >= j->end) return eh__json_fail(j, "unterminated string");
  raw->ptr = s;
  raw->len = (size_t)(j->p - s);
  j->p++;
  return 1;
}

/* eh_json_member reads the next member of the object entered: 1 with its
 * raw key in *key (the reader is then at its value, which the caller must
 * read or skip), 0 at the object's end (or at an error, j->err set). */
static inline int eh_json_member(eh_json *j, eh_str *key) {
  char c = eh_json_peek(j);
  if (c == '}' && j->first) {
    j->p++;
    j->first = 0;
    return 0;
  }
  if (!j->first) {
    if (c == '}') {
      j->p++;
      return 0;
    }
    if (c != ',') return eh__json_fail(j, "expected , or } after an object member");
    j->p++;
  }
  j->first = 0;
  if (!eh__json_raw_string(j, key)) return 0;
  if (eh_json_peek(j) != ':') return eh__json_fail(j, "expected : after an object key");
  j->p++;
  return 1;
}

/* eh_json_null consumes a null: 1 if the next value is one, else 0 (and
 * nothing is consumed). */
static inline int eh_json_null(eh_json *j) {
  if (eh_json_peek(j) != 'n') return 0;
  if (j->end - j->p < 4 || memcmp(j->p, "null", 4) != 0) return eh__json_fail(j, "invalid literal");
  j->p += 4;
  return 1;
}

/* eh__json_number_span consumes a number's text as JSON's grammar has it. */
static inline int eh__json_number_span(eh_json *j, eh_str *text) {
  eh__json_ws(j);
  const char *s = j->p, *p = s, *e = j->end;
  if (p < e && *p == '-') p++;
  if (p < e && *p == '0') p++;
  else if (p < e && *p >= '1' && *p <= '9') while (p < e && *p >= '0' && *p <= '9') p++;
  else return eh__json_fail(j, "not a number");
  if (p < e && *p == '.') {
    p++;
    if (!(p < e && *p >= '0' && *p <= '9')) return eh__json_fail(j, "not a number");
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < e && (*p == '+' || *p == '-')) p++;
    if (!(p < e && *p >= '0' && *p <= '9')) return eh__json_fail(j, "not a number");
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  text->ptr = s;
  text->len = (size_t)(p - s);
  j->p = p;
  return 1;
}

/* eh_json_number reads a number into *v: 1, or 0 if the next value is
 * not a number or is out of a double's range. */
static inline int eh_json_number(eh_json *j, double *v) {
  eh_str t;
  if (!eh__json_number_span(j, &t)) return 0;
  char small[64], *s = small;
  if (t.len >= sizeof small && !(s = (char *)malloc(t.len + 1))) return eh__json_fail(j, "out of memory");
  memcpy(s, t.ptr, t.len);
  s[t.len] = 0;
  errno = 0;
  double d = strtod(s, 0);
  int range = errno == ERANGE && isinf(d);
  if (s != small) free(s);
  if (range) return eh__json_fail(j, "number out of range");
  *v = d;
  return 1;
}

/* eh__utf8_put appends code point cp as UTF-8. */
static inline void eh__utf8_put(eh_buf *b, uint32_t cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) u[0] = (char)cp, n = 1;
  else if (cp < 0x800) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
  else if (cp < 0x10000)
    u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3F)), u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
  else
    u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3F)), u[2] = (char)(0x80 | (cp >> 6 & 0x3F)),
    u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
  eh_buf_write(b, u, n);
}

static inline int eh__hex4(const char *p, uint32_t *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    *v <<= 4;
    if (c >= '0' && c <= '9') *v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') *v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') *v |= (uint32_t)(c - 'A' + 10);
    else return 0;
  }
  return 1;
}

/* eh_json_string reads a string, its escapes decoded, appending it to
 * out: 1, or 0 if the next value is not a valid string. A lone surrogate
 * escape or invalid UTF-8 becomes U+FFFD, as in Go. */
static inline int eh_json_string(eh_json *j, eh_buf *out) {
  eh_str raw;
  if (!eh__json_raw_string(j, &raw)) return 0;
  const char *p = raw.ptr, *e = raw.ptr + raw.len;
  while (p < e) {
    const char *run = p;
    while (p < e && *p != '\\' && (unsigned char)*p < 0x80) p++;
    eh_buf_write(out, run, (size_t)(p - run));
    if (p >= e) break;
    if ((unsigned char)*p >= 0x80) { /* a UTF-8 sequence, kept if valid */
      size_t k = (unsigned char)*p >= 0xF0 ? 4 : (unsigned char)*p >= 0xE0 ? 3 : 2;
      if ((size_t)(e - p) >= k && eh_utf8_valid((const uint8_t *)p, k)) {
        eh_buf_write(out, p, k);
        p += k;
      } else {
        eh__utf8_put(out, 0xFFFD);
        p++;
      }
      continue;
    }
    p++; /* the backslash */
    char c = p < e ? *p++ : 0;
    switch (c) {
    case '"': case '\\': case '/': eh_buf_write(out, &c, 1); break;
    case 'b': eh_buf_write(out, "\b", 1); break;
    case 'f': eh_buf_write(out, "\f", 1); break;
    case 'n': eh_buf_write(out, "\n", 1); break;
    case 'r': eh_buf_write(out, "\r", 1); break;
    case 't': eh_buf_write(out, "\t", 1); break;
    case 'u': {
      uint32_t cp, lo;
      if (e - p < 4 || !eh__hex4(p, &cp)) return eh__json_fail(j, "invalid \\u escape");
      p += 4;
      if (cp >= 0xD800 && cp < 0xDC00 && e - p >= 6 && p[0] == '\\' && p[1] == 'u' && eh__hex4(p + 2, &lo) &&
          lo >= 0xDC00 && lo < 0xE000) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
      } else if (cp >= 0xD800 && cp < 0xE000) {
        cp = 0xFFFD;
      }
      eh__utf8_put(out, cp);
      break;
    }
    default: return eh__json_fail(j, "invalid escape");
    }
  }
  return 1;
}

/* eh_json_skip skips the next value, whatever it is: 1, or 0 if it is not
 * valid JSON. */
static inline int eh_json_skip(eh_json *j) {
  eh_str s;
  switch (eh_json_peek(j)) {
  case '"': return eh__json_raw_string(j, &s);
  case '{': {
    j->p++;
    j->first = 1;
    eh_str key;
    int r;
    while ((r = eh_json_member(j, &key)) > 0)
      if (!eh_json_skip(j)) return 0;
    return j->err == 0;
  }
  case '[':
    j->p++;
    if (eh_json_peek(j) == ']') {
      j->p++;
      return 1;
    }
    for (;;) {
      if (!eh_json_skip(j)) return 0;
      char c = eh_json_peek(j);
      j->p++;
      if (c == ']') return 1;
      if (c != ',') return eh__json_fail(j, "expected , or ] in an array");
    }
  case 't':
    if (j->end - j->p >= 4 && memcmp(j->p, "true", 4) == 0) return j->p += 4, 1;
    return eh__json_fail(j, "invalid literal");
  case 'f':
    if (j->end - j->p >= 5 && memcmp(j->p, "false", 5) == 0) return j->p += 5, 1;
    return eh__json_fail(j, "invalid literal");
  case 'n': return eh_json_null(j);
  case 0: return eh__json_fail(j, "unexpected end of JSON input");
  default: return eh__json_number_span(j, &s);
  }
}

/* eh_json_end reports whether only whitespace is left. */
static inline int eh_json_end(eh_json *j) {
  eh__json_ws(j);
  if (j->err) return 0;
  if (j->p != j->end) return eh__json_fail(j, "invalid character after the value");
  return 1;
}

/* ---- Writing ---- */

/* eh_json_write_string appends s as a JSON string, escaped as Go's
 * encoding/json escapes it (", \, control characters, <, >, &, U+2028,
 * U+2029; invalid UTF-8 as U+FFFD). */
static inline void eh_json_write_string(eh_buf *b, eh_str s) {
  static const char hex[] = "0123456789abcdef";
  const uint8_t *p = (const uint8_t *)s.ptr, *e = p + s.len;
  eh_buf_write(b, "\"", 1);
  while (p < e) {
    const uint8_t *run = p;
    while (p < e && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\' && *p != '<' && *p != '>' && *p != '&') p++;
    eh_buf_write(b, run, (size_t)(p - run));
    if (p >= e) break;
    uint8_t c = *p;
    if (c < 0x80) {
      p++;
      switch (c) {
      case '"': eh_buf_write(b, "\\\"", 2); break;
      case '\\': eh_buf_write(b, "\\\\", 2); break;
      case '\n': eh_buf_write(b, "\\n", 2); break;
      case '\r': eh_buf_write(b, "\\r", 2); break;
      case '\t': eh_buf_write(b, "\\t", 2); break;
      default: {
        char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        eh_buf_write(b, u, 6);
      }
      }
      continue;
    }
    size_t k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if ((size_t)(e - p) < k || !eh_utf8_valid(p, k)) {
      eh_buf_write(b, "\\ufffd", 6);
      p++;
    } else if (k == 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
      eh_buf_write(b, p[2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
      p += 3;
    } else {
      eh_buf_write(b, p, k);
      p += k;
    }
  }
  eh_buf_write(b, "\"", 1);
}

/* eh_json_write_number appends v as Go's encoding/json writes a float64:
 * the shortest digits that read back as v, in plain notation, or in
 * exponent notation (1e+21, 1e-7) below 1e-6 and from 1e21 on. NaN and
 * infinities, which JSON cannot hold, are written as null. */
static inline void eh_json_write_number(eh_buf *b, double v) {
  if (isnan(v) || isinf(v)) {
    eh_buf_puts(b, "null");
    return;
  }
  if (v == 0) {
    eh_buf_puts(b, signbit(v) ? "-0" : "0");
    return;
  }
  char e[40];
  for (int prec = 0; prec < 17; prec++) { /* the shortest %.*e that reads back */
    snprintf(e, sizeof e, "%.*e", prec, v);
    if (strtod(e, 0) == v) break;
  }
  /* e is [-]d[.ddd]e[+-]xx: split into sign, digits and exponent. */
  char digits[24];
  size_t nd = 0;
  const char *p = e;
  int neg = *p == '-';
  if (neg) p++;
  for (; *p && *p != 'e'; p++)
    if (*p != '.') digits[nd++] = *p;
  int exp = atoi(p + 1);
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  if (neg) eh_buf_write(b, "-", 1);
  double a = fabs(v);
  if (a < 1e-6 || a >= 1e21) {
    eh_buf_write(b, digits, 1);
    if (nd > 1) {
      eh_buf_write(b, ".", 1);
      eh_buf_write(b, digits + 1, nd - 1);
    }
    char x[8];
    int n = snprintf(x, sizeof x, "e%c%d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    eh_buf_write(b, x, (size_t)n);
  } else if (exp < 0) {
    eh_buf_write(b, "0.", 2);
    for (int i = -1; i > exp; i--) eh_buf_write(b, "0", 1);
    eh_buf_write(b, digits, nd);
  } else if ((size_t)exp + 1 >= nd) {
    eh_buf_write(b, digits, nd);
    for (size_t i = nd; i < (size_t)exp + 1; i++) eh_buf_write(b, "0", 1);
  } else {
    eh_buf_write(b, digits, (size_t)exp + 1);
    eh_buf_write(b, ".", 1);
    eh_buf_write(b, digits + exp + 1, nd - (size_t)exp - 1);
  }
}

/* eh_json_write_time appends the Unix time ns (UTC) as Go's encoding/json
 * writes a time.Time in UTC: "2006-01-02T15:04:05.999999999Z", without
 * trailing zeros in the fraction. */
static inline void eh_json_write_time(eh_buf *b, int64_t ns) {
  int64_t secs = ns / 1000000000, frac = ns % 1000000000;
  if (frac < 0) frac += 1000000000, secs--;
  int64_t days = secs / 86400, rem = secs % 86400;
  if (rem < 0) rem += 86400, days--;
  /* civil_from_days (H. Hinnant) */
  int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) y++;
  char s[48];
  int n = snprintf(s, sizeof s, "\"%04lld-%02lld-%02lldT%02lld:%02lld:%02lld", (long long)y, (long long)m, (long long)d,
                   (long long)(rem / 3600), (long long)(rem / 60 % 60), (long long)(rem % 60));
  if (frac) {
    char f[11];
    snprintf(f, sizeof f, ".%09lld", (long long)frac);
    size_t fl = 10;
    while (f[fl - 1] == '0') fl--;
    memcpy(s + n, f, fl);
    n += (int)fl;
  }
  memcpy(s + n, "Z\"", 2);
  eh_buf_write(b, s, (size_t)n + 2);
}

#endif /* EDGEHOST_JSON_H */
