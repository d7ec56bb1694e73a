package meta

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on a resource string, those of edgecore's sqlite table (key up to
// 256 characters, type up to 32), so whatever edgecore can hold, meta can.
const (
	MaxKeyLen  = 256
	MaxTypeLen = 32
)

// ClusterScope is the namespace token of a cluster-scoped object
// (null/node/{node}).
const ClusterScope = "null"

// Resource is a parsed edge-side resource string: {namespace}/{type}/{name}
// for one object, {namespace}/{type} for a list. The name may itself hold
// slashes (it is everything after the second one), as in edgecore.
type Resource struct {
	// Namespace is the object's namespace, ClusterScope for none.
	Namespace string
	// Type is the lower-case kind: pod, configmap, device, ...
	Type string
	// Name is the object's name; empty for a list.
	Name string
}

// Key is the resource's store key: the full resource string, as edgecore's
// meta table keys it.
func (r Resource) Key() string {
	if r.Name == "" {
		return r.Namespace + "/" + r.Type
	}
	return r.Namespace + "/" + r.Type + "/" + r.Name
}

// IsList reports whether the resource names a type rather than one object.
func (r Resource) IsList() bool { return r.Name == "" }

// ErrBadResource is matched by every error of ParseResource.
var ErrBadResource = errors.New("bad resource")

// ParseResource parses and checks an edge-side resource string. A list
// form ({namespace}/{type}) is accepted only when list is true. Its errors
// match ErrBadResource.
func ParseResource(s string, list bool) (Resource, error) {
	r, err := parseResource(s, list)
	if err != nil {
		return Resource{}, fmt.Errorf("%w: %w", ErrBadResource, err)
	}
	return r, nil
}

func parseResource(s string, list bool) (Resource, error) {
	if s == "" {
		return Resource{}, fmt.Errorf("resource is empty")
	}
	if len(s) > MaxKeyLen {
		return Resource{}, fmt.Errorf("resource %.40q... is %d bytes, longer than %d", s, len(s), MaxKeyLen)
	}
	if !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\n\r") {
		return Resource{}, fmt.Errorf("resource %q holds invalid UTF-8, a NUL or a line break", s)
	}
	ns, rest, ok := strings.Cut(s, "/")
	if !ok {
		return Resource{}, fmt.Errorf("resource %q is not {namespace}/{type}/{name}", s)
	}
	typ, name, hasName := strings.Cut(rest, "/")
	switch {
	case ns == "":
		return Resource{}, fmt.Errorf("resource %q has an empty namespace (cluster-scoped objects use %q)", s, ClusterScope)
	case typ == "":
		return Resource{}, fmt.Errorf("resource %q has an empty type", s)
	case len(typ) > MaxTypeLen:
		return Resource{}, fmt.Errorf("resource %q has a type longer than %d bytes", s, MaxTypeLen)
	case hasName && name == "":
		return Resource{}, fmt.Errorf("resource %q has an empty name", s)
	case !hasName && !list:
		return Resource{}, fmt.Errorf("resource %q names no object: want {namespace}/{type}/{name}", s)
	}
	return Resource{Namespace: ns, Type: typ, Name: name}, nil
}
