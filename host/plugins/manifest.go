// Package plugins is edgehost's plugin package format and its checks: the
// manifest and signature carried in custom sections of the wasm module, the
// ed25519 signing keys, the trust policy, the capability grants a plugin's
// host calls are checked against, and the on-disk store of installed
// packages. docs/plugins.md describes the format.
package plugins

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// Kinds of plugin a manifest may declare.
var kinds = []string{"mapper", "route", "twin", "handler"}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$`)

// Manifest describes a plugin: what it is, what it receives, what it may
// do and within which limits.
type Manifest struct {
	// Name identifies the plugin on the bus and names its KV namespace.
	Name string `json:"name"`
	// Version is a semantic version, e.g. "1.2.0".
	Version string `json:"version"`
	// Kind is mapper, route, twin or handler.
	Kind string `json:"kind"`
	// ABI is the ABI version the module is built for, e.g. "1" or "1.0".
	ABI string `json:"abi"`
	// Description and Author are free text.
	Description string `json:"description,omitempty"`
	Author      string `json:"author,omitempty"`
	// Receives lists the bus messages routed to the plugin.
	Receives []Pattern `json:"receives,omitempty"`
	// Capabilities are the grants the plugin asks for.
	Capabilities Capabilities `json:"capabilities"`
	// Limits bound the plugin; zero fields take the host's defaults.
	Limits Limits `json:"limits"`
	// Tick is how often the host calls the plugin's edgehost_tick, a
	// duration such as "10s"; empty: never.
	Tick string `json:"tick,omitempty"`
	// Config is the plugin's default configuration, handed to
	// edgehost_init (opaque JSON).
	Config json.RawMessage `json:"config,omitempty"`
	// Mapper declares the device protocols a mapper plugin serves
	// (abi/SPEC.md section 9); only for kind mapper, and required there.
	Mapper *MapperSpec `json:"mapper,omitempty"`
}

// MapperSpec is what a mapper plugin declares about itself.
type MapperSpec struct {
	// Protocols are the device protocols (spec.protocol.protocolName)
	// whose devices the host binds to the plugin.
	Protocols []string `json:"protocols"`
}

// maxProtocols bounds how many protocols one mapper declares.
const maxProtocols = 16

// ValidateMapperSpec reports the first bad field of a mapper declaration,
// named under field ("mapper" in a manifest).
func ValidateMapperSpec(s *MapperSpec, field string) error {
	if len(s.Protocols) == 0 || len(s.Protocols) > maxProtocols {
		return fmt.Errorf("%s.protocols must list 1 to %d protocols, got %d", field, maxProtocols, len(s.Protocols))
	}
	for i, p := range s.Protocols {
		switch {
		case !abi.ValidProtocol(p):
			return fmt.Errorf("%s.protocols[%d] %q must be 1-64 of letters, digits and . _ - starting and ending with a letter or digit", field, i, p)
		case contains(s.Protocols[:i], p):
			return fmt.Errorf("%s.protocols[%d] %q is listed twice", field, i, p)
		}
	}
	return nil
}

// Pattern selects bus messages by route; empty fields match anything.
type Pattern struct {
	Group     string `json:"group"`
	Operation string `json:"operation,omitempty"`
	Resource  string `json:"resource,omitempty"`
}

// Limits are a manifest's resource limits.
type Limits struct {
	MemoryPages     int    `json:"memoryPages,omitempty"`
	CallTimeout     string `json:"callTimeout,omitempty"`
	MaxMessageBytes int    `json:"maxMessageBytes,omitempty"`
	Instances       int    `json:"instances,omitempty"`
}

// ParseManifest decodes and validates manifest JSON. Unknown fields are
// refused, so a capability this host does not know is never silently
// dropped.
func ParseManifest(raw []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// abiMinor is the minor version of m.ABI ("1" is 1.0), or -1 when it is
// not a version this host implements.
func (m *Manifest) abiMinor() int {
	minor, ok := strings.CutPrefix(m.ABI, "1.")
	switch {
	case m.ABI == "1":
		return 0
	case !ok || minor == "" || len(minor) > 1 && minor[0] == '0':
		return -1
	}
	n, err := strconv.Atoi(minor)
	if err != nil || n < 0 || n > abi.Minor {
		return -1
	}
	return n
}

// importMinor is the ABI minor version that added each import newer than
// 1.0.
var importMinor = map[string]int{
	abi.ImportMQTTPublish: 1, abi.ImportMQTTSubscribe: 1, abi.ImportMQTTUnsubscribe: 1,

	abi.ImportTCPConnect: 2, abi.ImportTCPRead: 2, abi.ImportTCPWrite: 2, abi.ImportTCPClose: 2,
	abi.ImportUDPOpen: 2, abi.ImportUDPSend: 2, abi.ImportUDPRecv: 2, abi.ImportUDPClose: 2,
	abi.ImportSerialOpen: 2, abi.ImportSerialRead: 2, abi.ImportSerialWrite: 2, abi.ImportSerialClose: 2,

	abi.ImportHTTPRequest: 3, abi.ImportHTTPReply: 3,
}

// CheckABI refuses a module whose imports need a newer ABI than its
// manifest declares (abi/SPEC.md section 1): "1" with the MQTT imports of
// ABI 1.1, "1.1" with the device I/O imports of ABI 1.2, "1.2" with the
// HTTP imports of ABI 1.3. m must have passed Validate.
func (m *Manifest) CheckABI(imports []string) error {
	declared := m.abiMinor()
	for _, imp := range imports {
		if need := importMinor[imp]; need > declared {
			return fmt.Errorf("manifest %q: abi %q, but the module imports %s, which ABI 1.%d added: declare abi \"1.%d\"",
				m.Name, m.ABI, imp, need, need)
		}
	}
	return nil
}

// Validate reports the first bad field of m, naming it.
func (m *Manifest) Validate() error {
	switch {
	case !nameRE.MatchString(m.Name):
		return fmt.Errorf("manifest: name %q must be 1-64 of a-z 0-9 . _ - starting and ending with a letter or digit", m.Name)
	case m.Name == abi.HostSource:
		return fmt.Errorf("manifest: name %q is the host's own, the source of its failure replies", m.Name)
	case !validSemver(m.Version):
		return fmt.Errorf("manifest %q: version %q is not a semantic version (MAJOR.MINOR.PATCH)", m.Name, m.Version)
	case !contains(kinds, m.Kind):
		return fmt.Errorf("manifest %q: kind %q must be one of %s", m.Name, m.Kind, strings.Join(kinds, ", "))
	case m.abiMinor() < 0:
		return fmt.Errorf("manifest %q: abi %q is not a version this host implements (1.0 to 1.%d)", m.Name, m.ABI, abi.Minor)
	case m.Limits.MemoryPages < 0 || m.Limits.MemoryPages > 65536:
		return fmt.Errorf("manifest %q: limits.memoryPages %d must be in 0..65536", m.Name, m.Limits.MemoryPages)
	case m.Limits.MaxMessageBytes < 0 || m.Limits.Instances < 0:
		return fmt.Errorf("manifest %q: limits must not be negative", m.Name)
	case len(m.Config) > 0 && !json.Valid(m.Config):
		return fmt.Errorf("manifest %q: config is not valid JSON", m.Name)
	case m.Kind == "mapper" && m.Mapper == nil:
		return fmt.Errorf("manifest %q: kind mapper needs mapper.protocols, the device protocols it serves", m.Name)
	case m.Kind != "mapper" && m.Mapper != nil:
		return fmt.Errorf("manifest %q: mapper is only for kind mapper, not %q", m.Name, m.Kind)
	}
	if m.Mapper != nil {
		if err := ValidateMapperSpec(m.Mapper, "mapper"); err != nil {
			return fmt.Errorf("manifest %q: %w", m.Name, err)
		}
	}
	if _, err := m.CallTimeout(); err != nil {
		return err
	}
	if _, err := m.TickInterval(); err != nil {
		return err
	}
	for i, p := range m.Receives {
		if p.Group == "" {
			return fmt.Errorf("manifest %q: receives[%d].group is required", m.Name, i)
		}
	}
	if err := m.Capabilities.validate(); err != nil {
		return fmt.Errorf("manifest %q: %w", m.Name, err)
	}
	return nil
}

// CallTimeout returns limits.callTimeout parsed; 0 when unset.
func (m *Manifest) CallTimeout() (time.Duration, error) {
	if m.Limits.CallTimeout == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(m.Limits.CallTimeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("manifest %q: limits.callTimeout %q is not a positive duration", m.Name, m.Limits.CallTimeout)
	}
	return d, nil
}

// TickInterval returns tick parsed; 0 when unset.
func (m *Manifest) TickInterval() (time.Duration, error) {
	if m.Tick == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(m.Tick)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("manifest %q: tick %q is not a positive duration", m.Name, m.Tick)
	}
	return d, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// validSemver reports whether v is MAJOR.MINOR.PATCH with an optional
// -prerelease and +build (semver.org 2.0.0, without a leading "v"; the
// pre-release and build parts are not checked further).
func validSemver(v string) bool {
	v, _, _ = strings.Cut(v, "+")
	v, _, _ = strings.Cut(v, "-")
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') {
			return false
		}
		if _, err := strconv.ParseUint(p, 10, 64); err != nil {
			return false
		}
	}
	return true
}
