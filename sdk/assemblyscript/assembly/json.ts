// A small JSON reader and writer for edgehost plugins (content and config
// are JSON by convention), with the output rules of Go's encoding/json so
// AssemblyScript and Go plugins answer alike: strings escaped as Go escapes
// them, numbers in the plain or exponent form Go picks, times as RFC 3339
// with nanoseconds.
//
//   const r = new Reader(m.ptr(Field.CONTENT), m.len(Field.CONTENT));
//   r.object();
//   let key: string | null;
//   while ((key = r.member()) != null) {
//     if (keyIs(key!, "t")) t = r.number(); else r.skip();
//   }
//   r.end();
//   if (r.err != null) ...

/** keyIs reports whether a key equals name, ignoring ASCII case as Go's
 * encoding/json does. */
export function keyIs(key: string, name: string): bool {
  if (key.length != name.length) return false;
  for (let i = 0; i < key.length; i++) {
    let a = key.charCodeAt(i), b = name.charCodeAt(i);
    if (a >= 65 && a <= 90) a += 32;
    if (b >= 65 && b <= 90) b += 32;
    if (a != b) return false;
  }
  return true;
}

/** A position in a JSON text of n bytes at p. err is set at the first
 * error (a short reason), after which every call fails. */
export class Reader {
  p: usize;
  end_: usize;
  err: string | null = null;
  first: bool = false;

  constructor(p: usize, n: i32) {
    this.p = p;
    this.end_ = p + n;
  }

  /** fromBytes is a reader over b. */
  static fromBytes(b: Uint8Array): Reader { return new Reader(b.dataStart, b.length); }

  fail(why: string): bool {
    if (this.err == null) this.err = why;
    return false;
  }

  /** peek returns the next value's first byte, or -1 at the end or after
   * an error. */
  peek(): i32 {
    while (this.p < this.end_) {
      const c = load<u8>(this.p);
      if (c != 32 && c != 9 && c != 10 && c != 13) break;
      this.p++;
    }
    if (this.err != null || this.p >= this.end_) return -1;
    return load<u8>(this.p);
  }

  /** object enters an object; false if the next value is not one. */
  object(): bool {
    if (this.peek() != 0x7B) return this.fail("not an object");
    this.p++;
    this.first = true;
    return true;
  }

  private rawString(): bool {
    if (this.peek() != 0x22) return this.fail("not a string");
    this.p++;
    while (this.p < this.end_ && load<u8>(this.p) != 0x22) {
      const c = load<u8>(this.p);
      if (c < 0x20) return this.fail("control character in a string");
      if (c == 0x5C) this.p++;
      this.p++;
    }
    if (this.p >= this.end_) return this.fail("unterminated string");
    this.p++;
    return true;
  }

  /** member returns the key of the next member of the object entered (the
   * reader is then at its value, which the caller reads or skips), or
   * null at the object's end or an error. */
  member(): string | null {
    const c = this.peek();
    if (c < 0) { this.fail("unexpected end of JSON input"); return null; }
    if (c == 0x7D) { this.p++; this.first = false; return null; }
    if (!this.first) {
      if (c != 0x2C) { this.fail("expected , or } after an object member"); return null; }
      this.p++;
    }
    this.first = false;
    const key = this.string();
    if (key == null) return null;
    if (this.peek() != 0x3A) { this.fail("expected : after an object key"); return null; }
    this.p++;
    return key;
  }

  /** null_ consumes a null: true if the next value is one. */
  null_(): bool {
    if (this.peek() != 0x6E) return false;
    if (!this.lit("null")) return this.fail("invalid literal");
    return true;
  }

  private lit(s: string): bool {
    if (<i32>(this.end_ - this.p) < s.length) return false;
    for (let i = 0; i < s.length; i++) if (<i32>load<u8>(this.p + i) != s.charCodeAt(i)) return false;
    this.p += s.length;
    return true;
  }

  private digits(): bool {
    const s = this.p;
    while (this.p < this.end_ && load<u8>(this.p) >= 0x30 && load<u8>(this.p) <= 0x39) this.p++;
    return this.p > s;
  }

  private numberSpan(): string | null {
    this.peek();
    const s = this.p;
    if (this.p < this.end_ && load<u8>(this.p) == 0x2D) this.p++;
    if (this.p < this.end_ && load<u8>(this.p) == 0x30) this.p++;
    else if (!this.digits()) { this.fail("not a number"); return null; }
    if (this.p < this.end_ && load<u8>(this.p) == 0x2E) {
      this.p++;
      if (!this.digits()) { this.fail("not a number"); return null; }
    }
    if (this.p < this.end_ && (load<u8>(this.p) | 0x20) == 0x65) {
      this.p++;
      if (this.p < this.end_ && (load<u8>(this.p) == 0x2B || load<u8>(this.p) == 0x2D)) this.p++;
      if (!this.digits()) { this.fail("not a number"); return null; }
    }
    return String.UTF8.decodeUnsafe(s, this.p - s);
  }

  /** number reads a number; NaN (and err set) if the next value is not a
   * number or is out of an f64's range. */
  number(): f64 {
    const s = this.numberSpan();
    if (s == null) return NaN;
    const v = parseFloat(s);
    if (!isFinite(v)) { this.fail("number out of range"); return NaN; }
    return v;
  }

