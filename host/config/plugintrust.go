package config

import (
	"encoding/base64"
	"strings"

	"github.com/edgehost/edgehost/host/iogrant"
)

// Signature policies of modules.plugins.trust.policy.
const (
	// RequireSignature accepts only packages signed by a trusted key.
	RequireSignature = "require-signature"
	// AllowUnsigned also accepts unsigned packages.
	AllowUnsigned = "allow-unsigned"
)

// PluginTrust is the trust store for installed plugin packages. Plugins
// listed in modules.plugins.list or found in modules.plugins.dir are the
// operator's own and are not checked against it.
type PluginTrust struct {
	// Keys are the public keys whose signatures are accepted.
	Keys []TrustKey `yaml:"keys,omitempty"`
	// Revoked lists keys that are refused even if listed in Keys: by name,
	// fingerprint (as `edgehost plugin keygen` prints it) or base64 public
	// key.
	Revoked []string `yaml:"revoked,omitempty"`
	// Policy is the signature policy per source of an install.
	Policy SignaturePolicies `yaml:"policy"`
}

// TrustKey is one trusted signing key.
type TrustKey struct {
	// Name names the key in status and errors.
	Name string `yaml:"name"`
	// PublicKey is the ed25519 public key, base64 (the .pub file).
	PublicKey string `yaml:"publicKey"`
}

// SignaturePolicies give the signature policy per source: require-signature
// or allow-unsigned.
type SignaturePolicies struct {
	// Local applies to installs through the admin unix socket.
	Local string `yaml:"local"`
	// Remote applies to installs through the TCP admin listener and from
	// the cloud.
	Remote string `yaml:"remote"`
}

// PluginRestriction is the operator's ceiling on an installed plugin's
// grants: what the plugin's manifest grants is narrowed to what the ceiling
// also allows, and a capability the ceiling does not list is denied.
type PluginRestriction struct {
	// Plugin names the plugin.
	Plugin string `yaml:"plugin"`
	// Send lists the routes the plugin may send to at most.
	Send []Pattern `yaml:"send,omitempty"`
	// KV, when set, allows the KV namespace, under Prefixes if any.
	KV *KVCeiling `yaml:"kv,omitempty"`
	// MQTT, when set, allows MQTT within these topic filters at most.
	MQTT *MQTTCeiling `yaml:"mqtt,omitempty"`
	// TCP and UDP list the endpoints ("host:port", as in a manifest) the
	// plugin may reach at most; Serial the device path globs it may open.
	TCP    []string `yaml:"tcp,omitempty"`
	UDP    []string `yaml:"udp,omitempty"`
	Serial []string `yaml:"serial,omitempty"`
	// HTTP lists the URL patterns (as in a manifest) the plugin may
	// request at most.
	HTTP []string `yaml:"http,omitempty"`
}

// MQTTCeiling is the mqtt part of a PluginRestriction: topic filters.
type MQTTCeiling struct {
	// Publish limits the topics the plugin may publish on.
	Publish []string `yaml:"publish,omitempty"`
	// Subscribe limits the filters the plugin may subscribe to.
	Subscribe []string `yaml:"subscribe,omitempty"`
}

// KVCeiling is the kv part of a PluginRestriction.
type KVCeiling struct {
	// Prefixes limit the keys; empty allows the whole namespace.
	Prefixes []string `yaml:"prefixes,omitempty"`
}

func (t *PluginTrust) validate(p *problems, path string) {
	for i, k := range t.Keys {
		at := p.index(path+".keys", i)
		if strings.TrimSpace(k.Name) == "" {
			p.add(at+".name", "is required")
		}
		if raw, err := base64.StdEncoding.DecodeString(k.PublicKey); err != nil || len(raw) != 32 {
			p.add(at+".publicKey", "must be the base64 of a 32-byte ed25519 public key")
		}
	}
	p.oneOf(path+".policy.local", t.Policy.Local, RequireSignature, AllowUnsigned)
	p.oneOf(path+".policy.remote", t.Policy.Remote, RequireSignature, AllowUnsigned)
}

func (r *PluginRestriction) validate(p *problems, path string) {
	if !pluginName.MatchString(r.Plugin) {
		p.add(path+".plugin", "must be a plugin name, got %q", r.Plugin)
	}
	for i, s := range r.Send {
		if s.Group == "" {
			p.add(p.index(path+".send", i)+".group", "is required")
		}
	}
	for _, list := range []struct {
		name      string
		endpoints []string
	}{{".tcp", r.TCP}, {".udp", r.UDP}} {
		for i, e := range list.endpoints {
			if _, err := iogrant.ParseEndpoint(e); err != nil {
				p.add(p.index(path+list.name, i), "%v", err)
			}
		}
	}
	for i, g := range r.Serial {
		if err := iogrant.ValidPathGlob(g); err != nil {
			p.add(p.index(path+".serial", i), "%v", err)
		}
	}
	for i, u := range r.HTTP {
		if _, err := iogrant.ParseURLPattern(u); err != nil {
			p.add(p.index(path+".http", i), "%v", err)
		}
	}
	if r.MQTT == nil {
		return
	}
	for i, f := range r.MQTT.Publish {
		if !validFilter(f) {
			p.add(p.index(path+".mqtt.publish", i), "must be an MQTT topic filter (+ and # fill whole levels, # last), got %q", f)
		}
	}
	for i, f := range r.MQTT.Subscribe {
		if !validFilter(f) {
			p.add(p.index(path+".mqtt.subscribe", i), "must be an MQTT topic filter (+ and # fill whole levels, # last), got %q", f)
		}
	}
}
