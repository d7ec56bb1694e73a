package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
)

// ackContent is the acknowledgement's content, the string edgecore's
// cloud side compares with.
var ackContent = []byte("OK")

// cloudSources are the route sources of KubeEdge's cloud modules: a write
// from one of them is the cloud's, to be stored and acknowledged.
var cloudSources = map[string]bool{
	"edgecontroller": true, "devicecontroller": true, "dynamiccontroller": true, "router_eventbus": true,
	"router_servicebus": true, "cloudhub": true, "synccontroller": true, "taskmanager": true,
	"nodeupgradejobcontroller": true, "policycontroller": true,
}

// handle does what msg's operation asks, in its lane.
func (m *Module) handle(ctx context.Context, msg abi.Message) {
	op := msg.Route.Operation
	switch {
	case op == abi.OpQuery:
		m.query(ctx, msg)
	case !cloudSources[msg.Route.Source] && op == abi.OpResponse:
		// A reply from a local module nobody here waits for: answering it
		// could start a loop of replies.
		m.log.Debug("local response with no waiting query; dropped", "msg_id", msg.Header.ID, "source", msg.Route.Source, "resource", msg.Route.Resource)
	case !cloudSources[msg.Route.Source]:
		m.refuse(ctx, msg, ReasonUnknownOperation, fmt.Errorf("%s from local module %q: local writes go to the cloud in edgecore and have no path in edgehost yet", op, msg.Route.Source))
	case msg.Route.Group == TwinGroup:
		// Membership and the twin's confirms: the twin's, not stored and
		// not acknowledged (edgecore's routes).
		m.forward(ctx, msg, TwinGroup)
	case op == abi.OpInsert || op == abi.OpUpdate:
		m.write(ctx, msg)
	case op == abi.OpDelete:
		m.delete(ctx, msg)
	case op == abi.OpResponse:
		m.response(ctx, msg)
	default:
		m.refuse(ctx, msg, ReasonUnknownOperation, fmt.Errorf("operation %q is not one of insert, update, delete, query, response", op))
	}
}

// parsed is a checked object message.
type parsed struct {
	res  Resource
	rv   string
	meta objectMeta
}

// parseObject checks an object message from the cloud: its resource, its
// content (a JSON object; for a delete also null or empty) and its resource
// version (the header's, else the object's metadata.resourceVersion).
func (m *Module) parseObject(ctx context.Context, msg abi.Message, allowEmpty bool) (parsed, bool) {
	res, err := ParseResource(msg.Route.Resource, false)
	if err != nil {
		m.refuse(ctx, msg, ReasonBadResource, err)
		return parsed{}, false
	}
	p := parsed{res: res}
	empty := len(msg.Content) == 0 || string(msg.Content) == "null"
	if !(allowEmpty && empty) {
		var o struct {
			Metadata objectMeta `json:"metadata"`
		}
		if err := decodeObject(msg.Content, &o); err != nil {
			m.refuse(ctx, msg, ReasonMalformedContent, err)
			return parsed{}, false
		}
		p.meta = o.Metadata
	}
	p.rv = msg.Header.ResourceVersion
	if p.rv == "" {
		p.rv = p.meta.ResourceVersion
	}
	if p.rv != "" {
		if _, err := strconv.ParseUint(p.rv, 10, 64); err != nil {
			m.refuse(ctx, msg, ReasonBadResourceVersion, fmt.Errorf("resource version %.40q is not an unsigned integer", p.rv))
			return parsed{}, false
		}
	}
	return p, true
}

// decodeObject decodes content, which must be one JSON object, into v.
func decodeObject(content []byte, v any) error {
	i := 0
	for i < len(content) && (content[i] == ' ' || content[i] == '\t' || content[i] == '\n' || content[i] == '\r') {
		i++
	}
	if i == len(content) || content[i] != '{' {
		return fmt.Errorf("content is not a JSON object: %.40q", content)
	}
	if err := json.Unmarshal(content, v); err != nil {
		return fmt.Errorf("content is not valid JSON: %w", err)
	}
	return nil
}

// write stores an insert or update from the cloud, acknowledges it once
// the store has it on disk, and hands it to its owner.
func (m *Module) write(ctx context.Context, msg abi.Message) {
	p, ok := m.parseObject(ctx, msg, false)
	if !ok {
		return
	}
	result, err := m.objs.put(p.res.Key(), p.rv, msg.Content)
	switch {
	case errors.Is(err, errStale):
		m.refuse(ctx, msg, ReasonStaleResourceVersion, err)
		return
	case err != nil:
		m.storeFailed(msg, err)
		return
	}
	if result == putDuplicate {
		m.c.duplicates.Add(1)
		m.log.Debug("object received again with the stored resource version; acknowledged, not applied again",
			"msg_id", msg.Header.ID, "resource", msg.Route.Resource, "resourceversion", p.rv)
		m.ack(ctx, msg)
		return
	}
	m.c.stored.Add(1)
	m.ack(ctx, msg)
	m.forward(ctx, msg, owners(msg.Route.Source, msg.Route.Operation, p.res.Type)...)
}

// delete removes an object the cloud deleted, under the pod uid rule, then
// acknowledges and forwards the delete.
func (m *Module) delete(ctx context.Context, msg abi.Message) {
	p, ok := m.parseObject(ctx, msg, true)
	if !ok {
		return
	}
	result, err := m.objs.del(p.res, p.rv, p.meta.UID)
	switch {
	case errors.Is(err, errStale):
		m.refuse(ctx, msg, ReasonStaleResourceVersion, err)
		return
	case err != nil:
		m.storeFailed(msg, err)
		return
	}
	switch result {
	case uidMismatch:
		// The delete is for an earlier pod of the same name; the stored
		// one is newer and its owner must not see a delete for it.
		m.c.uidMismatch.Add(1)
		m.log.Debug("pod delete for another uid; the stored pod stays", "msg_id", msg.Header.ID,
			"resource", msg.Route.Resource, "uid", p.meta.UID)
		m.ack(ctx, msg)
		return
	case deleted:
		m.c.deleted.Add(1)
	}
	m.ack(ctx, msg)
	m.forward(ctx, msg, owners(msg.Route.Source, msg.Route.Operation, p.res.Type)...)
}

