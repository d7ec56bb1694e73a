package twin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadDevicesDir(t *testing.T) {
	read, err := ReadDevicesDir("testdata/devices", "")
	if err != nil {
		t.Fatal(err)
	}
	if n := read.Devices(); n != 2 || len(read.Refused()) != 0 {
		t.Fatalf("%d devices, refused %q; want 2 and none", n, read.Refused())
	}
	var all []device
	for _, f := range read.Files {
		all = append(all, f.Devices...)
	}
	want := `[{"id":"default/valve","name":"valve","twin":{"pos":{"expected":{"value":"open"},"metadata":{"type":"string"}}}},` +
		`{"id":"default/thermo-0","name":"thermo-0","description":"boiler room","twin":{"label":{"metadata":{"type":"string"}},"temp":{"expected":{"value":"20"},"metadata":{"type":"int"}}}}]`
	if g, _ := json.Marshal(all); string(g) != want {
		t.Fatalf("devices:\n got %s\nwant %s", g, want)
	}
	// The ConfigMap in thermo.yaml is named in a warning.
	if len(read.Warnings) != 1 || !strings.Contains(read.Warnings[0], "thermo.yaml: line 37: field kind") {
		t.Fatalf("warnings %q", read.Warnings)
	}
}

func TestReadDevicesDirMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	if _, err := ReadDevicesDir(dir, ""); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("err = %v, want an error naming %s", err, dir)
	}
}

const goodDevice = "apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: good}\nspec:\n  properties:\n    - name: temp\n"

// TestReadDevicesDirRefusesBadFile: a bad file is refused by file, line and
// field, and the devices of the other files are still read.
func TestReadDevicesDirRefusesBadFile(t *testing.T) {
	for name, c := range map[string]struct{ body, want string }{
		"not yaml":       {"apiVersion: [", "yaml: line 1"},
		"no name":        {"apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {}\n", "line 1: field metadata.name"},
		"property list":  {"apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: x}\nspec:\n  properties: temp\n", "line 5: field spec.properties: is a scalar, want a list"},
		"unnamed prop":   {"apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: x}\nspec:\n  properties:\n    - desired: {value: \"1\"}\n", "line 6: field spec.properties[0].name"},
		"not an object":  {"- a\n- b\n", "line 1: a document that is a list"},
		"duplicate":      {"apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: x}\n---\napiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: good, namespace: default}\n", "line 5: field metadata.name: device default/good is already declared in a.yaml"},
		"twice in file":  {"apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: x}\n---\napiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: x}\n", "line 5: field metadata.name: device default/x is already declared in b.yaml"},
		"duplicate prop": {"apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: x}\nspec:\n  properties:\n    - name: t\n    - name: t\n", "line 7: field spec.properties[1].name: property t is declared twice"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "a.yaml", goodDevice)
			write(t, dir, "b.yaml", c.body)
			read, err := ReadDevicesDir(dir, "")
			if err != nil {
				t.Fatal(err)
			}
			refused := read.Refused()
			if len(refused) != 1 || !strings.Contains(refused[0], filepath.Join(dir, "b.yaml")+": "+c.want) {
				t.Fatalf("refused %q, want one naming b.yaml and %q", refused, c.want)
			}
			if len(read.Files) != 2 || len(read.Files[0].Devices) != 1 || read.Files[0].Devices[0].ID != "default/good" || read.Files[1].Devices != nil {
				t.Fatalf("files %+v, want a.yaml's device and nothing of b.yaml", read.Files)
			}
		})
	}
}

