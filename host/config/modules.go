package config

import (
	"math"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// Modules holds one section per module. Adding a module takes a section
// type with a validate method, a field here, its defaults in
// defaultModules, and a line in sections.
type Modules struct {
	// Bus is the in-process message bus.
	Bus Bus `yaml:"bus"`
	// Plugins is the wasm plugin manager.
	Plugins Plugins `yaml:"plugins"`
	// API is the local admin API.
	API API `yaml:"api"`
	// EventBus is the MQTT side: embedded broker, external broker, or both.
	EventBus EventBus `yaml:"eventbus"`
	// Hub is the link to the cloud (KubeEdge's edgehub).
	Hub Hub `yaml:"hub"`
	// Twin is the device twin adapter (KubeEdge's devicetwin).
	Twin Twin `yaml:"twin"`
	// Devices declares the node's devices.
	Devices Devices `yaml:"devices"`
	// Meta is the metamanager (KubeEdge's metamanager).
	Meta Meta `yaml:"meta"`
	// ServiceBus is HTTP between the cloud and local services (KubeEdge's
	// servicebus).
	ServiceBus ServiceBus `yaml:"servicebus"`
	// Edged is the container runtime (KubeEdge's edged).
	Edged Edged `yaml:"edged"`
}

// section is what every module's settings implement.
type section interface {
	// validate adds a problem for every bad value; path is the section's
	// key, e.g. "modules.bus".
	validate(p *problems, path string)
}

type namedSection struct {
	name string
	section
}

func (m *Modules) sections() []namedSection {
	return []namedSection{
		{"bus", &m.Bus},
		{"plugins", &m.Plugins},
		{"api", &m.API},
		{"eventbus", &m.EventBus},
		{"hub", &m.Hub},
		{"twin", &m.Twin},
		{"devices", &m.Devices},
		{"meta", &m.Meta},
		{"servicebus", &m.ServiceBus},
		{"edged", &m.Edged},
	}
}

// DefaultProjectID is KubeEdge's default project id on the cloud link.
const DefaultProjectID = "e632aba927ea4ac2b575ec1603d56f10"

func defaultModules() Modules {
	return Modules{
		Bus: Bus{Enable: true, QueueLen: 1024, SendTimeout: 2 * time.Second},
		Plugins: Plugins{
			Enable:    true,
			Builtin:   true,
			FromCloud: true,
			Limits:    Limits{MemoryPages: 256, CallTimeout: time.Second, MaxMessageBytes: 1 << 20, Instances: 2},
			Trust:     PluginTrust{Policy: SignaturePolicies{Local: RequireSignature, Remote: RequireSignature}},
		},
		API: API{Enable: true},
		// The embedded broker is on by default: nothing to install.
		EventBus: EventBus{
			Enable:          true,
			Mode:            "embedded",
			QoS:             1,
			MaxPayloadBytes: 1 << 20,
			// Subscriber queues as long as the bus's module queues. A
			// client's connection waits as long as a bus send may; an
			// in-process publisher well within a plugin's 1 s callTimeout.
			SubscriberQueue:        1024,
			SubscriberBackpressure: 2 * time.Second,
			LocalBackpressure:      200 * time.Millisecond,
			// Twice the 8192 of mochi's defaults: a mapper's burst of
			// 10,000 QoS 1 updates gets all its results.
			Embedded: Embedded{Address: "127.0.0.1:1883", MaxInflight: 16384, MaxPendingWrites: 16384},
			External: External{
				ClientID:     "edgehost-eventbus",
				QueueLen:     1024,
				ReconnectMax: 30 * time.Second,
			},
		},
		Hub: Hub{ProjectID: DefaultProjectID, RotateCertificates: true, Heartbeat: 15 * time.Second, MessageQPS: 30, MessageBurst: 60,
			ReconnectMax: 30 * time.Second, MaxFrameBytes: 4 << 20, Outbox: HubOutbox{TTL: 24 * time.Hour, MaxBytes: 64 << 20}},
		Twin:    Twin{Enable: true, Plugin: "devicetwin", Lanes: 64},
		Devices: Devices{DMIEnable: true, DMIRate: 200, DMIBurst: 400, DMICallTimeout: 10 * time.Second, WasmProtocols: []string{}},
		Meta:    defaultMeta(),
		// As edgecore: the cloud's requests served, the local listener off.
		ServiceBus: defaultServiceBus(),
		Edged:      defaultEdged(),
	}
}

// Twin is the device twin adapter: it routes the twin group's messages to
// the twin plugin, which makes every twin decision (docs/twin.md).
type Twin struct {
	// Enable turns the twin module on.
	Enable bool `yaml:"enable"`
	// Plugin names the twin plugin.
	Plugin string `yaml:"plugin"`
	// Lanes is how many devices are served at once. A lane waits for its
	// update's commit; the plugin's instances do not, so a few suffice.
	Lanes int `yaml:"lanes"`
}

func (t *Twin) validate(p *problems, path string) {
	if !t.Enable {
		return
	}
	if t.Plugin == "" {
		p.add(path+".plugin", "must not be empty")
	}
	p.positive(path+".lanes", t.Lanes)
}

// Devices declares the node's devices and how mappers reach them
// (docs/dmi.md).
type Devices struct {
	// Dir holds KubeEdge v1beta1 Device and DeviceModel YAML files, read
	// at start and on SIGHUP or `edgehost devices reload`; empty means
	// none.
	Dir string `yaml:"dir,omitempty"`
	// DMIEnable serves KubeEdge's DMI, the gRPC API mapper-framework
	// mappers use, on DMISocket.
	DMIEnable bool `yaml:"dmiEnable"`
	// DMISocket is DMI's unix socket; default <dataDir>/dmi.sock. Set it
	// to /etc/kubeedge/dmi.sock for mappers built for edgecore.
	DMISocket string `yaml:"dmiSocket"`
	// DMIRate is how many DMI requests a second all mappers together may
	// make beyond DMIBurst (edgecore fixes 1/s).
	DMIRate float64 `yaml:"dmiRate"`
	// DMIBurst is how many DMI requests may come at once.
	DMIBurst int `yaml:"dmiBurst"`
	// DMICallTimeout bounds each call to a mapper.
	DMICallTimeout time.Duration `yaml:"dmiCallTimeout"`
	// WasmProtocols reserves device protocols for wasm mapper plugins not
	// installed yet: a DMI mapper may not register them. The protocols
	// the mapper plugins in service declare are reserved without it.
	WasmProtocols []string `yaml:"wasmProtocols"`
}

func (mp *Mapper) validate(p *problems, path string) {
	if len(mp.Protocols) == 0 {
		p.add(path+".protocols", "must list the protocols the plugin serves")
	}
	for i, proto := range mp.Protocols {
		key := p.index(path+".protocols", i)
		switch {
		case !abi.ValidProtocol(proto):
			p.add(key, "must be 1-64 of letters, digits and . _ - starting and ending with a letter or digit, got %q", proto)
		case slices.Contains(mp.Protocols[:i], proto):
			p.add(key, "%q is listed twice", proto)
		}
	}
}

func (d *Devices) validate(p *problems, path string) {
	if d.Dir != "" {
		p.absPath(path+".dir", d.Dir)
	}
	for i, proto := range d.WasmProtocols {
		key := p.index(path+".wasmProtocols", i)
		switch {
		case proto == "":
			p.add(key, "must not be empty")
		case slices.Contains(d.WasmProtocols[:i], proto):
			p.add(key, "%q is listed twice", proto)
		}
	}
	if !d.DMIEnable {
		return
	}
	p.absPath(path+".dmiSocket", d.DMISocket)
	if len(d.DMISocket) > maxSocketPath {
		p.add(path+".dmiSocket", "longer than %d bytes, the unix socket limit: %q", maxSocketPath, d.DMISocket)
	}
	if !(d.DMIRate > 0) || math.IsInf(d.DMIRate, 0) {
		p.add(path+".dmiRate", "must be a positive number of requests a second, got %v", d.DMIRate)
	}
	p.positive(path+".dmiBurst", d.DMIBurst)
	p.positiveDuration(path+".dmiCallTimeout", d.DMICallTimeout)
}

// Bus is the in-process message bus. It cannot be disabled.
type Bus struct {
	// Enable must be true: every other module talks through the bus.
	Enable bool `yaml:"enable"`
	// QueueLen is the capacity of each module's receive queue.
	QueueLen int `yaml:"queueLen"`
	// SendTimeout is how long a send may wait on a full queue before it
	// fails.
	SendTimeout time.Duration `yaml:"sendTimeout"`
}

func (b *Bus) validate(p *problems, path string) {
	if !b.Enable {
		p.add(path+".enable", "the bus cannot be disabled")
	}
	p.positive(path+".queueLen", b.QueueLen)
	p.positiveDuration(path+".sendTimeout", b.SendTimeout)
}

// Plugins is the wasm plugin manager: where plugins are loaded from, their
// default limits, and per-plugin settings.
type Plugins struct {
	// Enable turns plugin loading on.
	Enable bool `yaml:"enable"`
	// Dir is the directory *.wasm plugins are loaded from; default
	// <dataDir>/plugins.
	Dir string `yaml:"dir"`
	// Builtin loads the first-party plugins embedded in the binary (the
	// device twin, ...) that no plugin of the same name in the list, the
	// dir or the installed ones overrides; on by default.
	Builtin bool `yaml:"builtin"`
	// FromCloud lets the cloud install, upgrade, roll back and remove
	// plugins through the link (EdgehostPlugin objects, docs/hub.md),
	// under Trust.Policy.Remote; on by default.
	FromCloud bool `yaml:"fromCloud"`
	// Limits apply to every plugin unless its own entry sets them.
	Limits Limits `yaml:"limits"`
	// List holds per-plugin settings.
	List []Plugin `yaml:"list"`
	// Trust is the trust store and signature policy for plugins installed
	// through the admin API or from the cloud (see plugintrust.go).
	Trust PluginTrust `yaml:"trust"`
	// Restrict narrows the grants of installed plugins, and of built-in
	// plugins with a manifest, one ceiling per plugin.
	Restrict []PluginRestriction `yaml:"restrict,omitempty"`
}

// Limits bound one plugin's resources.
type Limits struct {
	// MemoryPages caps the linear memory of an instance, in 64 KiB pages.
	MemoryPages int `yaml:"memoryPages,omitempty"`
	// CallTimeout bounds one call into the plugin.
	CallTimeout time.Duration `yaml:"callTimeout,omitempty"`
	// MaxMessageBytes caps one message to or from the plugin.
	MaxMessageBytes int `yaml:"maxMessageBytes,omitempty"`
	// Instances is the size of the plugin's instance pool.
	Instances int `yaml:"instances,omitempty"`
}

// Plugin is one plugin's entry in modules.plugins.list.
type Plugin struct {
	// Name identifies the plugin (and its KV namespace).
	Name string `yaml:"name"`
	// Path is the plugin's .wasm file; see Plugins.ModulePath.
	Path string `yaml:"path,omitempty"`
	// Config is the plugin's free-form settings, handed to it as JSON.
	Config JSON `yaml:"config,omitempty"`
	// Limits override modules.plugins.limits where set.
	Limits Limits `yaml:"limits,omitempty"`
	// Receives lists the messages routed to the plugin.
	Receives []Pattern `yaml:"receives,omitempty"`
	// Topics are MQTT topic filters the plugin is subscribed to when it
	// loads, as if its init had called mqtt_subscribe for each.
	Topics []string `yaml:"topics,omitempty"`
	// TickInterval is how often the plugin's edgehost_tick is called; 0:
	// never.
	TickInterval time.Duration `yaml:"tickInterval,omitempty"`
	// Mapper declares the device protocols the plugin serves as a mapper
	// (abi/SPEC.md section 9), as an installed plugin's manifest does.
	Mapper *Mapper `yaml:"mapper,omitempty"`
}

// Mapper is a mapper plugin's declaration.
type Mapper struct {
	// Protocols are the device protocols (spec.protocol.protocolName)
	// whose devices are bound to the plugin.
	Protocols []string `yaml:"protocols"`
}

// Pattern selects bus messages by route. An empty field matches anything;
// the wildcard syntax within a field is the bus's.
type Pattern struct {
	// Group is the route group, e.g. "twin" or "user".
	Group string `yaml:"group,omitempty"`
	// Operation is the route operation, e.g. "update".
	Operation string `yaml:"operation,omitempty"`
	// Resource is the route resource, e.g. "device/+/twin/update".
	Resource string `yaml:"resource,omitempty"`
}

// ModulePath is where p's module is read from: p.Path, relative to Dir if
// it is relative, or <Dir>/<name>.wasm if it is empty.
func (ps *Plugins) ModulePath(p Plugin) string {
	switch {
	case p.Path == "":
		return filepath.Join(ps.Dir, p.Name+".wasm")
	case filepath.IsAbs(p.Path):
		return p.Path
	}
	return filepath.Join(ps.Dir, p.Path)
}

// maxMemoryPages is the most a wasm32 memory can have (4 GiB).
const maxMemoryPages = 65536

var pluginName = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$`)

func (ps *Plugins) validate(p *problems, path string) {
	p.absPath(path+".dir", ps.Dir)
	ps.Limits.validate(p, path+".limits")
	seen := map[string]bool{}
	for i, pl := range ps.List {
		at := p.index(path+".list", i)
		switch {
		case !pluginName.MatchString(pl.Name):
			p.add(at+".name", "must be 1-64 of a-z 0-9 . _ - starting and ending with a letter or digit, got %q", pl.Name)
		case seen[pl.Name]:
			p.add(at+".name", "duplicate plugin %q", pl.Name)
		}
		seen[pl.Name] = true
		pl.Limits.validate(p, at+".limits")
		if pl.TickInterval < 0 {
			p.add(at+".tickInterval", "must not be negative, got %s", pl.TickInterval)
		}
		for j, f := range pl.Topics {
			if !validFilter(f) {
				p.add(p.index(at+".topics", j), "must be an MQTT topic filter (+ and # fill whole levels, # last), got %q", f)
			}
		}
		if pl.Mapper != nil {
			pl.Mapper.validate(p, at+".mapper")
		}
	}
	ps.Trust.validate(p, path+".trust")
	for i, r := range ps.Restrict {
		r.validate(p, p.index(path+".restrict", i))
	}
}

// fill fills every plugin's unset limits from the module's, and makes an
// empty list nil, as in Default.
func (ps *Plugins) fill() {
	if len(ps.List) == 0 {
		ps.List = nil
	}
	for i := range ps.List {
		l := &ps.List[i].Limits
		if l.MemoryPages == 0 {
			l.MemoryPages = ps.Limits.MemoryPages
		}
		if l.CallTimeout == 0 {
			l.CallTimeout = ps.Limits.CallTimeout
		}
		if l.MaxMessageBytes == 0 {
			l.MaxMessageBytes = ps.Limits.MaxMessageBytes
		}
		if l.Instances == 0 {
			l.Instances = ps.Limits.Instances
		}
	}
}

func (l *Limits) validate(p *problems, path string) {
	if l.MemoryPages <= 0 || l.MemoryPages > maxMemoryPages {
		p.add(path+".memoryPages", "must be in 1..%d, got %d", maxMemoryPages, l.MemoryPages)
	}
	p.positiveDuration(path+".callTimeout", l.CallTimeout)
	p.positive(path+".maxMessageBytes", l.MaxMessageBytes)
	if l.MemoryPages > 0 && l.MaxMessageBytes > l.MemoryPages*65536 {
		p.add(path+".maxMessageBytes", "%d does not fit in memoryPages %d (%d bytes)", l.MaxMessageBytes, l.MemoryPages, l.MemoryPages*65536)
	}
	p.positive(path+".instances", l.Instances)
}

// API is the local admin API: a unix socket, and optionally TCP.
type API struct {
	// Enable turns the admin API on.
	Enable bool `yaml:"enable"`
	// Socket is the unix socket path; default <dataDir>/admin.sock.
	Socket string `yaml:"socket"`
	// TCP, when set, also serves the API over TCP with a bearer token.
	TCP *TCP `yaml:"tcp,omitempty"`
}

// TCP is the admin API's optional TCP listener.
type TCP struct {
	// Address is host:port to listen on.
	Address string `yaml:"address"`
	// Token is the bearer token every TCP request must carry.
	Token string `yaml:"token"`
}

// maxSocketPath is the longest unix socket path Linux accepts.
const maxSocketPath = 107

func (a *API) validate(p *problems, path string) {
	p.absPath(path+".socket", a.Socket)
	if len(a.Socket) > maxSocketPath {
		p.add(path+".socket", "longer than %d bytes, the unix socket limit: %q", maxSocketPath, a.Socket)
	}
	if a.TCP != nil {
		p.hostPort(path+".tcp.address", a.TCP.Address)
		if a.TCP.Token == "" {
			p.add(path+".tcp.token", "required when tcp is set")
		}
	}
}

// EventBus is the MQTT side of the daemon: an embedded broker, a client of
// an external broker, or both, bridged to the bus by KubeEdge's topic
// contract.
type EventBus struct {
	// Enable turns the eventbus on.
	Enable bool `yaml:"enable"`
	// Mode is embedded (the built-in broker), external, or both.
	Mode string `yaml:"mode"`
	// QoS (0 or 1) is used for the bridge's subscriptions and for the
	// publishes other modules ask for over the bus.
	QoS int `yaml:"qos"`
	// MaxPayloadBytes caps one MQTT payload; a bigger one is rejected and
	// counted, in both directions.
	MaxPayloadBytes int `yaml:"maxPayloadBytes"`
	// SubscriberQueue bounds the messages waiting for one subscriber (a
	// plugin's subscription, the bridge): each has a queue and a goroutine
	// of its own, so a slow one never holds back the publisher or the
	// others. At most SubscriberQueue payloads wait per subscriber.
	SubscriberQueue int `yaml:"subscriberQueue"`
	// SubscriberBackpressure bounds how long a QoS 1 message from a client
	// of the embedded broker waits for room in a full subscriber queue
	// before it is refused (and counted): the wait holds back that client's
	// connection alone. Until the subscriber takes its next message,
	// further QoS 1 messages for it are refused without waiting. A QoS 0
	// message finding the queue full is dropped at once (and counted).
	SubscriberBackpressure time.Duration `yaml:"subscriberBackpressure"`
	// LocalBackpressure is the same bound for a QoS 1 message published in
	// process (a plugin's mqtt_publish, a publish over the bus) or taken
	// from the external broker (whose one delivery goroutine serves every
	// subscriber). It must be shorter than plugins.limits.callTimeout: a
	// plugin that publishes to a stuck subscriber waits this long once.
	LocalBackpressure time.Duration `yaml:"localBackpressure"`
	// Embedded configures the built-in broker.
	Embedded Embedded `yaml:"embedded"`
	// External configures the connection to an external broker.
	External External `yaml:"external"`
}

// Embedded configures the built-in MQTT broker.
type Embedded struct {
	// Address is host:port the broker listens on.
	Address string `yaml:"address"`
	// TLS, when set, makes the listener speak TLS only.
	TLS *TLSFiles `yaml:"tls,omitempty"`
	// Users, when set, are the only credentials accepted; when empty any
	// client may connect.
	Users []MQTTUser `yaml:"users,omitempty"`
	// ACL, when set, lists what clients may read and write; a topic no rule
	// grants is denied. When empty every client may use every topic. The
	// daemon's own publishes and subscriptions are not subject to it.
	ACL []ACLRule `yaml:"acl,omitempty"`
	// MaxInflight bounds the QoS 1 messages sent to one client and not yet
	// acknowledged (1..65535, the packet id space). A message past it is
	// dropped, logged and counted. A client that publishes a burst and reads
	// the replies on the same connection acknowledges them only after the
	// broker has read its burst, so this must exceed the burst.
	MaxInflight int `yaml:"maxInflight"`
	// MaxPendingWrites bounds the packets queued for writing to one client;
	// a message past it is dropped, logged and counted.
	MaxPendingWrites int `yaml:"maxPendingWrites"`
}

// TLSFiles names PEM files for a TLS endpoint.
type TLSFiles struct {
	// CertFile and KeyFile are this side's certificate and key: the
	// embedded broker's server certificate (required), or the client
	// certificate shown to an external broker (optional).
	CertFile string `yaml:"certFile,omitempty"`
	KeyFile  string `yaml:"keyFile,omitempty"`
	// CAFile verifies the peer: for the embedded broker, clients must then
	// present a certificate it signed; for an external broker, it replaces
	// the system roots.
	CAFile string `yaml:"caFile,omitempty"`
}

// MQTTUser is one username and password the embedded broker accepts.
type MQTTUser struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// ACLRule grants one user (or anyone, when Username is empty) reading
// (subscribing and receiving) and/or writing (publishing) on the topics
// matching Topic, an MQTT filter. Rules add up; none takes away.
type ACLRule struct {
	Username string `yaml:"username,omitempty"`
	Topic    string `yaml:"topic"`
	Read     bool   `yaml:"read,omitempty"`
	Write    bool   `yaml:"write,omitempty"`
}

// External configures the connection to an external MQTT 3.1.1 broker.
type External struct {
	// URL is the broker, e.g. tcp://127.0.0.1:1883 or ssl://host:8883.
	URL string `yaml:"url"`
	// Username is the MQTT user name, if the broker wants one.
	Username string `yaml:"username,omitempty"`
	// Password is the MQTT password, if the broker wants one.
	Password string `yaml:"password,omitempty"`
	// ClientID identifies the daemon's session at the broker, which keeps
	// it (clean session off) so QoS 1 messages survive a short disconnect.
	ClientID string `yaml:"clientID"`
	// TLS sets certificates for an ssl://, tls:// or mqtts:// URL.
	TLS *TLSFiles `yaml:"tls,omitempty"`
	// QueueLen bounds the publishes held while the broker is unreachable;
	// when it is full a publish fails (and is counted) instead of waiting.
	QueueLen int `yaml:"queueLen"`
	// ReconnectMax caps the exponential backoff between connection
	// attempts.
	ReconnectMax time.Duration `yaml:"reconnectMax"`
}

// maxMQTTPayload is the largest payload an MQTT packet can carry.
const maxMQTTPayload = 268435455 - 65537

func (e *EventBus) validate(p *problems, path string) {
	p.oneOf(path+".mode", e.Mode, "embedded", "external", "both")
	if e.QoS != 0 && e.QoS != 1 {
		p.add(path+".qos", "must be 0 or 1, got %d", e.QoS)
	}
	if e.MaxPayloadBytes <= 0 || e.MaxPayloadBytes > maxMQTTPayload {
		p.add(path+".maxPayloadBytes", "must be in 1..%d, got %d", maxMQTTPayload, e.MaxPayloadBytes)
	}
	p.positive(path+".subscriberQueue", e.SubscriberQueue)
	p.positiveDuration(path+".subscriberBackpressure", e.SubscriberBackpressure)
	p.positiveDuration(path+".localBackpressure", e.LocalBackpressure)
	if e.Mode == "embedded" || e.Mode == "both" {
		e.Embedded.validate(p, path+".embedded")
	}
	if e.Mode == "external" || e.Mode == "both" {
		x := &e.External
		host := p.brokerURL(path+".external.url", x.URL)
		if e.Mode == "both" && host != "" && host == e.Embedded.Address {
			p.add(path+".external.url", "is the embedded broker's own address %s", host)
		}
		if x.ClientID == "" {
			p.add(path+".external.clientID", "must not be empty")
		}
		p.positive(path+".external.queueLen", x.QueueLen)
		p.positiveDuration(path+".external.reconnectMax", x.ReconnectMax)
		if x.TLS != nil && (x.TLS.CertFile == "") != (x.TLS.KeyFile == "") {
			p.add(path+".external.tls", "certFile and keyFile go together")
		}
	}
}

func (e *Embedded) validate(p *problems, path string) {
	p.hostPort(path+".address", e.Address)
	if e.MaxInflight < 1 || e.MaxInflight > 65535 {
		p.add(path+".maxInflight", "must be in 1..65535, got %d", e.MaxInflight)
	}
	p.positive(path+".maxPendingWrites", e.MaxPendingWrites)
	if e.TLS != nil && (e.TLS.CertFile == "" || e.TLS.KeyFile == "") {
		p.add(path+".tls", "certFile and keyFile are required")
	}
	seen := map[string]bool{}
	for i, u := range e.Users {
		at := p.index(path+".users", i)
		switch {
		case u.Username == "":
			p.add(at+".username", "must not be empty")
		case seen[u.Username]:
			p.add(at+".username", "duplicate user %q", u.Username)
		}
		seen[u.Username] = true
		if u.Password == "" {
			p.add(at+".password", "must not be empty")
		}
	}
	for i, r := range e.ACL {
		at := p.index(path+".acl", i)
		if !validFilter(r.Topic) {
			p.add(at+".topic", "must be an MQTT topic filter (+ and # fill whole levels, # last), got %q", r.Topic)
		}
		if !r.Read && !r.Write {
			p.add(at, "grants nothing: set read, write or both")
		}
	}
}

// validFilter checks the shape of an MQTT topic filter.
func validFilter(f string) bool {
	if f == "" || len(f) > 65535 {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if l == "#" && i != len(levels)-1 || len(l) > 1 && strings.ContainsAny(l, "+#") {
			return false
		}
	}
	return true
}

// Hub is the link to the cloud.
type Hub struct {
	// Enable turns the cloud link on; off by default.
	Enable bool `yaml:"enable"`
	// Server is the cloud's host:port (CloudCore's cloudhub, port 10000).
	Server string `yaml:"server"`
	// NodeName is this node's name in the cloud.
	NodeName string `yaml:"nodeName"`
	// ProjectID is the project path element of the websocket URL.
	ProjectID string `yaml:"projectID"`
	// HTTPServer is the cloud's certificate service, https://host:port;
	// empty means port 10002 on the server's host.
	HTTPServer string `yaml:"httpServer"`
	// Token is the bootstrap token (keadm gettoken, edgehost hub token),
	// used only while there is no valid client certificate.
	Token string `yaml:"token"`
	// RotateCertificates renews the client certificate at 70-90 % of its
	// lifetime, authenticated by the current one.
	RotateCertificates bool `yaml:"rotateCertificates"`
	// Heartbeat is the keepalive and ping period; a link silent for two
	// heartbeats is taken as dead.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// MessageQPS and MessageBurst limit upstream messages; the limit
	// delays, it never drops.
	MessageQPS   int `yaml:"messageQPS"`
	MessageBurst int `yaml:"messageBurst"`
	// ReconnectMax caps the backoff between dials.
	ReconnectMax time.Duration `yaml:"reconnectMax"`
	// MaxFrameBytes is the largest frame taken or sent.
	MaxFrameBytes int `yaml:"maxFrameBytes"`
	// Outbox bounds the durable upstream queue.
	Outbox HubOutbox `yaml:"outbox"`
}

// HubOutbox bounds the cloud link's durable upstream queue; when full, new
// upstream messages are refused and counted (docs/hub.md).
type HubOutbox struct {
	// TTL is how long a message may wait to be sent.
	TTL time.Duration `yaml:"ttl"`
	// MaxBytes caps the queued frames.
	MaxBytes int64 `yaml:"maxBytes"`
}

func (h *Hub) validate(p *problems, path string) {
	p.pathElement(path+".projectID", h.ProjectID)
	if !h.Enable {
		return
	}
	p.hostPort(path+".server", h.Server)
	p.pathElement(path+".nodeName", h.NodeName)
	if h.HTTPServer != "" {
		if u, err := url.Parse(h.HTTPServer); err != nil || u.Scheme != "https" || u.Host == "" {
			p.add(path+".httpServer", "must be an https:// URL such as https://10.0.0.1:10002, got %q", h.HTTPServer)
		}
	}
	if h.Token != "" && strings.Count(h.Token, ".") != 3 {
		p.add(path+".token", "must have 4 dot-separated parts (caHash.header.payload.signature), got %d", strings.Count(h.Token, ".")+1)
	}
	p.positiveDuration(path+".heartbeat", h.Heartbeat)
	p.positive(path+".messageQPS", h.MessageQPS)
	p.positive(path+".messageBurst", h.MessageBurst)
	p.positiveDuration(path+".reconnectMax", h.ReconnectMax)
	p.positive(path+".maxFrameBytes", h.MaxFrameBytes)
	p.positiveDuration(path+".outbox.ttl", h.Outbox.TTL)
	if h.Outbox.MaxBytes <= 0 {
		p.add(path+".outbox.maxBytes", "must be > 0, got %d", h.Outbox.MaxBytes)
	}
}
