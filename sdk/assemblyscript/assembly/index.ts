// The guest side of the edgehost plugin ABI 1.1 (abi/SPEC.md) for
// AssemblyScript, with ABI 1.3's outbound HTTP (httpRequest) and the route
// plugin helpers (routeRequest, Reply.writeHttp). A plugin registers its callbacks at top level and
// re-exports the SDK's exports:
//
//   import { handle, Request, Reply, REPLY } from "<sdk>/assembly/index";
//   export * from "<sdk>/assembly/exports";
//
//   handle((m: Request, w: Reply): i32 => {
//     w.writeRaw(m.ptr(Field.CONTENT), m.len(Field.CONTENT));
//     return REPLY;
//   });
//
// Build: see sdk/assemblyscript/README.md (asc ... --runtime incremental
// --exportStart _initialize --use abort=<sdk>/assembly/abort/abort).
//
// The request a handler gets is a view of the exchange buffer, valid during
// the call: its strings are decoded (allocated) only when asked for.
// Functions that can fail return 0 or a length on success and -code on
// failure, as the imports do; those that return data return null on
// failure, and lastCode() says why (NOT_FOUND for a missing key).

import * as host from "./host";
// abort.ts is the abort that --use abort= routes to (the host has no env.abort).
import "./abort";

/** The ABI major version the module states (edgehost_abi_version). */
export const ABI_MAJOR: i32 = 1;

/** The codes of SPEC §6; imports and SDK functions return them negated. */
export enum Code {
  OK = 0,
  INVALID_ARGUMENT = 1,
  MALFORMED = 2,
  TOO_LARGE = 3,
  NOT_FOUND = 4,
  DENIED = 5,
  TIMEOUT = 6,
  UNAVAILABLE = 7,
  INTERNAL = 8,
  BUSY = 9,
  NO_HANDLER = 10,
  LOOP = 11,
  CLOSED = 12,
  BAD_HANDLE = 13,
  UNREACHABLE = 14,
}

const codeNames: string[] = ["ok", "invalid argument", "malformed", "too large", "not found", "denied", "timeout",
  "unavailable", "internal", "busy", "no handler", "loop", "closed", "bad handle", "unreachable"];

/** codeName names a code (either sign) as SPEC §6 does. */
export function codeName(code: i32): string {
  if (code < 0) code = -code;
  return code < codeNames.length ? codeNames[code] : "unknown code";
}

/** Log levels (SPEC §5). */
export enum Level { TRACE = 0, DEBUG = 1, INFO = 2, WARN = 3, ERROR = 4 }

/** What a handler returns: REPLY sends the reply built in its Reply,
 * NO_REPLY consumes the message, and a positive code (e.g.
 * Code.NO_HANDLER) fails the call with that code. */
export const REPLY: i32 = 0;
export const NO_REPLY: i32 = -1;

/** The route source and operation of a message from an MQTT subscription. */
export const MQTT_SOURCE = "eventbus";
export const MQTT_OPERATION = "publish";

/** The fields of a message, in the envelope's order. */
export enum Field { ID = 0, PARENT_ID = 1, RESOURCE_VERSION = 2, SOURCE = 3, GROUP = 4, OPERATION = 5, RESOURCE = 6, CONTENT = 7 }

const HEADER_LEN: i32 = 28;
const MAX_STRING: i32 = 0xFFFF;
const MIN_BUFFER: i32 = 4096;

let code: i32 = 0;

/** lastCode is the code of the last SDK call that returned null. */
export function lastCode(): i32 { return code; }

// ---- Memory the SDK owns: unmanaged, so it never moves ----

/** A growable unmanaged buffer. */
class Buf {
  ptr: usize = 0;
  cap: i32 = 0;

  /** reserve makes the buffer hold at least n bytes (contents kept). */
  reserve(n: i32): bool {
    if (n <= this.cap && this.ptr) return true;
    let size = max(n, max(MIN_BUFFER, this.cap * 2));
    this.ptr = this.ptr ? heap.realloc(this.ptr, size) : heap.alloc(size);
    this.cap = size;
    return true;
  }
}

/** The exchange buffer (the host writes config and messages here), the
 * buffer for data from imports, and the buffer of outgoing envelopes. */
