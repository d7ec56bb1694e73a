/* echo: replies to every message with its content unchanged and operation
 * "response", as examples/echo does. The content is copied straight from
 * the exchange buffer into the reply envelope, in a buffer the SDK reuses:
 * a call allocates nothing. */
#include "edgehost.h"

static int handle(const eh_message *m, eh_reply *w) {
  eh_reply_write(w, m->content.ptr, m->content.len);
  return EH_REPLY;
}

EDGEHOST_PLUGIN(.handle = handle);