// response handles a cloud response nobody here waits for: an object is
// stored (no acknowledgement: it is itself a reply) and an edgecontroller
// one goes to edged, as in edgecore; anything else (an "OK") is dropped.
func (m *Module) response(ctx context.Context, msg abi.Message) {
	res, err := ParseResource(msg.Route.Resource, false)
	var o struct {
		Metadata objectMeta `json:"metadata"`
	}
	if err == nil && res.Type == PluginPackageType {
		m.log.Debug("package chunk nobody waits for any more; dropped", "msg_id", msg.Header.ID, "resource", msg.Route.Resource)
		return
	}
	if err != nil || decodeObject(msg.Content, &o) != nil {
		m.log.Debug("cloud response with no object; nothing to store", "msg_id", msg.Header.ID, "resource", msg.Route.Resource)
		return
	}
	rv := o.Metadata.ResourceVersion
	if _, err := strconv.ParseUint(rv, 10, 64); err != nil {
		rv = ""
	}
	if _, err := m.objs.put(res.Key(), rv, msg.Content); err != nil {
		if !errors.Is(err, errStale) {
			m.storeFailed(msg, err)
		}
		return
	}
	m.c.stored.Add(1)
	if msg.Route.Source == "edgecontroller" {
		m.forward(ctx, msg, RuntimeGroup)
	}
}

// storeFailed counts and logs a write the store failed. It is not
// acknowledged, so the cloud sends it again.
func (m *Module) storeFailed(msg abi.Message, err error) {
	m.c.storeErrors.Add(1)
	m.report(problemStore, "object not stored and not acknowledged", "msg_id", msg.Header.ID, "resource", msg.Route.Resource, "error", err)
}

// owners returns the groups an object from the cloud is handed to, by
// edgecore's routes: the device controller's objects to the twin (and to
// the devices module for devices and models), the policy controller's
// nowhere, edgehost's plugins to pluginsync, everything else to edged
// except a node update.
func owners(source, op, typ string) []string {
	switch source {
	case "devicecontroller":
		if typ == "device" || typ == "devicemodel" {
			return []string{TwinGroup, DevicesGroup}
		}
		return []string{TwinGroup}
	case "policycontroller":
		return nil
	}
	if typ == PluginType {
		return []string{PluginGroup}
	}
	if typ == "node" && op == abi.OpUpdate {
		return nil
	}
	return []string{RuntimeGroup}
}

// forward hands msg to one module of each group. A group with no module
// (edged, until the runtime module exists) is counted and logged at debug.
func (m *Module) forward(ctx context.Context, msg abi.Message, groups ...string) {
	for _, g := range groups {
		err := m.bus.SendToGroup(ctx, g, msg)
		switch {
		case err == nil:
			m.c.forwarded.Add(1)
		case errors.Is(err, bus.ErrNoModule):
			m.c.unrouted.Add(1)
			m.log.Debug("no module owns this object yet; stored only", "group", g, "msg_id", msg.Header.ID, "resource", msg.Route.Resource)
		default:
			m.c.unrouted.Add(1)
			m.report(problemForward, "object stored but not handed to its owner", "group", g, "msg_id", msg.Header.ID, "resource", msg.Route.Resource, "error", err)
		}
	}
}

// ack sends the cloud edgecore's acknowledgement of msg: operation
// response, content "OK", parent msg's id, msg's source, group and
// resource (beehive's NewRespByMessage).
func (m *Module) ack(ctx context.Context, msg abi.Message) {
	if err := m.bus.SendToGroup(ctx, HubGroup, msg.Reply(abi.OpResponse, ackContent)); err != nil {
		m.c.ackUnsent.Add(1)
		if errors.Is(err, bus.ErrNoModule) {
			m.log.Debug("no cloud link; acknowledgement not sent", "msg_id", msg.Header.ID, "resource", msg.Route.Resource)
		} else {
			m.report(problemAck, "acknowledgement not sent; the cloud sends the object again", "msg_id", msg.Header.ID, "resource", msg.Route.Resource, "error", err)
		}
		return
	}
	m.c.acks.Add(1)
}

// replyError answers msg with operation error and err's text: to the hub
// for a cloud message, to the sender for a local one.
func (m *Module) replyError(ctx context.Context, msg abi.Message, err error) {
	r := msg.Reply(abi.OpError, []byte(err.Error()))
	if cloudSources[msg.Route.Source] {
		if serr := m.bus.SendToGroup(ctx, HubGroup, r); serr != nil {
			m.log.Debug("error reply not sent to the cloud", "msg_id", msg.Header.ID, "error", serr)
		}
		return
	}
	m.replyLocal(ctx, msg, r)
}

// replyLocal answers a local module's msg: through the bus's request
// matching if it waits (Sync), else by a send to the module named by its
// source, as edgecore answers edged.
func (m *Module) replyLocal(ctx context.Context, msg abi.Message, r abi.Message) {
	var err error
	if msg.Header.Sync {
		err = m.bus.Respond(r)
	} else {
		err = m.bus.Send(ctx, msg.Route.Source, r)
	}
	if err != nil {
		m.log.Debug("reply not delivered", "msg_id", msg.Header.ID, "to", msg.Route.Source, "error", err)
	}
}
