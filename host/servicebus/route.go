package servicebus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

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

// ErrRouteRefused: a route plugin refused an app's edge → cloud request.
var ErrRouteRefused = errors.New("refused by the route plugin")

// viaRoute offers the request, decoded as in and bound for target, to the
// route plugins, as an HTTP request in SPEC section 5.3's framing (what
// the default route would send, and what http_request takes). It reports
// false when none takes it (no route plugin, or none whose receives
// matches): the default route serves it then. Otherwise it returns the
// plugin's answer, or the status and error to answer with.
func (m *Module) viaRoute(ctx context.Context, msg abi.Message, target string, in HTTPRequest) (HTTPResponse, int, error, bool) {
	if !m.bus.HasGroup(RouteGroup) {
		return HTTPResponse{}, 0, nil, false
	}
	content, err := routeContent(target, in)
	if err != nil {
		return HTTPResponse{}, http.StatusBadRequest, err, true
	}
	req := abi.Message{Route: abi.Route{Source: ModuleName, Group: RouteGroup, Operation: msg.Route.Operation, Resource: msg.Route.Resource},
		Content: content}
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
		switch {
		case f.Reason == abi.FailureNoReceiver:
			return HTTPResponse{}, 0, nil, false
		case f.Code == abi.Unreachable:
			// The plugin could not reach the service: the default route's
			// answer to a call that failed (edgecore's 404).
			return HTTPResponse{}, http.StatusNotFound, fmt.Errorf("%s: %w: %s", target, ErrCallFailed, f.Error), true
		case f.Code == abi.Timeout:
			return HTTPResponse{}, http.StatusGatewayTimeout, fmt.Errorf("%s: %w: %s", target, ErrTimeout, f.Error), true
		}
		return HTTPResponse{}, http.StatusBadGateway, fmt.Errorf("%w: %s", ErrRoute, f.Error), true
	}
	if reply.Route.Operation != OpRouteResponse {
		return HTTPResponse{}, http.StatusBadGateway, fmt.Errorf("%w: %s answered %s: %.200s", ErrRoute, reply.Route.Source, reply.Route.Operation, reply.Content), true
	}
	r, err := abi.DecodeHTTPResponse(reply.Content)
	if err != nil {
		return HTTPResponse{}, http.StatusBadGateway, fmt.Errorf("%w: %s answered no HTTP response: %v", ErrRoute, reply.Route.Source, err), true
	}
	if len(r.Body) > m.cfg.MaxBodyBytes {
		return HTTPResponse{}, http.StatusInternalServerError,
			fmt.Errorf("%w: more than %d bytes (modules.servicebus.maxBodyBytes)", ErrResponseTooLarge, m.cfg.MaxBodyBytes), true
	}
	resp := HTTPResponse{Header: make(http.Header, len(r.Header)), StatusCode: r.Status, Body: r.Body}
	for _, kv := range r.Header {
		resp.Header[kv[0]] = append(resp.Header[kv[0]], kv[1])
	}
	return resp, 0, nil, true
}

// hostSetHeaders are the request headers the framing leaves out: the
// host sets them when the request is made (SPEC section 5.3).
var hostSetHeaders = []string{"Host", "Content-Length", "Transfer-Encoding", "Connection"}

// routeContent frames the cloud's request for target as SPEC section
// 5.3's request, without the headers the host sets; a header the framing
// cannot carry (a control character in it) is an ErrBadRequest naming it.
func routeContent(target string, in HTTPRequest) ([]byte, error) {
	r := abi.HTTPRequest{Method: in.Method, URL: target, Body: in.Body}
	n := 0
	for _, vs := range in.Header {
		n += len(vs)
	}
	r.Header = make([][2]string, 0, n)
	for name, vs := range in.Header {
		if slices.ContainsFunc(hostSetHeaders, func(h string) bool { return strings.EqualFold(h, name) }) {
			continue
		}
		if !abi.ValidHeaderName(name) {
			return nil, fmt.Errorf("%w: header name %q is not an HTTP token", ErrBadRequest, name)
		}
		for _, v := range vs {
			if !abi.ValidHeaderValue(v) {
				return nil, fmt.Errorf("%w: header %s: value %q holds a control character", ErrBadRequest, name, v)
			}
			r.Header = append(r.Header, [2]string{name, v})
		}
	}
	// Map order is random; a sorted header keeps the plugin's input the
	// same for the same request.
	slices.SortStableFunc(r.Header, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return abi.AppendHTTPRequest(make([]byte, 0, len(target)+len(in.Method)+len(in.Body)+64*n+4), &r), nil
}
