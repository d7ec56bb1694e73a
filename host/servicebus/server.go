package servicebus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/hashicorp/go-hclog"
)

// AppRequest is what a local app posts to the edge → cloud listener,
// edgecore's. Payload is passed to the cloud as the app sent it.
type AppRequest struct {
	Method    string          `json:"method"`
	TargetURL string          `json:"targetURL"`
	Payload   json.RawMessage `json:"payload"`
}

// AppReply is the listener's answer, edgecore's: Body is the cloud's
// reply content, present when Code is 200.
type AppReply struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
	Body string `json:"body,omitempty"`
}

// ReplyOK is edgecore's message of a successful answer.
const ReplyOK = "receive response from cloud successfully"

// listen starts the edge → cloud listener; it stops when ctx ends.
func (m *Module) listen(ctx context.Context) (*http.Server, error) {
	ln, err := net.Listen("tcp", m.cfg.Server.Address)
	if err != nil {
		return nil, fmt.Errorf("servicebus: listen %s (modules.servicebus.server.address): %w", m.cfg.Server.Address, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(m.serveApp), ReadHeaderTimeout: serverReadHeaderLimit,
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    m.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})}
	go srv.Serve(ln)
	return srv, nil
}

// serveApp answers one app request: checked, sent upstream, and the
// cloud's answer handed back.
func (m *Module) serveApp(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, int64(m.cfg.MaxBodyBytes)+1))
	if err != nil {
		m.answerApp(w, http.StatusBadRequest, fmt.Errorf("%w: read the request body: %v", ErrBadRequest, err))
		return
	}
	if len(raw) > m.cfg.MaxBodyBytes {
		m.answerApp(w, http.StatusBadRequest, fmt.Errorf("%w: more than %d bytes (modules.servicebus.maxBodyBytes)", ErrRequestTooLarge, m.cfg.MaxBodyBytes))
		return
	}
	var req AppRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		m.answerApp(w, http.StatusBadRequest, fmt.Errorf("%w: want {\"method\",\"targetURL\",\"payload\"}: %v", ErrBadRequest, err))
		return
	}
	if routed, code, err := m.upstreamRoute(r.Context(), req, raw); err != nil {
		m.answerApp(w, code, err)
		return
	} else if routed != nil {
		raw = routed
		if err := json.Unmarshal(raw, &req); err != nil {
			m.answerApp(w, http.StatusInternalServerError, fmt.Errorf("%w: the route plugin's request is not {\"method\",\"targetURL\",\"payload\"}: %v", ErrRoute, err))
			return
		}
	}
	if !m.tgts.allowed(req.TargetURL) {
		m.refuse(ReasonNotAllowed, fmt.Errorf("%w: %s", ErrNotAllowed, req.TargetURL), nil)
		writeApp(w, AppReply{Code: http.StatusBadRequest, Msg: fmt.Sprintf("url %s is not allowed: the cloud has not started it", req.TargetURL)})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), m.cfg.Server.Timeout)
	defer cancel()
	m.upstream.Add(1)
	msg := abi.Message{Route: abi.Route{Source: ModuleName, Group: UserGroup, Operation: abi.OpUpload, Resource: req.TargetURL}, Content: raw}
	reply, err := m.bus.RequestGroup(ctx, HubGroup, msg)
	switch {
	case err != nil:
		m.answerApp(w, http.StatusInternalServerError, fmt.Errorf("%w for %s within %s (modules.servicebus.server.timeout): %w",
			ErrUpstream, req.TargetURL, m.cfg.Server.Timeout, err))
		return
	case reply.Route.Operation == abi.OpError:
		m.answerApp(w, http.StatusInternalServerError, fmt.Errorf("%w for %s: %s", ErrUpstream, req.TargetURL, reply.Content))
		return
	}
	m.upAnswered.Add(1)
	writeApp(w, AppReply{Code: http.StatusOK, Msg: ReplyOK, Body: string(reply.Content)})
}

// answerApp counts err and answers the app with it.
func (m *Module) answerApp(w http.ResponseWriter, code int, err error) {
	m.refuse(reasonOf(err), err, nil)
	writeApp(w, AppReply{Code: code, Msg: err.Error()})
}

func writeApp(w http.ResponseWriter, r AppReply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.Code)
	json.NewEncoder(w).Encode(r)
}

// OpUpstream is the operation of an edge → cloud request offered to the
// route plugins (KubeEdge's operation for it upstream).
const OpUpstream = abi.OpUpload

// upstreamRoute offers an app's request (raw, decoded as req) to the route
// plugins before the allow-list: a plugin receiving group route,
// operation upload and the target URL as resource answers with operation
// response and the request to send instead (the same JSON, rewritten or as
// it was), or refuses it with an error reply. It returns the request to
// send (nil: unchanged, no plugin took it), or the status and error to
// answer the app with.
func (m *Module) upstreamRoute(ctx context.Context, req AppRequest, raw []byte) ([]byte, int, error) {
	if !m.bus.HasGroup(RouteGroup) {
		return nil, 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ClientTimeout)
	defer cancel()
	msg := abi.Message{Route: abi.Route{Source: ModuleName, Group: RouteGroup, Operation: OpUpstream, Resource: req.TargetURL}, Content: raw}
	reply, err := m.bus.RequestGroup(ctx, RouteGroup, msg)
	switch {
	case errors.Is(err, bus.ErrNoModule):
		return nil, 0, nil
	case err != nil:
		return nil, http.StatusInternalServerError, fmt.Errorf("%w for %s: %v", ErrRoute, req.TargetURL, err)
	}
	if f, ok := abi.ParseFailure(reply); ok {
		if f.Reason == abi.FailureNoReceiver {
			return nil, 0, nil
		}
		return nil, http.StatusInternalServerError, fmt.Errorf("%w for %s: %s", ErrRoute, req.TargetURL, f.Error)
	}
	switch {
	case reply.Route.Operation == abi.OpError:
		return nil, http.StatusForbidden, fmt.Errorf("%w: %s refused %s: %s", ErrRouteRefused, reply.Route.Source, req.TargetURL, reply.Content)
	case reply.Route.Operation != OpRouteResponse:
		return nil, http.StatusInternalServerError, fmt.Errorf("%w: %s answered %s for %s", ErrRoute, reply.Route.Source, reply.Route.Operation, req.TargetURL)
	case len(reply.Content) > m.cfg.MaxBodyBytes:
		return nil, http.StatusInternalServerError, fmt.Errorf("%w: the route plugin's request is over %d bytes (modules.servicebus.maxBodyBytes)",
			ErrRequestTooLarge, m.cfg.MaxBodyBytes)
	}
	m.routed.Add(1)
	return reply.Content, 0, nil
}
