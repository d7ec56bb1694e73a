package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	configType      = reflect.TypeFor[Config]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// checkKeys walks the YAML tree n against the Go type t and reports the
// first unknown key with its line and the path of the mapping it is in. It
// records in lines the key path found on each line, so that decodeError can
// name the key of a wrong-typed value.
func checkKeys(n *yaml.Node, t reflect.Type, path string, lines map[int]string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil // free-form: its own UnmarshalYAML checks it
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			f, ok := fieldByKey(t, key.Value)
			if !ok {
				return fmt.Errorf("line %d: unknown key %q %s (known: %s)", key.Line, key.Value, where(path), knownKeys(t))
			}
			p := join(path, key.Value)
			record(lines, key.Line, p)
			if val.Kind == yaml.ScalarNode {
				record(lines, val.Line, p)
			}
			if err := checkKeys(val, f.Type, p, lines); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			if err := checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Struct && n.Kind != yaml.MappingNode && n.Kind != yaml.AliasNode && n.ShortTag() != "!!null":
		return fmt.Errorf("line %d: %s must be a mapping of keys, got %s", n.Line, nameOf(path), n.ShortTag())
	}
	return nil // scalars and aliases: yaml's own decoding checks them
}

// hasAlias reports whether the tree under n uses a YAML alias.
func hasAlias(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode {
		return true
	}
	return slices.ContainsFunc(n.Content, hasAlias)
}

// fieldByKey finds the struct field whose yaml name is key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func knownKeys(t reflect.Type) string {
	var keys []string
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return strings.Join(keys, ", ")
}

// record notes that line holds path; a line holding two paths (flow style)
// names neither.
func record(lines map[int]string, line int, path string) {
	if old, ok := lines[line]; ok && old != path {
		path = ""
	}
	lines[line] = path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func where(path string) string {
	if path == "" {
		return "at top level"
	}
	return "in " + path
}

func nameOf(path string) string {
	if path == "" {
		return "the document"
	}
	return path
}

// decodeError rewrites yaml's decoding errors as "line N: key.path: what",
// one per line, when the line names a single key.
func decodeError(err error, lines map[int]string) error {
	msgs := []string{trimYAML(err.Error())}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	out := make([]string, len(msgs))
	for i, m := range msgs {
		var line int
		if _, scanErr := fmt.Sscanf(m, "line %d:", &line); scanErr == nil && lines[line] != "" {
			prefix := fmt.Sprintf("line %d:", line)
			m = prefix + " " + lines[line] + ":" + strings.TrimPrefix(m, prefix)
		}
		out[i] = m
	}
	return errors.New(strings.Join(out, "\n"))
}

func trimYAML(msg string) string { return strings.TrimPrefix(msg, "yaml: ") }

// JSON is a free-form YAML value kept as JSON text: a plugin's config,
// handed to the plugin as these bytes.
type JSON []byte

// UnmarshalYAML converts any YAML value to compact JSON. Non-string map keys
// become their string form; NaN and infinities are refused.
func (j *JSON) UnmarshalYAML(n *yaml.Node) error {
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	v, err := jsonable(v)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*j = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return nil
}

// MarshalYAML prints the JSON as block-style YAML.
func (j JSON) MarshalYAML() (any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(j, &doc); err != nil || len(doc.Content) == 0 {
		return nil, fmt.Errorf("plugin config is not JSON: %q", j)
	}
	blockStyle(doc.Content[0])
	return doc.Content[0], nil
}

// blockStyle turns JSON's flow mappings and sequences into block style,
// keeping scalars' quoting so strings stay strings.
func blockStyle(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = 0
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// jsonable converts what yaml decodes into an interface to what
// encoding/json can encode.
func jsonable(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			c, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			v[k] = c
		}
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			switch k.(type) {
			case map[string]any, map[any]any, []any:
				return nil, fmt.Errorf("map key %v is not a scalar", k)
			}
			key := fmt.Sprint(k)
			if _, dup := m[key]; dup {
				return nil, fmt.Errorf("map key %q appears twice", key)
			}
			c, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			m[key] = c
		}
		return m, nil
	case []any:
		for i, e := range v {
			c, err := jsonable(e)
			if err != nil {
				return nil, err
			}
			v[i] = c
		}
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%v has no JSON form", v)
		}
	}
	return v, nil
}
