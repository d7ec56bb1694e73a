//! The guest side of the edgehost plugin ABI 1.1 (abi/SPEC.md) for Rust,
//! std only, with ABI 1.3's outbound HTTP ([`http_request`]) and the route
//! plugin helpers ([`route_request`], [`Reply::write_http`]).
//!
//! A plugin implements [`Plugin`] and names its type with [`plugin!`],
//! which defines the module's exports:
//!
//! ```ignore
//! use edgehost::{Message, Plugin, Reply, Error};
//!
//! struct Echo;
//!
//! impl Plugin for Echo {
//!     fn init(_config: &[u8]) -> Result<Self, Error> { Ok(Echo) }
//!     fn handle(&mut self, m: &Message, w: &mut Reply) -> Result<(), Error> {
//!         w.write(m.content);
//!         Ok(())
//!     }
//! }
//!
//! edgehost::plugin!(Echo);
//! ```
//!
//! Build it as a cdylib for wasm32-wasi with Debian's rustc (1.63) and the
//! SDK as an rlib; scripts/build-plugin.sh has the exact lines. Give the
//! module a 64 KiB stack (`-C link-arg=-zstack-size=65536`): Rust's default
//! of 1 MiB makes every instance start at 17 pages of memory instead of 2.
//!
//! Rules, from the ABI: the host makes one call at a time per instance and
//! runs several instances, so the plugin value is per instance and state to
//! share goes in the KV store. The request a handler gets is a view of the
//! exchange buffer, valid during the call: copy what you keep. A panic
//! traps (the crate is built with panic=abort): the host discards the
//! instance and counts a fault.
//!
//! The device I/O imports of ABI 1.2 (tcp_*, udp_*, serial_*) are not here
//! yet; they will come with a module `io` beside [`json`]. A plugin that
//! calls [`http_request`] declares `"abi": "1.3"` and an `http` grant.

use std::fmt;

pub mod json;

/// The ABI major version the module states (`edgehost_abi_version`).
pub const ABI_MAJOR: i32 = 1;

/// A code of SPEC §6: imports return it negated, `init` and `tick` return
/// it, and a handler fails its call with one through [`Error::Code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Code {
    Ok = 0,
    InvalidArgument = 1,
    Malformed = 2,
    TooLarge = 3,
    NotFound = 4,
    Denied = 5,
    Timeout = 6,
    Unavailable = 7,
    Internal = 8,
    Busy = 9,
    NoHandler = 10,
    Loop = 11,
    Closed = 12,
    BadHandle = 13,
    Unreachable = 14,
}

impl Code {
    /// The code numbered n (either sign); unknown numbers are Internal.
    pub fn from_i32(n: i32) -> Code {
        const ALL: [Code; 15] = [
            Code::Ok,
            Code::InvalidArgument,
            Code::Malformed,
            Code::TooLarge,
            Code::NotFound,
            Code::Denied,
            Code::Timeout,
            Code::Unavailable,
            Code::Internal,
            Code::Busy,
            Code::NoHandler,
            Code::Loop,
            Code::Closed,
            Code::BadHandle,
            Code::Unreachable,
        ];
        ALL.get(n.unsigned_abs() as usize).copied().unwrap_or(Code::Internal)
    }