export const exchange = new Buf();
const inBuf = new Buf();

// ---- UTF-8 ----

/** utf8Valid reports whether the n bytes at p are valid UTF-8. */
export function utf8Valid(p: usize, n: i32): bool {
  let i = 0;
  while (i < n) {
    if (i + 8 <= n && (load<u64>(p + i) & 0x8080808080808080) == 0) { i += 8; continue; }
    const c = load<u8>(p + i);
    if (c < 0x80) { i++; continue; }
    let k = 0;
    let cp: u32 = 0;
    if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; }
    else return false;
    if (n - i <= k) return false;
    for (let j = 1; j <= k; j++) {
      const b = load<u8>(p + i + j);
      if ((b & 0xC0) != 0x80) return false;
      cp = cp << 6 | (b & 0x3F);
    }
    if (k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return false;
    if (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) return false;
    i += k + 1;
  }
  return true;
}

/** ascii reports whether the n bytes at p are all ASCII. */
@inline function ascii(p: usize, n: i32): bool {
  let acc: u64 = 0;
  let i = 0;
  for (; i + 8 <= n; i += 8) acc |= load<u64>(p + i);
  for (; i < n; i++) acc |= load<u8>(p + i);
  return (acc & 0x8080808080808080) == 0;
}

/** utf8 is s encoded as UTF-8. */
export function utf8(s: string): ArrayBuffer { return String.UTF8.encode(s); }

// ---- Messages ----

/** A message handed to the handler: a view of the exchange buffer, valid
 * during the call. ptr/len view a field's bytes without allocating; the
 * string getters decode one. */
export class Request {
  timestamp: i64 = 0;
  sync: bool = false;
  ptrs: StaticArray<usize> = new StaticArray<usize>(8);
  lens: StaticArray<i32> = new StaticArray<i32>(8);

  /** ptr is the address of field f's bytes. */
  @inline ptr(f: Field): usize { return unchecked(this.ptrs[f]); }
  /** len is the length of field f in bytes. */
  @inline len(f: Field): i32 { return unchecked(this.lens[f]); }
  /** get decodes field f as a string. */
  get(f: Field): string { return String.UTF8.decodeUnsafe(this.ptr(f), this.len(f)); }
  /** is reports whether field f holds s. */
  is(f: Field, s: string): bool {
    const b = String.UTF8.encode(s);
    return b.byteLength == this.len(f) && memory.compare(changetype<usize>(b), this.ptr(f), this.len(f)) == 0;
  }

  get id(): string { return this.get(Field.ID); }
  get parentId(): string { return this.get(Field.PARENT_ID); }
  get resourceVersion(): string { return this.get(Field.RESOURCE_VERSION); }
  get source(): string { return this.get(Field.SOURCE); }
  get group(): string { return this.get(Field.GROUP); }
  get operation(): string { return this.get(Field.OPERATION); }
  get resource(): string { return this.get(Field.RESOURCE); }
  /** content is a copy of the content. */
  get content(): Uint8Array {
    const n = this.len(Field.CONTENT);
    const a = new Uint8Array(n);
    memory.copy(a.dataStart, this.ptr(Field.CONTENT), n);
    return a;
  }
  /** contentString is the content decoded as UTF-8. */
  get contentString(): string { return this.get(Field.CONTENT); }

  /** mqttTopic is the topic of a message from an MQTT subscription, or
   * null if it is not one. */
  mqttTopic(): string | null {
    if (!this.is(Field.SOURCE, MQTT_SOURCE) || !this.is(Field.OPERATION, MQTT_OPERATION)) return null;
    return this.resource;
  }
}

/** decode decodes the envelope of n bytes at p into m (views of it);
 * 0, or -Code.MALFORMED for what SPEC §2 calls malformed. */
