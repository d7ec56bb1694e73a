// Command route-default is edgecore's servicebus route as a first-party
// route plugin (abi/SPEC.md section 10): every cloud request it receives is
// forwarded, as the cloud sent it, to the local service
// http://127.0.0.1:{port}{path} through the host's http_request, and the
// service's response is the answer, byte for byte. A service that cannot
// be reached, or does not answer in time, fails the call with code
// unreachable or timeout, which the servicebus answers as its native
// default route does (edgecore's 404 "error to call service", a 504).
//
// An app's request to the cloud (operation upload) is let through as it
// is, as edgecore does.
//
// The daemon embeds it and loads it only when
// modules.servicebus.defaultRoute is "plugin" (docs/servicebus.md); it is
// the starting point for a site's own forwarder, and the benchmark's
// like-for-like comparison with the native route.
package main

import (
	"errors"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
)

func init() { sdk.Handle(handle) }

// handle forwards one request.
func handle(m *sdk.Message) (*sdk.Message, error) {
	if m.Route.Operation == abi.OpUpload {
		// An app's edge → cloud request: edgecore applies no policy to it.
		return m.Reply(m.Content), nil
	}
	req, err := sdk.RouteRequest(m)
	if err != nil {
		return nil, err
	}
	resp, err := sdk.HTTPForward(req, 0)
	switch {
	case errors.Is(err, sdk.ErrUnreachable):
		return nil, abi.Unreachable
	case errors.Is(err, sdk.ErrTimeout):
		return nil, abi.Timeout
	case err != nil:
		return nil, err
	}
	return m.Reply(resp), nil
}

func main() {}