    /// The code's name as SPEC §6 has it.
    pub fn name(self) -> &'static str {
        [
            "ok",
            "invalid argument",
            "malformed",
            "too large",
            "not found",
            "denied",
            "timeout",
            "unavailable",
            "internal",
            "busy",
            "no handler",
            "loop",
            "closed",
            "bad handle",
            "unreachable",
        ][self as usize]
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A log level of [`log`] (SPEC §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Level {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
}

/// The route source of a message delivered from an MQTT subscription.
pub const MQTT_SOURCE: &str = "eventbus";
/// The operation of a message delivered from an MQTT subscription.
pub const MQTT_OPERATION: &str = "publish";

/// One message: KubeEdge's beehive message as the envelope carries it
/// (SPEC §2), its strings and content borrowed. Empty means "not set".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Message<'a> {
    pub id: &'a str,
    pub parent_id: &'a str,
    pub resource_version: &'a str,
    /// Unix milliseconds; 0 lets the host set it.
    pub timestamp: i64,
    /// The sender waits for a reply.
    pub sync: bool,
    pub source: &'a str,
    pub group: &'a str,
    pub operation: &'a str,
    pub resource: &'a str,
    pub content: &'a [u8],
}

/// The length of the envelope's fixed part.
pub const HEADER_LEN: usize = 28;
const MAX_STRING: usize = 0xFFFF;
const MAX_CONTENT: usize = 0x7FFF_FFFF;

fn le16(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

/// Reports whether b is all ASCII, eight bytes at a time.
#[inline(always)]
fn is_ascii(b: &[u8]) -> bool {
    let (mut acc, mut i) = (0u64, 0);
    while i + 8 <= b.len() {
        // Safety: i + 8 <= b.len().
        acc |= unsafe { std::ptr::read_unaligned(b.as_ptr().add(i) as *const u64) };
        i += 8;
    }
    while i < b.len() {
        acc |= b[i] as u64;
        i += 1;
    }
    acc & 0x8080_8080_8080_8080 == 0
}

impl<'a> Message<'a> {
    /// Decodes the envelope b; the message borrows b. Err(Malformed) for
    /// what SPEC §2 calls malformed.
    pub fn decode(b: &'a [u8]) -> Result<Message<'a>, Code> {
        if b.len() < HEADER_LEN || b[0] != 1 || b[1] & 0xFE != 0 {
            return Err(Code::Malformed);
        }
        let clen = u32::from_le_bytes([b[24], b[25], b[26], b[27]]) as usize;
        let mut total = HEADER_LEN + clen;
        for i in 0..7 {
            total += le16(b, 10 + 2 * i);
        }
        if clen > MAX_CONTENT || total != b.len() {
            return Err(Code::Malformed);
        }
        // The strings: checked as UTF-8 each (a sequence may not span two
        // fields), unless they are all ASCII, as nearly all are: one pass
        // over them, eight bytes at a time, is much cheaper in wasm than
        // seven calls of from_utf8.
        let strings = &b[HEADER_LEN..total - clen];
        let ascii = is_ascii(strings);
        let mut f = [""; 7];
        let mut p = 0;
        for (i, s) in f.iter_mut().enumerate() {
            let n = le16(b, 10 + 2 * i);
            let field = &strings[p..p + n];
            *s = if ascii {
                // Safety: ASCII is UTF-8.
                unsafe { std::str::from_utf8_unchecked(field) }
            } else {
                std::str::from_utf8(field).map_err(|_| Code::Malformed)?
            };
            p += n;
        }
        let p = HEADER_LEN + p;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[2..10]);
        Ok(Message {
            id: f[0],
            parent_id: f[1],
            resource_version: f[2],
            timestamp: i64::from_le_bytes(ts),
            sync: b[1] & 1 != 0,
            source: f[3],
            group: f[4],
            operation: f[5],
            resource: f[6],
            content: &b[p..],
        })
    }

    fn strings(&self) -> [&'a str; 7] {
        [self.id, self.parent_id, self.resource_version, self.source, self.group, self.operation, self.resource]
    }

    /// The length of the message's envelope.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.strings().iter().map(|s| s.len()).sum::<usize>() + self.content.len()
    }

    /// Appends the message's envelope to out; Err(TooLarge) if a string is
    /// over 65535 bytes or the content over 2^31-1.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), Code> {
        let f = self.strings();
        if f.iter().any(|s| s.len() > MAX_STRING) || self.content.len() > MAX_CONTENT {
            return Err(Code::TooLarge);
        }
        out.reserve(self.encoded_len());
        out.push(1);
        out.push(self.sync as u8);
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        for s in f.iter() {
            out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(&(self.content.len() as u32).to_le_bytes());
        for s in f.iter() {
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(self.content);
        Ok(())
    }

    /// The topic of a message delivered from an MQTT subscription, or None
    /// if it is not one.
    pub fn mqtt_topic(&self) -> Option<&'a str> {
        if self.source == MQTT_SOURCE && self.operation == MQTT_OPERATION {
            Some(self.resource)
        } else {
            None
        }
    }
}

/// An envelope the plugin owns, such as a request's reply.
#[derive(Clone, Debug)]
pub struct Envelope(Vec<u8>);

impl Envelope {
    /// The message, borrowing the envelope (which is known to decode).
    pub fn message(&self) -> Message<'_> {
        Message::decode(&self.0).unwrap_or_default()
    }

    /// The envelope's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// An import's failure: which import, for what, and the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostError {
    pub op: &'static str,
    pub arg: String,
    pub code: Code,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.arg.is_empty() {
            write!(f, "edgehost {}: {}", self.op, self.code)
        } else {
            write!(f, "edgehost {} {:?}: {}", self.op, self.arg, self.code)
        }
    }
}

impl std::error::Error for HostError {}

