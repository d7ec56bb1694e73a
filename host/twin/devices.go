package twin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The parts of KubeEdge's devices.kubeedge.io/v1beta1 objects the twin
// needs; everything else in the files (protocols, visitors, cycles) is for
// mappers and is only checked for unknown field names (schema.go).

type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		NodeName       string `yaml:"nodeName"`
		DeviceModelRef struct {
			Name string `yaml:"name"`
		} `yaml:"deviceModelRef"`
		// Protocol is a Device's {protocolName, configData} or a
		// DeviceModel's protocol name (mapping.go).
		Protocol           yaml.Node  `yaml:"protocol"`
		ProtocolConfigData configData `yaml:"protocolConfigData"` // DeviceModel
		Properties         []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"` // DeviceModel
			Desired struct {
				Value    string            `yaml:"value"`
				Metadata map[string]string `yaml:"metadata"`
			} `yaml:"desired"` // Device
			Visitors struct {
				ProtocolName string     `yaml:"protocolName"`
				ConfigData   configData `yaml:"configData"`
			} `yaml:"visitors"`
			CollectCycle int64 `yaml:"collectCycle"` // ms, Device
			ReportCycle  int64 `yaml:"reportCycle"`  // ms, Device
		} `yaml:"properties"`
	} `yaml:"spec"`
}

// configData is KubeEdge's CustomizedValue: free-form {data: {...}}.
type configData struct {
	Data map[string]any `yaml:"data"`
}

// The devices handed to the plugin, in KubeEdge's membership JSON.
type (
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

// The API version and kinds the loader reads.
const (
	deviceAPIVersion = "devices.kubeedge.io/v1beta1"
	kindDevice       = "Device"
	kindDeviceModel  = "DeviceModel"
)

// DirRead is one reading of the devices directory.
type DirRead struct {
	// Dir is the directory read.
	Dir string
	// Files are its *.yaml and *.yml files, by name.
	Files []FileRead
	// Warnings name the file, line and key of everything skipped: unknown
	// fields, documents of another kind or API version, unknown models.
	Warnings []string
}

// FileRead is one file of the devices directory.
type FileRead struct {
	// Name is the file's name in the directory.
	Name string
	// Devices are the devices the file declares, when it was accepted.
	Devices []device
	// Mappings are the same devices as their mappers see them, in the
	// same order (mapping.go).
	Mappings []Mapping
	// Skipped are the ids ({namespace}/{name}) of documents skipped for
	// their kind or API version: a device whose kind has a typo is not
	// taken as deleted.
	Skipped []string
	// Err is why the file was refused: nothing of it is used.
	Err error
}

// Devices returns the number of devices the accepted files declare.
func (r *DirRead) Devices() int {
	n := 0
	for _, f := range r.Files {
		n += len(f.Devices)
	}
	return n
}

// Refused returns "file: reason" for each refused file.
func (r *DirRead) Refused() []string {
	var out []string
	for _, f := range r.Files {
		if f.Err != nil {
			out = append(out, f.Err.Error())
		}
	}
	return out
}

// ReadDevicesDir reads the *.yaml and *.yml files of dir (each may hold
// several documents) and returns their Device objects, file by file. A
// property's type comes from its desired value's metadata "type", else from
// the device's DeviceModel, else it is a string.
//
// A directory that cannot be read is an error: that is never "no devices".
// A file that does not parse, or declares a device without a name or a
// device another file already declares, is refused (FileRead.Err, naming
// the file, line and field) and the other files are still read. Unknown
// fields, kinds and API versions are warnings. With node set, a device
// whose spec.nodeName names another node is left out with a warning, as
// the cloud would not send it to this node; a device without a nodeName
// is this node's.
func ReadDevicesDir(dir, node string) (*DirRead, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read devices dir %q: %w", dir, err)
	}
	read := &DirRead{Dir: dir}
	type parsed struct {
		devices []object
		lines   []int
	}
	var files []parsed
	models := map[string]map[string]string{} // model -> property -> type
	rawModels := map[string]*object{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		path := filepath.Join(dir, name)
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			continue // a directory, or a dangling link
		}
		f := FileRead{Name: name}
		var p parsed
		var warns []problem
		objs, lines, skipped, err := readFile(path, &warns)
		for _, w := range warns {
			read.Warnings = append(read.Warnings, fmt.Sprintf("%s: %s", path, w))
		}
		if err != nil {
			f.Err = fmt.Errorf("%s: %w", path, err)
		} else {
			f.Skipped = skipped
			for i, o := range objs {
				if o.Kind == kindDeviceModel {
					types := map[string]string{}
					for _, pr := range o.Spec.Properties {
						types[pr.Name] = twinType(pr.Type)
					}
					models[namespaced(o.Metadata.Namespace, o.Metadata.Name)] = types
					rawModels[namespaced(o.Metadata.Namespace, o.Metadata.Name)] = &objs[i]
					continue
				}
				p.devices = append(p.devices, o)
				p.lines = append(p.lines, lines[i])
			}
		}
		read.Files = append(read.Files, f)
		files = append(files, p)
	}
	declared := map[string]string{} // device id -> file
	for i := range read.Files {
		f := &read.Files[i]
		if f.Err != nil {
			continue
		}
		path := filepath.Join(dir, f.Name)
		var devices []device
		var mappings []Mapping
		for j, o := range files[i].devices {
			id := namespaced(o.Metadata.Namespace, o.Metadata.Name)
			if node != "" && o.Spec.NodeName != "" && o.Spec.NodeName != node {
				read.Warnings = append(read.Warnings, fmt.Sprintf("%s: line %d: field spec.nodeName: device %s is bound to node %q, not this node %q; left out",
					path, files[i].lines[j], id, o.Spec.NodeName, node))
				continue
			}
			if other, dup := declared[id]; dup {
				f.Err = fmt.Errorf("%s: line %d: field metadata.name: device %s is already declared in %s", path, files[i].lines[j], id, other)
				devices = nil
				break
			}
			declared[id] = f.Name
			model, ok := models[namespaced(o.Metadata.Namespace, o.Spec.DeviceModelRef.Name)]
			if !ok && o.Spec.DeviceModelRef.Name != "" {
				read.Warnings = append(read.Warnings, fmt.Sprintf("%s: line %d: field spec.deviceModelRef.name: device %s: no DeviceModel %s in the dir; its properties are typed from their desired metadata, else string",
					path, files[i].lines[j], id, o.Spec.DeviceModelRef.Name))
			}
			mp, err := newMapping(id, &o, rawModels[namespaced(o.Metadata.Namespace, o.Spec.DeviceModelRef.Name)])
			if err != nil {
				f.Err = fmt.Errorf("%s: line %d: %w", path, files[i].lines[j], err)
				devices, mappings = nil, nil
				break
			}
			devices = append(devices, newDevice(id, &o, model))
			mappings = append(mappings, mp)
		}
		if f.Err != nil {
			// The devices it declared before the duplicate are not taken.
			for id, file := range declared {
				if file == f.Name {
					delete(declared, id)
				}
			}
		}
		f.Devices, f.Mappings = devices, mappings
	}
	return read, nil
}

