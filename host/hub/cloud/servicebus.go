package cloud

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/hub/wire"
)

// The reference cloud's servicebus (docs/servicebus.md): it sends nodes
// requests for their local services and waits for the reply (Request), and
// answers a node's edge → cloud request by calling its target URL from the
// hub's host, as CloudCore's router calls the rule's REST endpoint.
const (
	// ForwardTimeout bounds the hub's call of an edge → cloud target.
	ForwardTimeout = 10 * time.Second
	// forwardBodyBytes is how much of the target's answer is sent back
	// (CloudCore's router reads up to 1 MiB).
	forwardBodyBytes = 1 << 20
)

// Request sends msg to node and waits for the node's reply, the message
// whose parent is msg's id, until ctx ends.
func (s *Server) Request(ctx context.Context, node string, msg abi.Message, kind wire.Kind) (Received, error) {
	if msg.Header.ID == "" {
		msg.Header.ID = bus.NewID()
	}
	reply := make(chan Received, 1)
	s.mu.Lock()
	s.replies[msg.Header.ID] = reply
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.replies, msg.Header.ID)
		s.mu.Unlock()
	}()
	if err := s.Send(node, msg, kind); err != nil {
		return Received{}, err
	}
	select {
	case r := <-reply:
		return r, nil
	case <-ctx.Done():
		return Received{}, fmt.Errorf("request %s to %s: no reply: %w", msg.Header.ID, node, ctx.Err())
	}
}

// deliverReply hands r to the Request waiting for it, if any.
func (s *Server) deliverReply(r Received) {
	if r.Message.Header.ParentID == "" {
		return
	}
	s.mu.Lock()
	ch, ok := s.replies[r.Message.Header.ParentID]
	delete(s.replies, r.Message.Header.ParentID)
	s.mu.Unlock()
	if ok {
		ch <- r
	}
}

// isServicebusUpload reports whether m is a node's edge → cloud request.
func isServicebusUpload(m abi.Message) bool {
	r := m.Route
	return r.Source == "servicebus" && r.Group == "user" && r.Operation == abi.OpUpload && m.Header.ParentID == "" && r.Resource != ""
}

// appRequest is what the node's app sent, edgecore's form.
type appRequest struct {
	Method    string          `json:"method"`
	TargetURL string          `json:"targetURL"`
	Payload   json.RawMessage `json:"payload"`
}

// forwardServicebus calls the target of a node's edge → cloud request and
// replies with the target's body as a string (op response), or with op
// error and the reason.
func (s *Server) forwardServicebus(node string, m abi.Message) {
	reply := abi.Message{Header: abi.Header{ParentID: m.Header.ID},
		Route: abi.Route{Source: m.Route.Source, Group: m.Route.Group, Operation: abi.OpResponse, Resource: m.Route.Resource}}
	body, err := s.callTarget(m)
	if err != nil {
		reply.Route.Operation, reply.Content = abi.OpError, []byte(err.Error())
		s.log.Warn("servicebus target call failed", "node", node, "target", m.Route.Resource, "error", err)
	} else {
		reply.Content = body
	}
	if err := s.Send(node, reply, wire.KindString); err != nil {
		s.log.Warn("servicebus reply not sent", "node", node, "error", err)
	}
}

// callTarget makes the app's request to its target URL: a payload that is
// a JSON string is sent as its text, any other JSON as itself.
func (s *Server) callTarget(m abi.Message) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(string(m.Content))
	if err != nil {
		return nil, fmt.Errorf("servicebus request content is not base64: %w", err)
	}
	var app appRequest
	if err := json.Unmarshal(raw, &app); err != nil {
		return nil, fmt.Errorf("servicebus request is not {\"method\",\"targetURL\",\"payload\"}: %w", err)
	}
	if app.TargetURL != m.Route.Resource {
		return nil, fmt.Errorf("servicebus request: targetURL %q is not the resource %q", app.TargetURL, m.Route.Resource)
	}
	var payload []byte
	if p := bytes.TrimSpace(app.Payload); len(p) > 0 && string(p) != "null" {
		var text string
		if json.Unmarshal(p, &text) == nil {
			payload = []byte(text)
		} else {
			payload = p
		}
	}
	method := strings.ToUpper(app.Method)
	if method == "" {
		method = http.MethodPost
	}
	ctx, cancel := context.WithTimeout(context.Background(), ForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, app.TargetURL, bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("servicebus request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("call %s %s: %w", method, app.TargetURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, forwardBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", method, app.TargetURL, err)
	}
	return body, nil
}
