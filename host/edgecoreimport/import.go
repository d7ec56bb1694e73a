// Package edgecoreimport turns a KubeEdge edgecore.yaml (v1alpha2) into the
// equivalent edgehost config, and names every key it could not carry over
// (`edgehost config import-edgecore`, docs/migration.md).
package edgecoreimport

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/host/config"
	"go.yaml.in/yaml/v3"
)

// LeftOut is one edgecore key the import did not carry over, or carried
// with a change.
type LeftOut struct {
	// Key is the key's path in edgecore.yaml: modules.edgeHub.quic.enable.
	Key string
	// Value is the key's value, as written.
	Value string
	// Why says why it was left out and what to do instead, if anything.
	Why string
}

// String is "key = value: why".
func (l LeftOut) String() string { return fmt.Sprintf("%s = %s: %s", l.Key, l.Value, l.Why) }

// Result is an import: the config, and what did not carry over.
type Result struct {
	Config *config.Config
	// Carried are the edgecore keys carried over as they were.
	Carried []string
	// LeftOut are the keys not carried over, or carried with a change.
	LeftOut []LeftOut
}

// leaf is one scalar (or empty collection) of the edgecore document.
type leaf struct {
	path string
	node *yaml.Node
}

// Import reads the edgecore config data (name is its file, for errors) and
// returns the edgehost config that does what it does, starting from
// edgehost's defaults. The config is valid: where edgecore's values would
// not make one (an empty token with the hub on), it says so in LeftOut and
// keeps edgehost's default.
func Import(data []byte, name string) (*Result, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not an edgecore config (want a YAML mapping)", name)
	}
	var leaves []leaf
	flatten(doc.Content[0], "", &leaves)
	im := &importer{cfg: config.Default(), name: name, values: map[string]*yaml.Node{}}
	for _, l := range leaves {
		im.values[l.path] = l.node
	}
	if kind := im.str("kind"); kind != "EdgeCore" {
		return nil, fmt.Errorf("%s: kind %q, want EdgeCore (an edgecore.yaml)", name, kind)
	}
	var carried []string
	for _, l := range leaves {
		before := len(im.left)
		if err := im.carry(l); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", name, l.path, err)
		}
		if len(im.left) == before && l.path != "apiVersion" && l.path != "kind" {
			carried = append(carried, l.path)
		}
	}
	im.finish()
	if err := im.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: the imported config is not valid: %w", name, err)
	}
	return &Result{Config: im.cfg, Carried: carried, LeftOut: im.left}, nil
}

// flatten lists the scalars under n with their dotted paths; a sequence is
// one leaf (edgehost carries none element by element).
func flatten(n *yaml.Node, prefix string, out *[]leaf) {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		*out = append(*out, leaf{prefix, n})
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		p := n.Content[i].Value
		if prefix != "" {
			p = prefix + "." + p
		}
		flatten(n.Content[i+1], p, out)
	}
}

type importer struct {
	cfg    *config.Config
	name   string
	values map[string]*yaml.Node
	left   []LeftOut
}

func (im *importer) str(path string) string {
	if n := im.values[path]; n != nil && n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

func (im *importer) leave(l leaf, why string) {
	im.left = append(im.left, LeftOut{Key: l.path, Value: render(l.node), Why: why})
}

// render is a leaf's value as one line of YAML.
func render(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		if n.Value == "" {
			return `""`
		}
		return n.Value
	}
	b, err := yaml.Marshal(n)
	if err != nil {
		return "?"
	}
	flow := strings.Join(strings.Fields(string(b)), " ")
	if len(flow) > 60 {
		flow = flow[:57] + "..."
	}
	return flow
}