// newDevice is the membership device of o.
func newDevice(id string, o *object, model map[string]string) device {
	// The cloud takes a device's description from its labels; the
	// annotation is edgehost's older place for it, still read.
	desc := o.Metadata.Labels["description"]
	if desc == "" {
		desc = o.Metadata.Annotations["description"]
	}
	d := device{ID: id, Name: o.Metadata.Name, Description: desc}
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
	return d
}

// readFile decodes every document of a YAML file and returns its v1beta1
// Device and DeviceModel objects with the line each starts on, and the ids
// of the documents skipped for their kind or API version. Warnings go to
// warns; an error refuses the whole file.
func readFile(path string, warns *[]problem) (objs []object, lines []int, skipped []string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return objs, lines, skipped, nil
		}
		if err != nil {
			return nil, nil, nil, err
		}
		if len(doc.Content) == 0 {
			continue
		}
		n := doc.Content[0]
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			continue // an empty document
		}
		if n.Kind != yaml.MappingNode {
			return nil, nil, nil, fmt.Errorf("line %d: a document that is %s, want a mapping (a Kubernetes object)", n.Line, kindName(n.Kind))
		}
		apiVersion, kind := scalarField(n, "apiVersion"), scalarField(n, "kind")
		var s *shape
		switch {
		case apiVersion == deviceAPIVersion && kind == kindDevice:
			s = deviceShape
		case apiVersion == deviceAPIVersion && kind == kindDeviceModel:
			s = deviceModelShape
		default:
			*warns = append(*warns, problem{n.Line, "kind", fmt.Sprintf("apiVersion %q kind %q is not a %s Device or DeviceModel; document skipped", apiVersion, kind, deviceAPIVersion)})
			var o object
			if n.Decode(&o) == nil && o.Metadata.Name != "" {
				skipped = append(skipped, namespaced(o.Metadata.Namespace, o.Metadata.Name))
			}
			continue
		}
		var errs []problem
		s.check(n, "", warns, &errs)
		if len(errs) > 0 {
			return nil, nil, nil, errors.New(errs[0].String())
		}
		var o object
		if err := n.Decode(&o); err != nil {
			return nil, nil, nil, err
		}
		if o.Metadata.Name == "" {
			return nil, nil, nil, problemError(n, "metadata.name", "a "+kind+" without a name")
		}
		seen := map[string]bool{}
		props := fieldNode(fieldNode(n, "spec"), "properties")
		for i, p := range o.Spec.Properties {
			at := n
			if props != nil && i < len(props.Content) {
				at = props.Content[i]
			}
			field := fmt.Sprintf("spec.properties[%d].name", i)
			if p.Name == "" {
				return nil, nil, nil, problemError(at, field, "a property without a name")
			}
			if seen[p.Name] {
				return nil, nil, nil, problemError(at, field, "property "+p.Name+" is declared twice")
			}
			seen[p.Name] = true
		}
		objs = append(objs, o)
		lines = append(lines, n.Line)
	}
}

func problemError(n *yaml.Node, field, msg string) error {
	return errors.New(problem{n.Line, field, msg}.String())
}

// fieldNode returns the value of key in mapping n, or nil.
func fieldNode(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// scalarField returns the scalar value of key in mapping n, or "".
func scalarField(n *yaml.Node, key string) string {
	if v := fieldNode(n, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
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

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
