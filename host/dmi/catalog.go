package dmi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	pb "github.com/edgehost/edgehost/host/dmi/v1beta1"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Catalog is the node's devices and device models as DMI hands them to
// mappers: each device with its model's protocol config and visitor
// defaults merged under its own values (instance keys win), as edgecore's
// DMI cache does. Keys are KubeEdge ids, {namespace}/{name}. A Catalog is
// not changed once a Source has delivered it.
type Catalog struct {
	Devices map[string]*pb.Device
	Models  map[string]*pb.DeviceModel
}

// Protocol is the protocol that binds a device to a mapper: its
// spec.protocol.protocolName (the loader fills it from the model's
// spec.protocol when the device names none).
func Protocol(d *pb.Device) string { return d.GetSpec().GetProtocol().GetProtocolName() }

// ModelID is the id of the model a device references, in the device's
// namespace; empty when it references none.
func ModelID(d *pb.Device) string {
	ref := d.GetSpec().GetDeviceModelReference()
	if ref == "" {
		return ""
	}
	return namespaced(d.GetNamespace(), ref)
}

// Source tells the DMI module the node's devices and models. It is the hook
// between DMI and whatever holds the device list: the devices directory
// today (DirSource), the cloud's Device and DeviceModel objects once the
// hub and meta store carry them.
type Source interface {
	// Watch calls update with the whole catalog at start and again after
	// every change, until ctx ends; then it returns nil. An error means
	// the source failed and the module's run fails with it.
	Watch(ctx context.Context, update func(*Catalog)) error
}

// DirSource reads a devices directory (KubeEdge v1beta1 Device and
// DeviceModel YAML, as host/twin does) once, when watched.
type DirSource struct {
	// Dir is the directory; empty means no devices.
	Dir string
}

// Watch implements Source.
func (s DirSource) Watch(ctx context.Context, update func(*Catalog)) error {
	c := &Catalog{Devices: map[string]*pb.Device{}, Models: map[string]*pb.DeviceModel{}}
	if s.Dir != "" {
		var err error
		if c, err = LoadDir(s.Dir); err != nil {
			return err
		}
	}
	update(c)
	<-ctx.Done()
	return nil
}

// The parts of devices.kubeedge.io/v1beta1 objects DMI carries.
type (
	object struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name      string `yaml:"name"`
			Namespace string `yaml:"namespace"`
		} `yaml:"metadata"`
		Spec   spec `yaml:"spec"`
		Status struct {
			stateReport `yaml:",inline"`
		} `yaml:"status"`
	}
	// spec is the union of Device and DeviceModel specs.
	spec struct {
		DeviceModelRef struct {
			Name string `yaml:"name"`
		} `yaml:"deviceModelRef"`
		Protocol           yaml.Node      `yaml:"protocol"` // Device: {protocolName, configData}; DeviceModel: a name
		ProtocolConfigData customized     `yaml:"protocolConfigData"`
		Properties         []property     `yaml:"properties"`
		Methods            []method       `yaml:"methods"`
		StateReport        *stateReport   `yaml:"stateReport"`
		Commands           []modelCommand `yaml:"commands"`
	}
	stateReport struct {
		ReportToCloud bool  `yaml:"reportToCloud"`
		ReportCycle   int64 `yaml:"reportCycle"`
	}
	customized struct {
		Data map[string]any `yaml:"data"`
	}
	visitors struct {
		ProtocolName string     `yaml:"protocolName"`
		ConfigData   customized `yaml:"configData"`
	}
	property struct {
		Name string `yaml:"name"`
		// Device
		Desired struct {
			Value    string            `yaml:"value"`
			Metadata map[string]string `yaml:"metadata"`
		} `yaml:"desired"`
		Visitors      visitors       `yaml:"visitors"` // also a DeviceModel default
		ReportCycle   int64          `yaml:"reportCycle"`
		CollectCycle  int64          `yaml:"collectCycle"`
		ReportToCloud bool           `yaml:"reportToCloud"`
		PushMethod    map[string]any `yaml:"pushMethod"`
		// DeviceModel
		Description string `yaml:"description"`
		Type        string `yaml:"type"`
		AccessMode  string `yaml:"accessMode"`
		Minimum     string `yaml:"minimum"`
		Maximum     string `yaml:"maximum"`
		Unit        string `yaml:"unit"`
	}
	method struct {
		Name          string   `yaml:"name"`
		Description   string   `yaml:"description"`
		PropertyNames []string `yaml:"propertyNames"`
	}
	modelCommand struct {
		Name       string   `yaml:"name"`
		URL        string   `yaml:"url"`
		Method     string   `yaml:"method"`
		StatusCode []string `yaml:"status_code"`
		Parameters []string `yaml:"parameters"`
		Response   string   `yaml:"response"`
	}
	deviceProtocol struct {
		ProtocolName string     `yaml:"protocolName"`
		ConfigData   customized `yaml:"configData"`
	}
)

