package twin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadDevicesFile checks that no devices file makes the loader panic,
// that a refused file is named in its error, and that every accepted
// device has an id and its properties names. Seeds are in
// testdata/fuzz/FuzzReadDevicesFile.
func FuzzReadDevicesFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "d.yaml")
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		read, err := ReadDevicesDir(dir, "")
		if err != nil {
			t.Fatalf("a readable dir: %v", err)
		}
		if len(read.Files) != 1 {
			t.Fatalf("%d files read, want 1", len(read.Files))
		}
		file := read.Files[0]
		if file.Err != nil {
			if !strings.HasPrefix(file.Err.Error(), path+": ") || file.Devices != nil {
				t.Fatalf("refused as %v with %d devices", file.Err, len(file.Devices))
			}
			return
		}
		for _, d := range file.Devices {
			if d.Name == "" || !strings.HasSuffix(d.ID, "/"+d.Name) {
				t.Fatalf("device %+v", d)
			}
			for key := range d.Twin {
				if key == "" {
					t.Fatalf("device %s has a property without a name", d.ID)
				}
			}
		}
	})
}

// FuzzDecodeMapping checks that no cloud Device object makes DecodeMapping
// panic, and that a mapping it returns has the object's id and one entry
// per property, each typed. Seeds are in testdata/fuzz/FuzzDecodeMapping.
func FuzzDecodeMapping(f *testing.F) {
	f.Fuzz(func(t *testing.T, device []byte) {
		mp, err := DecodeMapping(device, nil)
		if err != nil {
			return
		}
		if !strings.Contains(mp.ID, "/") {
			t.Fatalf("id %q", mp.ID)
		}
		for _, p := range mp.Properties {
			if p.Type == "" || p.CollectCycle < 0 || p.ReportCycle < 0 {
				t.Fatalf("property %+v", p)
			}
		}
	})
}
