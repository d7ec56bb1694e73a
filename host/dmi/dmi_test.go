package dmi

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	pb "github.com/edgehost/edgehost/host/dmi/v1beta1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// devicesYAML is a devices directory as a site writes it: a Modbus model
// with protocol and visitor defaults, a device of it that a DMI mapper
// serves, and a device of a protocol a wasm mapper serves.
const devicesYAML = `apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata:
  name: thermo-model
  namespace: default
spec:
  protocol: modbus-tcp
  protocolConfigData:
    data:
      port: 502
      timeout: 1.5
  properties:
    - name: temp
      type: INT
      accessMode: ReadOnly
      unit: C
      visitors:
        configData:
          data:
            register: HoldingRegister
            limit: 1
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata:
  name: thermo-0
  namespace: default
spec:
  deviceModelRef:
    name: thermo-model
  nodeName: edge-1
  protocol:
    protocolName: modbus-tcp
    configData:
      data:
        ip: 127.0.0.1
        port: 5020
        slaveID: 1
  properties:
    - name: temp
      desired:
        value: "{{desired}}"
      reportCycle: 1000
      collectCycle: 500
      reportToCloud: true
      visitors:
        protocolName: modbus-tcp
        configData:
          data:
            offset: 2
            scale: 0.5
            isSwap: false
      pushMethod:
        mqtt:
          address: tcp://127.0.0.1:1883
          topic: thermo/temp
          qos: 1
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata:
  name: valve
  namespace: default
spec:
  protocol:
    protocolName: virtual
  properties:
    - name: pos
      desired:
        value: open
`

