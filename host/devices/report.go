package devices

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/eventbus"
)

// errKind names what failed, for the error counts.
type errKind int

// Kinds of error, counted per device and in total.
const (
	// kindTimeout: the mapper did not answer within the call timeout.
	kindTimeout errKind = iota
	// kindCall: the call failed (a fault, an error reply, the plugin not
	// running).
	kindCall
	// kindMalformed: the reply did not decode, or left the device out.
	kindMalformed
	// kindDevice: the mapper answered the device with an error.
	kindDevice
	// kindProperty: the mapper answered a property with an error.
	kindProperty
	// kindWrite: a write failed.
	kindWrite
	// kindTwin: a value or state could not be handed to the twin.
	kindTwin
	numKinds
)

// KindNames are the error kinds' names, in order, as the API and the
// metrics show them.
var KindNames = [numKinds]string{"timeout", "call", "malformed", "device", "property", "write", "twin"}

// fail records err of kind against d. Callers hold m.mu.
func (m *Module) fail(d *device, kind errKind, err error) {
	d.errs[kind]++
	m.stats.errs[kind].Add(1)
	d.lastErr, d.lastErrAt = err.Error(), m.cfg.Now()
}

// apply takes a read's answer (or the call's error) into the devices,
// and hands the twin the values whose report is due and the states that
// changed.
func (m *Module) apply(ctx context.Context, j job, answer abi.MapperReadReply, kind errKind, callErr error) {
	byID := make(map[string]*abi.MapperDeviceValues, len(answer.Devices))
	for i := range answer.Devices {
		byID[answer.Devices[i].ID] = &answer.Devices[i]
	}
	var out []twinMessage
	type change struct{ id, from, to, err string }
	var changes []change
	m.mu.Lock()
	now := m.cfg.Now()
	done := now.Sub(j.due)
	if done > time.Duration(m.stats.worstDoneNS.Load()) {
		m.stats.worstDoneNS.Store(int64(done))
	}
	m.stats.doneNS.Add(int64(done))
	m.stats.doneCount.Add(1)
	for _, rd := range j.reads {
		d := rd.dev
		if !rd.force {
			d.reading = false
		}
		if d.removed {
			continue
		}
		d.reads++
		m.stats.reads.Add(1)
		state := ""
		switch got := byID[d.id]; {
		case callErr != nil:
			m.fail(d, kind, callErr)
			state = abi.StateOffline
		case got == nil:
			m.fail(d, kindMalformed, errors.New("mapper "+d.run.name+": read: the reply has no entry for the device"))
			state = abi.StateOffline
		case got.Error != "":
			m.fail(d, kindDevice, errors.New(got.Error))
			state = stateOr(got.State, abi.StateOffline)
		default:
			state = m.takeValues(d, rd.props, got, now)
			state = stateOr(got.State, state)
		}
		if callErr != nil || byID[d.id] == nil || byID[d.id].Error != "" {
			for _, p := range rd.props {
				p.err = d.lastErr
			}
		}
		if msg, ok := m.reportDue(d, rd.props, j.due, now, rd.force); ok {
			out = append(out, msg)
		}
		if state != d.state || d.stateSent == "" {
			if state != d.state {
				changes = append(changes, change{d.id, d.state, state, d.lastErr})
			}
			d.state = state
			if state != d.stateSent {
				d.stateSent = state
				out = append(out, stateMessage(d.id, state, now))
			}
		}
	}
	m.mu.Unlock()
	// A change of state is news once; the errors behind it are counted.
	for _, c := range changes {
		if c.to == abi.StateOnline {
			m.log.Info("device online", "device", c.id, "was", c.from)
		} else {
			m.log.Warn("device "+c.to, "device", c.id, "was", c.from, "last_error", c.err)
		}
	}
	for _, msg := range out {
		m.toTwin(ctx, msg)
	}
}

// stateOr is s when it is a state, else def.
func stateOr(s, def string) string {
	if s == "" {
		return def
	}
	return strings.ToLower(s)
}

// takeValues records the values of an answer and returns the state they
// show: online if any property was read, offline if none was. Callers
// hold m.mu.
func (m *Module) takeValues(d *device, props []*property, got *abi.MapperDeviceValues, now time.Time) string {
	values := make(map[string]*abi.MapperValue, len(got.Properties))
	for i := range got.Properties {
		values[got.Properties[i].Name] = &got.Properties[i]
	}
	ok := false
	for _, p := range props {
		v := values[p.mp.Name]
		switch {
		case v == nil:
			p.err = "the mapper's answer left the property out"
			m.fail(d, kindMalformed, errors.New(d.id+": "+p.mp.Name+": "+p.err))
		case v.Error != "":
			p.err = v.Error
			m.fail(d, kindProperty, errors.New(p.mp.Name+": "+v.Error))
		default:
			p.value, p.readAt, p.err = v.Value, now, ""
			ok = true
		}
	}
	if ok {
		return abi.StateOnline
	}
	return abi.StateOffline
}