export function decode(p: usize, n: i32, m: Request): i32 {
  if (n < HEADER_LEN || load<u8>(p) != 1 || (load<u8>(p + 1) & 0xFE) != 0) return -Code.MALFORMED;
  const clen = load<u32>(p + 24);
  if (clen > 0x7FFFFFFF) return -Code.MALFORMED;
  let total: u64 = <u64>HEADER_LEN + clen;
  for (let i = 0; i < 7; i++) total += load<u16>(p + 10 + 2 * i);
  if (total != <u64>n) return -Code.MALFORMED;
  const ptrs = m.ptrs, lens = m.lens;
  let q = p + HEADER_LEN;
  for (let i = 0; i < 7; i++) {
    const l = <i32>load<u16>(p + 10 + 2 * i);
    unchecked(ptrs[i] = q);
    unchecked(lens[i] = l);
    q += l;
  }
  // Each string must be UTF-8 on its own (a sequence may not span two
  // fields); when they are all ASCII, as nearly all are, one pass over
  // them says so.
  if (!ascii(p + HEADER_LEN, <i32>(q - p) - HEADER_LEN)) {
    for (let i = 0; i < 7; i++) if (!utf8Valid(unchecked(ptrs[i]), unchecked(lens[i]))) return -Code.MALFORMED;
  }
  unchecked(m.ptrs[7] = q);
  unchecked(m.lens[7] = <i32>clen);
  m.sync = (load<u8>(p + 1) & 1) != 0;
  m.timestamp = load<i64>(p + 2);
  return 0;
}

/** A message the plugin owns: what it sends and requests, and a request's
 * reply. */
export class Message {
  id: string = "";
  parentId: string = "";
  resourceVersion: string = "";
  timestamp: i64 = 0;
  sync: bool = false;
  source: string = "";
  group: string = "";
  operation: string = "";
  resource: string = "";
  content: Uint8Array = new Uint8Array(0);

  /** encode returns the message's envelope, or null (lastCode TOO_LARGE)
   * when a string is over 65535 bytes. */
  encode(): ArrayBuffer | null {
    const f: ArrayBuffer[] = [utf8(this.id), utf8(this.parentId), utf8(this.resourceVersion), utf8(this.source),
      utf8(this.group), utf8(this.operation), utf8(this.resource)];
    let n = HEADER_LEN + this.content.length;
    for (let i = 0; i < 7; i++) {
      if (f[i].byteLength > MAX_STRING) { code = Code.TOO_LARGE; return null; }
      n += f[i].byteLength;
    }
    const b = new ArrayBuffer(n);
    const p = changetype<usize>(b);
    store<u8>(p, 1);
    store<u8>(p + 1, this.sync ? 1 : 0);
    store<i64>(p + 2, this.timestamp);
    let q = p + HEADER_LEN;
    for (let i = 0; i < 7; i++) {
      store<u16>(p + 10 + 2 * i, <u16>f[i].byteLength);
      memory.copy(q, changetype<usize>(f[i]), f[i].byteLength);
      q += f[i].byteLength;
    }
    store<u32>(p + 24, this.content.length);
    memory.copy(q, this.content.dataStart, this.content.length);
    return b;
  }

  /** decode decodes an envelope into a new Message; null if malformed. */
  static decode(p: usize, n: i32): Message | null {
    const v = new Request();
    if (decode(p, n, v) < 0) { code = Code.MALFORMED; return null; }
    const m = new Message();
    m.id = v.id; m.parentId = v.parentId; m.resourceVersion = v.resourceVersion;
    m.timestamp = v.timestamp; m.sync = v.sync;
    m.source = v.source; m.group = v.group; m.operation = v.operation; m.resource = v.resource;
    m.content = v.content;
    return m;
  }
}

// ---- Host calls ----

/** log writes one line to the plugin's log. */
export function log(level: Level, msg: string): void {
  const b = utf8(msg);
  host._log(level, changetype<usize>(b), b.byteLength);
}
export function logInfo(msg: string): void { log(Level.INFO, msg); }
export function logError(msg: string): void { log(Level.ERROR, msg); }

/** An import call for fetch: again is true on a second try (request_reply,
 * for a request). Each wrapper passes its own, so that a module imports only
 * what it uses (an import is a capability the manifest must grant). */
type Call = (again: bool, arg: usize, argLen: i32, out: usize, cap: i32) => i32;

/** The timeout of the request being made, for its Call. */
let requestTimeout: i32 = 0;

/** fetch runs an import that returns data (SPEC §3) into the in buffer,
 * growing it and calling again when the data does not fit; it returns a
 * copy, or null with lastCode set. */