// writeDevices writes the devices directory with thermo-0's desired temp.
func writeDevices(t *testing.T, dir, desired string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "devices.yaml"), []byte(strings.ReplaceAll(devicesYAML, "{{desired}}", desired)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// load reads the devices directory as DirSource does.
func load(t *testing.T, dir string) *Catalog {
	t.Helper()
	c, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMapperFrameworkMapperOverDMI plays a mapper-framework mapper against a
// node wired as the daemon wires it: it registers over the real DMI socket
// with data and gets its device (model defaults merged, config values
// Any-wrapped), serves DeviceMapperService on its own socket and gets the
// device's change there, and reports twins and states, whose results appear
// on MQTT and toward the hub as edgecore sends them; a wasm mapper plugin
// serves another protocol's device on the same node meanwhile.
func TestMapperFrameworkMapperOverDMI(t *testing.T) {
	devicesDir := t.TempDir()
	writeDevices(t, devicesDir, "20")
	source := make(feed, 1)
	source <- load(t, devicesDir)
	node := newNodeRig(t, devicesDir, source, Config{WasmProtocols: func() []string { return []string{"virtual"} }}, true)
	results := node.mqtt
	mapper := startMapper(t)
	dmi := dial(t, node.dmiSock)
	ctx := context.Background()

	resp, err := dmi.MapperRegister(ctx, &pb.MapperRegisterRequest{WithData: true, Mapper: &pb.MapperInfo{
		Name: "modbus-mapper", Version: "v1.23.0", ApiVersion: "v1beta1", Protocol: "modbus-tcp",
		Address: []byte(mapper.sock), State: "ok"}})
	if err != nil {
		t.Fatalf("MapperRegister: %v", err)
	}

	t.Run("register with data answers the protocol's devices and models", func(t *testing.T) {
		if len(resp.GetDeviceList()) != 1 || len(resp.GetModelList()) != 1 {
			t.Fatalf("got %d devices and %d models, want thermo-0 and thermo-model only: %v", len(resp.GetDeviceList()), len(resp.GetModelList()), resp)
		}
		d, md := resp.GetDeviceList()[0], resp.GetModelList()[0]
		if d.GetName() != "thermo-0" || d.GetNamespace() != "default" || d.GetSpec().GetDeviceModelReference() != "thermo-model" {
			t.Errorf("device = %s/%s model %q", d.GetNamespace(), d.GetName(), d.GetSpec().GetDeviceModelReference())
		}
		if md.GetName() != "thermo-model" || md.GetNamespace() != "default" || len(md.GetSpec().GetProperties()) != 1 ||
			md.GetSpec().GetProperties()[0].GetType() != "INT" || md.GetSpec().GetProperties()[0].GetUnit() != "C" {
			t.Errorf("model = %v", md)
		}
		proto := d.GetSpec().GetProtocol()
		if proto.GetProtocolName() != "modbus-tcp" {
			t.Errorf("protocol = %q", proto.GetProtocolName())
		}
		// The instance's port wins over the model's; the model's timeout
		// fills in, narrowed to a float as edgecore narrows it.
		wantAny(t, "protocol ip", proto.GetConfigData().GetData()["ip"], wrapperspb.String("127.0.0.1"))
		wantAny(t, "protocol port", proto.GetConfigData().GetData()["port"], wrapperspb.Int32(5020))
		wantAny(t, "protocol slaveID", proto.GetConfigData().GetData()["slaveID"], wrapperspb.Int32(1))
		wantAny(t, "protocol timeout", proto.GetConfigData().GetData()["timeout"], wrapperspb.Float(1.5))
		if len(d.GetSpec().GetProperties()) != 1 {
			t.Fatalf("properties = %v", d.GetSpec().GetProperties())
		}
		p := d.GetSpec().GetProperties()[0]
		if p.GetName() != "temp" || p.GetDesired().GetValue() != "20" || p.GetReportCycle() != 1000 || p.GetCollectCycle() != 500 || !p.GetReportToCloud() {
			t.Errorf("property = %v", p)
		}
		vis := p.GetVisitors()
		if vis.GetProtocolName() != "modbus-tcp" {
			t.Errorf("visitor protocol = %q", vis.GetProtocolName())
		}
		wantAny(t, "visitor register", vis.GetConfigData().GetData()["register"], wrapperspb.String("HoldingRegister"))
		wantAny(t, "visitor limit", vis.GetConfigData().GetData()["limit"], wrapperspb.Int32(1))
		wantAny(t, "visitor offset", vis.GetConfigData().GetData()["offset"], wrapperspb.Int32(2))
		wantAny(t, "visitor scale", vis.GetConfigData().GetData()["scale"], wrapperspb.Float(0.5))
		wantAny(t, "visitor isSwap", vis.GetConfigData().GetData()["isSwap"], wrapperspb.Bool(false))
		if mq := p.GetPushMethod().GetMqtt(); mq.GetTopic() != "thermo/temp" || mq.GetQos() != 1 || mq.GetAddress() != "tcp://127.0.0.1:1883" {
			t.Errorf("pushMethod.mqtt = %v", mq)
		}
	})

	t.Run("a changed device reaches the mapper's own socket", func(t *testing.T) {
		writeDevices(t, devicesDir, "25")
		source <- load(t, devicesDir)
		c := mapper.next(t)
		if c.method != "UpdateDevice" || c.id != "default/thermo-0" || c.device.GetSpec().GetProperties()[0].GetDesired().GetValue() != "25" {
			t.Fatalf("mapper got %s %s %v, want UpdateDevice of default/thermo-0 with desired 25", c.method, c.id, c.device)
		}
	})

	t.Run("reported twins reach MQTT and the hub", func(t *testing.T) {
		_, err := dmi.ReportDeviceStatus(ctx, &pb.ReportDeviceStatusRequest{DeviceName: "thermo-0", DeviceNamespace: "default",
			ReportedDevice: &pb.DeviceStatus{Twins: []*pb.Twin{{PropertyName: "temp",
				ObservedDesired: &pb.TwinProperty{Value: "20"}, Reported: &pb.TwinProperty{Value: "21", Metadata: map[string]string{"type": "integer"}}}}}})
		if err != nil {
			t.Fatalf("ReportDeviceStatus: %v", err)
		}
		res := waitMQTT(t, results, "$hw/events/device/default/thermo-0/twin/update/result")
		var result struct {
			Twin map[string]struct {
				Expected, Actual struct{ Value string }
				Metadata         struct{ Type string }
			}
		}
		mustJSON(t, res.payload, &result)
		if tw := result.Twin["temp"]; tw.Actual.Value != "21" || tw.Expected.Value != "20" || tw.Metadata.Type != "int" {
			t.Errorf("twin/update/result temp = %+v, want expected 20, actual 21, type int (from the model): %s", tw, res.payload)
		}
		waitMQTT(t, results, "$hw/events/device/default/thermo-0/twin/update/document")
		up := waitHub(t, node.hub, "device/default/thermo-0/twin/edge_updated")
		wantRoute(t, up, abi.OpUpdate)
		var edge struct {
			Twin map[string]struct{ Actual struct{ Value string } }
		}
		// edge_updated's content is a JSON object (contract section 1.3).
		mustJSON(t, up.Content, &edge)
		if edge.Twin["temp"].Actual.Value != "21" {
			t.Errorf("edge_updated content = %s", up.Content)
		}
	})

	t.Run("a reported state reaches MQTT and the hub as state/update", func(t *testing.T) {
		if _, err := dmi.ReportDeviceStates(ctx, &pb.ReportDeviceStatesRequest{DeviceName: "thermo-0", DeviceNamespace: "default", State: "online"}); err != nil {
			t.Fatalf("ReportDeviceStates: %v", err)
		}
		res := waitMQTT(t, results, "$hw/events/device/default/thermo-0/state/update/result")
		if got := stateOf(t, res.payload); got != "online" {
			t.Fatalf("state/update/result = %s, want device.state online", res.payload)
		}
		up := waitHubPrefix(t, node.hub, "device/default/thermo-0/state")
		if up.Route.Resource != "device/default/thermo-0/state/update" {
			t.Fatalf("upstream resource = %q, want device/default/thermo-0/state/update", up.Route.Resource)
		}
		wantRoute(t, up, abi.OpUpdate)
		// state/update's content is the result's JSON text, which the
		// hub sends as a string (contract section 1.3).
		if got := stateOf(t, up.Content); got != "online" {
			t.Errorf("state/update content = %s", up.Content)
		}
	})

	t.Run("mapper-framework's default state ok is taken", func(t *testing.T) {
		if _, err := dmi.ReportDeviceStates(ctx, &pb.ReportDeviceStatesRequest{DeviceName: "thermo-0", DeviceNamespace: "default", State: "ok"}); err != nil {
			t.Fatalf("ReportDeviceStates: %v", err)
		}
		res := waitMQTT(t, results, "$hw/events/device/default/thermo-0/state/update/result")
		if got := stateOf(t, res.payload); got != "ok" {
			t.Fatalf("state/update/result = %s, want device.state ok", res.payload)
		}
		up := waitHubPrefix(t, node.hub, "device/default/thermo-0/state")
		if up.Route.Resource != "device/default/thermo-0/state/update" || stateOf(t, up.Content) != "ok" {
			t.Errorf("upstream %q %s, want device/default/thermo-0/state/update with state ok", up.Route.Resource, up.Content)
		}
	})

	t.Run("a wasm mapper serves valve beside the DMI mapper", func(t *testing.T) {
		// The wasm mapper reports valve at every tick, through the same
		// twin, while the DMI mapper serves thermo-0.
		res := waitMQTT(t, results, "$hw/events/device/default/valve/twin/update/result")
		var result struct {
			Twin map[string]struct{ Actual struct{ Value string } }
		}
		mustJSON(t, res.payload, &result)
		if v := result.Twin["pos"].Actual.Value; !strings.HasPrefix(v, "read-") {
			t.Errorf("valve result = %s, want pos actual read-N from the wasm mapper", res.payload)
		}
		waitHub(t, node.hub, "device/default/valve/twin/edge_updated")
	})

	t.Run("a wasm mapper's protocol and devices are not a DMI mapper's", func(t *testing.T) {
		_, err := dmi.MapperRegister(ctx, &pb.MapperRegisterRequest{WithData: true, Mapper: &pb.MapperInfo{
			Name: "virtual-mapper", Protocol: "virtual", Address: []byte(mapper.sock)}})
		wantCode(t, "register a wasm protocol", err, codes.FailedPrecondition)
		_, err = dmi.ReportDeviceStates(ctx, &pb.ReportDeviceStatesRequest{DeviceName: "valve", DeviceNamespace: "default", State: "online"})
		wantCode(t, "report for a wasm-bound device", err, codes.PermissionDenied)
		_, err = dmi.MapperRegister(ctx, &pb.MapperRegisterRequest{Mapper: &pb.MapperInfo{Name: "nameless", Address: []byte(mapper.sock)}})
		wantCode(t, "register without a protocol", err, codes.InvalidArgument)
		_, err = dmi.ReportDeviceStatus(ctx, &pb.ReportDeviceStatusRequest{DeviceName: "thermo-0", DeviceNamespace: "default", ReportedDevice: &pb.DeviceStatus{}})
		wantCode(t, "report without twins", err, codes.InvalidArgument)
		_, err = dmi.ReportDeviceStates(ctx, &pb.ReportDeviceStatesRequest{DeviceName: "thermo-0/x", State: "online"})
		wantCode(t, "report for a name with a slash", err, codes.InvalidArgument)
	})
}

// wantAny fails unless got packs want.
func wantAny(t *testing.T, what string, got *anypb.Any, want proto.Message) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: missing", what)
		return
	}
	m, err := got.UnmarshalNew()
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if !proto.Equal(m, want) {
		t.Errorf("%s = %T %v, want %T %v", what, m, m, want, want)
	}
}

