package dmi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadDirErrors checks a directory that cannot be carried fails whole,
// naming the file, the object and the field.
func TestLoadDirErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"a list config value": {device("d", "", "modbus", "1") + "\n  \n" + `---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: e}
spec:
  protocol: {protocolName: modbus, configData: {data: {slaves: [1, 2]}}}`, `device default/e: spec.protocol.configData: key "slaves": a list cannot be carried`},
		"a visitor mapping": {`apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: e}
spec:
  properties: [{name: temp, visitors: {configData: {data: {reg: {a: 1}}}}}]`, `device default/e: spec.properties[0] (temp).visitors.configData: key "reg": a mapping cannot be carried`},
		"a device twice":   {device("d", "", "modbus", "1") + "\n---\n" + device("d", "", "modbus", "2"), "device default/d is declared twice"},
		"no name":          {"apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {}\n", "a Device without metadata.name"},
		"a protocol list":  {"apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: x}\nspec:\n  protocol: [a]\n", "spec.protocol (line 5) must be a name or a mapping"},
		"not YAML":         {"kind: [", "devices.yaml"},
		"a bad pushMethod": {"apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: x}\nspec:\n  properties: [{name: p, pushMethod: {mqtt: {qos: high}}}]\n", "spec.properties[0] (p).pushMethod"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "devices.yaml"), []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadDir(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "devices.yaml") {
				t.Errorf("LoadDir = %v, want an error naming devices.yaml and %q", err, tc.want)
			}
		})
	}
}

// TestLoadDirSkipsOtherObjects checks objects of other kinds and groups are
// left out, and a device's protocol comes from its model when it names none.
func TestLoadDirSkipsOtherObjects(t *testing.T) {
	dir := t.TempDir()
	data := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n" + model("m1") + "\n---\n" +
		"apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: d, namespace: site}\nspec:\n  deviceModelRef: {name: m1}\n"
	if err := os.WriteFile(filepath.Join(dir, "a.yml"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Devices) != 1 || len(c.Models) != 1 {
		t.Fatalf("got %d devices, %d models", len(c.Devices), len(c.Models))
	}
	d := c.Devices["site/d"]
	// m1 is in namespace default, the device in site: no model applies.
	if d == nil || Protocol(d) != "" || ModelID(d) != "site/m1" {
		t.Errorf("device = %v", d)
	}
}

// FuzzParseObjects feeds arbitrary bytes to the devices-dir decoder and
// converter: they may refuse, never panic.
func FuzzParseObjects(f *testing.F) {
	f.Add([]byte(devicesYAML))
	f.Add([]byte(model("m") + "\n---\n" + device("d", "m", "modbus", "1")))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := parseObjects(data)
		if err != nil {
			return
		}
		var devices, models []located
		for _, o := range objs {
			if o.Kind == "Device" {
				devices = append(devices, located{"f.yaml", o})
			} else {
				models = append(models, located{"f.yaml", o})
			}
		}
		c, err := build(devices, models)
		if err == nil && len(c.Devices) != len(devices) {
			t.Errorf("%d devices in, %d out", len(devices), len(c.Devices))
		}
	})
}
