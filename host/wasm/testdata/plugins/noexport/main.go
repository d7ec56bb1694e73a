// Command noexport lacks the required edgehost_handle export: the host must
// refuse it, naming the export.
package main

import "unsafe"

var buf [64]byte

func main() {}

//go:wasmexport edgehost_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport edgehost_buffer
func buffer(n int32) int32 { return int32(uintptr(unsafe.Pointer(&buf[0]))) }

//go:wasmexport edgehost_init
func initPlugin(n int32) int32 { return 0 }
