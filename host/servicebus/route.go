package servicebus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
)

// RouteGroup is the bus group of route plugins (abi/SPEC.md section 10):
// a plugin whose manifest receives group "route" with a resource pattern
// matching {port}:{path} gets the cloud's requests for it.
const RouteGroup = "route"

// OpRouteResponse is the operation of a route plugin's answer.
const OpRouteResponse = abi.OpResponse

// ErrRoute: a route plugin failed or answered with an error.
var ErrRoute = errors.New("route plugin failed")

// viaRoute offers msg to the route plugins. It reports false when none
// takes it (no route plugin, or none whose receives matches): the
// default route serves it then. Otherwise it returns the plugin's answer,
// or the status and error to answer with.
func (m *Module) viaRoute(ctx context.Context, msg abi.Message) (HTTPResponse, int, error, bool) {
	req := abi.Message{Route: abi.Route{Source: ModuleName, Group: RouteGroup, Operation: msg.Route.Operation, Resource: msg.Route.Resource},
		Content: msg.Content}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ClientTimeout)
	defer cancel()
	reply, err := m.bus.RequestGroup(ctx, RouteGroup, req)
	switch {
	case errors.Is(err, bus.ErrNoModule):
		return HTTPResponse{}, 0, nil, false
	case errors.Is(err, context.DeadlineExceeded):
		return HTTPResponse{}, http.StatusGatewayTimeout,
			fmt.Errorf("%w: no answer within %s (modules.servicebus.clientTimeout)", ErrTimeout, m.cfg.ClientTimeout), true
	case err != nil:
		return HTTPResponse{}, http.StatusBadGateway, fmt.Errorf("%w: %v", ErrRoute, err), true
	}
	if f, ok := abi.ParseFailure(reply); ok {
		if f.Reason == abi.FailureNoReceiver {
			return HTTPResponse{}, 0, nil, false
		}
		return HTTPResponse{}, http.StatusBadGateway, fmt.Errorf("%w: %s", ErrRoute, f.Error), true
	}
	if reply.Route.Operation != OpRouteResponse {
		return HTTPResponse{}, http.StatusBadGateway, fmt.Errorf("%w: %s answered %s: %s", ErrRoute, reply.Route.Source, reply.Route.Operation, reply.Content), true
	}
	var resp HTTPResponse
	if err := json.Unmarshal(reply.Content, &resp); err != nil || resp.StatusCode < 100 || resp.StatusCode > 999 {
		return HTTPResponse{}, http.StatusBadGateway, fmt.Errorf("%w: %s answered no HTTPResponse (status %d, %v)", ErrRoute, reply.Route.Source, resp.StatusCode, err), true
	}
	if len(resp.Body) > m.cfg.MaxBodyBytes {
		return HTTPResponse{}, http.StatusInternalServerError,
			fmt.Errorf("%w: more than %d bytes (modules.servicebus.maxBodyBytes)", ErrResponseTooLarge, m.cfg.MaxBodyBytes), true
	}
	return resp, 0, nil, true
}