// Reasons for whole parts of edgecore that edgehost has no equivalent of,
// by key prefix (the first match wins).
var notCarried = []struct{ prefix, why string }{
	{"apiVersion", ""},
	{"kind", ""},
	{"database.", "edgehost keeps its state in <dataDir>/edgehost.db (bbolt), not sqlite; nothing to import"},
	{"modules.edged.", "edgehost has no edged (embedded kubelet) in this version"},
	{"modules.edgeStream.", "edgehost has no edgestream (kubectl logs/exec tunnel)"},
	{"modules.metaManager.metaServer.", "edgehost has no metaserver (the local list-watch API for pods)"},
	{"modules.metaManager.context", "edgehost routes metamanager's messages itself"},
	{"modules.serviceBus.", "edgehost has no servicebus in this version"},
	{"modules.taskManager.", "edgehost has no taskmanager (node upgrade, image prepull tasks)"},
	{"modules.dbTest.", "a KubeEdge test module"},
	{"modules.edgeHub.quic.", "edgehost speaks to cloudhub over websocket only"},
	{"modules.edgeHub.tls", "not read: edgehost keeps the node's certificate as ca.crt, server.crt and server.key in <dataDir>/hub/certs; copy edgecore's there to keep the node's identity, or give a token to get a new one"},
	{"modules.edgeHub.websocket.handshakeTimeout", "edgehost's timeouts are its own (modules.hub.heartbeat, reconnectMax)"},
	{"modules.edgeHub.websocket.readDeadline", "edgehost's timeouts are its own (modules.hub.heartbeat, reconnectMax)"},
	{"modules.edgeHub.websocket.writeDeadline", "edgehost's timeouts are its own (modules.hub.heartbeat, reconnectMax)"},
	{"modules.eventBus.mqttPubClientID", "edgehost's external client id is modules.eventbus.external.clientID (one session)"},
	{"modules.eventBus.mqttSubClientID", "edgehost's external client id is modules.eventbus.external.clientID (one session)"},
	{"modules.eventBus.mqttSessionQueueSize", "no equivalent; edgehost bounds each subscriber's queue (modules.eventbus.subscriberQueue, default kept)"},
	{"modules.eventBus.mqttRetain", "edgehost publishes without retain"},
	{"modules.eventBus.eventBusTLS.", "edgehost's eventbus TLS is set per broker (embedded.tls, external.tls); not carried while disabled"},
}

