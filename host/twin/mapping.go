package twin

import (
	"fmt"
	"maps"
	"time"

	"go.yaml.in/yaml/v3"
)

// Mapping is a device as its mapper needs it: the protocol that binds it
// to a mapper, the protocol config and each property's visitor config and
// cycles, with the device model's defaults merged under the instance's
// keys, as KubeEdge's DMI cache merges them (instance keys win). The
// devices dir and the cloud's objects give the same Mapping for the same
// Device and DeviceModel.
type Mapping struct {
	// ID is {namespace}/{name}.
	ID string
	// Model is the id of the referenced DeviceModel; empty for none.
	Model string
	// Protocol is spec.protocol.protocolName, else the model's protocol.
	Protocol string
	// ProtocolConfig is spec.protocol.configData.data over the model's
	// protocolConfigData.data; nil when both are empty.
	ProtocolConfig map[string]any
	// Properties are the device's properties, in its order.
	Properties []MappedProperty
}

// MappedProperty is one property of a Mapping.
type MappedProperty struct {
	Name string
	// Type is the twin's type, as the twin takes it (int, float, boolean,
	// string).
	Type string
	// Desired is spec.properties[].desired.value.
	Desired string
	// Visitor is visitors.configData.data over the model property's;
	// nil when both are empty.
	Visitor map[string]any
	// CollectCycle and ReportCycle are the property's, 0 when unset.
	CollectCycle, ReportCycle time.Duration
}

// DecodeMapping is the Mapping of a Device object and its DeviceModel
// (nil for none) in KubeEdge's JSON, as the cloud sends them; YAML is
// read too.
func DecodeMapping(device, model []byte) (Mapping, error) {
	var d object
	if err := yaml.Unmarshal(device, &d); err != nil {
		return Mapping{}, fmt.Errorf("device: %w", err)
	}
	if d.Metadata.Name == "" {
		return Mapping{}, fmt.Errorf("device: metadata.name is empty")
	}
	var m *object
	if model != nil {
		m = &object{}
		if err := yaml.Unmarshal(model, m); err != nil {
			return Mapping{}, fmt.Errorf("device model: %w", err)
		}
	}
	return newMapping(namespaced(d.Metadata.Namespace, d.Metadata.Name), &d, m)
}

// newMapping is the Mapping of o and its model (nil for none).
func newMapping(id string, o, model *object) (Mapping, error) {
	mp := Mapping{ID: id}
	if o.Spec.DeviceModelRef.Name != "" {
		mp.Model = namespaced(o.Metadata.Namespace, o.Spec.DeviceModelRef.Name)
	}
	var proto struct {
		ProtocolName string     `yaml:"protocolName"`
		ConfigData   configData `yaml:"configData"`
	}
	switch o.Spec.Protocol.Kind {
	case 0:
	case yaml.MappingNode:
		if err := o.Spec.Protocol.Decode(&proto); err != nil {
			return Mapping{}, fmt.Errorf("field spec.protocol: %w", err)
		}
	default:
		return Mapping{}, fmt.Errorf("field spec.protocol: is %s, want a mapping {protocolName, configData}", kindName(o.Spec.Protocol.Kind))
	}
	modelTypes := map[string]string{}
	modelVisitors := map[string]map[string]any{}
	if model != nil {
		if proto.ProtocolName == "" && model.Spec.Protocol.Kind == yaml.ScalarNode {
			proto.ProtocolName = model.Spec.Protocol.Value
		}
		proto.ConfigData.Data = merged(model.Spec.ProtocolConfigData.Data, proto.ConfigData.Data)
		for _, p := range model.Spec.Properties {
			modelTypes[p.Name] = twinType(p.Type)
			modelVisitors[p.Name] = p.Visitors.ConfigData.Data
		}
	}
	mp.Protocol, mp.ProtocolConfig = proto.ProtocolName, proto.ConfigData.Data
	for i, p := range o.Spec.Properties {
		if p.CollectCycle < 0 || p.ReportCycle < 0 {
			return Mapping{}, fmt.Errorf("field spec.properties[%d] (%s): collectCycle and reportCycle must not be negative", i, p.Name)
		}
		typ := "string"
		switch {
		case p.Desired.Metadata["type"] != "":
			typ = twinType(p.Desired.Metadata["type"])
		case modelTypes[p.Name] != "":
			typ = modelTypes[p.Name]
		}
		mp.Properties = append(mp.Properties, MappedProperty{
			Name: p.Name, Type: typ, Desired: p.Desired.Value,
			Visitor:      merged(modelVisitors[p.Name], p.Visitors.ConfigData.Data),
			CollectCycle: time.Duration(p.CollectCycle) * time.Millisecond,
			ReportCycle:  time.Duration(p.ReportCycle) * time.Millisecond,
		})
	}
	return mp, nil
}

// merged is base overridden key by key by over (KubeEdge's rule: the
// instance's keys win); nil when both are empty.
func merged(base, over map[string]any) map[string]any {
	if len(base) == 0 {
		if len(over) == 0 {
			return nil
		}
		return over
	}
	out := maps.Clone(base)
	maps.Copy(out, over)
	return out
}
