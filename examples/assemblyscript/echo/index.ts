// echo: replies to every message with its content unchanged and operation
// "response", as examples/echo does. The content is copied straight from
// the exchange buffer into the reply envelope, in a buffer the SDK reuses:
// a call allocates nothing.
import { handle, Field, Request, Reply, REPLY } from "../../../sdk/assemblyscript/assembly/index";
export * from "../../../sdk/assemblyscript/assembly/exports";

handle((m: Request, w: Reply): i32 => {
  w.writeRaw(m.ptr(Field.CONTENT), m.len(Field.CONTENT));
  return REPLY;
});
