package twin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadDevicesDir(t *testing.T) {
	b, n, err := LoadDevicesDir("testdata/devices")
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d devices, want 2", n)
	}
	var got deviceList
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	got.Timestamp = 0
	want := `{"event_id":"","timestamp":0,"devices":[` +
		`{"id":"default/valve","name":"valve","twin":{"pos":{"expected":{"value":"open"},"metadata":{"type":"string"}}}},` +
		`{"id":"default/thermo-0","name":"thermo-0","description":"boiler room","twin":{"label":{"metadata":{"type":"string"}},"temp":{"expected":{"value":"20"},"metadata":{"type":"int"}}}}]}`
	if g, _ := json.Marshal(got); string(g) != want {
		t.Fatalf("device list:\n got %s\nwant %s", g, want)
	}
}

func TestLoadDevicesDirRefusesBadFiles(t *testing.T) {
	for name, body := range map[string]string{
		"not yaml":  "apiVersion: [",
		"no name":   "apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {}\n",
		"duplicate": "apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: a}\n---\napiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: a, namespace: default}\n",
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "d.yaml")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadDevicesDir(dir)
		if err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: err = %v, want an error naming the file", name, err)
		}
	}
}

func TestLaneKey(t *testing.T) {
	for _, c := range []struct {
		source, resource, key string
		alone                 bool
	}{
		{"bus", "JGh3L2V2ZW50cy9kZXZpY2UvZGVmYXVsdC9zLTEvdHdpbi91cGRhdGU=", "default/s-1", false}, // $hw/events/device/default/s-1/twin/update
		{"devicecontroller", "device/default/s-1/twin/cloud_updated", "default/s-1", false},
		{"devicecontroller", "membership", "", true},
		{SourceDevicesDir, "membership/detail", "", true},
		{"edgehub", "node/connection", "node/connection", false},
	} {
		msg := testMessage(c.source, c.resource)
		if key, alone := laneKey(&msg); key != c.key || alone != c.alone {
			t.Errorf("laneKey(%s, %s) = %q, %v; want %q, %v", c.source, c.resource, key, alone, c.key, c.alone)
		}
	}
}