function fetch(call: Call, arg: ArrayBuffer | null): Uint8Array | null {
  inBuf.reserve(MIN_BUFFER);
  const a = arg ? changetype<usize>(arg) : 0;
  const an = arg ? arg.byteLength : 0;
  for (let tries = 0; tries < 4; tries++) {
    const n = call(tries > 0, a, an, inBuf.ptr, inBuf.cap);
    if (n < 0) { code = -n; return null; }
    if (n <= inBuf.cap) {
      const out = new Uint8Array(n);
      memory.copy(out.dataStart, inBuf.ptr, n);
      code = 0;
      return out;
    }
    inBuf.reserve(n);
  }
  code = Code.TOO_LARGE;
  return null;
}

/** send puts m on the host's message bus; 0 once queued, or -code. The host
 * sets the source to the plugin's name, and an empty id and zero timestamp. */
export function send(m: Message): i32 {
  const env = m.encode();
  if (!env) return -Code.TOO_LARGE;
  return host._send(changetype<usize>(env), env.byteLength);
}

/** request sends m with sync set and waits up to timeoutMs (<= 0: the
 * host's default) for its reply; null on failure (lastCode TIMEOUT, ...). */
export function request(m: Message, timeoutMs: i32): Message | null {
  const sync = m.sync;
  m.sync = true;
  const env = m.encode();
  m.sync = sync;
  if (!env) return null;
  requestTimeout = timeoutMs;
  const b = fetch((again: bool, a: usize, an: i32, out: usize, cap: i32): i32 =>
    again ? host._requestReply(out, cap) : host._request(a, an, requestTimeout, out, cap), env);
  if (!b) return null;
  return Message.decode(b.dataStart, b.length);
}

/** kvGet returns a copy of the value under key, or null: lastCode() is
 * NOT_FOUND when the key is absent, another code on failure. */
export function kvGet(key: string): Uint8Array | null {
  return fetch((again: bool, a: usize, an: i32, out: usize, cap: i32): i32 => host._kvGet(a, an, out, cap), utf8(key));
}

/** kvPut stores val under key (1-1024 bytes); 0 or -code. The writes of one
 * export call are committed together when it returns successfully. */
export function kvPut(key: string, val: Uint8Array): i32 {
  const k = utf8(key);
  return host._kvPut(changetype<usize>(k), k.byteLength, val.dataStart, val.length);
}

/** kvDelete deletes key; 0 whether or not it existed. */
export function kvDelete(key: string): i32 {
  const k = utf8(key);
  return host._kvDelete(changetype<usize>(k), k.byteLength);
}

/** kvList returns the keys starting with prefix, in byte order; null on
 * failure. */
export function kvList(prefix: string): string[] | null {
  const b = fetch((again: bool, a: usize, an: i32, out: usize, cap: i32): i32 => host._kvList(a, an, out, cap), utf8(prefix));
  if (!b) return null;
  const keys: string[] = [];
  let p = 0;
  while (p < b.length) {
    if (b.length - p < 2) { code = Code.MALFORMED; return null; }
    const n = <i32>b[p] | (<i32>b[p + 1] << 8);
    if (b.length - p - 2 < n) { code = Code.MALFORMED; return null; }
    keys.push(String.UTF8.decodeUnsafe(b.dataStart + p + 2, n));
    p += 2 + n;
  }
  return keys;
}

/** now is the host's wall-clock time in Unix nanoseconds. */
export function now(): i64 { return host._now(); }

/** config returns a copy of the plugin's config bytes (those init got). */
export function config(): Uint8Array | null {
  return fetch((again: bool, a: usize, an: i32, out: usize, cap: i32): i32 => host._config(out, cap), null);
}

/** mqttPublishRaw publishes the n bytes at p on topic at QoS 0 or 1
 * (ABI 1.1); 0 once the eventbus has taken them, or -code. */
export function mqttPublishRaw(topic: string, p: usize, n: i32, qos: i32, retain: bool): i32 {
  const t = utf8(topic);
  return host._mqttPublish(changetype<usize>(t), t.byteLength, p, n, qos, retain ? 1 : 0);
}