  /** string reads a string, its escapes decoded; null if the next value is
   * not a valid string. A lone surrogate escape becomes U+FFFD, as in Go. */
  string(): string | null {
    this.peek();
    let p = this.p + 1; // after the opening quote
    if (!this.rawString()) return null;
    const e = this.p - 1; // at the closing quote
    let out = "";
    while (p < e) {
      let run = p;
      while (p < e && load<u8>(p) != 0x5C) p++;
      if (p > run) out += String.UTF8.decodeUnsafe(run, p - run);
      if (p >= e) break;
      const c = p + 1 < e ? load<u8>(p + 1) : 0;
      p += 2;
      if (c == 0x22 || c == 0x5C || c == 0x2F) out += String.fromCharCode(c);
      else if (c == 0x62) out += "\b";
      else if (c == 0x66) out += "\f";
      else if (c == 0x6E) out += "\n";
      else if (c == 0x72) out += "\r";
      else if (c == 0x74) out += "\t";
      else if (c == 0x75) {
        let cp = hex4(p, e);
        if (cp < 0) { this.fail("invalid \\u escape"); return null; }
        p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && p + 6 <= e && load<u8>(p) == 0x5C && load<u8>(p + 1) == 0x75) {
          const lo = hex4(p + 2, e);
          if (lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
          }
        }
        if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
        out += String.fromCodePoint(cp);
      } else { this.fail("invalid escape"); return null; }
    }
    return out;
  }

  /** skip skips the next value, whatever it is; false if not valid JSON. */
  skip(): bool {
    const c = this.peek();
    if (c == 0x22) return this.rawString();
    if (c == 0x7B) {
      this.p++;
      this.first = true;
      while (this.member() != null) if (!this.skip()) return false;
      return this.err == null;
    }
    if (c == 0x5B) {
      this.p++;
      if (this.peek() == 0x5D) { this.p++; return true; }
      while (true) {
        if (!this.skip()) return false;
        const d = this.peek();
        this.p++;
        if (d == 0x5D) return true;
        if (d != 0x2C) return this.fail("expected , or ] in an array");
      }
    }
    if (c == 0x74) return this.lit("true") || this.fail("invalid literal");
    if (c == 0x66) return this.lit("false") || this.fail("invalid literal");
    if (c == 0x6E) return this.null_();
    if (c < 0) return this.fail("unexpected end of JSON input");
    return this.numberSpan() != null;
  }

  /** rawValue skips the next value and returns its text as written. */
  rawValue(): string | null {
    this.peek();
    const s = this.p;
    if (!this.skip()) return null;
    return String.UTF8.decodeUnsafe(s, this.p - s);
  }

  /** end reports whether only whitespace is left. */
  end(): bool {
    if (this.peek() >= 0) return this.fail("invalid character after the value");
    return this.err == null;
  }
}

function hex4(p: usize, e: usize): i32 {
  if (p + 4 > e) return -1;
  let v = 0;
  for (let i = 0; i < 4; i++) {
    const c = <i32>load<u8>(p + i);
    v <<= 4;
    if (c >= 0x30 && c <= 0x39) v |= c - 0x30;
    else if (c >= 0x61 && c <= 0x66) v |= c - 0x61 + 10;
    else if (c >= 0x41 && c <= 0x46) v |= c - 0x41 + 10;
    else return -1;
  }
  return v;
}

const HEX = "0123456789abcdef";

/** quote returns s as a JSON string, escaped as Go's encoding/json escapes
 * it (", \, control characters, <, >, &, U+2028, U+2029). */
export function quote(s: string): string {
  let out = "\"";
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | null = null;
    if (c == 0x22) esc = "\\\"";
    else if (c == 0x5C) esc = "\\\\";
    else if (c == 0x0A) esc = "\\n";
    else if (c == 0x0D) esc = "\\r";
    else if (c == 0x09) esc = "\\t";
    else if (c < 0x20 || c == 0x3C || c == 0x3E || c == 0x26 || c == 0x2028 || c == 0x2029) {
      esc = "\\u" + HEX.charAt(c >> 12) + HEX.charAt((c >> 8) & 15) + HEX.charAt((c >> 4) & 15) + HEX.charAt(c & 15);
    }
    if (esc != null) {
      out += s.substring(run, i) + esc;
      run = i + 1;
    }
  }
  return out + s.substring(run) + "\"";
}

/** number returns v as Go's encoding/json writes a float64: plain below
 * 1e21 and from 1e-6, else with an exponent (1e+21, 1e-7); NaN and
 * infinities, which JSON cannot hold, as null. AssemblyScript's dtoa gives
 * the digits (shortest or, rarely, one digit longer). */
export function number(v: f64): string {
  if (!isFinite(v)) return "null";
  if (v == 0) return (1 / v) < 0 ? "-0" : "0";
  const s = v.toString();
  return s.endsWith(".0") ? s.substring(0, s.length - 2) : s;
}

function pad(n: i64, width: i32): string {
  let s = n.toString();
  while (s.length < width) s = "0" + s;
  return s;
}

/** time returns the Unix time ns (UTC) as Go's encoding/json writes a
 * time.Time in UTC, quoted: "2006-01-02T15:04:05.999999999Z", without
 * trailing zeros in the fraction. */
export function time(ns: i64): string {
  let secs = ns / 1000000000, frac = ns % 1000000000;
  if (frac < 0) { frac += 1000000000; secs--; }
  let days = secs / 86400, rem = secs % 86400;
  if (rem < 0) { rem += 86400; days--; }
  // civil_from_days (H. Hinnant)
  const z = days + 719468;
  const era = (z >= 0 ? z : z - 146096) / 146097;
  const doe = z - era * 146097;
  const yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const mp = (5 * doy + 2) / 153;
  const d = doy - (153 * mp + 2) / 5 + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  let s = "\"" + pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2) + "T" + pad(rem / 3600, 2) + ":" + pad((rem / 60) % 60, 2) +
    ":" + pad(rem % 60, 2);
  if (frac != 0) {
    let f = pad(frac, 9);
    while (f.endsWith("0")) f = f.substring(0, f.length - 1);
    s += "." + f;
  }
  return s + "Z\"";
}
