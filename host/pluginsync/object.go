package pluginsync

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/edgehost/edgehost/host/meta"
)

// Resource types of the objects and messages this package speaks, in
// KubeEdge's {namespace}/{type}/{name} resource form.
const (
	// ObjectType is the cloud's EdgehostPlugin object: the package a
	// node should run for one plugin. The metamanager stores it and hands
	// it to this module.
	ObjectType = meta.PluginType
	// PackageType names a chunk query: the node asks the cloud for part of
	// a package by digest.
	PackageType = meta.PluginPackageType
	// StatusType names the outcome the node reports upstream.
	StatusType = "edgehostpluginstatus"
)

// Limits of a package fetched from the cloud.
const (
	// ChunkBytes is how much of a package one query asks for; its reply
	// (base64 in JSON) stays well under the link's 4 MiB frame limit.
	ChunkBytes = 1 << 20
	// MaxPackageBytes bounds a package, as the admin API bounds an upload.
	MaxPackageBytes = 64 << 20
)

// Object is an EdgehostPlugin as the cloud sends it.
type Object struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Metadata   struct {
		Name            string `json:"name"`
		Namespace       string `json:"namespace,omitempty"`
		ResourceVersion string `json:"resourceVersion,omitempty"`
	} `json:"metadata"`
	Spec Spec `json:"spec"`
}

// Spec is what the cloud wants a node to run for one plugin.
type Spec struct {
	// Digest is the hex sha256 of the package file. With no Package, the
	// node fetches the package by it, unless it already holds it (as its
	// current or previous version: the latter is a rollback).
	Digest string `json:"digest,omitempty"`
	// Size is the package's length in bytes; required when the node must
	// fetch the package (a rollback needs none).
	Size int64 `json:"size,omitempty"`
	// Package is the package file itself (base64 in JSON), for packages
	// small enough to travel inside the object.
	Package []byte `json:"package,omitempty"`
	// Enabled, when set, enables or disables the plugin.
	Enabled *bool `json:"enabled,omitempty"`
}

// ParseObject decodes and checks an EdgehostPlugin's content.
func ParseObject(content []byte) (Object, error) {
	var o Object
	if err := json.Unmarshal(content, &o); err != nil {
		return Object{}, fmt.Errorf("edgehostplugin object: %w", err)
	}
	s := o.Spec
	switch {
	case o.Metadata.Name == "":
		return Object{}, errors.New("edgehostplugin object: metadata.name is required")
	case s.Digest == "" && len(s.Package) == 0:
		return Object{}, fmt.Errorf("edgehostplugin %q: spec.digest or spec.package is required", o.Metadata.Name)
	case s.Digest != "" && !validDigest(s.Digest):
		return Object{}, fmt.Errorf("edgehostplugin %q: spec.digest %.80q is not a hex sha256", o.Metadata.Name, s.Digest)
	case s.Size < 0 || s.Size > MaxPackageBytes:
		return Object{}, fmt.Errorf("edgehostplugin %q: spec.size %d is not between 0 and %d", o.Metadata.Name, s.Size, MaxPackageBytes)
	case len(s.Package) > MaxPackageBytes:
		return Object{}, fmt.Errorf("edgehostplugin %q: spec.package is %d bytes, over %d", o.Metadata.Name, len(s.Package), MaxPackageBytes)
	}
	return o, nil
}

func validDigest(d string) bool {
	b, err := hex.DecodeString(d)
	return err == nil && len(b) == 32 && d == strings.ToLower(d)
}

// ChunkQuery is the content of a node's query for part of a package.
type ChunkQuery struct {
	Digest string `json:"digest"`
	Offset int64  `json:"offset"`
	Length int    `json:"length"`
}

// Chunk is the cloud's answer to a ChunkQuery.
type Chunk struct {
	Digest string `json:"digest"`
	Offset int64  `json:"offset"`
	// Size is the whole package's length.
	Size int64 `json:"size"`
	// Data is the part asked for (base64 in JSON); shorter only at the
	// end of the package.
	Data []byte `json:"data"`
}

// States a Status reports.
const (
	StateInstalled  = "installed"
	StateUpgraded   = "upgraded"
	StateRolledBack = "rolled-back"
	StateUnchanged  = "unchanged"
	StateRemoved    = "removed"
	StateFetching   = "fetching"
	StateFailed     = "failed"
)

// Status is what a node reports upstream after acting on an
// EdgehostPlugin object (resource {namespace}/edgehostpluginstatus/{name}).
type Status struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// ResourceVersion is the version of the object acted on.
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// State is one of the State constants.
	State string `json:"state"`
	// Error says why, when State is failed (or fetching, after a try
	// that failed).
	Error string `json:"error,omitempty"`
	// Version, Digest, Previous and PreviousDigest describe what the
	// node runs now, as `edgehost plugin info` shows it.
	Version        string    `json:"version,omitempty"`
	Digest         string    `json:"digest,omitempty"`
	Previous       string    `json:"previous,omitempty"`
	PreviousDigest string    `json:"previousDigest,omitempty"`
	Enabled        bool      `json:"enabled"`
	PluginState    string    `json:"pluginState,omitempty"`
	Time           time.Time `json:"time"`
}
