package servicebus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// HTTPRequest is KubeEdge's servicebus request, the content of a cloud →
// edge message; Body is base64 on the wire, as Go encodes []byte.
type HTTPRequest struct {
	Header http.Header `json:"header"`
	Body   []byte      `json:"body"`
	Method string      `json:"method"`
	URL    string      `json:"url"`
}

// HTTPResponse is KubeEdge's servicebus response, the content of the
// edge's reply.
type HTTPResponse struct {
	Header     http.Header `json:"header"`
	StatusCode int         `json:"status_code"`
	Body       []byte      `json:"body"`
}

// errorHeader is the header of the answers edgecore makes itself.
var errorHeader = http.Header{"Server": []string{"kubeedge-edgecore"}}

// replyOverhead bounds the envelope around an encoded HTTPResponse.
const replyOverhead = 512

// Target parses a cloud → edge resource, {port}:{path}, into the local
// URL the default route calls: http://127.0.0.1:{port}{path}.
func Target(resource string) (string, error) {
	port, path, ok := strings.Cut(resource, ":")
	if !ok || strings.Contains(path, ":") {
		return "", fmt.Errorf("%w %q: want {port}:{path} with exactly one colon", ErrBadResource, resource)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "", fmt.Errorf("%w %q: port %q is not 1..65535", ErrBadResource, resource, port)
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return "http://127.0.0.1:" + port + path, nil
}

// DecodeRequest parses a cloud → edge message's content; the method is
// the content's, else the message's operation.
func DecodeRequest(msg abi.Message) (HTTPRequest, error) {
	var req HTTPRequest
	if err := json.Unmarshal(msg.Content, &req); err != nil {
		return HTTPRequest{}, fmt.Errorf("%w: content is not an HTTPRequest: %v", ErrBadRequest, err)
	}
	if req.Method == "" {
		req.Method = msg.Route.Operation
	}
	req.Method = strings.ToUpper(req.Method)
	if req.Method == "" || strings.ContainsAny(req.Method, " \t\r\n") {
		return HTTPRequest{}, fmt.Errorf("%w: method %q", ErrBadRequest, req.Method)
	}
	return req, nil
}

// serveCloud answers one cloud → edge request, to the cloud or, if local,
// to the requester waiting on the bus.
func (m *Module) serveCloud(ctx context.Context, msg abi.Message, local bool) {
	start := time.Now()
	resp, status, err := m.call(ctx, msg)
	if err != nil {
		m.fail(ctx, msg, local, status, err)
		return
	}
	content, err := m.encodeReply(resp, local)
	if err != nil {
		m.fail(ctx, msg, local, http.StatusInternalServerError, err)
		return
	}
	reply := abi.Message{Header: abi.Header{ParentID: msg.Header.ID},
		Route: abi.Route{Source: ModuleName, Group: UserGroup, Operation: abi.OpUpload}, Content: content}
	if err := m.reply(ctx, msg, local, reply); err != nil {
		return
	}
	m.answered.Add(1)
	m.nanos.Add(int64(time.Since(start)))
}

// call answers the request: through the route plugin that takes it, else
// through the default route, the local service; on failure it returns the
// status of the error answer.
func (m *Module) call(ctx context.Context, msg abi.Message) (HTTPResponse, int, error) {
	target, err := Target(msg.Route.Resource)
	if err != nil {
		return HTTPResponse{}, http.StatusBadRequest, err
	}
	in, err := DecodeRequest(msg)
	if err != nil {
		return HTTPResponse{}, http.StatusBadRequest, err
	}
	if len(in.Body) > m.cfg.MaxBodyBytes {
		return HTTPResponse{}, http.StatusRequestEntityTooLarge,
			fmt.Errorf("%w: %d bytes, cap %d (modules.servicebus.maxBodyBytes)", ErrRequestTooLarge, len(in.Body), m.cfg.MaxBodyBytes)
	}
	if resp, status, err, taken := m.viaRoute(ctx, msg, target, in); taken {
		m.routed.Add(1)
		return resp, status, err
	}
	return m.defaultRoute(ctx, target, in)
}

// defaultRoute is edgecore's: the request to http://127.0.0.1:{port}{path}.
func (m *Module) defaultRoute(ctx context.Context, target string, in HTTPRequest) (HTTPResponse, int, error) {
	req, err := http.NewRequestWithContext(ctx, in.Method, target, bytes.NewReader(in.Body))
	if err != nil {
		return HTTPResponse{}, http.StatusBadRequest, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	for k, vs := range in.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if h := in.Header.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := m.client.Do(req)
	if err != nil {
		var te interface{ Timeout() bool }
		if errors.As(err, &te) && te.Timeout() {
			return HTTPResponse{}, http.StatusGatewayTimeout,
				fmt.Errorf("%s %s: %w after %s (modules.servicebus.clientTimeout)", in.Method, target, ErrTimeout, m.cfg.ClientTimeout)
		}
		return HTTPResponse{}, http.StatusNotFound, fmt.Errorf("%s %s: %w: %v", in.Method, target, ErrCallFailed, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(m.cfg.MaxBodyBytes)+1))
	if err != nil {
		var te interface{ Timeout() bool }
		if errors.As(err, &te) && te.Timeout() {
			return HTTPResponse{}, http.StatusGatewayTimeout,
				fmt.Errorf("%s %s: reading the body: %w after %s (modules.servicebus.clientTimeout)", in.Method, target, ErrTimeout, m.cfg.ClientTimeout)
		}
		return HTTPResponse{}, http.StatusInternalServerError, fmt.Errorf("%s %s: read response body: %w: %v", in.Method, target, ErrCallFailed, err)
	}
	if len(body) > m.cfg.MaxBodyBytes {
		return HTTPResponse{}, http.StatusInternalServerError,
			fmt.Errorf("%s %s: %w: more than %d bytes (modules.servicebus.maxBodyBytes)", in.Method, target, ErrResponseTooLarge, m.cfg.MaxBodyBytes)
	}
	return HTTPResponse{Header: resp.Header, StatusCode: resp.StatusCode, Body: body}, 0, nil
}

// encodeReply marshals resp, refusing one for the cloud whose reply frame
// would be over the cloud link's limit (the hub would drop it and the
// cloud wait); a local reply does not cross the link.
func (m *Module) encodeReply(resp HTTPResponse, local bool) ([]byte, error) {
	content, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	if !local && len(content)+replyOverhead > m.cfg.MaxFrameBytes {
		return nil, fmt.Errorf("%w: a %d-byte body encodes to a %d-byte reply, over the cloud link's frame limit %d (modules.hub.maxFrameBytes)",
			ErrResponseTooLarge, len(resp.Body), len(content), m.cfg.MaxFrameBytes)
	}
	return content, nil
}

// fail counts err and answers the cloud with edgecore's error shape: the
// request's parent id, no resource or operation, and an HTTPResponse with
// status and the error as its body.
func (m *Module) fail(ctx context.Context, msg abi.Message, local bool, status int, err error) {
	m.refuse(reasonOf(err), err, &msg)
	content, _ := json.Marshal(HTTPResponse{Header: errorHeader, StatusCode: status, Body: []byte("servicebus: " + err.Error())})
	reply := abi.Message{Header: abi.Header{ParentID: msg.Header.ID}, Route: abi.Route{Source: ModuleName, Group: UserGroup}, Content: content}
	m.reply(ctx, msg, local, reply)
}

// reply hands a reply to the hub, or, if local, to the bus request
// waiting for it (its parent id matches).
func (m *Module) reply(ctx context.Context, req abi.Message, local bool, reply abi.Message) error {
	var err error
	if local {
		if err = m.bus.Respond(reply); err != nil {
			err = fmt.Errorf("%w to the local requester: %w", ErrReplyUndelivered, err)
		}
	} else if err = m.bus.SendToGroup(ctx, HubGroup, reply); err != nil {
		err = fmt.Errorf("%w to the hub: %w", ErrReplyUndelivered, err)
	}
	if err != nil {
		m.refuse(ReasonUndelivered, err, &req)
	}
	return err
}
