package wasm

import (
	"errors"
	"fmt"

	"github.com/edgehost/edgehost/abi"
)

// FaultKind names the cause of a fault (abi/SPEC.md section 7).
type FaultKind string

// Fault kinds.
const (
	// FaultTrap: the guest trapped (a Go panic, unreachable, an
	// out-of-bounds access) or exited.
	FaultTrap FaultKind = "trap"
	// FaultTimeout: the call ran past Limits.CallTimeout.
	FaultTimeout FaultKind = "timeout"
	// FaultMemory: the guest ran out of memory under Limits.MemoryPages.
	FaultMemory FaultKind = "memory"
	// FaultMalformedReply: the reply does not decode, lies outside guest
	// memory, or the guest returned an unusable exchange buffer.
	FaultMalformedReply FaultKind = "malformed-reply"
	// FaultReplyTooLarge: the reply is longer than Limits.MaxMessageBytes.
	FaultReplyTooLarge FaultKind = "reply-too-large"
	// FaultStack: the guest's calls nested deeper than the host allows
	// (instrument.MaxDepth frames), such as a runaway recursion.
	FaultStack FaultKind = "stack"
	// FaultStart: a new instance failed to start (instantiation,
	// edgehost_abi_version or edgehost_init failed).
	FaultStart FaultKind = "start"
)

// FaultError is returned for a call that faulted. The instance that ran it
// has been discarded.
type FaultError struct {
	Plugin string
	Kind   FaultKind
	Err    error
}

// Error names the plugin, the kind of fault and its cause.
func (e *FaultError) Error() string {
	return fmt.Sprintf("plugin %q: fault (%s): %v", e.Plugin, e.Kind, e.Err)
}

// Unwrap returns the underlying cause.
func (e *FaultError) Unwrap() error { return e.Err }

// CodeError is an orderly failure: the guest returned an ABI code from an
// export (or the host refused the call with one before calling the guest).
// errors.Is(err, abi.NoHandler) and the like work through Unwrap.
type CodeError struct {
	Plugin string
	// Export is the export that returned the code, or "" when the host
	// refused the call before calling the guest.
	Export string
	Code   abi.Code
}

// Error names the plugin, the export and the code.
func (e *CodeError) Error() string {
	if e.Export == "" {
		return fmt.Sprintf("plugin %q: refused: %s", e.Plugin, e.Code)
	}
	return fmt.Sprintf("plugin %q: %s failed: %s", e.Plugin, e.Export, e.Code)
}

// Unwrap returns the abi.Code.
func (e *CodeError) Unwrap() error { return e.Code }

// ErrQuarantined is wrapped by the error Handle and Tick return while the
// plugin is quarantined.
var ErrQuarantined = errors.New("quarantined")

// ErrClosed is wrapped by the error of every call on a closed plugin.
var ErrClosed = errors.New("closed")