// twinMessage is one message for the twin: the MQTT topic it stands for
// and its payload.
type twinMessage struct {
	topic   string
	payload []byte
}

// The twin's update document (KubeEdge's), with actual values only.
type (
	twinUpdate struct {
		EventID   string                `json:"event_id"`
		Timestamp int64                 `json:"timestamp"`
		Twin      map[string]twinActual `json:"twin"`
	}
	twinActual struct {
		Actual   twinValue `json:"actual"`
		Metadata twinType  `json:"metadata"`
	}
	twinValue struct {
		Value string `json:"value"`
	}
	twinType struct {
		Type string `json:"type"`
	}
	stateUpdate struct {
		EventID   string `json:"event_id"`
		Timestamp int64  `json:"timestamp"`
		State     string `json:"state"`
	}
)

// reportDue builds the twin update of the properties of props whose value
// is due for the twin: read without error, and never reported, or changed
// since the last report and its report cycle passed since the cycle of
// that report (cycles, not answers, are compared, so an answer a little
// earlier in its cycle than the last one is not held back a cycle; force:
// changed or not, now). An unchanged value is not sent again: the twin
// holds it. Callers hold m.mu.
func (m *Module) reportDue(d *device, props []*property, cycle, now time.Time, force bool) (twinMessage, bool) {
	var up twinUpdate
	for _, p := range props {
		if p.err != "" || p.readAt.IsZero() {
			continue
		}
		due := !p.sent || force || (p.value != p.reported && !cycle.Before(p.reportCycle.Add(p.report)))
		if !due {
			continue
		}
		if up.Twin == nil {
			up.Twin = map[string]twinActual{}
		}
		up.Twin[p.mp.Name] = twinActual{Actual: twinValue{p.value}, Metadata: twinType{p.mp.Type}}
		p.reported, p.reportAt, p.reportCycle, p.sent = p.value, now, cycle, true
	}
	if up.Twin == nil {
		return twinMessage{}, false
	}
	up.Timestamp = now.UnixMilli()
	b, _ := json.Marshal(up) // strings only
	m.stats.reports.Add(1)
	return twinMessage{topic: "$hw/events/device/" + d.id + "/twin/update", payload: b}, true
}

// stateMessage is the twin's state update of a device.
func stateMessage(id, state string, now time.Time) twinMessage {
	b, _ := json.Marshal(stateUpdate{Timestamp: now.UnixMilli(), State: state})
	return twinMessage{topic: "$hw/events/device/" + id + "/state/update", payload: b}
}

// toTwin hands msg to the twin as the eventbus bridges an MQTT publish on
// its topic (group twin, source "bus", group "user", operation
// "response", the topic base64url-encoded), so the twin answers on MQTT
// and tells the cloud, as for any mapper's update.
func (m *Module) toTwin(ctx context.Context, tm twinMessage) {
	msg := abi.Message{
		Header:  abi.Header{ID: bus.NewID(), Timestamp: m.cfg.Now().UnixMilli()},
		Route:   abi.Route{Source: eventbus.ModuleGroup, Group: eventbus.UserGroup, Operation: abi.OpResponse, Resource: eventbus.TwinResource(tm.topic)},
		Content: tm.payload,
	}
	err := m.bus.SendToGroup(ctx, eventbus.TwinGroup, msg)
	if err == nil {
		if strings.HasSuffix(tm.topic, "/state/update") {
			m.stats.states.Add(1)
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	m.stats.reportsFailed.Add(1)
	m.stats.errs[kindTwin].Add(1)
	m.warnOnce("twin", "device update not handed to the twin", "topic", tm.topic, "msg_id", msg.Header.ID, "error", err)
}

// onDelta turns a twin delta into writes: each property bound to a mapper
// whose desired value differs from the value last read, and that is not
// being written or already written, is written. A value whose write
// failed is tried again after writeRetry.
func (m *Module) onDelta(_ context.Context, topic string, payload []byte) {
	rest, ok := strings.CutPrefix(topic, "$hw/events/device/")
	if !ok {
		return
	}
	id, ok := strings.CutSuffix(rest, "/twin/update/delta")
	if !ok {
		return
	}
	var delta struct {
		Delta map[string]string `json:"delta"`
	}
	if err := json.Unmarshal(payload, &delta); err != nil {
		m.warnOnce("delta", "twin delta does not decode", "topic", topic, "error", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.devices[id]
	if d == nil || d.run == nil || d.removed {
		return
	}
	now := m.cfg.Now()
	for name, want := range delta.Delta {
		p := d.byName[name]
		if p == nil || want == "" {
			continue
		}
		switch {
		case p.err == "" && !p.readAt.IsZero() && p.value == want,
			p.writing == want, p.written == want,
			p.failed == want && now.Before(p.failedAt.Add(writeRetry)):
			continue
		}
		if !m.enqueue(d.run, job{kind: jobWrite, dev: d, prop: p, value: want}) {
			m.fail(d, kindWrite, errors.New("write of "+name+" not queued: the mapper's queue is full"))
			continue
		}
		p.writing = want
	}
}