/** mqttPublish publishes payload on topic (ABI 1.1). */
export function mqttPublish(topic: string, payload: Uint8Array, qos: i32, retain: bool): i32 {
  return mqttPublishRaw(topic, payload.dataStart, payload.length, qos, retain);
}

/** mqttSubscribe subscribes the plugin (not the instance) to filter. */
export function mqttSubscribe(filter: string): i32 {
  const f = utf8(filter);
  return host._mqttSubscribe(changetype<usize>(f), f.byteLength);
}

/** mqttUnsubscribe ends the subscription to filter. */
export function mqttUnsubscribe(filter: string): i32 {
  const f = utf8(filter);
  return host._mqttUnsubscribe(changetype<usize>(f), f.byteLength);
}

// ---- Outbound HTTP (ABI 1.3, SPEC §5.3) and route plugins (SPEC §10) ----

/** HttpHeader is an HTTP header as its lines, name and value, one per
 * value and in order, as SPEC §5.3's framing carries it. Names compare
 * case-insensitively. */
export class HttpHeader {
  names: string[] = [];
  values: string[] = [];

  /** length is the number of lines. */
  get length(): i32 { return this.names.length; }

  /** add appends a line. */
  add(name: string, value: string): void { this.names.push(name); this.values.push(value); }

  /** get returns the first value of name, or null. */
  get(name: string): string | null {
    const l = name.toLowerCase();
    for (let i = 0; i < this.names.length; i++) {
      if (this.names[i].toLowerCase() == l) return this.values[i];
    }
    return null;
  }

  /** del removes every line of name. */
  del(name: string): void {
    const l = name.toLowerCase();
    const names: string[] = [], values: string[] = [];
    for (let i = 0; i < this.names.length; i++) {
      if (this.names[i].toLowerCase() != l) { names.push(this.names[i]); values.push(this.values[i]); }
    }
    this.names = names;
    this.values = values;
  }

  /** set replaces the lines of name with one line of value. */
  set(name: string, value: string): void { this.del(name); this.add(name, value); }
}

/** An HTTP response: what httpRequest returns. */
export class HttpResponse {
  status: i32 = 0;
  header: HttpHeader = new HttpHeader();
  body: Uint8Array = new Uint8Array(0);
}

/** The cloud request a route plugin receives (routeRequest): method, the
 * local service's URL (http://127.0.0.1:{port}{path}), header, body. */
export class RouteRequest {
  method: string = "";
  url: string = "";
  header: HttpHeader = new HttpHeader();
  body: Uint8Array = new Uint8Array(0);

  /** forward makes the request as it is now with httpRequest. */
  forward(timeoutMs: i32): HttpResponse | null { return httpRequest(this.method, this.url, this.header, this.body, timeoutMs); }
}

function indexLF(p: usize, n: i32, from: i32): i32 {
  for (let i = from; i < n; i++) if (load<u8>(p + i) == 10) return i;
  return -1;
}

function copyOut(p: usize, n: i32): Uint8Array {
  const a = new Uint8Array(n);
  memory.copy(a.dataStart, p, n);
  return a;
}

/** parseLines adds the header lines of the n bytes at p, from offset at
 * up to the empty line, to h; it returns the offset after the empty line,
 * or -1 if they are not framed so. */
function parseLines(p: usize, n: i32, at: i32, h: HttpHeader): i32 {
  while (true) {
    const lf = indexLF(p, n, at);
    if (lf < 0) return -1;
    if (lf == at) return lf + 1;
    let i = at;
    while (i + 1 < lf && !(load<u8>(p + i) == 58 && load<u8>(p + i + 1) == 32)) i++;
    if (i == at || i + 1 >= lf) return -1;
    h.add(String.UTF8.decodeUnsafe(p + at, i - at), String.UTF8.decodeUnsafe(p + i + 2, lf - i - 2));
    at = lf + 1;
  }
}

/** parseHttpResponse parses the n bytes at p, a response in SPEC §5.3's
 * framing (STATUS LF, header lines, LF, body); null (lastCode MALFORMED)
 * if they are not one. */
