// sdkcheck: the AssemblyScript SDK's surface beyond the examples; see
// ../README.md.
import {
  handle, onTick, send, request, kvPut, kvGet, kvDelete, kvList, config, now, log, lastCode, codeName, utf8, routeRequest,
  Code, Field, Level, Message, Request, Reply, REPLY,
} from "../../../../../sdk/assemblyscript/assembly/index";
export * from "../../../../../sdk/assemblyscript/assembly/exports";

function out(group: string, operation: string, resource: string, content: Uint8Array): Message {
  const m = new Message();
  m.group = group;
  m.operation = operation;
  m.resource = resource;
  m.content = content;
  return m;
}

onTick((): i32 => {
  const c = send(out("sink", "note", "sdk/tick", Uint8Array.wrap(utf8("tick"))));
  return c < 0 ? -c : 0;
});

handle((m: Request, w: Reply): i32 => {
  const op = m.operation;
  if (op == "request") {
    const r = request(out("svc", "query", "sdk/q", m.content), 5000);
    if (r == null) return w.error("request: " + codeName(lastCode()));
    w.writeString(r.operation + " " + r.content.length.toString());
    return REPLY;
  }
  if (op == "send") {
    const c = send(out("sink", "note", "sdk/s", m.content));
    if (c < 0) return w.error("send: " + codeName(c));
    w.writeString("ok");
    return REPLY;
  }
  if (op == "kv") {
    const text = m.contentString;
    const eq = text.indexOf("=");
    if (eq < 0) return w.error("kv: want k=v");
    const k = text.substring(0, eq);
    let c = kvPut(k, Uint8Array.wrap(utf8(text.substring(eq + 1))));
    if (c < 0) return w.error("kv_put: " + codeName(c));
    const got = kvGet(k);
    if (got == null) return w.error("kv_get: " + codeName(lastCode()));
    w.write(got);
    const keys = kvList("");
    if (keys == null) return w.error("kv_list: " + codeName(lastCode()));
    w.writeString("|" + keys.join(","));
    c = kvDelete(k);
    if (c < 0) return w.error("kv_delete: " + codeName(c));
    w.writeString(kvGet(k) == null && lastCode() == Code.NOT_FOUND ? "|absent" : "|present");
    return REPLY;
  }
  if (op == "config") {
    const cfg = config();
    if (cfg == null) return w.error("config: " + codeName(lastCode()));
    w.write(cfg);
    return REPLY;
  }
  if (op == "now") {
    w.writeString(now().toString());
    return REPLY;
  }
  if (op == "log") {
    log(Level.INFO, m.contentString);
    w.writeString("ok");
    return REPLY;
  }
  if (op == "route") {
    const r = routeRequest(m);
    if (r == null) return w.error("route: not a request in the framing");
    r.header.add("X-Via", "assemblyscript");
    const resp = r.forward(5000);
    if (resp == null) return w.error("http_request: " + codeName(lastCode()));
    resp.header.add("X-Lang", "assemblyscript");
    return w.writeHttp(resp.status, resp.header, resp.body);
  }
  if (op == "fail") return Code.NO_HANDLER;
  if (op == "trap") assert(false, "sdkcheck: trap");
  return w.error("sdkcheck: unknown operation " + op);
});