/// What a callback returns instead of Ok.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// From a handler: no reply; the message is consumed.
    NoReply,
    /// Fail the call with this code (a handler: the requester gets an
    /// error naming it; init and tick: the code is what the host gets).
    Code(Code),
    /// An application failure. From a handler: a reply with operation
    /// "error" and this text as content, on the request's route (SPEC §4).
    /// From init or tick: logged, and the call returns Internal.
    Failed(String),
}

impl From<HostError> for Error {
    fn from(e: HostError) -> Error {
        Error::Failed(e.to_string())
    }
}

impl From<String> for Error {
    fn from(s: String) -> Error {
        Error::Failed(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Error {
        Error::Failed(s.to_string())
    }
}

impl From<Code> for Error {
    fn from(c: Code) -> Error {
        Error::Code(c)
    }
}

/// A plugin: its value is one instance's state, made by init.
pub trait Plugin: Sized + 'static {
    /// Runs at edgehost_init with the plugin's config (opaque bytes, JSON
    /// by convention, possibly empty). An error refuses to start.
    fn init(config: &[u8]) -> Result<Self, Error>;

    /// Handles one message and writes its reply into w. Ok sends the reply;
    /// see [`Error`] for the rest. m borrows the exchange buffer.
    fn handle(&mut self, m: &Message, w: &mut Reply) -> Result<(), Error>;

    /// Periodic work, at the interval the plugin's configuration sets.
    fn tick(&mut self) -> Result<(), Error> {
        Ok(())
    }

    /// Runs before an orderly discard of the instance.
    fn stop(&mut self) {}
}

/// Defines the module's exports (SPEC §4) for the plugin type T.
#[macro_export]
macro_rules! plugin {
    ($t:ty) => {
        static mut __EDGEHOST_PLUGIN: Option<$t> = None;

        #[export_name = "edgehost_abi_version"]
        pub extern "C" fn __edgehost_abi_version() -> i32 {
            $crate::ABI_MAJOR
        }

        #[export_name = "edgehost_buffer"]
        pub extern "C" fn __edgehost_buffer(n: i32) -> i32 {
            $crate::rt::buffer(n)
        }

        #[export_name = "edgehost_init"]
        pub extern "C" fn __edgehost_init(n: i32) -> i32 {
            unsafe { $crate::rt::init::<$t>(&mut __EDGEHOST_PLUGIN, n) }
        }

        #[export_name = "edgehost_handle"]
        pub extern "C" fn __edgehost_handle(n: i32) -> i64 {
            unsafe { $crate::rt::handle::<$t>(&mut __EDGEHOST_PLUGIN, n) }
        }

        #[export_name = "edgehost_tick"]
        pub extern "C" fn __edgehost_tick() -> i32 {
            unsafe { $crate::rt::tick::<$t>(&mut __EDGEHOST_PLUGIN) }
        }

        #[export_name = "edgehost_stop"]
        pub extern "C" fn __edgehost_stop() {
            unsafe { $crate::rt::stop::<$t>(&mut __EDGEHOST_PLUGIN) }
        }
    };
}

/// Builds a handler's reply: content written with [`Reply::write`] (or
/// `write!`) goes straight to its place in the reply envelope, in a buffer
/// the SDK reuses from call to call. By default the reply has the request's
/// route with operation "response", the request's resource version and
/// timestamp 0 (the host sets the time).
#[derive(Default)]
pub struct Reply {
    // The envelope: room for the head, then the content up to end. Every
    // byte of buf is initialized (it only grows, zeroed once), so a call
    // writes into it without clearing anything.
    buf: Vec<u8>,
    head: usize,
    end: usize,
    set: u8,
    operation: String,
    route: [String; 3], // source, group, resource
    version: String,
    timestamp: i64,
}

const SET_OP: u8 = 1;
const SET_ROUTE: u8 = 2;
const SET_VERSION: u8 = 4;

impl Reply {
    /// Appends p to the reply's content.
    pub fn write(&mut self, p: &[u8]) {
        let end = self.end + p.len();
        if end > self.buf.len() {
            self.grow(end);
        }
        self.buf[self.end..end].copy_from_slice(p);
        self.end = end;
    }

    /// Appends s to the reply's content.
    pub fn write_str(&mut self, s: &str) {
        self.write(s.as_bytes());
    }

    /// The content written so far.
    pub fn content(&self) -> &[u8] {
        &self.buf[self.head..self.end]
    }

    /// Drops the content written so far.
    pub fn reset(&mut self) {
        self.end = self.head;
    }