export function parseHttpResponse(p: usize, n: i32): HttpResponse | null {
  code = Code.MALFORMED;
  if (n < 4 || load<u8>(p + 3) != 10) return null;
  const r = new HttpResponse();
  for (let i = 0; i < 3; i++) {
    const c = <i32>load<u8>(p + i);
    if (c < 48 || c > 57) return null;
    r.status = r.status * 10 + c - 48;
  }
  const at = parseLines(p, n, 4, r.header);
  if (at < 0) return null;
  r.body = copyOut(p + at, n - at);
  code = 0;
  return r;
}

/** The timeout of the HTTP request being made, for its Call. */
let httpTimeout: i32 = 0;

/** httpRequest makes an HTTP request through the host (ABI 1.3, SPEC §5.3)
 * and waits up to timeoutMs (<= 0: until shortly before the call's own
 * timeout) for the whole response; one larger than the first buffer is
 * fetched with http_reply. A status the server sends (404, 500) is a
 * response; redirects are not followed. null on failure, lastCode() says
 * why: DENIED outside the plugin's http grant, TIMEOUT when the wait
 * ended, UNREACHABLE when the server cannot be reached, MALFORMED for a
 * request the framing refuses (a Host header...). */
export function httpRequest(method: string, url: string, header: HttpHeader, body: Uint8Array, timeoutMs: i32): HttpResponse | null {
  let text = method + " " + url + "\n";
  for (let i = 0; i < header.length; i++) text += header.names[i] + ": " + header.values[i] + "\n";
  const head = utf8(text + "\n");
  const req = new ArrayBuffer(head.byteLength + body.length);
  memory.copy(changetype<usize>(req), changetype<usize>(head), head.byteLength);
  memory.copy(changetype<usize>(req) + head.byteLength, body.dataStart, body.length);
  httpTimeout = timeoutMs;
  const b = fetch((again: bool, a: usize, an: i32, out: usize, cap: i32): i32 =>
    again ? host._httpReply(out, cap) : host._httpRequest(a, an, httpTimeout, out, cap), req);
  if (!b) return null;
  return parseHttpResponse(b.dataStart, b.length);
}

/** routeRequest parses the content of m, a route plugin's request (SPEC
 * §10), in SPEC §5.3's request framing; null (lastCode MALFORMED) if it
 * is not framed so. */
export function routeRequest(m: Request): RouteRequest | null {
  const p = m.ptr(Field.CONTENT), n = m.len(Field.CONTENT);
  code = Code.MALFORMED;
  const lf = indexLF(p, n, 0);
  if (lf < 0) return null;
  let sp = -1;
  for (let i = 0; i < lf && sp < 0; i++) if (load<u8>(p + i) == 32) sp = i;
  if (sp <= 0) return null;
  const r = new RouteRequest();
  r.method = String.UTF8.decodeUnsafe(p, sp);
  r.url = String.UTF8.decodeUnsafe(p + sp + 1, lf - sp - 1);
  const at = parseLines(p, n, lf + 1, r.header);
  if (at < 0) return null;
  r.body = copyOut(p + at, n - at);
  code = 0;
  return r;
}

// ---- Replies ----

const SET_OP = 1;
const SET_ROUTE = 2;
const SET_VERSION = 4;

/** Reply builds a handler's reply: content written with write, writeRaw or
 * writeString goes straight to its place in the reply envelope, in a
 * buffer the SDK reuses. By default the reply has the request's route with
 * operation "response", the request's resource version and timestamp 0 (the
 * host sets the time). */
export class Reply {
  buf: Buf = new Buf();
  head: i32 = 0;
  len: i32 = 0;
  set: i32 = 0;
  operation: string = "";
  source: string = "";
  group: string = "";
  resource: string = "";
  version: string = "";
  timestamp: i64 = 0;

  @inline private room(n: i32): usize {
    this.buf.reserve(this.head + this.len + n);
    return this.buf.ptr + this.head + this.len;
  }

  /** writeRaw appends the n bytes at p (e.g. a Request field). */
  writeRaw(p: usize, n: i32): void {
    memory.copy(this.room(n), p, n);
    this.len += n;
  }

  /** write appends b. */
  write(b: Uint8Array): void { this.writeRaw(b.dataStart, b.length); }

