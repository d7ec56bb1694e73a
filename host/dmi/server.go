package dmi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	pb "github.com/edgehost/edgehost/host/dmi/v1beta1"
	"github.com/edgehost/edgehost/host/eventbus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// server implements v1beta1.DeviceManagerService.
type server struct {
	pb.UnimplementedDeviceManagerServiceServer
	m *Module
}

// MapperRegister records the mapper for its protocol and, with withData,
// answers the devices of that protocol and their models. Unlike edgecore,
// a registration without data also makes the mapper a client target: it
// is taken to hold its devices already and gets their later changes.
//
// A registration that comes before the source has delivered the devices
// waits for them, within the request's deadline, so it never gets an empty
// answer only for being early.
func (s *server) MapperRegister(ctx context.Context, req *pb.MapperRegisterRequest) (*pb.MapperRegisterResponse, error) {
	info := req.GetMapper()
	switch {
	case info.GetProtocol() == "":
		return nil, status.Error(codes.InvalidArgument, errNoProtocol.Error())
	case len(info.GetAddress()) == 0:
		return nil, status.Errorf(codes.InvalidArgument, "mapper %q has no address (its unix socket path)", info.GetName())
	case s.m.wasmBound(info.GetProtocol()):
		return nil, status.Errorf(codes.FailedPrecondition,
			"protocol %q is served by a wasm mapper plugin; a device is bound to one mapper", info.GetProtocol())
	}
	loaded, stopping := s.m.runState()
	select {
	case <-loaded:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-stopping:
		return nil, status.Error(codes.Unavailable, "the DMI server is stopping; register again")
	}
	resp, err := s.m.register(info, req.GetWithData())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return resp, nil
}

// ReportDeviceStatus hands each reported twin to the twin as the MQTT
// message $hw/events/device/{ns}/{name}/twin/update would: expected is the
// observed desired value, actual the reported one, with no metadata and an
// empty event_id, one message per twin, as edgecore makes them.
func (s *server) ReportDeviceStatus(ctx context.Context, req *pb.ReportDeviceStatusRequest) (*pb.ReportDeviceStatusResponse, error) {
	id, err := s.m.reportTarget(req.GetDeviceNamespace(), req.GetDeviceName())
	if err != nil {
		return nil, err
	}
	twins := req.GetReportedDevice().GetTwins()
	if len(twins) == 0 {
		return nil, status.Errorf(codes.InvalidArgument, "device %s: the report has no twins", id)
	}
	topic := "$hw/events/device/" + id + "/twin/update"
	for _, t := range twins {
		payload, err := json.Marshal(twinUpdate{Timestamp: time.Now().UnixMilli(), Twin: map[string]twinValues{
			t.GetPropertyName(): {Expected: &value{t.GetObservedDesired().GetValue()}, Actual: &value{t.GetReported().GetValue()}},
		}})
		if err != nil {
			return nil, status.Errorf(codes.Internal, "device %s: %v", id, err)
		}
		if err := s.m.toTwin(ctx, topic, payload); err != nil {
			return nil, err
		}
	}
	return &pb.ReportDeviceStatusResponse{}, nil
}

// ReportDeviceStates hands the state to the twin as the MQTT message
// $hw/events/device/{ns}/{name}/state/update would.
func (s *server) ReportDeviceStates(ctx context.Context, req *pb.ReportDeviceStatesRequest) (*pb.ReportDeviceStatesResponse, error) {
	id, err := s.m.reportTarget(req.GetDeviceNamespace(), req.GetDeviceName())
	if err != nil {
		return nil, err
	}
	if req.GetState() == "" {
		return nil, status.Errorf(codes.InvalidArgument, "device %s: the state is empty", id)
	}
	payload, err := json.Marshal(stateUpdate{Timestamp: time.Now().UnixMilli(), State: req.GetState()})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "device %s: %v", id, err)
	}
	if err := s.m.toTwin(ctx, "$hw/events/device/"+id+"/state/update", payload); err != nil {
		return nil, err
	}
	return &pb.ReportDeviceStatesResponse{}, nil
}

// The twin's MQTT payloads, in KubeEdge's JSON. event_id is always present,
// empty, as edgecore sends it.
type (
	twinUpdate struct {
		EventID   string                `json:"event_id"`
		Timestamp int64                 `json:"timestamp"`
		Twin      map[string]twinValues `json:"twin"`
	}
	twinValues struct {
		Expected *value `json:"expected,omitempty"`
		Actual   *value `json:"actual,omitempty"`
	}
	value struct {
		Value string `json:"value"`
	}
	stateUpdate struct {
		EventID   string `json:"event_id"`
		Timestamp int64  `json:"timestamp"`
		// State is lower-case "state", the twin's key; edgecore's "State"
		// works there only because Go decodes JSON keys case-insensitively.
		State string `json:"state"`
	}
)

// reportTarget checks a report's device and returns its id. A name that
// would change the topic is refused, as is a device of a wasm mapper's
// protocol: it has exactly one mapper, and it is not a DMI one. An empty
// namespace is "default".
func (m *Module) reportTarget(ns, name string) (string, error) {
	for _, f := range []struct{ field, v string }{{"deviceName", name}, {"deviceNamespace", ns}} {
		if strings.ContainsAny(f.v, "/+#") {
			return "", status.Errorf(codes.InvalidArgument, "%s %q may not hold '/', '+' or '#'", f.field, f.v)
		}
	}
	if name == "" {
		return "", status.Error(codes.InvalidArgument, "deviceName is empty")
	}
	id := namespaced(ns, name)
	m.mu.Lock()
	var d *pb.Device
	if m.catalog != nil {
		d = m.catalog.Devices[id]
	}
	m.mu.Unlock()
	if d != nil && m.wasmBound(Protocol(d)) {
		return "", status.Errorf(codes.PermissionDenied, "device %s is bound to the wasm mapper of protocol %q, not to a DMI mapper", id, Protocol(d))
	}
	return id, nil
}

// toTwin puts payload on the bus as the eventbus bridges an MQTT publish on
// topic: to group twin, source "bus", group "user", operation "response",
// the topic base64url-encoded as the resource.
func (m *Module) toTwin(ctx context.Context, topic string, payload []byte) error {
	msg := abi.Message{
		Header:  abi.Header{ID: bus.NewID(), Timestamp: time.Now().UnixMilli()},
		Route:   abi.Route{Source: eventbus.ModuleGroup, Group: eventbus.UserGroup, Operation: abi.OpResponse, Resource: eventbus.TwinResource(topic)},
		Content: payload,
	}
	err := m.bus.SendToGroup(ctx, eventbus.TwinGroup, msg)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bus.ErrNoModule):
		return status.Error(codes.Unavailable, "the twin module is not running")
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	}
	return status.Error(codes.Unavailable, fmt.Sprintf("twin: %v", err))
}
