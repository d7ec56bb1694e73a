// The module's exports (abi/SPEC.md §4). A plugin's entry file re-exports
// them: export * from "<sdk>/assembly/exports";
import { ABI_MAJOR, _buffer, _init, _handle, _tick, _stop } from "./index";

export function edgehost_abi_version(): i32 { return ABI_MAJOR; }

/** A pointer to an exchange buffer of at least n bytes (any n, not only
 * powers of two), moved only when a larger one is asked for. */
export function edgehost_buffer(n: i32): usize { return _buffer(n); }

export function edgehost_init(configLen: i32): i32 { return _init(configLen); }

export function edgehost_handle(msgLen: i32): i64 { return _handle(msgLen); }

export function edgehost_tick(): i32 { return _tick(); }

export function edgehost_stop(): void { _stop(); }