    /// Makes buf at least n bytes long.
    fn grow(&mut self, n: usize) {
        let size = n.max(2 * self.buf.len()).max(4096);
        self.buf.resize(size, 0);
    }

    /// Sets the reply's operation (default "response").
    pub fn set_operation(&mut self, op: &str) {
        self.operation.clear();
        self.operation.push_str(op);
        self.set |= SET_OP;
    }

    /// Sets the reply's whole route in place of the request's.
    pub fn set_route(&mut self, source: &str, group: &str, operation: &str, resource: &str) {
        for (f, v) in self.route.iter_mut().zip([source, group, resource]) {
            f.clear();
            f.push_str(v);
        }
        self.set_operation(operation);
        self.set |= SET_ROUTE;
    }

    /// Sets the reply's resource version in place of the request's.
    pub fn set_resource_version(&mut self, v: &str) {
        self.version.clear();
        self.version.push_str(v);
        self.set |= SET_VERSION;
    }

    /// Sets the reply's timestamp (Unix ms; 0, the default: the host's time).
    pub fn set_timestamp(&mut self, ms: i64) {
        self.timestamp = ms;
    }
}

impl fmt::Write for Reply {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}

impl std::io::Write for Reply {
    fn write(&mut self, p: &[u8]) -> std::io::Result<usize> {
        Reply::write(self, p);
        Ok(p.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The imports of SPEC §5 and §5.1. A module imports only those it calls.
mod imports {
    #[link(wasm_import_module = "edgehost_v1")]
    extern "C" {
        pub fn log(level: i32, p: *const u8, n: i32);
        pub fn send(p: *const u8, n: i32) -> i32;
        pub fn request(p: *const u8, n: i32, timeout_ms: i32, out: *mut u8, cap: i32) -> i32;
        pub fn request_reply(out: *mut u8, cap: i32) -> i32;
        pub fn kv_get(k: *const u8, kn: i32, out: *mut u8, cap: i32) -> i32;
        pub fn kv_put(k: *const u8, kn: i32, v: *const u8, vn: i32) -> i32;
        pub fn kv_delete(k: *const u8, kn: i32) -> i32;
        pub fn kv_list(p: *const u8, pn: i32, out: *mut u8, cap: i32) -> i32;
        pub fn now() -> i64;
        pub fn config(out: *mut u8, cap: i32) -> i32;
        // ABI 1.1: a module that calls these declares "abi": "1.1".
        pub fn mqtt_publish(t: *const u8, tn: i32, p: *const u8, pn: i32, qos: i32, retain: i32) -> i32;
        pub fn mqtt_subscribe(f: *const u8, fn_: i32) -> i32;
        pub fn mqtt_unsubscribe(f: *const u8, fn_: i32) -> i32;
        // ABI 1.2 (tcp_*, udp_*, serial_*) is not in this SDK yet.
        // ABI 1.3: a module that calls these declares "abi": "1.3" and an
        // http grant.
        pub fn http_request(p: *const u8, n: i32, timeout_ms: i32, out: *mut u8, cap: i32) -> i32;
        pub fn http_reply(out: *mut u8, cap: i32) -> i32;
    }
}

fn check(op: &'static str, arg: &str, r: i32) -> Result<(), HostError> {
    if r >= 0 {
        Ok(())
    } else {
        Err(HostError { op, arg: arg.to_string(), code: Code::from_i32(r) })
    }
}

/// Writes one line to the plugin's log: msg, then each (key, value) as
/// " key=value", the value quoted when it has spaces, quotes or '='.
pub fn log(level: Level, msg: &str, kv: &[(&str, &str)]) {
    if kv.is_empty() {
        unsafe { imports::log(level as i32, msg.as_ptr(), msg.len() as i32) };
        return;
    }
    let mut line = String::from(msg);
    for (k, v) in kv {
        line.push(' ');
        line.push_str(k);
        line.push('=');
        if v.is_empty() || v.bytes().any(|c| c <= b' ' || c == b'"' || c == b'=' || c >= 0x7f) {
            line.push_str(&format!("{:?}", v));
        } else {
            line.push_str(v);
        }
    }
    unsafe { imports::log(level as i32, line.as_ptr(), line.len() as i32) };
}

/// Logs at info level; see [`log`].
pub fn log_info(msg: &str, kv: &[(&str, &str)]) {
    log(Level::Info, msg, kv)
}

/// Logs at error level; see [`log`].
pub fn log_error(msg: &str, kv: &[(&str, &str)]) {
    log(Level::Error, msg, kv)
}

/// Data fetched from an import (SPEC §3): call(again, out) makes the import
/// call, again for a second try (request_reply, for a request); the buffer
/// grows until the data fits.
fn fetch(op: &'static str, arg: &str, mut call: impl FnMut(bool, &mut [u8]) -> i32) -> Result<Vec<u8>, HostError> {
    let mut buf = vec![0u8; 4096];
    for again in [false, true, true, true] {
        let n = call(again, &mut buf);
        check(op, arg, n)?;
        if n as usize <= buf.len() {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        buf.resize(n as usize, 0);
    }
    Err(HostError { op, arg: arg.to_string(), code: Code::TooLarge })
}

/// Puts m on the host's message bus. The host sets the source to the
/// plugin's name, and an empty id and a zero timestamp.
pub fn send(m: &Message) -> Result<(), HostError> {
    let mut env = Vec::new();
    m.encode_into(&mut env).map_err(|code| HostError { op: "send", arg: String::new(), code })?;
    check("send", "", unsafe { imports::send(env.as_ptr(), env.len() as i32) })
}

/// Sends m with sync set and waits up to timeout_ms (<= 0: the host's
/// default) for its reply, which is the caller's. A reply larger than the
/// first buffer is fetched with request_reply.
pub fn request(m: &Message, timeout_ms: i32) -> Result<Envelope, HostError> {
    let mut env = Vec::new();
    Message { sync: true, ..*m }
        .encode_into(&mut env)
        .map_err(|code| HostError { op: "request", arg: String::new(), code })?;
    let b = fetch("request", "", |again, out| unsafe {
        if again {
            imports::request_reply(out.as_mut_ptr(), out.len() as i32)
        } else {
            imports::request(env.as_ptr(), env.len() as i32, timeout_ms, out.as_mut_ptr(), out.len() as i32)
        }
    })?;
    Message::decode(&b).map_err(|code| HostError { op: "request", arg: String::from("reply"), code })?;
    Ok(Envelope(b))
}

/// A copy of the value stored under key, or None if it is absent. Within
/// one export call it sees that call's own writes.
pub fn kv_get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
    match fetch("kv_get", key, |_, out| unsafe {
        imports::kv_get(key.as_ptr(), key.len() as i32, out.as_mut_ptr(), out.len() as i32)
    }) {
        Ok(v) => Ok(Some(v)),
        Err(HostError { code: Code::NotFound, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Stores val under key (1-1024 bytes). The writes of one export call are
/// committed together when it returns successfully (SPEC §5).
pub fn kv_put(key: &str, val: &[u8]) -> Result<(), HostError> {
    check("kv_put", key, unsafe { imports::kv_put(key.as_ptr(), key.len() as i32, val.as_ptr(), val.len() as i32) })
}

/// Deletes key; deleting a missing key is not an error.
pub fn kv_delete(key: &str) -> Result<(), HostError> {
    check("kv_delete", key, unsafe { imports::kv_delete(key.as_ptr(), key.len() as i32) })
}

/// The keys that start with prefix, in byte order.
pub fn kv_list(prefix: &str) -> Result<Vec<String>, HostError> {
    let b = fetch("kv_list", prefix, |_, out| unsafe {
        imports::kv_list(prefix.as_ptr(), prefix.len() as i32, out.as_mut_ptr(), out.len() as i32)
    })?;
    let malformed = || HostError { op: "kv_list", arg: prefix.to_string(), code: Code::Malformed };
    let mut keys = Vec::new();
    let mut p = 0;
    while p < b.len() {
        if b.len() - p < 2 {
            return Err(malformed());
        }
        let n = le16(&b, p);
        let key = b.get(p + 2..p + 2 + n).ok_or_else(malformed)?;
        keys.push(String::from_utf8_lossy(key).into_owned());
        p += 2 + n;
    }
    Ok(keys)
}

/// The host's wall-clock time in Unix nanoseconds.
pub fn now() -> i64 {
    unsafe { imports::now() }
}

/// A copy of the plugin's config bytes, those init received.
pub fn config() -> Result<Vec<u8>, HostError> {
    fetch("config", "", |_, out| unsafe { imports::config(out.as_mut_ptr(), out.len() as i32) })
}

/// Publishes payload on topic at QoS 0 or 1, retained if retain (ABI 1.1).
pub fn mqtt_publish(topic: &str, payload: &[u8], qos: u8, retain: bool) -> Result<(), HostError> {
    check("mqtt_publish", topic, unsafe {
        imports::mqtt_publish(
            topic.as_ptr(),
            topic.len() as i32,
            payload.as_ptr(),
            payload.len() as i32,
            qos as i32,
            retain as i32,
        )
    })
}

/// Subscribes the plugin (not the instance) to filter (ABI 1.1).
pub fn mqtt_subscribe(filter: &str) -> Result<(), HostError> {
    check("mqtt_subscribe", filter, unsafe { imports::mqtt_subscribe(filter.as_ptr(), filter.len() as i32) })
}

/// Ends the subscription to filter (ABI 1.1).
pub fn mqtt_unsubscribe(filter: &str) -> Result<(), HostError> {
    check("mqtt_unsubscribe", filter, unsafe { imports::mqtt_unsubscribe(filter.as_ptr(), filter.len() as i32) })
}

/// An HTTP response (SPEC §5.3), owned: what [`http_request`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code, 3 digits.
    pub status: u16,
    /// The header lines, name and value, one per value, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Parses a response in SPEC §5.3's framing (`STATUS LF`, header
    /// lines, `LF`, body). Values that are not UTF-8 are kept lossily.
    pub fn parse(b: &[u8]) -> Result<HttpResponse, Code> {
        if b.len() < 4 || b[3] != b'\n' || !b[..3].iter().all(|c| c.is_ascii_digit()) {
            return Err(Code::Malformed);
        }
        let status = b[..3].iter().fold(0u16, |n, c| n * 10 + (c - b'0') as u16);
        let (lines, body) = split_lines(&b[4..])?;
        let mut headers = Vec::with_capacity(lines.len());
        for (k, v) in lines {
            headers.push((String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()));
        }
        Ok(HttpResponse { status, headers, body: body.to_vec() })
    }

    /// The first value of the header name (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Splits b into its header lines (name, value) up to the first empty
/// line, and what follows it.
fn split_lines(b: &[u8]) -> Result<(Vec<(&[u8], &[u8])>, &[u8]), Code> {
    let mut lines = Vec::new();
    let mut rest = b;
    loop {
        let lf = rest.iter().position(|&c| c == b'\n').ok_or(Code::Malformed)?;
        let line = &rest[..lf];
        rest = &rest[lf + 1..];
        if line.is_empty() {
            return Ok((lines, rest));
        }
        let i = line.windows(2).position(|w| w == b": ").filter(|&i| i > 0).ok_or(Code::Malformed)?;
        lines.push((&line[..i], &line[i + 2..]));
    }
}

/// Appends the request method url, headers and body in SPEC §5.3's
/// framing to out.
fn frame_request(out: &mut Vec<u8>, method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(url.as_bytes());
    out.push(b'\n');
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
}

/// Makes an HTTP request through the host (ABI 1.3, SPEC §5.3) and waits
/// up to timeout_ms (<= 0: until shortly before the call's own timeout)
/// for the whole response; a response larger than the first buffer is
/// fetched with http_reply. headers are (name, value) lines, one per value.
/// A status the server sends (404, 500) is a response; redirects are not
/// followed. Errors: Denied outside the plugin's http grant, Timeout when
/// the wait ended, Unreachable when the server cannot be reached,
/// Malformed for a request the framing refuses (a Host header...).
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout_ms: i32,
) -> Result<HttpResponse, HostError> {
    let mut req = Vec::with_capacity(method.len() + url.len() + body.len() + 64);
    frame_request(&mut req, method, url, headers, body);
    let b = fetch("http_request", url, |again, out| unsafe {
        if again {
            imports::http_reply(out.as_mut_ptr(), out.len() as i32)
        } else {
            imports::http_request(req.as_ptr(), req.len() as i32, timeout_ms, out.as_mut_ptr(), out.len() as i32)
        }
    })?;
    HttpResponse::parse(&b).map_err(|code| HostError { op: "http_request", arg: String::from("response"), code })
}

/// The cloud request a route plugin receives (SPEC §10), borrowing the
/// message: method, the local service's URL, header lines, body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteRequest<'a> {
    pub method: &'a str,
    /// Absolute: http://127.0.0.1:{port}{path}.
    pub url: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

impl<'a> RouteRequest<'a> {
    /// The first value of the header name (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    /// Forwards the request as it is (headers as they are now) with
    /// [`http_request`].
    pub fn forward(&self, timeout_ms: i32) -> Result<HttpResponse, HostError> {
        http_request(self.method, self.url, &self.headers, self.body, timeout_ms)
    }
}

/// Parses the content of m, a route plugin's request, in SPEC §5.3's
/// request framing. Err(Malformed) if it is not framed so, or a header is
/// not UTF-8.
pub fn route_request<'a>(m: &Message<'a>) -> Result<RouteRequest<'a>, Code> {
    let c = m.content;
    let lf = c.iter().position(|&b| b == b'\n').ok_or(Code::Malformed)?;
    let first = std::str::from_utf8(&c[..lf]).map_err(|_| Code::Malformed)?;
    let (method, url) = first.split_once(' ').filter(|(m, _)| !m.is_empty()).ok_or(Code::Malformed)?;
    let (lines, body) = split_lines(&c[lf + 1..])?;
    let mut headers = Vec::with_capacity(lines.len());
    for (k, v) in lines {
        let k = std::str::from_utf8(k).map_err(|_| Code::Malformed)?;
        let v = std::str::from_utf8(v).map_err(|_| Code::Malformed)?;
        headers.push((k, v));
    }
    Ok(RouteRequest { method, url, headers, body })
}

impl Reply {
    /// Writes a route plugin's answer (SPEC §10) as the reply's content, in
    /// place of what was written: status (100-999), header lines and body
    /// in SPEC §5.3's response framing.
    pub fn write_http(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        self.reset();
        self.write(format!("{:03}\n", status).as_bytes());
        for (k, v) in headers {
            self.write(k.as_bytes());
            self.write(b": ");
            self.write(v.as_bytes());
            self.write(b"\n");
        }
        self.write(b"\n");
        self.write(body);
    }
}

/// The exports' implementation, for [`plugin!`]; not for plugins to call.
#[doc(hidden)]
pub mod rt {
    use super::*;

    /// The exchange buffer the host writes config and messages into.
    static mut EXCHANGE: Vec<u8> = Vec::new();
    /// The reply being built, reused from call to call.
    static mut REPLY: Option<Reply> = None;

    pub fn buffer(n: i32) -> i32 {
        if n < 0 {
            return 0;
        }
        unsafe {
            if n as usize > EXCHANGE.len() || EXCHANGE.is_empty() {
                EXCHANGE = vec![0; (n as usize).max(4096)];
            }
            EXCHANGE.as_ptr() as i32
        }
    }

    /// The code a callback's error returns to the host, logged first.
    fn failure(what: &str, e: Error) -> i32 {
        match e {
            Error::Code(c) if c != Code::Ok => c as i32,
            Error::Code(_) | Error::NoReply => 0,
            Error::Failed(msg) => {
                log_error(&format!("{} failed", what), &[("error", &msg)]);
                Code::Internal as i32
            }
        }
    }

    pub unsafe fn init<T: Plugin>(p: &mut Option<T>, n: i32) -> i32 {
        if n < 0 || n as usize > EXCHANGE.len() {
            return Code::InvalidArgument as i32;
        }
        match T::init(&EXCHANGE[..n as usize]) {
            Ok(v) => {
                *p = Some(v);
                0
            }
            Err(e) => failure("init", e),
        }
    }

    pub unsafe fn tick<T: Plugin>(p: &mut Option<T>) -> i32 {
        match p.as_mut().map(|p| p.tick()) {
            Some(Err(e)) => failure("tick", e),
            _ => 0,
        }
    }

    pub unsafe fn stop<T: Plugin>(p: &mut Option<T>) {
        if let Some(p) = p.as_mut() {
            p.stop()
        }
    }

    pub unsafe fn handle<T: Plugin>(p: &mut Option<T>, n: i32) -> i64 {
        if n < 0 || n as usize > EXCHANGE.len() {
            return -(Code::InvalidArgument as i64);
        }
        let p = match p.as_mut() {
            Some(p) => p,
            None => return -(Code::NoHandler as i64),
        };
        let m = match Message::decode(&EXCHANGE[..n as usize]) {
            Ok(m) => m,
            Err(_) => {
                log(Level::Error, "handle: malformed envelope", &[]);
                return -(Code::Malformed as i64);
            }
        };
        let w = REPLY.get_or_insert_with(Reply::default);
        // Room in front of the content for the default head: the request's
        // strings less its parent_id, with operation "response".
        w.head = HEADER_LEN + m.id.len() + m.resource_version.len() + m.source.len() + m.group.len() + 8 + m.resource.len();
        if w.head > w.buf.len() {
            w.grow(w.head);
        }
        w.end = w.head;
        w.set = 0;
        w.timestamp = 0;
        match p.handle(&m, w) {
            Ok(()) => finish(&m, w),
            Err(Error::NoReply) => 0,
            Err(Error::Code(c)) if c != Code::Ok => -(c as i64),
            Err(Error::Code(_)) => finish(&m, w),
            Err(Error::Failed(msg)) => {
                w.end = w.head;
                w.write(msg.as_bytes());
                w.set = SET_OP | SET_VERSION;
                w.operation.clear();
                w.operation.push_str("error");
                w.version.clear();
                w.timestamp = 0;
                finish(&m, w)
            }
        }
    }

    /// Writes the reply's head in front of its content and returns the
    /// envelope's location for edgehost_handle.
    fn finish(m: &Message, w: &mut Reply) -> i64 {
        if w.set == 0 {
            return finish_default(m, w);
        }
        let op: &str = if w.set & SET_OP != 0 { &w.operation } else { "response" };
        let version: &str = if w.set & SET_VERSION != 0 { &w.version } else { m.resource_version };
        let route = w.set & SET_ROUTE != 0;
        // No id (the host gives one); parent_id is the request's id.
        let f: [&[u8]; 7] = [
            b"",
            m.id.as_bytes(),
            version.as_bytes(),
            if route { w.route[0].as_bytes() } else { m.source.as_bytes() },
            if route { w.route[1].as_bytes() } else { m.group.as_bytes() },
            op.as_bytes(),
            if route { w.route[2].as_bytes() } else { m.resource.as_bytes() },
        ];
        let clen = w.end - w.head;
        let head = HEADER_LEN + f.iter().map(|s| s.len()).sum::<usize>();
        if f.iter().any(|s| s.len() > MAX_STRING) || clen > MAX_CONTENT || head + clen > MAX_CONTENT {
            log(Level::Error, "handle: reply does not fit the envelope", &[]);
            return -(Code::TooLarge as i64);
        }
        let mut hdr = [0u8; HEADER_LEN];
        hdr[0] = 1;
        hdr[2..10].copy_from_slice(&w.timestamp.to_le_bytes());
        for (i, s) in f.iter().enumerate() {
            hdr[10 + 2 * i..12 + 2 * i].copy_from_slice(&(s.len() as u16).to_le_bytes());
        }
        hdr[24..28].copy_from_slice(&(clen as u32).to_le_bytes());
        if head != w.head {
            // A head other than the default: move the content.
            if head + clen > w.buf.len() {
                let n = head + clen;
                let size = n.max(2 * w.buf.len());
                w.buf.resize(size, 0);
            }
            w.buf.copy_within(w.head..w.end, head);
        }
        w.buf[..HEADER_LEN].copy_from_slice(&hdr);
        let mut at = HEADER_LEN;
        for s in f.iter() {
            w.buf[at..at + s.len()].copy_from_slice(s);
            at += s.len();
        }
        let total = head + clen;
        ((total as i64) << 32) | (w.buf.as_ptr() as u32 as i64)
    }

    /// finish for a reply with the request's route and resource version,
    /// the usual case: the head is the request's, less its id (which
    /// becomes the parent_id), with operation "response"; its room is
    /// exactly w.head, and the request's fields are back to back in the
    /// exchange buffer.
    fn finish_default(m: &Message, w: &mut Reply) -> i64 {
        let (id, resource) = (m.id.len(), m.resource.len());
        let meta = m.resource_version.len() + m.source.len() + m.group.len();
        let clen = w.end - w.head;
        let req = unsafe { &EXCHANGE[..] };
        let b = &mut w.buf[..w.head];
        b[0] = 1;
        b[1] = 0;
        b[2..10].copy_from_slice(&w.timestamp.to_le_bytes());
        b[10..12].copy_from_slice(&[0, 0]);
        b[12..14].copy_from_slice(&(id as u16).to_le_bytes());
        b[14..20].copy_from_slice(&req[14..20]); // resource_version, source, group
        b[20..22].copy_from_slice(&8u16.to_le_bytes());
        b[22..24].copy_from_slice(&(resource as u16).to_le_bytes());
        b[24..28].copy_from_slice(&(clen as u32).to_le_bytes());
        let mut q = HEADER_LEN;
        b[q..q + id].copy_from_slice(m.id.as_bytes()); // as parent_id
        q += id;
        // resource_version, source and group, back to back in both
        let start = m.resource_version.as_ptr() as usize - req.as_ptr() as usize;
        b[q..q + meta].copy_from_slice(&req[start..start + meta]);
        q += meta;
        b[q..q + 8].copy_from_slice(b"response");
        q += 8;
        b[q..q + resource].copy_from_slice(m.resource.as_bytes());
        (((w.head + clen) as i64) << 32) | (w.buf.as_ptr() as u32 as i64)
    }
}