  /** writeString appends s as UTF-8. */
  writeString(s: string): void {
    const n = String.UTF8.byteLength(s);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.room(n));
    this.len += n;
  }

  /** reset drops the content written so far. */
  reset(): void { this.len = 0; }

  /** setOperation sets the reply's operation (default "response"). */
  setOperation(op: string): void { this.operation = op; this.set |= SET_OP; }

  /** setRoute sets the reply's whole route in place of the request's. */
  setRoute(source: string, group: string, operation: string, resource: string): void {
    this.source = source; this.group = group; this.operation = operation; this.resource = resource;
    this.set |= SET_ROUTE | SET_OP;
  }

  /** setResourceVersion sets the reply's resource version. */
  setResourceVersion(v: string): void { this.version = v; this.set |= SET_VERSION; }

  /** setTimestamp sets the reply's timestamp (Unix ms; 0: the host's time). */
  setTimestamp(ms: i64): void { this.timestamp = ms; }

  /** writeHttp writes a route plugin's answer (SPEC §10) as the content,
   * in place of what was written: status (100-999), header lines and body
   * in SPEC §5.3's response framing. It returns REPLY. */
  writeHttp(status: i32, header: HttpHeader, body: Uint8Array): i32 {
    this.len = 0;
    let text = status.toString() + "\n";
    for (let i = 0; i < header.length; i++) text += header.names[i] + ": " + header.values[i] + "\n";
    this.writeString(text + "\n");
    this.write(body);
    return REPLY;
  }

  /** error turns the reply into an application failure (SPEC §4): the
   * request's route with operation "error", no resource version and msg
   * as content. It returns REPLY: `return w.error("...")`. */
  error(msg: string): i32 {
    this.len = 0;
    this.set = SET_OP | SET_VERSION;
    this.operation = "error";
    this.version = "";
    this.timestamp = 0;
    this.writeString(msg);
    return REPLY;
  }
}

// ---- Registration ----

/** A handler: see REPLY. */
export type Handler = (m: Request, w: Reply) => i32;

let handler: Handler | null = null;
let initFn: ((config: Uint8Array) => i32) | null = null;
let tickFn: (() => i32) | null = null;
let stopFn: (() => void) | null = null;

/** handle registers the message handler (without one every message fails
 * with NO_HANDLER). */
export function handle(h: Handler): void { handler = h; }

/** onInit registers f to run at edgehost_init with the config (possibly
 * empty); it returns 0, or a positive code to refuse to start (log why
 * first: only the code reaches the host). */
export function onInit(f: (config: Uint8Array) => i32): void { initFn = f; }

/** onTick registers f to run at each edgehost_tick; 0 or a positive code. */
export function onTick(f: () => i32): void { tickFn = f; }

/** onStop registers f to run before an orderly discard of the instance. */
export function onStop(f: () => void): void { stopFn = f; }

// ---- The exports' implementation (exports.ts exports them) ----

const req = new Request();
const reply = new Reply();

function outcome(r: i32): i32 { return r > 0 ? r : r < 0 ? Code.INTERNAL : 0; }

export function _buffer(n: i32): usize {
  if (n < 0) return 0;
  exchange.reserve(n);
  return exchange.ptr;
}

export function _init(n: i32): i32 {
  if (n < 0 || n > exchange.cap) return Code.INVALID_ARGUMENT;
  const f = initFn;
  if (!f) return 0;
  const config = new Uint8Array(n);
  memory.copy(config.dataStart, exchange.ptr, n);
  return outcome(f(config));
}

export function _tick(): i32 {
  const f = tickFn;
  return f ? outcome(f()) : 0;
}

export function _stop(): void {
  const f = stopFn;
  if (f) f();
}

export function _handle(n: i32): i64 {
  if (n < 0 || n > exchange.cap) return -Code.INVALID_ARGUMENT;
  const h = handler;
  if (!h) return -Code.NO_HANDLER;
  const m = req;
  if (decode(exchange.ptr, n, m) < 0) {
    logError("handle: malformed envelope");
    return -Code.MALFORMED;
  }
  const w = reply;
  // Room in front of the content for the default head: the request's
  // strings less its parent_id, with operation "response".
  w.head = HEADER_LEN + m.len(Field.ID) + m.len(Field.RESOURCE_VERSION) + m.len(Field.SOURCE) + m.len(Field.GROUP) + 8 +
    m.len(Field.RESOURCE);
  w.len = 0;
  w.set = 0;
  w.timestamp = 0;
  w.buf.reserve(w.head);
  const r = h(m, w);
  if (r == NO_REPLY) return 0;
  if (r != REPLY) return -<i64>outcome(r);
  return finish(m, w);
}