// deviceGroup is the API group of KubeEdge's device objects.
const deviceGroup = "devices.kubeedge.io/"

// LoadDir reads the *.yaml and *.yml files of dir, each possibly several
// documents, into a Catalog. Objects of other API groups are skipped. A
// file that does not parse, a device declared twice or a value that cannot
// be carried fails the whole load, naming the file and object, so a typo
// never hands a mapper half a device list.
func LoadDir(dir string) (*Catalog, error) {
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, fmt.Errorf("dmi: devices dir %s: %w", dir, err)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	var devices, models []located
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("dmi: devices dir: %w", err)
		}
		objs, err := parseObjects(data)
		if err != nil {
			return nil, fmt.Errorf("dmi: devices dir: %s: %w", f, err)
		}
		for _, o := range objs {
			switch o.Kind {
			case "Device":
				devices = append(devices, located{f, o})
			case "DeviceModel":
				models = append(models, located{f, o})
			}
		}
	}
	return build(devices, models)
}

// located is an object and the file it came from.
type located struct {
	file string
	obj  object
}

// build converts the objects into a catalog, merging model defaults into
// devices.
func build(devices, models []located) (*Catalog, error) {
	c := &Catalog{Devices: map[string]*pb.Device{}, Models: map[string]*pb.DeviceModel{}}
	raw := map[string]*object{}
	for _, l := range models {
		id := namespaced(l.obj.Metadata.Namespace, l.obj.Metadata.Name)
		if _, dup := c.Models[id]; dup {
			return nil, fmt.Errorf("dmi: devices dir: %s: device model %s is declared twice", l.file, id)
		}
		c.Models[id] = convertModel(&l.obj)
		raw[id] = &l.obj
	}
	for _, l := range devices {
		id := namespaced(l.obj.Metadata.Namespace, l.obj.Metadata.Name)
		if _, dup := c.Devices[id]; dup {
			return nil, fmt.Errorf("dmi: devices dir: %s: device %s is declared twice", l.file, id)
		}
		model := raw[namespaced(l.obj.Metadata.Namespace, l.obj.Spec.DeviceModelRef.Name)]
		d, err := convertDevice(&l.obj, model)
		if err != nil {
			return nil, fmt.Errorf("dmi: devices dir: %s: device %s: %w", l.file, id, err)
		}
		c.Devices[id] = d
	}
	return c, nil
}

// parseObjects decodes every YAML document of data, keeping KubeEdge
// device objects.
func parseObjects(data []byte) ([]object, error) {
	var out []object
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(o.APIVersion, deviceGroup) || (o.Kind != "Device" && o.Kind != "DeviceModel") {
			continue
		}
		if o.Metadata.Name == "" {
			return nil, fmt.Errorf("a %s without metadata.name", o.Kind)
		}
		if o.Spec.Protocol.Kind != 0 && o.Spec.Protocol.Kind != yaml.ScalarNode && o.Spec.Protocol.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s %s: spec.protocol (line %d) must be a name or a mapping", o.Kind, o.Metadata.Name, o.Spec.Protocol.Line)
		}
		out = append(out, o)
	}
}

