package bus

import "github.com/edgehost/edgehost/abi"

// The bus's errors. Every error the bus returns wraps one of these with the
// operation and the module it concerns, e.g. `bus: send to "twin": queue full
// after 2s`; test for them with errors.Is. Each also matches the ABI status
// code a plugin should see for it, so errors.Is(err, abi.Busy) holds for a
// full queue and the plugin runtime can pass the code through unchanged.
var (
	// ErrQueueFull: the destination's queue stayed full until the send
	// deadline (Options.SendTimeout or the context's, whichever came first).
	// It matches abi.Busy.
	ErrQueueFull error = abi.NewError("queue full", abi.Busy)
	// ErrNoModule: no module has that name, or the group has no module. It
	// matches abi.Unavailable.
	ErrNoModule error = abi.NewError("no such module", abi.Unavailable)
	// ErrTimeout: a Request's context deadline passed before the reply came.
	// It matches abi.Timeout and is returned together with
	// context.DeadlineExceeded.
	ErrTimeout error = abi.NewError("no reply before the deadline", abi.Timeout)
	// ErrNoWaiter: a reply's ParentID names no request that is waiting, either
	// because its requester gave up or because no such request was made. It
	// matches abi.NotFound.
	ErrNoWaiter error = abi.NewError("no request waiting for this reply", abi.NotFound)
	// ErrClosed: the bus, or the module, has been closed. It matches
	// abi.Unavailable.
	ErrClosed error = abi.NewError("closed", abi.Unavailable)
	// ErrDuplicate: a module name that is already registered, or a request id
	// that is already waiting for a reply. It matches abi.InvalidArgument.
	ErrDuplicate error = abi.NewError("already in use", abi.InvalidArgument)
	// ErrInvalid: an empty module or group name. It matches
	// abi.InvalidArgument.
	ErrInvalid error = abi.NewError("empty name", abi.InvalidArgument)
)
