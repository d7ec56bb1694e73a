package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
)

// remoteTypes are the kinds edgecore asks the cloud for while it is
// connected; every other kind, and every kind while disconnected, is
// answered from the store. Pods are always local.
var remoteTypes = map[string]bool{
	"configmap": true, "secret": true, "persistentvolume": true, "persistentvolumeclaim": true,
	"volumeattachment": true, "serviceaccounttoken": true, "lease": true, "certificatesigningrequest": true,
}

// IsRemoteType reports whether a query for typ goes to the cloud while it
// is connected.
func IsRemoteType(typ string) bool { return remoteTypes[typ] }

// query answers a query: from the cloud for a remote kind while connected,
// from the store otherwise.
func (m *Module) query(ctx context.Context, msg abi.Message) {
	res, err := ParseResource(msg.Route.Resource, true)
	if err != nil {
		m.refuse(ctx, msg, ReasonBadResource, err)
		return
	}
	if res.Type == TokenType && !res.IsList() {
		// A token is stored under a key of its request (TokenKey), so the
		// store answers for this request's token, offline too.
		key, err := TokenKey(res.Namespace, res.Name, msg.Content)
		if err != nil {
			m.refuse(ctx, msg, ReasonMalformedContent, err)
			return
		}
		res.Name = strings.TrimPrefix(key, res.Namespace+"/"+TokenType+"/")
	}
	if remoteTypes[res.Type] && m.connected.Load() && !cloudSources[msg.Route.Source] {
		select {
		case m.remote <- struct{}{}:
		case <-ctx.Done():
			return
		}
		m.queries.Go(func() {
			defer func() { <-m.remote }()
			m.remoteQuery(ctx, msg, res)
		})
		return
	}
	m.localQuery(ctx, msg, res)
}

// localQuery answers from the store, as edgecore does: a JSON array of the
// stored values as strings (one for a name, all of the type for a list),
// source metamanager, parent the query.
func (m *Module) localQuery(ctx context.Context, msg abi.Message, res Resource) {
	var values []string
	if res.IsList() {
		objs, bad, err := m.objs.list(res.Type, "")
		if err != nil {
			m.queryFailed(ctx, msg, err)
			return
		}
		if bad > 0 {
			m.report(problemBadRecord, "stored objects that do not decode were left out of a list", "type", res.Type, "objects", bad, "msg_id", msg.Header.ID)
		}
		for _, o := range objs {
			values = append(values, string(o.Content))
		}
	} else {
		o, found, err := m.objs.get(res.Key())
		if err != nil {
			m.queryFailed(ctx, msg, err)
			return
		}
		if found {
			values = append(values, string(o.Content))
		}
	}
	m.c.queriesLocal.Add(1)
	m.replyLocal(ctx, msg, queryReply(msg, values))
}

// queryReply is edgecore's reply to a local query.
func queryReply(msg abi.Message, values []string) abi.Message {
	if values == nil {
		values = []string{}
	}
	content, _ := json.Marshal(values) // a []string always marshals
	r := msg.Reply(abi.OpResponse, content)
	r.Route.Source = ModuleName
	return r
}

// queryFailed answers a query with an error.
func (m *Module) queryFailed(ctx context.Context, msg abi.Message, err error) {
	m.c.queryFailed.Add(1)
	m.report(problemQuery, "query failed", "msg_id", msg.Header.ID, "resource", msg.Route.Resource, "error", err)
	r := msg.Reply(abi.OpError, []byte(err.Error()))
	r.Route.Source = ModuleName
	m.replyLocal(ctx, msg, r)
}

// remoteCall is one query waiting for the cloud. The hub hands the cloud's
// reply back either through the bus's request matching (Respond) or as a
// message to group meta whose parent is the forwarded id; the receive loop
// puts the latter here and cancels the wait.
type remoteCall struct {
	reply  chan abi.Message
	cancel context.CancelFunc
}