const responseOp = utf8("response");
/** The reply's fields, and the UTF-8 of those the handler set, reused. */
const fieldPtrs = new StaticArray<usize>(7);
const fieldLens = new StaticArray<i32>(7);
const keep: ArrayBuffer[] = [];

/** finish writes the reply's head in front of its content and returns the
 * envelope's location for edgehost_handle. */
function finish(m: Request, w: Reply): i64 {
  if (w.set == 0) return finishDefault(m, w);
  const ptrs = fieldPtrs, lens = fieldLens;
  // No id (the host gives one); parent_id is the request's id.
  ptrs[0] = 0; lens[0] = 0;
  ptrs[1] = m.ptr(Field.ID); lens[1] = m.len(Field.ID);
  keep.length = 0;
  const route = (w.set & SET_ROUTE) != 0;
  for (let i = 2; i < 7; i++) {
    let s: string | null = null;
    if (i == 2 && (w.set & SET_VERSION) != 0) s = w.version;
    else if (i == 3 && route) s = w.source;
    else if (i == 4 && route) s = w.group;
    else if (i == 5) s = (w.set & SET_OP) != 0 ? w.operation : null;
    else if (i == 6 && route) s = w.resource;
    if (s != null) {
      const b = utf8(s);
      keep.push(b);
      ptrs[i] = changetype<usize>(b); lens[i] = b.byteLength;
    } else if (i == 5) {
      ptrs[i] = changetype<usize>(responseOp); lens[i] = responseOp.byteLength;
    } else {
      ptrs[i] = m.ptr(<Field>i); lens[i] = m.len(<Field>i);
    }
  }
  let head = HEADER_LEN;
  for (let i = 0; i < 7; i++) {
    if (lens[i] > MAX_STRING) { logError("handle: reply does not fit the envelope"); return -Code.TOO_LARGE; }
    head += lens[i];
  }
  if (head != w.head) { // a head other than the default: move the content
    w.buf.reserve(head + w.len);
    memory.copy(w.buf.ptr + head, w.buf.ptr + w.head, w.len);
  }
  const b = w.buf.ptr;
  store<u16>(b, 1); // format 1, flags 0
  store<i64>(b + 2, w.timestamp);
  let q = b + HEADER_LEN;
  for (let i = 0; i < 7; i++) {
    store<u16>(b + 10 + 2 * i, <u16>lens[i]);
    memory.copy(q, ptrs[i], lens[i]);
    q += lens[i];
  }
  store<u32>(b + 24, w.len);
  return (<i64>(head + w.len) << 32) | <i64>(<u32>b);
}

/** finishDefault is finish for a reply with the request's route and
 * resource version, the usual case: the head is the request's, less its id
 * (which becomes the parent_id), with operation "response". */
function finishDefault(m: Request, w: Reply): i64 {
  const b = w.buf.ptr;
  const id = m.len(Field.ID), meta = m.len(Field.RESOURCE_VERSION) + m.len(Field.SOURCE) + m.len(Field.GROUP);
  const resource = m.len(Field.RESOURCE);
  store<u16>(b, 1); // format 1, flags 0
  store<i64>(b + 2, w.timestamp);
  store<u16>(b + 10, 0);
  store<u16>(b + 12, <u16>id);
  memory.copy(b + 14, exchange.ptr + 14, 6); // resource_version, source, group
  store<u16>(b + 20, 8);
  store<u16>(b + 22, <u16>resource);
  store<u32>(b + 24, w.len);
  let q = b + HEADER_LEN;
  memory.copy(q, m.ptr(Field.ID), id); // as parent_id
  q += id;
  memory.copy(q, m.ptr(Field.RESOURCE_VERSION), meta); // back to back in both
  q += meta;
  memory.copy(q, changetype<usize>(responseOp), 8);
  q += 8;
  memory.copy(q, m.ptr(Field.RESOURCE), resource);
  return (<i64>(w.head + w.len) << 32) | <i64>(<u32>b);
}
