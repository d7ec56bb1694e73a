package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The parts of KubeEdge's devices.kubeedge.io/v1beta1 objects the twin
// needs; everything else in the files (protocols, visitors, cycles) is for
// mappers and is ignored here.

type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		DeviceModelRef struct {
			Name string `yaml:"name"`
		} `yaml:"deviceModelRef"`
		Properties []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"` // DeviceModel
			Desired struct {
				Value    string            `yaml:"value"`
				Metadata map[string]string `yaml:"metadata"`
			} `yaml:"desired"` // Device
		} `yaml:"properties"`
	} `yaml:"spec"`
}

// The membership device list handed to the plugin, in KubeEdge's JSON.
type (
	deviceList struct {
		EventID   string   `json:"event_id"`
		Timestamp int64    `json:"timestamp"`
		Devices   []device `json:"devices"`
	}
	device struct {
		ID          string           `json:"id"`
		Name        string           `json:"name"`
		Description string           `json:"description,omitempty"`
		Twin        map[string]*twin `json:"twin,omitempty"`
	}
	twin struct {
		Expected *value    `json:"expected,omitempty"`
		Metadata *typeMeta `json:"metadata,omitempty"`
	}
	value struct {
		Value string `json:"value"`
	}
	typeMeta struct {
		Type string `json:"type"`
	}
)

// deviceGroup is the API group of KubeEdge's device objects.
const deviceGroup = "devices.kubeedge.io/"

// LoadDevicesDir reads the *.yaml and *.yml files of dir (each may hold
// several documents) and returns their Device objects as a membership
// device list (KubeEdge's JSON) and the number of devices. A property's
// type comes from its desired value's metadata "type", else from the
// device's DeviceModel, else it is a string. Any file that does not parse
// fails the whole load, so a typo never drops devices.
func LoadDevicesDir(dir string) ([]byte, int, error) {
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, 0, fmt.Errorf("twin: devices dir %s: %w", dir, err)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	var devices []object
	models := map[string]map[string]string{} // model -> property -> type
	for _, f := range files {
		objs, err := readObjects(f)
		if err != nil {
			return nil, 0, err
		}
		for _, o := range objs {
			switch o.Kind {
			case "Device":
				devices = append(devices, o)
			case "DeviceModel":
				types := map[string]string{}
				for _, p := range o.Spec.Properties {
					types[p.Name] = twinType(p.Type)
				}
				models[namespaced(o.Metadata.Namespace, o.Metadata.Name)] = types
			}
		}
	}
	list := deviceList{Timestamp: time.Now().UnixMilli(), Devices: make([]device, 0, len(devices))}
	seen := map[string]bool{}
	for _, o := range devices {
		id := namespaced(o.Metadata.Namespace, o.Metadata.Name)
		if seen[id] {
			return nil, 0, fmt.Errorf("twin: devices dir %s: device %s is declared twice", dir, id)
		}
		seen[id] = true
		model := models[namespaced(o.Metadata.Namespace, o.Spec.DeviceModelRef.Name)]
		d := device{ID: id, Name: o.Metadata.Name, Description: o.Metadata.Annotations["description"]}
		for _, p := range o.Spec.Properties {
			t := &twin{Metadata: &typeMeta{Type: "string"}}
			switch {
			case p.Desired.Metadata["type"] != "":
				t.Metadata.Type = twinType(p.Desired.Metadata["type"])
			case model[p.Name] != "":
				t.Metadata.Type = model[p.Name]
			}
			if p.Desired.Value != "" {
				t.Expected = &value{Value: p.Desired.Value}
			}
			if d.Twin == nil {
				d.Twin = map[string]*twin{}
			}
			d.Twin[p.Name] = t
		}
		list.Devices = append(list.Devices, d)
	}
	b, err := json.Marshal(list)
	if err != nil {
		return nil, 0, fmt.Errorf("twin: devices dir %s: %w", dir, err)
	}
	return b, len(list.Devices), nil
}

// readObjects decodes every document of a YAML file, keeping KubeEdge
// device objects.
func readObjects(path string) ([]object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("twin: devices dir: %w", err)
	}
	var out []object
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("twin: devices dir: %s: %w", path, err)
		}
		if !strings.HasPrefix(o.APIVersion, deviceGroup) {
			continue
		}
		if o.Metadata.Name == "" {
			return nil, fmt.Errorf("twin: devices dir: %s: a %s without metadata.name", path, o.Kind)
		}
		out = append(out, o)
	}
}

// namespaced is KubeEdge's device id, {namespace}/{name}.
func namespaced(ns, name string) string {
	if ns == "" {
		ns = "default"
	}
	return ns + "/" + name
}

// twinType maps a DeviceModel property type (INT, FLOAT, DOUBLE, BOOLEAN,
// STRING, ...) to the twin's value types.
func twinType(t string) string {
	switch strings.ToLower(t) {
	case "int", "integer":
		return "int"
	case "float", "double":
		return "float"
	case "boolean", "bool":
		return "boolean"
	}
	return "string"
}