// answer hands a reply from the cloud to the remote query waiting for it,
// reporting whether one was.
func (m *Module) answer(msg abi.Message) bool {
	m.pendingMu.Lock()
	call := m.pending[msg.Header.ParentID]
	delete(m.pending, msg.Header.ParentID)
	m.pendingMu.Unlock()
	if call == nil {
		return false
	}
	call.reply <- msg // capacity 1, one sender: the entry was removed
	call.cancel()
	return true
}

// remoteQuery sends the query to the cloud with a new id, as edgecore
// does, and answers the requester from the cloud's reply: an object is
// stored (then acknowledged to the cloud) and returned; "OK", an error or
// an ObjectResp error are passed through. There is no fallback to the
// store once the query went out: a timeout is an error, as in edgecore.
func (m *Module) remoteQuery(ctx context.Context, msg abi.Message, res Resource) {
	fwd := msg
	fwd.Header.ID = bus.NewID()
	fwd.Header.ParentID = ""
	rctx, cancel := context.WithTimeout(ctx, m.cfg.RemoteQueryTimeout)
	defer cancel()
	call := &remoteCall{reply: make(chan abi.Message, 1), cancel: cancel}
	m.pendingMu.Lock()
	m.pending[fwd.Header.ID] = call
	m.pendingMu.Unlock()
	r, err := m.bus.RequestGroup(rctx, HubGroup, fwd)
	m.pendingMu.Lock()
	_, waiting := m.pending[fwd.Header.ID]
	delete(m.pending, fwd.Header.ID)
	m.pendingMu.Unlock()
	if !waiting {
		// answer took the call: its reply is in the channel or about to be.
		r, err = <-call.reply, nil
	}
	if errors.Is(err, bus.ErrNoModule) {
		// Nothing went out: without a hub on the bus the store answers.
		m.localQuery(ctx, msg, res)
		return
	}
	m.c.queriesRemote.Add(1)
	if err != nil {
		m.queryFailed(ctx, msg, fmt.Errorf("remote query %s (sent as %s): %w", msg.Route.Resource, fwd.Header.ID, err))
		return
	}
	content, isObject, failed := remoteObject(r)
	if isObject && !res.IsList() {
		rv := objectMetaOf(content).ResourceVersion
		if _, perr := strconv.ParseUint(rv, 10, 64); perr != nil {
			rv = ""
		}
		// The ACK says the edge holds this version or a newer one, so a
		// failed write gets none.
		switch result, err := m.objs.put(res.Key(), rv, content); {
		case err != nil && !errors.Is(err, errStale):
			m.c.storeErrors.Add(1)
			m.report(problemStore, "cloud's answer to a query not stored and not acknowledged", "msg_id", msg.Header.ID, "resource", msg.Route.Resource, "error", err)
		case err == nil && result == putApplied:
			m.c.stored.Add(1)
			m.ack(ctx, r)
		default:
			m.ack(ctx, r)
		}
	}
	if failed {
		m.c.queryFailed.Add(1)
	}
	out := r
	out.Header = abi.Header{ParentID: msg.Header.ID}
	out.Content = content
	m.replyLocal(ctx, msg, out)
}

// remoteObject returns the content to hand back for a cloud reply,
// whether it is an object to store (an ObjectResp's Object, or an object
// content as it is) and whether the reply is an error (operation error, an
// ObjectResp with Err). "OK" and errors are passed through as they came.
func remoteObject(r abi.Message) (content []byte, isObject, failed bool) {
	if r.Route.Operation == abi.OpError {
		return r.Content, false, true
	}
	if unquote(r.Content) == "OK" {
		return r.Content, false, false
	}
	var resp struct {
		Object json.RawMessage
		Err    json.RawMessage
	}
	var probe map[string]json.RawMessage
	if decodeObject(r.Content, &probe) != nil {
		return r.Content, false, false
	}
	_, hasObject := probe["Object"]
	_, hasErr := probe["Err"]
	if !hasObject && !hasErr {
		return r.Content, true, false
	}
	_ = json.Unmarshal(r.Content, &resp)
	if len(resp.Err) > 0 && string(resp.Err) != "null" {
		return r.Content, false, true
	}
	if decodeObject(resp.Object, new(map[string]json.RawMessage)) != nil {
		return r.Content, false, false
	}
	return resp.Object, true, false
}
