package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/api"
	pb "github.com/edgehost/edgehost/host/dmi/v1beta1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const virtualDevice = `apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: sim-0, namespace: default}
spec:
  protocol: {protocolName: virtual}
  properties:
    - name: count
      collectCycle: 200
      reportCycle: 200
      desired: {metadata: {type: int}}
      visitors: {protocolName: virtual, configData: {data: {kind: counter}}}
    - name: switch
      collectCycle: 200
      visitors: {protocolName: virtual, configData: {data: {kind: echo, initial: "off"}}}
---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: meter, namespace: default}
spec:
  protocol: {protocolName: opcua}
  properties:
    - name: kwh
`

// TestVirtualMapperEndToEnd runs the real daemon with its built-in
// plugins: the built-in virtual mapper serves a device of the devices dir,
// its counter reaches the twin over MQTT, a desired value published on
// twin/update is written and comes back as the actual value, and
// `edgehost devices list` and `get` show the device, its mapper and values,
// and the unbound device.
func TestVirtualMapperEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	needTwinWiring(t, bin)
	r := &twinRig{t: t, bin: bin, dataDir: shortDataDir(t), work: t.TempDir(), broker: freeAddr(t),
		got: map[string][]string{}, arrived: make(chan struct{}, 1)}
	r.devicesDir = filepath.Join(r.work, "devices")
	if err := os.MkdirAll(r.devicesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.devicesDir, "sim.yaml"), []byte(virtualDevice), 0o644); err != nil {
		t.Fatal(err)
	}
	r.cfg = filepath.Join(r.dataDir, "edgehost.yaml")
	config := fmt.Sprintf("modules:\n  eventbus:\n    embedded:\n      address: %s\n  hub:\n    nodeName: edge-1\n  devices:\n    dir: %s\n", r.broker, r.devicesDir)
	if err := os.WriteFile(r.cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	r.start()
	r.connect()
	r.awaitDevice("default/sim-0")

	// The counter rises in the twin.
	deadline := time.Now().Add(30 * time.Second)
	first := -1
	for {
		if a := r.get("default/sim-0").Twin["count"]; a != nil && a.Actual != nil {
			v, err := strconv.Atoi(a.Actual.Value)
			if err != nil {
				t.Fatalf("count %q is not an int", a.Actual.Value)
			}
			if first < 0 {
				first = v
			} else if v > first {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("count never rose in the twin\nlogs:\n%s", r.d.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A desired value over MQTT comes back as the actual one.
	r.publish("$hw/events/device/default/sim-0/twin/update", `{"event_id":"set-1","twin":{"switch":{"expected":{"value":"on"}}}}`)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if s := r.get("default/sim-0").Twin["switch"]; s != nil && s.Actual != nil && s.Actual.Value == "on" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("switch never became on\nlogs:\n%s", r.d.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The operator's view.
	out, code := edgehost(t, bin, "", "devices", "list", "--data-dir", r.dataDir, "-o", "json")
	if code != 0 {
		t.Fatalf("devices list: %s", out)
	}
	var list []api.DeviceInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("devices list -o json: %v\n%s", err, out)
	}
	if len(list) != 2 || list[0].ID != "default/meter" || list[0].Mapper != "" || list[1].ID != "default/sim-0" ||
		list[1].Mapper != "virtual" || list[1].State != "online" || list[1].Writes != 1 {
		t.Fatalf("devices list: %s", out)
	}
	out, code = edgehost(t, bin, "", "device", "get", "default/sim-0", "--data-dir", r.dataDir)
	if code != 0 || !strings.Contains(out, "mapper virtual, online") || !strings.Contains(out, "switch") || !strings.Contains(out, " on ") {
		t.Fatalf("device get: %s", out)
	}
	out, code = edgehost(t, bin, "", "devices", "get", "default/nope", "--data-dir", r.dataDir)
	if code == 0 || !strings.Contains(out, "not found") {
		t.Fatalf("device get of an unknown device: exit %d, %s", code, out)
	}
	// DMI refuses the protocol the built-in mapper declares, with no
	// modules.devices.wasmProtocols in the config.
	conn, err := grpc.NewClient("unix://"+filepath.Join(r.dataDir, "dmi.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = pb.NewDeviceManagerServiceClient(conn).MapperRegister(ctx, &pb.MapperRegisterRequest{WithData: true,
		Mapper: &pb.MapperInfo{Name: "native-virtual", Protocol: "virtual", Address: []byte(filepath.Join(r.dataDir, "v.sock"))}})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("DMI registration of protocol virtual: %v, want FailedPrecondition", err)
	}
	// devices reload still answers for the twin.
	if out, code := edgehost(t, bin, "", "devices", "reload", "--data-dir", r.dataDir); code != 0 || !strings.Contains(out, "2 devices") {
		t.Fatalf("devices reload: %s", out)
	}
}
