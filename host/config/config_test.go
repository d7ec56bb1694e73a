package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if got, want := c.Modules.API.Socket, "/var/lib/edgehost/admin.sock"; got != want {
		t.Errorf("socket = %q, want %q", got, want)
	}
	if c.Modules.Hub.Enable || c.Modules.Hub.ProjectID != DefaultProjectID {
		t.Errorf("hub = %+v, want disabled with the KubeEdge project id", c.Modules.Hub)
	}
	if got := c.Modules.EventBus; got.Mode != "embedded" || got.Embedded.Address != "127.0.0.1:1883" {
		t.Errorf("eventbus = %+v", got)
	}
}

func TestMarshalDefaultRoundTrip(t *testing.T) {
	out, err := Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"dataDir:", "queueLen:", "sendTimeout: 2s", "snapshotInterval: 1h0m0s", "snapshotKeep: 5", "socket:", "projectID:", "memoryPages:"} {
		if !strings.Contains(string(out), key) {
			t.Errorf("default config lacks %q:\n%s", key, out)
		}
	}
	got, err := Parse(out, "default.yaml")
	if err != nil {
		t.Fatalf("Parse(Marshal(Default())): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Errorf("round trip changed the config:\n got %+v\nwant %+v", got, Default())
	}
}

func TestEmptyIsDefault(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "log:\n"} {
		c, err := Parse([]byte(in), "e.yaml")
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("Parse(%q) = %+v, want defaults", in, c)
		}
	}
}

