package twin

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const mappingModel = `apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: sim-model}
spec:
  protocol: virtual
  protocolConfigData: {data: {seed: 1, site: lab}}
  properties:
    - name: count
      type: INT
      visitors: {protocolName: virtual, configData: {data: {kind: counter, step: 1, start: 0}}}
`

const mappingDevice = `apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: sim-0}
spec:
  deviceModelRef: {name: sim-model}
  protocol: {protocolName: virtual, configData: {data: {site: roof}}}
  properties:
    - name: count
      collectCycle: 500
      reportCycle: 2000
      visitors: {protocolName: virtual, configData: {data: {step: 5}}}
    - name: mode
      desired: {value: "on", metadata: {type: string}}
`

// TestMappingMergesModelDefaults: the model's protocol config and visitor
// config lie under the device's, the device's keys winning, and the dir
// and the cloud's JSON give the same mapping.
func TestMappingMergesModelDefaults(t *testing.T) {
	want := Mapping{ID: "default/sim-0", Model: "default/sim-model", Protocol: "virtual",
		ProtocolConfig: map[string]any{"seed": 1, "site": "roof"},
		Properties: []MappedProperty{
			{Name: "count", Type: "int", Visitor: map[string]any{"kind": "counter", "step": 5, "start": 0},
				CollectCycle: 500 * time.Millisecond, ReportCycle: 2 * time.Second},
			{Name: "mode", Type: "string", Desired: "on"},
		}}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sim.yaml"), []byte(mappingModel+"---\n"+mappingDevice), 0o644); err != nil {
		t.Fatal(err)
	}
	read, err := ReadDevicesDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Files) != 1 || len(read.Files[0].Mappings) != 1 {
		t.Fatalf("files %+v", read.Files)
	}
	if got := read.Files[0].Mappings[0]; !reflect.DeepEqual(got, want) {
		t.Fatalf("from the dir:\n got %+v\nwant %+v", got, want)
	}
	deviceJSON := `{"apiVersion":"devices.kubeedge.io/v1beta1","kind":"Device","metadata":{"name":"sim-0","namespace":"default"},
"spec":{"deviceModelRef":{"name":"sim-model"},"protocol":{"protocolName":"virtual","configData":{"data":{"site":"roof"}}},
"properties":[{"name":"count","collectCycle":500,"reportCycle":2000,"visitors":{"protocolName":"virtual","configData":{"data":{"step":5}}}},
{"name":"mode","desired":{"value":"on","metadata":{"type":"string"}}}]}}`
	got, err := DecodeMapping([]byte(deviceJSON), []byte(mappingModel))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("from JSON:\n got %+v\nwant %+v", got, want)
	}
}

// TestMappingRefusesBadProtocol: a device whose protocol is not a mapping
// is refused by file and line, as other bad fields are.
func TestMappingRefusesBadProtocol(t *testing.T) {
	dir := t.TempDir()
	bad := strings.Replace(mappingDevice, "protocol: {protocolName: virtual, configData: {data: {site: roof}}}", "protocol: [virtual]", 1)
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	read, err := ReadDevicesDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := read.Refused(); len(r) != 1 || !strings.Contains(r[0], "bad.yaml: line") || !strings.Contains(r[0], "spec.protocol") {
		t.Fatalf("refused %q", r)
	}
}
