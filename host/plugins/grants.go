package plugins

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/iogrant"
)

// Grant names, as missing-grant errors spell them.
const (
	GrantSend          = "send"
	GrantKV            = "kv"
	GrantMQTTPublish   = "mqtt.publish"
	GrantMQTTSubscribe = "mqtt.subscribe"
	GrantTCP           = "tcp"
	GrantUDP           = "udp"
	GrantSerial        = "serial"
	GrantHTTP          = "http"
)

// freeImports need no grant.
var freeImports = map[string]bool{abi.ImportLog: true, abi.ImportNow: true, abi.ImportConfig: true}

// importGrants maps each edgehost_v1 import to the grant it needs. An import
// that is neither here nor in freeImports (one a later ABI minor version
// adds) cannot be granted yet: a module importing it is refused.
var importGrants = map[string]string{
	abi.ImportSend:         GrantSend,
	abi.ImportRequest:      GrantSend,
	abi.ImportRequestReply: GrantSend,
	abi.ImportKVGet:        GrantKV,
	abi.ImportKVPut:        GrantKV,
	abi.ImportKVDelete:     GrantKV,
	abi.ImportKVList:       GrantKV,

	abi.ImportMQTTPublish:     GrantMQTTPublish,
	abi.ImportMQTTSubscribe:   GrantMQTTSubscribe,
	abi.ImportMQTTUnsubscribe: GrantMQTTSubscribe,

	abi.ImportTCPConnect:  GrantTCP,
	abi.ImportTCPRead:     GrantTCP,
	abi.ImportTCPWrite:    GrantTCP,
	abi.ImportTCPClose:    GrantTCP,
	abi.ImportUDPOpen:     GrantUDP,
	abi.ImportUDPSend:     GrantUDP,
	abi.ImportUDPRecv:     GrantUDP,
	abi.ImportUDPClose:    GrantUDP,
	abi.ImportSerialOpen:  GrantSerial,
	abi.ImportSerialRead:  GrantSerial,
	abi.ImportSerialWrite: GrantSerial,
	abi.ImportSerialClose: GrantSerial,

	abi.ImportHTTPRequest: GrantHTTP,
	abi.ImportHTTPReply:   GrantHTTP,
}

// Capabilities are the grants a plugin asks for (in its manifest) or that
// the operator allows it at most (in the config). Deny by default: what is
// not listed is not granted.
type Capabilities struct {
	// Send lets the plugin send and request to messages whose route
	// matches one of these patterns. Group is required.
	Send []Pattern `json:"send,omitempty"`
	// KV grants the plugin's own KV namespace: every key when Prefixes is
	// empty, otherwise only keys starting with one of them.
	KV *KVGrant `json:"kv,omitempty"`
	// MQTT lets the plugin publish and subscribe through the eventbus
	// within these topic filters.
	MQTT *MQTTGrant `json:"mqtt,omitempty"`
	// TCP lets the plugin connect to these endpoints, "host:port" with host
	// an address, a CIDR prefix or a DNS name and port a number, a range
	// lo-hi or * (abi/SPEC.md section 5.2).
	TCP []string `json:"tcp,omitempty"`
	// UDP lets the plugin open UDP sockets to these endpoints, as TCP.
	UDP []string `json:"udp,omitempty"`
	// Serial lets the plugin open serial devices whose paths match one of
	// these globs ("/dev/ttyUSB*").
	Serial []string `json:"serial,omitempty"`
	// HTTP lets the plugin make HTTP requests to URLs one of these
	// patterns matches, "scheme://host[:port]/path" with "*" in the path
	// matching any run of characters (abi/SPEC.md section 5.3).
	HTTP []string `json:"http,omitempty"`
}

// KVGrant is the kv capability.
type KVGrant struct {
	Prefixes []string `json:"prefixes,omitempty"`
}

// MQTTGrant is the mqtt capability: MQTT topic filters ("+" one level, a
// final "#" any further levels).
type MQTTGrant struct {
	// Publish: the plugin may publish on a topic one of these matches.
	Publish []string `json:"publish,omitempty"`
	// Subscribe: the plugin may subscribe to a filter one of these covers
	// (every topic the filter matches, this one matches too).
	Subscribe []string `json:"subscribe,omitempty"`
}

func (c *Capabilities) validate() error {
	for i, p := range c.Send {
		if p.Group == "" {
			return fmt.Errorf("capabilities.send[%d].group is required", i)
		}
	}
	for i, e := range c.TCP {
		if _, err := iogrant.ParseEndpoint(e); err != nil {
			return fmt.Errorf("capabilities.tcp[%d]: %w", i, err)
		}
	}
	for i, e := range c.UDP {
		if _, err := iogrant.ParseEndpoint(e); err != nil {
			return fmt.Errorf("capabilities.udp[%d]: %w", i, err)
		}
	}
	for i, g := range c.Serial {
		if err := iogrant.ValidPathGlob(g); err != nil {
			return fmt.Errorf("capabilities.serial[%d]: %w", i, err)
		}
	}
	for i, u := range c.HTTP {
		if _, err := iogrant.ParseURLPattern(u); err != nil {
			return fmt.Errorf("capabilities.http[%d]: %w", i, err)
		}
	}
	if c.MQTT == nil {
		return nil
	}
	for i, f := range c.MQTT.Publish {
		if err := eventbus.ValidFilter(f); err != nil {
			return fmt.Errorf("capabilities.mqtt.publish[%d]: %w", i, err)
		}
	}
	for i, f := range c.MQTT.Subscribe {
		if err := eventbus.ValidFilter(f); err != nil {
			return fmt.Errorf("capabilities.mqtt.subscribe[%d]: %w", i, err)
		}
	}
	return nil
}

