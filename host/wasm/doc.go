// Package wasm runs edgehost plugins: WebAssembly core modules that implement
// the guest side of abi/SPEC.md, executed with wazero.
//
// A Runtime compiles modules once per digest, with a compilation cache shared
// by every plugin and optionally kept on disk. Load turns a compiled Module
// into a Plugin: its own wazero runtime (so its memory limit is its own),
// WASI preview 1 without a file system, the edgehost_v1 imports it declares,
// and a pool of instances that serve one call at a time each.
//
// A trap, a timeout, running out of memory or a bad reply fails that one
// call with a *FaultError and replaces the instance; a plugin that keeps
// faulting is quarantined with exponential backoff (see Status). A failure
// code returned by the guest is an orderly *CodeError, not a fault.
package wasm