// convertModel is a DeviceModel in DMI's form, which has no protocol config
// or visitors: those are merged into each device.
func convertModel(o *object) *pb.DeviceModel {
	m := &pb.DeviceModel{Name: o.Metadata.Name, Namespace: namespace(o.Metadata.Namespace), Spec: &pb.DeviceModelSpec{}}
	for _, p := range o.Spec.Properties {
		m.Spec.Properties = append(m.Spec.Properties, &pb.ModelProperty{Name: p.Name, Description: p.Description, Type: p.Type,
			AccessMode: p.AccessMode, Minimum: p.Minimum, Maximum: p.Maximum, Unit: p.Unit})
	}
	for _, c := range o.Spec.Commands {
		m.Spec.Commands = append(m.Spec.Commands, &pb.DeviceCommand{Name: c.Name, Url: c.URL, Method: c.Method,
			StatusCode: c.StatusCode, Parameters: c.Parameters, Response: []byte(c.Response)})
	}
	return m
}

// convertDevice is a Device in DMI's form, with model's defaults (model may
// be nil) merged under the device's own values.
func convertDevice(o, model *object) (*pb.Device, error) {
	var proto deviceProtocol
	if o.Spec.Protocol.Kind == yaml.MappingNode {
		if err := o.Spec.Protocol.Decode(&proto); err != nil {
			return nil, fmt.Errorf("spec.protocol: %w", err)
		}
	}
	var modelProps map[string]*property
	if model != nil {
		if proto.ProtocolName == "" && model.Spec.Protocol.Kind == yaml.ScalarNode {
			proto.ProtocolName = model.Spec.Protocol.Value
		}
		proto.ConfigData.Data = merged(model.Spec.ProtocolConfigData.Data, proto.ConfigData.Data)
		modelProps = map[string]*property{}
		for i := range model.Spec.Properties {
			modelProps[model.Spec.Properties[i].Name] = &model.Spec.Properties[i]
		}
	}
	config, err := customizedValue(proto.ConfigData.Data)
	if err != nil {
		return nil, fmt.Errorf("spec.protocol.configData: %w", err)
	}
	d := &pb.Device{Name: o.Metadata.Name, Namespace: namespace(o.Metadata.Namespace), Spec: &pb.DeviceSpec{
		DeviceModelReference: o.Spec.DeviceModelRef.Name,
		Protocol:             &pb.ProtocolConfig{ProtocolName: proto.ProtocolName, ConfigData: config},
	}}
	for i, p := range o.Spec.Properties {
		vis := p.Visitors
		if mp := modelProps[p.Name]; mp != nil {
			vis.ConfigData.Data = merged(mp.Visitors.ConfigData.Data, vis.ConfigData.Data)
			if vis.ProtocolName == "" {
				vis.ProtocolName = mp.Visitors.ProtocolName
			}
		}
		if vis.ProtocolName == "" {
			vis.ProtocolName = proto.ProtocolName
		}
		visConfig, err := customizedValue(vis.ConfigData.Data)
		if err != nil {
			return nil, fmt.Errorf("spec.properties[%d] (%s).visitors.configData: %w", i, p.Name, err)
		}
		push, err := pushMethod(p.PushMethod)
		if err != nil {
			return nil, fmt.Errorf("spec.properties[%d] (%s).pushMethod: %w", i, p.Name, err)
		}
		d.Spec.Properties = append(d.Spec.Properties, &pb.DeviceProperty{
			Name:          p.Name,
			Desired:       &pb.TwinProperty{Value: p.Desired.Value, Metadata: p.Desired.Metadata},
			Visitors:      &pb.VisitorConfig{ProtocolName: vis.ProtocolName, ConfigData: visConfig},
			ReportCycle:   p.ReportCycle,
			CollectCycle:  p.CollectCycle,
			ReportToCloud: p.ReportToCloud,
			PushMethod:    push,
		})
	}
	for _, m := range o.Spec.Methods {
		d.Spec.Methods = append(d.Spec.Methods, &pb.DeviceMethod{Name: m.Name, Description: m.Description, PropertyNames: m.PropertyNames})
	}
	report := o.Status.stateReport
	if o.Spec.StateReport != nil {
		report = *o.Spec.StateReport
	}
	d.Status = &pb.DeviceStatus{ReportToCloud: report.ReportToCloud, ReportCycle: report.ReportCycle}
	return d, nil
}

