// Command badimport imports edgehost_v1.foo, which ABI 1.0 does not define:
// the host must refuse it by name.
package main

import "unsafe"

var buf [64]byte

func main() {}

//go:wasmimport edgehost_v1 foo
func foo() int32

//go:wasmexport edgehost_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport edgehost_buffer
func buffer(n int32) int32 { return int32(uintptr(unsafe.Pointer(&buf[0]))) }

//go:wasmexport edgehost_init
func initPlugin(n int32) int32 { return foo() }

//go:wasmexport edgehost_handle
func handle(n int32) int64 { return -10 }
