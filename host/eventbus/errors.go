package eventbus

import "github.com/edgehost/edgehost/abi"

// The eventbus's errors. Every error it returns wraps one of these with what
// was wrong, e.g. `eventbus: publish "a/b": payload of 2097152 bytes is
// larger than 1048576: payload too large`; test for them with errors.Is.
// Like the bus's errors, each also matches the ABI status code a plugin
// should see, so the plugin runtime can pass it through unchanged.
var (
	// ErrInvalidTopic: a topic name or filter MQTT would refuse. It
	// matches abi.InvalidArgument.
	ErrInvalidTopic error = abi.NewError("invalid topic", abi.InvalidArgument)
	// ErrPayloadTooLarge: a payload over the configured maximum. It matches
	// abi.TooLarge.
	ErrPayloadTooLarge error = abi.NewError("payload too large", abi.TooLarge)
	// ErrQueueFull: the external broker is down and the queue of publishes
	// waiting for it is full. It matches abi.Busy.
	ErrQueueFull error = abi.NewError("publish queue full while the external broker is down", abi.Busy)
	// ErrNotRunning: the module is not running, so no broker is there to
	// publish to. It matches abi.Unavailable.
	ErrNotRunning error = abi.NewError("eventbus not running", abi.Unavailable)
	// ErrUnsupported: a QoS other than 0 or 1, or a bus operation the
	// eventbus does not handle. It matches abi.InvalidArgument.
	ErrUnsupported error = abi.NewError("unsupported", abi.InvalidArgument)
)