// has reports whether c grants anything of the named kind.
func (c *Capabilities) has(grant string) bool {
	switch grant {
	case GrantSend:
		return len(c.Send) > 0
	case GrantKV:
		return c.KV != nil
	case GrantMQTTPublish:
		return c.MQTT != nil && len(c.MQTT.Publish) > 0
	case GrantMQTTSubscribe:
		return c.MQTT != nil && len(c.MQTT.Subscribe) > 0
	case GrantTCP:
		return len(c.TCP) > 0
	case GrantUDP:
		return len(c.UDP) > 0
	case GrantSerial:
		return len(c.Serial) > 0
	case GrantHTTP:
		return len(c.HTTP) > 0
	}
	return false
}

// ErrMissingGrants is wrapped by CheckImports' error.
var ErrMissingGrants = errors.New("missing grants")

// CheckImports refuses a module that imports host functions its policy
// does not grant, listing the missing grants and the imports that need
// them.
func (p *Policy) CheckImports(imports []string) error {
	var missing []string
	for _, name := range imports {
		g, known := importGrants[name]
		switch {
		case freeImports[name] || (known && p.has(g)):
		case !known:
			missing = append(missing, fmt.Sprintf("%s (no grant for it exists yet)", name))
		default:
			missing = append(missing, fmt.Sprintf("%s (for %s)", g, name))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return fmt.Errorf("%w: %s", ErrMissingGrants, strings.Join(slices.Compact(missing), ", "))
}

// Policy is a plugin's effective grants, compiled for cheap checks at call
// time: its manifest's capabilities, narrowed by the operator's ceiling if
// there is one. It implements wasm.Grants; its methods do not allocate.
type Policy struct {
	send      []compiledPattern
	kv        *KVGrant
	publish   []string // MQTT topic filters
	subscribe []string
	tcp, udp  []iogrant.Endpoint
	serial    []string // path globs
	http      []iogrant.URLPattern
	ceiling   *Policy
}

// NewPolicy compiles granted, narrowed by ceiling (nil: not narrowed; a
// kind the ceiling does not list is denied). Both must have passed
// validation (a manifest's Validate, the config's checks): an endpoint that
// does not parse grants nothing.
func NewPolicy(granted Capabilities, ceiling *Capabilities) *Policy {
	p := compilePolicy(granted)
	if ceiling != nil {
		p.ceiling = compilePolicy(*ceiling)
	}
	return p
}

func compilePolicy(c Capabilities) *Policy {
	p := &Policy{kv: c.KV}
	for _, s := range c.Send {
		p.send = append(p.send, compilePattern(s))
	}
	if c.MQTT != nil {
		p.publish = slices.Clone(c.MQTT.Publish)
		p.subscribe = slices.Clone(c.MQTT.Subscribe)
	}
	p.tcp = compileEndpoints(c.TCP)
	p.udp = compileEndpoints(c.UDP)
	p.serial = slices.Clone(c.Serial)
	for _, s := range c.HTTP {
		if u, err := iogrant.ParseURLPattern(s); err == nil {
			p.http = append(p.http, u)
		}
	}
	return p
}

func compileEndpoints(list []string) []iogrant.Endpoint {
	var out []iogrant.Endpoint
	for _, s := range list {
		if e, err := iogrant.ParseEndpoint(s); err == nil {
			out = append(out, e)
		}
	}
	return out
}

func (p *Policy) has(grant string) bool {
	own := false
	switch grant {
	case GrantSend:
		own = len(p.send) > 0
	case GrantKV:
		own = p.kv != nil
	case GrantMQTTPublish:
		own = len(p.publish) > 0
	case GrantMQTTSubscribe:
		own = len(p.subscribe) > 0
	case GrantTCP:
		own = len(p.tcp) > 0
	case GrantUDP:
		own = len(p.udp) > 0
	case GrantSerial:
		own = len(p.serial) > 0
	case GrantHTTP:
		own = len(p.http) > 0
	}
	return own && (p.ceiling == nil || p.ceiling.has(grant))
}

// AllowSend reports whether the plugin may send a message with this route.
func (p *Policy) AllowSend(group, operation, resource string) bool {
	ok := false
	for i := range p.send {
		if p.send[i].match(group, operation, resource) {
			ok = true
			break
		}
	}
	return ok && (p.ceiling == nil || p.ceiling.AllowSend(group, operation, resource))
}

// AllowKV reports whether the plugin may read, write or list key (or, for
// a list, keys under the prefix key).
func (p *Policy) AllowKV(key string) bool {
	if p.kv == nil {
		return false
	}
	ok := len(p.kv.Prefixes) == 0
	for _, prefix := range p.kv.Prefixes {
		if strings.HasPrefix(key, prefix) {
			ok = true
			break
		}
	}
	return ok && (p.ceiling == nil || p.ceiling.AllowKV(key))
}

// AllowPublish reports whether the plugin may publish on the MQTT topic:
// one of its publish filters matches it.
func (p *Policy) AllowPublish(topic string) bool {
	ok := false
	for _, f := range p.publish {
		if eventbus.Match(f, topic) {
			ok = true
			break
		}
	}
	return ok && (p.ceiling == nil || p.ceiling.AllowPublish(topic))
}

// AllowSubscribe reports whether the plugin may subscribe to the MQTT topic
// filter: one of its subscribe filters covers it, level by level ("#"
// covers the rest, "+" one level including "+", other levels only
// themselves), so it can receive no topic its grants do not match.
func (p *Policy) AllowSubscribe(filter string) bool {
	ok := false
	for _, f := range p.subscribe {
		// Match is "covers" for a filter as the topic: "a/+" covers "a/b"
		// and "a/+" but not "a/#".
		if eventbus.Match(f, filter) {
			ok = true
			break
		}
	}
	return ok && (p.ceiling == nil || p.ceiling.AllowSubscribe(filter))
}

// AllowTCP reports whether the plugin may connect to t: an address only
// through an address or prefix grant, a name only through a grant of that
// name (abi/SPEC.md section 5.2).
func (p *Policy) AllowTCP(t iogrant.Target) bool {
	return matchEndpoint(p.tcp, t) && (p.ceiling == nil || p.ceiling.AllowTCP(t))
}

// AllowUDP reports whether the plugin may open a UDP socket to t, by the
// rules of AllowTCP.
func (p *Policy) AllowUDP(t iogrant.Target) bool {
	return matchEndpoint(p.udp, t) && (p.ceiling == nil || p.ceiling.AllowUDP(t))
}

// AllowSerial reports whether the plugin may open the serial device at
// path (a clean absolute path): one of its globs matches it.
func (p *Policy) AllowSerial(path string) bool {
	ok := false
	for _, g := range p.serial {
		if iogrant.MatchPath(g, path) {
			ok = true
			break
		}
	}
	return ok && (p.ceiling == nil || p.ceiling.AllowSerial(path))
}

// AllowHTTP reports whether the plugin may make an HTTP request to u (an
// absolute http or https URL): one of its URL patterns matches it.
func (p *Policy) AllowHTTP(u *url.URL) bool {
	ok := false
	for i := range p.http {
		if p.http[i].Match(u) {
			ok = true
			break
		}
	}
	return ok && (p.ceiling == nil || p.ceiling.AllowHTTP(u))
}

func matchEndpoint(grants []iogrant.Endpoint, t iogrant.Target) bool {
	for i := range grants {
		if grants[i].Match(t) {
			return true
		}
	}
	return false
}

// compiledPattern is a route pattern split once into levels.
type compiledPattern struct {
	group, operation string
	resource         []string // levels; a last "#" matches any rest
	anyResource      bool
}

func compilePattern(p Pattern) compiledPattern {
	c := compiledPattern{group: p.Group, operation: p.Operation}
	if p.Resource == "" || p.Resource == "*" || p.Resource == "#" {
		c.anyResource = true
	} else {
		c.resource = strings.Split(p.Resource, "/")
	}
	return c
}

func (c *compiledPattern) match(group, operation, resource string) bool {
	if !matchLevel(c.group, group) || (c.operation != "" && !matchLevel(c.operation, operation)) {
		return false
	}
	if c.anyResource {
		return true
	}
	rest := resource
	for i, level := range c.resource {
		if level == "#" && i == len(c.resource)-1 {
			return true
		}
		if rest == "" && i > 0 {
			return false
		}
		part := rest
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			part, rest = rest[:j], rest[j+1:]
		} else {
			rest = ""
			if i != len(c.resource)-1 {
				// The value has fewer levels; only "x/#" still matches "x".
				return i == len(c.resource)-2 && c.resource[i+1] == "#" && matchLevel(level, part)
			}
		}
		if !matchLevel(level, part) {
			return false
		}
	}
	return rest == "" && !strings.HasSuffix(resource, "/")
}

// matchLevel matches one level: "*" and "+" match any, other patterns use
// path.Match rules within the level.
func matchLevel(pattern, value string) bool {
	switch {
	case pattern == "*" || pattern == "+":
		return true
	case !strings.ContainsAny(pattern, `*?[\`):
		return pattern == value
	}
	ok, err := path.Match(pattern, value)
	return ok && err == nil
}