func TestLoadFull(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Modules.API.Socket != "/srv/edgehost/admin.sock" || c.Modules.Plugins.Dir != "/srv/edgehost/plugins" {
		t.Errorf("derived paths did not follow dataDir: socket %q, dir %q", c.Modules.API.Socket, c.Modules.Plugins.Dir)
	}
	if c.Modules.Bus.SendTimeout != 500*time.Millisecond || c.Log.Format != "json" {
		t.Errorf("bus %+v, log %+v", c.Modules.Bus, c.Log)
	}
	if want := (Store{CheckTimeout: 5 * time.Minute, SnapshotInterval: 0, SnapshotKeep: 2}); c.Store != want {
		t.Errorf("store %+v, want %+v", c.Store, want)
	}
	list := c.Modules.Plugins.List
	if len(list) != 2 {
		t.Fatalf("plugins = %+v", list)
	}
	want := Limits{MemoryPages: 512, CallTimeout: 3 * time.Second, MaxMessageBytes: 1 << 20, Instances: 8}
	if list[0].Limits != want {
		t.Errorf("modbus limits = %+v, want %+v (own, then module's, then default)", list[0].Limits, want)
	}
	if list[1].Limits.Instances != 2 {
		t.Errorf("routes limits = %+v, want the defaults", list[1].Limits)
	}
	if p := list[0].Receives; len(p) != 1 || p[0] != (Pattern{"twin", "update", "device/+/twin/update"}) {
		t.Errorf("receives = %+v", p)
	}
	if got, want := c.Modules.Plugins.ModulePath(list[1]), "/srv/edgehost/plugins/routes.wasm"; got != want {
		t.Errorf("ModulePath = %q, want %q", got, want)
	}
	if tcp := c.Modules.API.TCP; tcp == nil || tcp.Token != "s3cret" {
		t.Errorf("api.tcp = %+v", tcp)
	}
	out, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(out, "again.yaml")
	if err != nil {
		t.Fatalf("reparse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(again, c) {
		t.Errorf("round trip changed the config:\n%s", out)
	}
}

func TestPluginConfigIsJSON(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"502":"gateway","html":"<b>&</b>","pollEvery":"1s","slaves":[{"address":"10.0.0.5:502","unitID":1}]}`
	if got := string(c.Modules.Plugins.List[0].Config); got != want {
		t.Errorf("config = %s\nwant     %s", got, want)
	}
	if c.Modules.Plugins.List[1].Config != nil {
		t.Errorf("absent config = %q, want nil", c.Modules.Plugins.List[1].Config)
	}
	c2, err := Parse([]byte("modules:\n  plugins:\n    list:\n      - name: a\n        config:\n          1: one\n          ok: [yes, 1.5]\n"), "k.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(c2.Modules.Plugins.List[0].Config), `{"1":"one","ok":["yes",1.5]}`; got != want {
		t.Errorf("config = %s, want %s", got, want)
	}
	_, err = Parse([]byte("modules:\n  plugins:\n    list:\n      - name: a\n        config:\n          x: .nan\n"), "nan.yaml")
	if err == nil || !strings.Contains(err.Error(), "line 6:") || !strings.Contains(err.Error(), "no JSON form") {
		t.Errorf("NaN in plugin config: got %v", err)
	}
}

func TestUnknownKey(t *testing.T) {
	_, err := Load("testdata/unknown-key.yaml")
	want := `testdata/unknown-key.yaml: line 7: unknown key "enabel" in modules.bus (known: enable, queueLen, sendTimeout)`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	_, err = Parse([]byte("dataDir: /x\nmodule: {}\n"), "top.yaml")
	if err == nil || !strings.Contains(err.Error(), `top.yaml: line 2: unknown key "module" at top level`) {
		t.Errorf("top-level unknown key: %v", err)
	}
	_, err = Parse([]byte("modules:\n  plugins:\n    list:\n      - name: a\n        limit: {}\n"), "list.yaml")
	if err == nil || !strings.Contains(err.Error(), `line 5: unknown key "limit" in modules.plugins.list[0]`) {
		t.Errorf("unknown key in a list item: %v", err)
	}
	// The key walk does not follow aliases; KnownFields still refuses an
	// unknown key behind one, and no wrong key path is named.
	_, err = Parse([]byte("modules:\n  plugins:\n    list:\n      - name: a\n        config: &b {bogus: 1}\n  bus: *b\n"), "alias.yaml")
	if want := "alias.yaml: line 5: field bogus not found in type config.Bus"; err == nil || err.Error() != want {
		t.Errorf("unknown key behind an alias: got %v, want %s", err, want)
	}
}

func TestWrongType(t *testing.T) {
	_, err := Load("testdata/wrong-type.yaml")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"testdata/wrong-type.yaml: ",
		"line 3: modules.bus.queueLen: cannot unmarshal !!str `lots` into int",
		"line 6: modules.plugins.limits.callTimeout: cannot unmarshal !!str `2x` into time.Duration",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for in, want := range map[string]string{
		"modules:\n  bus: 5\n":          "line 2: modules.bus must be a mapping of keys, got !!int",
		"- a\n":                         "line 1: the document must be a mapping of keys, got !!seq",
		"log: {level: [1]}\n":           "cannot unmarshal !!seq into string",
		"dataDir: /a\ndataDir: /b\n":    `mapping key "dataDir" already defined`,
		"log:\n  level: info\n\tbad\n":  "tab character",
		"dataDir: /a\n---\ndataDir: /b": "more than one YAML document",
	} {
		_, err := Parse([]byte(in), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "t.yaml: ") {
			t.Errorf("Parse(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestBadValues(t *testing.T) {
	_, err := Load("testdata/bad-values.yaml")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`log.level: must be one of trace, debug, info, warn, error, got "loud"`,
		"modules.bus.queueLen: must be > 0, got -1",
		`modules.eventbus.mode: must be one of embedded, external, both, got "sideways"`,
		`modules.plugins.list[0].name: must be 1-64 of a-z 0-9 . _ - starting and ending with a letter or digit, got "Bad/Name"`,
		"modules.plugins.list[0].limits.instances: must be > 0, got -2",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	for name, edit := range map[string]func(*Config){
		"dataDir: must be an absolute path":                       func(c *Config) { c.SetDataDir("relative") },
		"modules.bus.enable: the bus cannot be disabled":          func(c *Config) { c.Modules.Bus.Enable = false },
		"modules.bus.sendTimeout: must be > 0, got -1s":           func(c *Config) { c.Modules.Bus.SendTimeout = -time.Second },
		"store.checkTimeout: must be > 0, got 0s":                 func(c *Config) { c.Store.CheckTimeout = 0 },
		"store.snapshotInterval: must be 0 (off) or at least 1s":  func(c *Config) { c.Store.SnapshotInterval = time.Millisecond },
		"store.snapshotKeep: must be > 0, got 0":                  func(c *Config) { c.Store.SnapshotKeep = 0 },
		"modules.plugins.limits.memoryPages: must be in 1..65536": func(c *Config) { c.Modules.Plugins.Limits.MemoryPages = 70000 },
		"modules.plugins.limits.maxMessageBytes: 2000000 does not fit": func(c *Config) {
			c.Modules.Plugins.Limits.MemoryPages, c.Modules.Plugins.Limits.MaxMessageBytes = 16, 2000000
		},
		`modules.plugins.list[1].name: duplicate plugin "a"`: func(c *Config) {
			c.Modules.Plugins.List = []Plugin{{Name: "a", Limits: c.Modules.Plugins.Limits}, {Name: "a", Limits: c.Modules.Plugins.Limits}}
		},
		"modules.api.socket: longer than 107 bytes":           func(c *Config) { c.Modules.API.Socket = "/" + strings.Repeat("s", 120) },
		"modules.api.tcp.token: required when tcp is set":     func(c *Config) { c.Modules.API.TCP = &TCP{Address: ":9443"} },
		`modules.api.tcp.address: must be host:port, got ""`:  func(c *Config) { c.Modules.API.TCP = &TCP{Token: "t"} },
		`modules.eventbus.external.url: must be a broker URL`: func(c *Config) { c.Modules.EventBus.Mode = "external" },
		`modules.eventbus.external.url: scheme must be one of`: func(c *Config) {
			c.Modules.EventBus.Mode, c.Modules.EventBus.External.URL = "external", "http://b:1883"
		},
		"modules.eventbus.external.url: is the embedded broker's own address": func(c *Config) {
			c.Modules.EventBus.Mode, c.Modules.EventBus.External.URL = "both", "tcp://127.0.0.1:1883"
		},
		`modules.eventbus.embedded.address: port must be 1..65535, got "0"`: func(c *Config) { c.Modules.EventBus.Embedded.Address = "127.0.0.1:0" },
		`modules.hub.server: must be host:port, got ""`:                     func(c *Config) { c.Modules.Hub.Enable = true; c.Modules.Hub.NodeName = "n" },
		`modules.hub.nodeName: must be 1-253 characters`:                    func(c *Config) { c.Modules.Hub.Enable = true; c.Modules.Hub.Server = "h:10000" },
		`modules.hub.projectID: must be 1-253 characters`:                   func(c *Config) { c.Modules.Hub.ProjectID = "a/b" },
		`log.format: must be one of text, json, got "xml"`:                  func(c *Config) { c.Log.Format = "xml" },
		"modules.devices.dmiSocket: longer than 107 bytes":                  func(c *Config) { c.Modules.Devices.DMISocket = "/" + strings.Repeat("s", 120) },
		"modules.devices.dmiRate: must be a positive number":                func(c *Config) { c.Modules.Devices.DMIRate = 0 },
		"modules.devices.dmiBurst: must be > 0":                             func(c *Config) { c.Modules.Devices.DMIBurst = -1 },
		"modules.devices.dmiCallTimeout: must be > 0":                       func(c *Config) { c.Modules.Devices.DMICallTimeout = 0 },
		`modules.plugins.list[0].mapper.protocols[1]: "virtual" is listed twice`: func(c *Config) {
			c.Modules.Plugins.List = []Plugin{{Name: "virtual", Mapper: &Mapper{Protocols: []string{"virtual", "virtual"}}}}
		},
		`modules.plugins.list[0].mapper.protocols: must list the protocols the plugin serves`: func(c *Config) {
			c.Modules.Plugins.List = []Plugin{{Name: "virtual", Mapper: &Mapper{}}}
		},
		`modules.devices.wasmProtocols[1]: "virtual" is listed twice`: func(c *Config) {
			c.Modules.Devices.WasmProtocols = []string{"virtual", "virtual"}
		},
		`modules.plugins.restrict[0].tcp[1]: "sensor.local": want host:port`: func(c *Config) {
			c.Modules.Plugins.Restrict = []PluginRestriction{{Plugin: "m", TCP: []string{"10.0.0.5:502", "sensor.local"}}}
		},
		`modules.plugins.restrict[0].udp[0]: "[10.0.0.5]:161": IPv6 addresses go in brackets`: func(c *Config) {
			c.Modules.Plugins.Restrict = []PluginRestriction{{Plugin: "m", UDP: []string{"[10.0.0.5]:161"}}}
		},
		`modules.plugins.restrict[0].serial[0]: "ttyUSB*" is not an absolute, clean path`: func(c *Config) {
			c.Modules.Plugins.Restrict = []PluginRestriction{{Plugin: "m", Serial: []string{"ttyUSB*"}}}
		},
		`modules.hub.httpServer: must be an https:// URL`: func(c *Config) {
			c.Modules.Hub.Enable, c.Modules.Hub.Server, c.Modules.Hub.NodeName, c.Modules.Hub.HTTPServer = true, "h:1", "n", "http://h:10002"
		},
		`modules.hub.token: must have 4 dot-separated parts`: func(c *Config) {
			c.Modules.Hub.Enable, c.Modules.Hub.Server, c.Modules.Hub.NodeName, c.Modules.Hub.Token = true, "h:1", "n", "a.b"
		},
		`modules.hub.heartbeat: must be > 0`: func(c *Config) {
			c.Modules.Hub.Enable, c.Modules.Hub.Server, c.Modules.Hub.NodeName, c.Modules.Hub.Heartbeat = true, "h:1", "n", 0
		},
		`modules.hub.outbox.maxBytes: must be > 0`: func(c *Config) {
			c.Modules.Hub.Enable, c.Modules.Hub.Server, c.Modules.Hub.NodeName, c.Modules.Hub.Outbox.MaxBytes = true, "h:1", "n", -1
		},
	} {
		c := Default()
		edit(c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("got %v, want an error containing %q", err, name)
		}
	}
}

func TestUnreadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("Load(missing) = %v, want a not-exist error naming %q", err, path)
	}
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Load(dir) = %v, want an error naming %q", err, dir)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestSetDataDir(t *testing.T) {
	c := Default()
	c.SetDataDir("/data")
	if c.Modules.API.Socket != "/data/admin.sock" || c.Modules.Plugins.Dir != "/data/plugins" || c.Modules.Devices.DMISocket != "/data/dmi.sock" {
		t.Errorf("after SetDataDir: socket %q, dir %q, dmi socket %q", c.Modules.API.Socket, c.Modules.Plugins.Dir, c.Modules.Devices.DMISocket)
	}
	c, err := Parse([]byte("dataDir: /a\nmodules:\n  api:\n    socket: /run/edgehost.sock\n"), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.SetDataDir("/b")
	if c.Modules.API.Socket != "/run/edgehost.sock" {
		t.Errorf("explicit socket moved to %q", c.Modules.API.Socket)
	}
	if c.Modules.Plugins.Dir != "/b/plugins" {
		t.Errorf("default plugin dir = %q, want /b/plugins", c.Modules.Plugins.Dir)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestModulePath(t *testing.T) {
	ps := Plugins{Dir: "/p"}
	for path, want := range map[string]string{"": "/p/x.wasm", "sub/y.wasm": "/p/sub/y.wasm", "/abs/z.wasm": "/abs/z.wasm"} {
		if got := ps.ModulePath(Plugin{Name: "x", Path: path}); got != want {
			t.Errorf("ModulePath(path %q) = %q, want %q", path, got, want)
		}
	}
}

func TestEventBusSection(t *testing.T) {
	c := Default()
	if eb := c.Modules.EventBus; !eb.Enable || eb.QoS != 1 || eb.MaxPayloadBytes != 1<<20 || eb.External.QueueLen != 1024 {
		t.Errorf("eventbus defaults = %+v", eb)
	}
	in := `modules:
  eventbus:
    mode: embedded
    maxPayloadBytes: 4096
    embedded:
      address: 127.0.0.1:1884
      tls: {certFile: /etc/edgehost/broker.crt, keyFile: /etc/edgehost/broker.key}
      users: [{username: mapper, password: pw}]
      acl:
        - {username: mapper, topic: "$hw/events/device/#", read: true, write: true}
        - {topic: "public/#", read: true}
`
	c, err := Parse([]byte(in), "eb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Modules.EventBus.Embedded; len(e.ACL) != 2 || e.ACL[1].Username != "" || !e.ACL[1].Read || e.ACL[1].Write || e.TLS.KeyFile != "/etc/edgehost/broker.key" {
		t.Errorf("embedded = %+v", e)
	}
	bad := map[string]func(*Config){
		"modules.eventbus.qos: must be 0 or 1":                    func(c *Config) { c.Modules.EventBus.QoS = 2 },
		"modules.eventbus.maxPayloadBytes":                        func(c *Config) { c.Modules.EventBus.MaxPayloadBytes = 0 },
		"modules.eventbus.embedded.tls: certFile and keyFile":     func(c *Config) { c.Modules.EventBus.Embedded.TLS = &TLSFiles{CertFile: "a"} },
		`modules.eventbus.embedded.users[1].username: duplicate`:  func(c *Config) { c.Modules.EventBus.Embedded.Users = []MQTTUser{{"u", "p"}, {"u", "p"}} },
		"modules.eventbus.embedded.acl[0].topic: must be an MQTT": func(c *Config) { c.Modules.EventBus.Embedded.ACL = []ACLRule{{Topic: "a/#/b", Read: true}} },
		"modules.eventbus.embedded.acl[0]: grants nothing":        func(c *Config) { c.Modules.EventBus.Embedded.ACL = []ACLRule{{Topic: "a"}} },
		"modules.eventbus.external.queueLen: must be > 0": func(c *Config) {
			c.Modules.EventBus.Mode, c.Modules.EventBus.External.URL, c.Modules.EventBus.External.QueueLen = "external", "tcp://b:1883", 0
		},
		"modules.eventbus.subscriberQueue: must be > 0":              func(c *Config) { c.Modules.EventBus.SubscriberQueue = 0 },
		"modules.eventbus.subscriberBackpressure: must be > 0":       func(c *Config) { c.Modules.EventBus.SubscriberBackpressure = 0 },
		"modules.eventbus.localBackpressure: must be > 0":            func(c *Config) { c.Modules.EventBus.LocalBackpressure = -1 },
		"modules.eventbus.localBackpressure: must be shorter":        func(c *Config) { c.Modules.EventBus.LocalBackpressure = time.Second },
		"modules.eventbus.embedded.maxInflight: must be in 1..65535": func(c *Config) { c.Modules.EventBus.Embedded.MaxInflight = 65536 },
		"modules.eventbus.embedded.maxPendingWrites: must be > 0":    func(c *Config) { c.Modules.EventBus.Embedded.MaxPendingWrites = 0 },
		"modules.eventbus.external.tls: certFile and keyFile go": func(c *Config) {
			c.Modules.EventBus.Mode, c.Modules.EventBus.External.URL, c.Modules.EventBus.External.TLS = "external", "ssl://b:8883", &TLSFiles{KeyFile: "k"}
		},
	}
	for want, change := range bad {
		c := Default()
		change(c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q", err, want)
		}
	}
}

func TestDevicesDMI(t *testing.T) {
	c, err := Parse([]byte("dataDir: /srv/eh\nmodules:\n  devices:\n    dmiRate: 0.5\n    wasmProtocols: [virtual]\n"), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Modules.Devices; d.DMISocket != "/srv/eh/dmi.sock" || d.DMIRate != 0.5 || d.DMIBurst != 400 || !d.DMIEnable || len(d.WasmProtocols) != 1 {
		t.Errorf("devices = %+v", d)
	}
	c, err = Parse([]byte("modules:\n  devices:\n    dmiSocket: /etc/kubeedge/dmi.sock\n"), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Modules.Devices.DMISocket != "/etc/kubeedge/dmi.sock" {
		t.Errorf("dmiSocket = %q, want edgecore's path", c.Modules.Devices.DMISocket)
	}
	if _, err := Parse([]byte("modules:\n  devices:\n    dmiSocket: run/dmi.sock\n"), "d.yaml"); err == nil || !strings.Contains(err.Error(), "modules.devices.dmiSocket") {
		t.Errorf("relative dmiSocket: %v, want an error naming modules.devices.dmiSocket", err)
	}
}