// merged is base overridden key by key by over.
func merged(base, over map[string]any) map[string]any {
	if len(base) == 0 {
		return over
	}
	out := maps.Clone(base)
	maps.Copy(out, over)
	return out
}

// pushMethod converts a property's pushMethod. Its plain fields go through
// JSON into the generated struct, whose field names match the CRD's
// case-insensitively (hostName/hostname, TDEngine/tdengine), as edgecore
// converts; anomalyDetection's free-form data is packed like configData.
func pushMethod(raw map[string]any) (*pb.PushMethod, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	plain := maps.Clone(raw)
	var anomaly any
	for k, v := range raw {
		if strings.EqualFold(k, "anomalyDetection") {
			anomaly = v
			delete(plain, k)
		}
	}
	b, err := json.Marshal(plain)
	if err != nil {
		return nil, err
	}
	var p pb.PushMethod
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	if anomaly != nil {
		m, ok := anomaly.(map[string]any)
		data, _ := m["data"].(map[string]any)
		if !ok || (m["data"] != nil && data == nil) {
			return nil, errors.New("anomalyDetection must be a mapping with a data mapping")
		}
		v, err := customizedValue(data)
		if err != nil {
			return nil, fmt.Errorf("anomalyDetection.data: %w", err)
		}
		p.AnomalyDetection = &pb.AnomalyDetection{Data: v.GetData()}
	}
	return &p, nil
}

// customizedValue packs free-form config values into Anys of protobuf
// wrappers, as edgecore does: strings as StringValue, integers as
// Int32Value when they fit, else Int64Value, floats as FloatValue
// (narrowed to float32, as edgecore narrows them) and booleans as
// BoolValue. Nil for no data.
func customizedValue(data map[string]any) (*pb.CustomizedValue, error) {
	if len(data) == 0 {
		return nil, nil
	}
	out := &pb.CustomizedValue{Data: make(map[string]*anypb.Any, len(data))}
	for k, v := range data {
		a, err := toAny(v)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		out.Data[k] = a
	}
	return out, nil
}

// toAny wraps one config value.
func toAny(v any) (*anypb.Any, error) {
	switch x := v.(type) {
	case string:
		return anypb.New(wrapperspb.String(x))
	case bool:
		return anypb.New(wrapperspb.Bool(x))
	case int:
		if x >= math.MinInt32 && x <= math.MaxInt32 {
			return anypb.New(wrapperspb.Int32(int32(x)))
		}
		return anypb.New(wrapperspb.Int64(int64(x)))
	case int64:
		return anypb.New(wrapperspb.Int64(x))
	case uint64:
		if x > math.MaxInt64 {
			return nil, fmt.Errorf("integer %d is out of range", x)
		}
		return anypb.New(wrapperspb.Int64(int64(x)))
	case float64:
		return anypb.New(wrapperspb.Float(float32(x)))
	}
	return nil, fmt.Errorf("a %s cannot be carried; use a string, number or boolean", yamlKind(v))
}

// yamlKind names a decoded YAML value's kind for an error.
func yamlKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "mapping"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}

// namespace is a namespace with KubeEdge's default.
func namespace(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

// namespaced is KubeEdge's object id, {namespace}/{name}.
func namespaced(ns, name string) string { return namespace(ns) + "/" + name }