// TestReadDevicesDirWarnings: unknown kinds, API versions and fields are
// warnings naming the file and key, and skip only what they name.
func TestReadDevicesDirWarnings(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", goodDevice)
	write(t, dir, "b.yaml", "apiVersion: devices.kubeedge.io/v1alpha2\nkind: DeviceModel\nmetadata: {name: old-model}\n---\n"+
		"apiVersion: devices.kubeedge.io/v1beta1\nkind: Devcie\nmetadata: {name: typo}\n---\n"+
		"apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: d, labels: {a: b}}\nspec:\n  deviceModelRef: {name: m}\n  properties:\n    - name: temp\n      desird: {value: \"1\"}\n"+
		"      visitors: {protocolName: modbus, configData: {register: HoldingRegister, offset: 2}}\n")
	read, err := ReadDevicesDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if r := read.Refused(); len(r) != 0 {
		t.Fatalf("refused %q", r)
	}
	b := filepath.Join(dir, "b.yaml")
	want := []string{
		b + `: line 1: field kind: apiVersion "devices.kubeedge.io/v1alpha2" kind "DeviceModel" is not a devices.kubeedge.io/v1beta1 Device or DeviceModel; document skipped`,
		b + `: line 5: field kind: apiVersion "devices.kubeedge.io/v1beta1" kind "Devcie" is not a devices.kubeedge.io/v1beta1 Device or DeviceModel; document skipped`,
		b + `: line 16: field spec.properties[0].desird: unknown field, ignored`,
		b + `: line 9: field spec.deviceModelRef.name: device default/d: no DeviceModel m in the dir; its properties are typed from their desired metadata, else string`,
	}
	if strings.Join(read.Warnings, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(read.Warnings, "\n"), strings.Join(want, "\n"))
	}
	if got := read.Files[1]; len(got.Devices) != 1 || got.Devices[0].ID != "default/d" || len(got.Devices[0].Twin) != 1 ||
		strings.Join(got.Skipped, ",") != "default/old-model,default/typo" {
		t.Fatalf("b.yaml read as %+v", got)
	}
}

// TestReadDevicesDirMergeKey: keys merged from an anchor are checked as
// the mapping's own, not taken for a field named "<<".
func TestReadDevicesDirMergeKey(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", "apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: a}\nspec:\n  properties:\n"+
		"    - &p {name: t, desired: {value: \"1\"}, reportCycle: 5}\n    - <<: *p\n      name: u\n      colectCycle: 5\n")
	read, err := ReadDevicesDir(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Refused()) != 0 || len(read.Warnings) != 1 || !strings.Contains(read.Warnings[0], "line 9: field spec.properties[1].colectCycle") {
		t.Fatalf("refused %q, warnings %q", read.Refused(), read.Warnings)
	}
	if d := read.Files[0].Devices[0]; d.Twin["u"] == nil || d.Twin["u"].Expected.Value != "1" {
		t.Fatalf("device %+v", d)
	}
}

func write(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReadDevicesDirNodeAndLabels: a device bound to another node by
// spec.nodeName is left out with a warning, as the cloud would not send it
// here; the description comes from labels["description"], as the cloud
// takes it, else from the annotation.
func TestReadDevicesDirNodeAndLabels(t *testing.T) {
	dir := t.TempDir()
	doc := func(name, node, meta string) string {
		return "apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: " + name + meta + "}\n" +
			"spec:\n  nodeName: " + node + "\n  properties:\n    - name: temp\n"
	}
	write(t, dir, "a.yaml", doc("here", "edge-1", ", labels: {description: from-label}, annotations: {description: from-annotation}")+"---\n"+
		doc("there", "edge-2", ", annotations: {description: from-annotation}")+"---\n"+
		doc("anywhere", `""`, ", annotations: {description: from-annotation}"))
	read, err := ReadDevicesDir(dir, "edge-1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range read.Files[0].Devices {
		got = append(got, d.ID+"="+d.Description)
	}
	if strings.Join(got, " ") != "default/here=from-label default/anywhere=from-annotation" {
		t.Fatalf("devices %v", got)
	}
	if len(read.Warnings) != 1 || !strings.Contains(read.Warnings[0], `device default/there is bound to node "edge-2", not this node "edge-1"; left out`) {
		t.Fatalf("warnings %q", read.Warnings)
	}
	if all, _ := ReadDevicesDir(dir, ""); len(all.Files[0].Devices) != 3 {
		t.Fatalf("without a node name every device is read: %+v", all.Files[0].Devices)
	}
}