// wantCode fails unless err is a gRPC status with code.
func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Errorf("%s: got %v, want code %s", what, err, code)
	}
}

// wantRoute checks an upstream message's route is KubeEdge's twin module's.
func wantRoute(t *testing.T, m abi.Message, op string) {
	t.Helper()
	if m.Route.Source != "twin" || m.Route.Group != "resource" || m.Route.Operation != op {
		t.Errorf("upstream route = %+v, want source twin, group resource, operation %s", m.Route, op)
	}
}

// waitMQTT waits for a publish on topic, skipping others.
func waitMQTT(t *testing.T, from chan mqttMessage, topic string) mqttMessage {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case m := <-from:
			if m.topic == topic {
				return m
			}
		case <-timeout:
			t.Fatalf("nothing published on %s", topic)
		}
	}
}

// waitHub waits for an upstream message with resource, skipping others.
func waitHub(t *testing.T, from chan abi.Message, resource string) abi.Message {
	t.Helper()
	return waitHubMatch(t, from, resource, func(r string) bool { return r == resource })
}

// waitHubPrefix waits for an upstream message whose resource starts with
// prefix.
func waitHubPrefix(t *testing.T, from chan abi.Message, prefix string) abi.Message {
	t.Helper()
	return waitHubMatch(t, from, prefix+"…", func(r string) bool { return strings.HasPrefix(r, prefix) })
}

func waitHubMatch(t *testing.T, from chan abi.Message, what string, match func(string) bool) abi.Message {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case m := <-from:
			if match(m.Route.Resource) {
				return m
			}
		case <-timeout:
			t.Fatalf("no upstream message %s reached the hub group", what)
		}
	}
}

// stateOf is device.state of a state result.
func stateOf(t *testing.T, b []byte) string {
	t.Helper()
	var r struct {
		Device struct{ State string }
	}
	mustJSON(t, b, &r)
	return r.Device.State
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}
