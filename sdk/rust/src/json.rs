//! A small JSON reader and writer (content and config are JSON by
//! convention, and there is no serde without crates.io), with the output
//! rules of Go's encoding/json so Rust and Go plugins answer alike: strings
//! escaped as Go escapes them, numbers in their shortest form that reads
//! back exactly, times as RFC 3339 with nanoseconds.
//!
//! ```ignore
//! let mut r = json::Reader::new(content);
//! r.object();
//! while let Some(key) = r.member() {
//!     if json::key_is(key, "t") { t = r.number(); } else { r.skip(); }
//! }
//! r.end();
//! if let Some(why) = r.err { ... }
//! ```

/// A position in a JSON text. `err` is set at the first error (a short
/// reason), after which every call fails.
pub struct Reader<'a> {
    b: &'a [u8],
    i: usize,
    /// Why the text is not what was asked for, once it is not.
    pub err: Option<&'static str>,
    first: bool,
}

/// Reports whether the raw key equals name, ignoring ASCII case as Go's
/// encoding/json does.
pub fn key_is(key: &[u8], name: &str) -> bool {
    key.eq_ignore_ascii_case(name.as_bytes())
}

impl<'a> Reader<'a> {
    /// A reader over b.
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, i: 0, err: None, first: false }
    }

    fn fail<T>(&mut self, why: &'static str) -> Option<T> {
        if self.err.is_none() {
            self.err = Some(why);
        }
        None
    }

    /// The next value's first byte, or None at the end or after an error.
    pub fn peek(&mut self) -> Option<u8> {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
        if self.err.is_some() {
            return None;
        }
        self.b.get(self.i).copied()
    }

    /// Enters an object; false if the next value is not one.
    pub fn object(&mut self) -> bool {
        if self.peek() != Some(b'{') {
            return self.fail::<()>("not an object").is_some();
        }
        self.i += 1;
        self.first = true;
        true
    }

    fn raw_string(&mut self) -> Option<&'a [u8]> {
        if self.peek() != Some(b'"') {
            return self.fail("not a string");
        }
        self.i += 1;
        let start = self.i;
        while self.i < self.b.len() && self.b[self.i] != b'"' {
            if self.b[self.i] < 0x20 {
                return self.fail("control character in a string");
            }
            if self.b[self.i] == b'\\' {
                self.i += 1;
            }
            self.i += 1;
        }
        if self.i >= self.b.len() {
            return self.fail("unterminated string");
        }
        self.i += 1;
        Some(&self.b[start..self.i - 1])
    }

    /// The raw key of the next member of the object entered (the reader is
    /// then at its value, which the caller reads or skips), or None at the
    /// object's end or an error.
    pub fn member(&mut self) -> Option<&'a [u8]> {
        let c = match self.peek() {
            Some(c) => c,
            None => return self.fail("unexpected end of JSON input"),
        };
        if c == b'}' {
            self.i += 1;
            self.first = false;
            return None;
        }
        if !self.first {
            if c != b',' {
                return self.fail("expected , or } after an object member");
            }
            self.i += 1;
        }
        self.first = false;
        let key = self.raw_string()?;
        if self.peek() != Some(b':') {
            return self.fail("expected : after an object key");
        }
        self.i += 1;
        Some(key)
    }

    /// Consumes a null: true if the next value is one (else nothing is
    /// consumed).
    pub fn null(&mut self) -> bool {
        if self.peek() != Some(b'n') {
            return false;
        }
        if !self.b[self.i..].starts_with(b"null") {
            return self.fail::<()>("invalid literal").is_some();
        }
        self.i += 4;
        true
    }

    fn number_span(&mut self) -> Option<&'a str> {
        self.peek();
        let b = self.b;
        let start = self.i;
        let mut p = start;
        let digits = |p: &mut usize| {
            let s = *p;
            while *p < b.len() && b[*p].is_ascii_digit() {
                *p += 1;
            }
            *p > s
        };
        if b.get(p) == Some(&b'-') {
            p += 1;
        }
        match b.get(p) {
            Some(b'0') => p += 1,
            Some(c) if c.is_ascii_digit() => {
                digits(&mut p);
            }
            _ => return self.fail("not a number"),
        }
        if b.get(p) == Some(&b'.') {
            p += 1;
            if !digits(&mut p) {
                return self.fail("not a number");
            }
        }
        if matches!(b.get(p), Some(b'e') | Some(b'E')) {
            p += 1;
            if matches!(b.get(p), Some(b'+') | Some(b'-')) {
                p += 1;
            }
            if !digits(&mut p) {
                return self.fail("not a number");
            }
        }
        self.i = p;
        std::str::from_utf8(&b[start..p]).ok()
    }

    /// Reads a number; None if the next value is not a number or is out of
    /// an f64's range.
    pub fn number(&mut self) -> Option<f64> {
        let s = self.number_span()?;
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            _ => self.fail("number out of range"),
        }
    }

    /// Reads a string, its escapes decoded; None if the next value is not
    /// a valid string. A lone surrogate escape or invalid UTF-8 becomes
    /// U+FFFD, as in Go.
    pub fn string(&mut self) -> Option<String> {
        let raw = self.raw_string()?;
        let mut out = Vec::with_capacity(raw.len());
        let mut p = 0;
        while p < raw.len() {
            let c = raw[p];
            if c != b'\\' {
                out.push(c);
                p += 1;
                continue;
            }
            let e = raw.get(p + 1).copied().unwrap_or(0);
            p += 2;
            match e {
                b'"' | b'\\' | b'/' => out.push(e),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let hex = |at: usize| {
                        raw.get(at..at + 4)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                    };
                    let mut cp = match hex(p) {
                        Some(v) => v,
                        None => return self.fail("invalid \\u escape"),
                    };
                    p += 4;
                    if (0xD800..0xDC00).contains(&cp) && raw.get(p..p + 2) == Some(b"\\u") {
                        if let Some(lo) = hex(p + 2).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            p += 6;
                        }
                    }
                    let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => return self.fail("invalid escape"),
            }
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    /// Skips the next value, whatever it is; false if it is not valid JSON.
    pub fn skip(&mut self) -> bool {
        match self.peek() {
            Some(b'"') => self.raw_string().is_some(),
            Some(b'{') => {
                self.i += 1;
                self.first = true;
                while self.member().is_some() {
                    if !self.skip() {
                        return false;
                    }
                }
                self.err.is_none()
            }
            Some(b'[') => {
                self.i += 1;
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return true;
                }
                loop {
                    if !self.skip() {
                        return false;
                    }
                    let c = self.peek();
                    self.i += 1;
                    match c {
                        Some(b']') => return true,
                        Some(b',') => {}
                        _ => return self.fail::<()>("expected , or ] in an array").is_some(),
                    }
                }
            }
            Some(b't') | Some(b'f') => {
                for lit in [&b"true"[..], &b"false"[..]] {
                    if self.b[self.i..].starts_with(lit) {
                        self.i += lit.len();
                        return true;
                    }
                }
                self.fail::<()>("invalid literal").is_some()
            }
            Some(b'n') => self.null(),
            None => self.fail::<()>("unexpected end of JSON input").is_some(),
            Some(_) => self.number_span().is_some(),
        }
    }

    /// Reports whether only whitespace is left.
    pub fn end(&mut self) -> bool {
        if self.peek().is_some() {
            return self.fail::<()>("invalid character after the value").is_some();
        }
        self.err.is_none()
    }

    /// The text of the next value, skipped, as it is written.
    pub fn raw_value(&mut self) -> Option<&'a [u8]> {
        self.peek();
        let start = self.i;
        if self.skip() {
            Some(&self.b[start..self.i])
        } else {
            None
        }
    }
}

