// AssemblyScript calls abort(message, file, line, column) on a failed
// assertion, a bounds check or an out-of-memory, and by default imports it
// as env.abort, which edgehost does not provide (a module importing it is
// refused). Build with `--use abort=<this file's path>/abort` so that it
// is this function instead: it logs the reason through the log import at
// error level, and traps, so the host counts a fault as for any trap.
import { _log } from "./host";

export function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let text = "abort: " + (message ? message : "(no message)");
  if (fileName) text += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  const b = String.UTF8.encode(text);
  _log(4, changetype<usize>(b), b.byteLength);
  unreachable();
}
