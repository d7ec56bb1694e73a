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
  if (eh_str_eq(op, EH_LIT("fail"))) return EH_NO_HANDLER;
  if (eh_str_eq(op, EH_LIT("trap"))) __builtin_trap();
  return eh_reply_errorf(w, "sdkcheck: unknown operation %.*s", (int)op.len, op.ptr);
}

EDGEHOST_PLUGIN(.handle = handle, .tick = tick);