/// Appends s as a JSON string, escaped as Go's encoding/json escapes it
/// (", \, control characters, <, >, &, U+2028, U+2029).
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends v as Go's encoding/json writes a float64: the shortest digits
/// that read back as v, in plain notation, or in exponent notation (1e+21,
/// 1e-7) below 1e-6 and from 1e21 on. NaN and infinities, which JSON cannot
/// hold, are written as null.
pub fn write_number(out: &mut String, v: f64) {
    if !v.is_finite() {
        out.push_str("null");
        return;
    }
    let a = v.abs();
    if a != 0.0 && (a < 1e-6 || a >= 1e21) {
        let s = format!("{:e}", v); // e.g. 1e21, 1.5e-7
        match s.find('e') {
            Some(i) if !s[i + 1..].starts_with('-') => {
                out.push_str(&s[..=i]);
                out.push('+');
                out.push_str(&s[i + 1..]);
            }
            _ => out.push_str(&s),
        }
    } else {
        out.push_str(&format!("{}", v)); // shortest, plain: 21.5, 19, -0
    }
}

/// Appends the Unix time ns (UTC) as Go's encoding/json writes a time.Time
/// in UTC: "2006-01-02T15:04:05.999999999Z", no trailing zeros in the
/// fraction.
pub fn write_time(out: &mut String, ns: i64) {
    let (secs, frac) = (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // civil_from_days (H. Hinnant)
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    out.push_str(&format!("\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", y, m, d, rem / 3600, rem / 60 % 60, rem % 60));
    if frac != 0 {
        let f = format!(".{:09}", frac);
        out.push_str(f.trim_end_matches('0'));
    }
    out.push_str("Z\"");
}
