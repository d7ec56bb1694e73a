/* sdkcheck: the C SDK's surface beyond the examples; see ../README.md. */
#include "edgehost.h"

static eh_message out_msg(eh_str group, eh_str op, eh_str resource, eh_str content) {
  eh_message m = {0};
  m.group = group, m.operation = op, m.resource = resource, m.content = content;
  return m;
}

static int tick(void) {
  eh_message m = out_msg(EH_LIT("sink"), EH_LIT("note"), EH_LIT("sdk/tick"), EH_LIT("tick"));
  int32_t r = eh_send(&m);
  return r < 0 ? -r : 0;
}

static int handle(const eh_message *m, eh_reply *w) {
  eh_str op = m->operation;
  if (eh_str_eq(op, EH_LIT("request"))) {
    eh_message q = out_msg(EH_LIT("svc"), EH_LIT("query"), EH_LIT("sdk/q"), m->content), r;
    int32_t c = eh_request(&q, 5000, &r);
    if (c < 0) return eh_reply_errorf(w, "request: %s", eh_code_name(c));
    eh_reply_printf(w, "%.*s %zu", (int)r.operation.len, r.operation.ptr, r.content.len);
    return EH_REPLY;
  }
  if (eh_str_eq(op, EH_LIT("send"))) {
    eh_message s = out_msg(EH_LIT("sink"), EH_LIT("note"), EH_LIT("sdk/s"), m->content);
    int32_t c = eh_send(&s);
    if (c < 0) return eh_reply_errorf(w, "send: %s", eh_code_name(c));
    eh_reply_write_str(w, EH_LIT("ok"));
    return EH_REPLY;
  }
  if (eh_str_eq(op, EH_LIT("kv"))) {
    const char *eq = memchr(m->content.ptr, '=', m->content.len);
    if (!eq) return eh_reply_error(w, EH_LIT("kv: want k=v"));
    size_t kn = (size_t)(eq - m->content.ptr);
    eh_str k = {m->content.ptr, kn}, v = {eq + 1, m->content.len - kn - 1}, got, list, each;
    int32_t c = eh_kv_put(k, v);
    if (c < 0 || (c = eh_kv_get(k, &got)) < 0) return eh_reply_errorf(w, "kv: %s", eh_code_name(c));
    eh_reply_write_str(w, got);
    eh_reply_write_str(w, EH_LIT("|"));
    if ((c = eh_kv_list(EH_LIT(""), &list)) < 0) return eh_reply_errorf(w, "kv_list: %s", eh_code_name(c));
    for (int first = 1; eh_kv_next(&list, &each) > 0; first = 0) {
      if (!first) eh_reply_write_str(w, EH_LIT(","));
      eh_reply_write_str(w, each);
    }
    if ((c = eh_kv_delete(k)) < 0) return eh_reply_errorf(w, "kv_delete: %s", eh_code_name(c));
    c = eh_kv_get(k, &got);
    eh_reply_write_str(w, c == -EH_NOT_FOUND ? EH_LIT("|absent") : EH_LIT("|present"));
    return EH_REPLY;
  }
  if (eh_str_eq(op, EH_LIT("config"))) {
    eh_str cfg;
    int32_t c = eh_config(&cfg);
    if (c < 0) return eh_reply_errorf(w, "config: %s", eh_code_name(c));
    eh_reply_write_str(w, cfg);
    return EH_REPLY;
  }
  if (eh_str_eq(op, EH_LIT("now"))) {
    eh_reply_printf(w, "%lld", (long long)eh_now());
    return EH_REPLY;
  }
  if (eh_str_eq(op, EH_LIT("log"))) {
    eh_log(EH_INFO, m->content);
    eh_reply_write_str(w, EH_LIT("ok"));
    return EH_REPLY;
  }
  if (eh_str_eq(op, EH_LIT("route"))) {
    eh_http_req r;
    eh_http_response resp;
    if (eh_route_request(m, &r) < 0) return eh_reply_error(w, EH_LIT("route: not a request in the framing"));
    /* The request's header lines plus one. */
    static char lines[4096];
    eh_str via = EH_LIT("X-Via: c\n");
    if (r.headers.len + via.len > sizeof lines) return eh_reply_error(w, EH_LIT("route: headers too long"));
    memcpy(lines, r.headers.ptr, r.headers.len);
    memcpy(lines + r.headers.len, via.ptr, via.len);
    r.headers = (eh_str){lines, r.headers.len + via.len};
    int32_t c = eh_http_request(&r, 5000, &resp);
    if (c < 0) return eh_reply_errorf(w, "http_request: %s", eh_code_name(c));
    /* The response's header lines, checked by walking them, plus one. */
    eh_str each = resp.headers, name, value;
    size_t n = 0;
    while ((c = eh_http_next_header(&each, &name, &value)) > 0) n++;
    if (c < 0 || n == 0) return eh_reply_error(w, EH_LIT("route: response header lines do not parse"));
    static char out[4096];
    eh_str lang = EH_LIT("X-Lang: c");
    if (resp.headers.len + lang.len > sizeof out) return eh_reply_error(w, EH_LIT("route: response headers too long"));
    memcpy(out, resp.headers.ptr, resp.headers.len);
    memcpy(out + resp.headers.len, lang.ptr, lang.len);
    return eh_reply_http(w, resp.status, (eh_str){out, resp.headers.len + lang.len}, resp.body);
  }
  if (eh_str_eq(op, EH_LIT("fail"))) return EH_NO_HANDLER;
  if (eh_str_eq(op, EH_LIT("trap"))) __builtin_trap();
  return eh_reply_errorf(w, "sdkcheck: unknown operation %.*s", (int)op.len, op.ptr);
}

EDGEHOST_PLUGIN(.handle = handle, .tick = tick);