// carry applies one edgecore leaf to the config, or records why not.
func (im *importer) carry(l leaf) error {
	c := &im.cfg.Modules
	v := l.node.Value
	switch l.path {
	case "modules.edgeHub.enable":
		return setBool(&c.Hub.Enable, v)
	case "modules.edgeHub.websocket.enable":
		if v != "true" {
			im.leave(l, "edgehost speaks to cloudhub over websocket only; with it off edgecore used quic")
		}
		return nil
	case "modules.edgeHub.websocket.server":
		c.Hub.Server = v
		return nil
	case "modules.edgeHub.httpServer":
		c.Hub.HTTPServer = v
		return nil
	case "modules.edgeHub.token":
		c.Hub.Token = v
		return nil
	case "modules.edgeHub.projectID":
		c.Hub.ProjectID = v
		return nil
	case "modules.edgeHub.rotateCertificates":
		return setBool(&c.Hub.RotateCertificates, v)
	case "modules.edgeHub.heartbeat":
		return setSeconds(&c.Hub.Heartbeat, v)
	case "modules.edgeHub.messageQPS":
		return setInt(&c.Hub.MessageQPS, v)
	case "modules.edgeHub.messageBurst":
		return setInt(&c.Hub.MessageBurst, v)
	case "modules.edged.hostnameOverride":
		// edgecore's node name; edged itself is not carried.
		c.Hub.NodeName = v
		return nil
	case "modules.deviceTwin.enable":
		return setBool(&c.Twin.Enable, v)
	case "modules.deviceTwin.dmiSockPath":
		if strings.HasSuffix(v, "/") {
			v += "dmi.sock"
		}
		c.Devices.DMISocket = v
		return nil
	case "modules.metaManager.enable":
		return setBool(&c.Meta.Enable, v)
	case "modules.metaManager.remoteQueryTimeout":
		return setSeconds(&c.Meta.RemoteQueryTimeout, v)
	case "modules.eventBus.enable":
		return setBool(&c.EventBus.Enable, v)
	case "modules.eventBus.mqttMode":
		// edgecore: 0 internal broker, 1 both, 2 external.
		modes := map[string]string{"0": "embedded", "1": "both", "2": "external"}
		mode, ok := modes[v]
		if !ok {
			return fmt.Errorf("want 0, 1 or 2, got %q", v)
		}
		c.EventBus.Mode = mode
		return nil
	case "modules.eventBus.mqttServerExternal":
		c.EventBus.External.URL = v
		return nil
	case "modules.eventBus.mqttServerInternal":
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			return fmt.Errorf("want tcp://host:port, got %q", v)
		}
		c.EventBus.Embedded.Address = u.Host
		return nil
	case "modules.eventBus.mqttQOS":
		q, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want a number, got %q", v)
		}
		if q > 1 {
			im.leave(l, "edgehost's eventbus does QoS 0 and 1; set to 1")
			q = 1
		}
		c.EventBus.QoS = q
		return nil
	case "modules.eventBus.mqttUsername":
		c.EventBus.External.Username = v
		return nil
	case "modules.eventBus.mqttPassword":
		c.EventBus.External.Password = v
		return nil
	case "modules.eventBus.eventBusTLS.enable":
		if v == "true" {
			c.EventBus.External.TLS = &config.TLSFiles{CAFile: im.str("modules.eventBus.eventBusTLS.tlsMqttCAFile"),
				CertFile: im.str("modules.eventBus.eventBusTLS.tlsMqttCertFile"), KeyFile: im.str("modules.eventBus.eventBusTLS.tlsMqttPrivateKeyFile")}
			return nil
		}
	case "modules.eventBus.eventBusTLS.tlsMqttCAFile", "modules.eventBus.eventBusTLS.tlsMqttCertFile", "modules.eventBus.eventBusTLS.tlsMqttPrivateKeyFile":
		if im.str("modules.eventBus.eventBusTLS.enable") == "true" {
			return nil // carried with enable
		}
	}
	for _, nc := range notCarried {
		if strings.HasPrefix(l.path, nc.prefix) {
			if nc.why != "" {
				im.leave(l, nc.why)
			}
			return nil
		}
	}
	im.leave(l, "unknown to this import")
	return nil
}

// finish makes the config valid where edgecore's values would not, saying
// what it changed.
func (im *importer) finish() {
	c := &im.cfg.Modules
	if c.Hub.Enable && c.Hub.Token == "" {
		im.left = append(im.left, LeftOut{Key: "modules.edgeHub.token", Value: `""`,
			Why: "carried empty: the link needs the node's certificate copied into " + certDir(im.cfg.DataDir) +
				" (see modules.edgeHub.tlsCertFile) or a token in modules.hub.token (keadm gettoken on the cloud)"})
	}
	if s := c.Devices.DMISocket; c.Devices.DMIEnable && !strings.HasPrefix(s, im.cfg.DataDir+"/") {
		im.left = append(im.left, LeftOut{Key: "modules.deviceTwin.dmiSockPath", Value: s,
			Why: "carried, so mappers find the socket where they did; under systemd (ProtectSystem=strict) add ReadWritePaths=" +
				s[:strings.LastIndex(s, "/")+1] + " in a drop-in (docs/systemd.md)"})
	}
}

// certDir is where the hub keeps the node's certificate (daemon.HubCertDir).
func certDir(dataDir string) string { return dataDir + "/hub/certs" }

func setBool(dst *bool, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("want true or false, got %q", v)
	}
	*dst = b
	return nil
}

func setInt(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("want a number, got %q", v)
	}
	*dst = n
	return nil
}

// setSeconds reads edgecore's durations, whole seconds.
func setSeconds(dst *time.Duration, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return fmt.Errorf("want whole seconds, got %q", v)
	}
	*dst = time.Duration(n) * time.Second
	return nil
}
