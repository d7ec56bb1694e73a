package twin

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// shape is what a YAML node of a device object may look like: a mapping
// with known keys, a sequence of one shape, a scalar, or anything (free-form
// maps such as annotations and protocol configData).
type shape struct {
	kind   yaml.Kind // 0: anything
	fields map[string]*shape
	elem   *shape
}

var (
	anything = &shape{}
	scalar   = &shape{kind: yaml.ScalarNode}
	anyMap   = &shape{kind: yaml.MappingNode}
)

func mapping(fields map[string]*shape) *shape { return &shape{kind: yaml.MappingNode, fields: fields} }
func list(elem *shape) *shape                 { return &shape{kind: yaml.SequenceNode, elem: elem} }

// The field names of KubeEdge's devices.kubeedge.io/v1beta1 Device and
// DeviceModel (api/apis/devices/v1beta1), so that a typo in a field name is
// reported rather than silently dropping what it held.
var (
	objectMeta = mapping(map[string]*shape{
		"name": scalar, "generateName": scalar, "namespace": scalar, "selfLink": scalar, "uid": scalar,
		"resourceVersion": scalar, "generation": scalar, "creationTimestamp": scalar, "deletionTimestamp": scalar,
		"deletionGracePeriodSeconds": scalar, "labels": anyMap, "annotations": anyMap, "ownerReferences": anything,
		"finalizers": anything, "managedFields": anything,
	})
	protocolConfig = mapping(map[string]*shape{"protocolName": scalar, "configData": anything})
	twinProperty   = mapping(map[string]*shape{"value": scalar, "metadata": anyMap})
	pushMethod     = mapping(map[string]*shape{
		"http":             mapping(map[string]*shape{"hostName": scalar, "port": scalar, "requestPath": scalar, "timeout": scalar}),
		"mqtt":             mapping(map[string]*shape{"address": scalar, "topic": scalar, "qos": scalar, "retained": scalar}),
		"otel":             mapping(map[string]*shape{"endpointURL": scalar}),
		"dbMethod":         anyMap,
		"anomalyDetection": anything,
	})
	deviceShape = mapping(map[string]*shape{
		"apiVersion": scalar, "kind": scalar, "metadata": objectMeta,
		"spec": mapping(map[string]*shape{
			"deviceModelRef": mapping(map[string]*shape{"name": scalar}),
			"nodeName":       scalar,
			"protocol":       protocolConfig,
			"methods":        list(mapping(map[string]*shape{"name": scalar, "description": scalar, "propertyNames": list(scalar)})),
			"stateReport":    mapping(map[string]*shape{"reportToCloud": scalar, "reportCycle": scalar}),
			"properties": list(mapping(map[string]*shape{
				"name": scalar, "desired": twinProperty, "visitors": protocolConfig,
				"reportCycle": scalar, "collectCycle": scalar, "reportToCloud": scalar, "pushMethod": pushMethod,
			})),
		}),
		// Written by the cloud, not by hand.
		"status": anything,
	})
	deviceModelShape = mapping(map[string]*shape{
		"apiVersion": scalar, "kind": scalar, "metadata": objectMeta,
		"spec": mapping(map[string]*shape{
			"protocol":           scalar,
			"protocolConfigData": anything,
			"properties": list(mapping(map[string]*shape{
				"name": scalar, "description": scalar, "type": scalar, "accessMode": scalar,
				"minimum": scalar, "maximum": scalar, "unit": scalar, "visitors": anything,
			})),
		}),
	})
)

// problem is something wrong at a place in a file.
type problem struct {
	line  int
	field string
	msg   string
}

func (p problem) String() string {
	return fmt.Sprintf("line %d: field %s: %s", p.line, p.field, p.msg)
}

// check walks n against s: a key s does not know is a warning, a node of
// the wrong kind (a list where a mapping belongs) an error.
func (s *shape) check(n *yaml.Node, path string, warns, errs *[]problem) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if s.kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return
	}
	if n.Kind != s.kind {
		*errs = append(*errs, problem{n.Line, path, "is " + kindName(n.Kind) + ", want " + kindName(s.kind)})
		return
	}
	switch s.kind {
	case yaml.MappingNode:
		if s.fields == nil {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				// "<<: *base" merges the keys of base (or of a list of them).
				if v.Kind == yaml.SequenceNode {
					for _, m := range v.Content {
						s.check(m, path, warns, errs)
					}
				} else {
					s.check(v, path, warns, errs)
				}
				continue
			}
			sub, ok := s.fields[k.Value]
			if !ok {
				*warns = append(*warns, problem{k.Line, join(path, k.Value), "unknown field, ignored"})
				continue
			}
			sub.check(v, join(path, k.Value), warns, errs)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			s.elem.check(v, path+"["+strconv.Itoa(i)+"]", warns, errs)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	}
	return "a YAML node of kind " + strconv.Itoa(int(k))
}
