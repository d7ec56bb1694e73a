package plugins

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/host/iogrant"
	"github.com/hashicorp/go-hclog"
)

// module is a wasm binary with one (unvalidated) code section: enough for
// the section-level format.
var module = append(append([]byte(nil), wasmHeader...), 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b)

const manifest = `{"name":"demo","version":"1.2.3","kind":"handler","abi":"1",
	"capabilities":{"send":[{"group":"user","resource":"out/#"}],"kv":{"prefixes":["dev/"]}}}`

func key(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestPackParseSignVerify(t *testing.T) {
	file, err := Pack(module, []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	pub, priv := key(t)
	signed, err := Sign(file, priv)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Sign(signed, priv)
	if err != nil || !bytes.Equal(again, signed) {
		t.Fatalf("re-signing changed the package: %v", err)
	}
	repacked, err := Pack(signed, []byte(manifest))
	if err != nil || !bytes.Equal(repacked, file) {
		t.Fatalf("packing a packed module is not idempotent: %v", err)
	}
	p, err := Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Module, module) || p.Manifest.Name != "demo" || p.Signature == nil {
		t.Fatalf("parsed = %+v", p)
	}
	trust := NewTrust([]TrustedKey{{Name: "acme", PublicKey: pub}}, nil)
	if signer, err := trust.Verify(p, RequireSignature); err != nil || signer != "acme" {
		t.Fatalf("verify: %q %v", signer, err)
	}

	refuse := func(name string, file []byte, trust *Trust, policy SignaturePolicy, want error) {
		t.Helper()
		p, err := Parse(file)
		if err == nil {
			_, err = trust.Verify(p, policy)
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: error %v, want %v", name, err, want)
		}
	}
	// One byte of the code section flipped.
	tampered := bytes.Clone(signed)
	tampered[len(wasmHeader)+3] ^= 0xff
	refuse("flipped module byte", tampered, trust, RequireSignature, ErrModuleTampered)
	// One manifest field changed, signature kept.
	p2, _ := Parse(signed)
	p2.ManifestRaw = []byte(strings.Replace(manifest, "1.2.3", "1.2.4", 1))
	refuse("changed manifest", p2.Bytes(), trust, RequireSignature, ErrManifestTampered)
	// A forged signature over the right digests.
	p3, _ := Parse(signed)
	p3.Signature.Sig = p3.Signature.Sig[:4] + "AAAA" + p3.Signature.Sig[8:]
	refuse("forged signature", p3.Bytes(), trust, RequireSignature, ErrBadSignature)
	_, other := key(t)
	wrong, _ := Sign(file, other)
	refuse("unknown key", wrong, trust, RequireSignature, ErrUnknownSigner)
	refuse("revoked key", signed, NewTrust([]TrustedKey{{Name: "acme", PublicKey: pub}}, []string{"acme"}), AllowUnsigned, ErrRevokedKey)
	refuse("revoked by fingerprint", signed, NewTrust(nil, []string{Fingerprint(pub)}), AllowUnsigned, ErrRevokedKey)
	refuse("unsigned", file, trust, RequireSignature, ErrUnsigned)
	if _, err := trust.Verify(mustParse(t, file), AllowUnsigned); err != nil {
		t.Errorf("unsigned under allow-unsigned: %v", err)
	}
	if _, err := Parse(module); !errors.Is(err, ErrNoManifest) {
		t.Errorf("module without manifest: %v", err)
	}
}

func mustParse(t *testing.T, file []byte) *Package {
	t.Helper()
	p, err := Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestManifestValidation(t *testing.T) {
	bad := map[string]string{
		`"name":"demo"`:      `"name":"Demo!"`,
		`"version":"1.2.3"`:  `"version":"1.2"`,
		`"kind":"handler"`:   `"kind":"daemon"`,
		`"abi":"1"`:          `"abi":"2"`,
		`"capabilities":{`:   `"capabilities":{"mqtt":[],`,
		`{"group":"user",`:   `{"group":"",`,
		`"name":"demo",`:     `"name":"demo","limits":{"callTimeout":"soon"},`,
		`"version":"1.2.3",`: `"version":"01.2.3",`,
	}
	for from, to := range bad {
		raw := strings.Replace(manifest, from, to, 1)
		if _, err := ParseManifest([]byte(raw)); err == nil {
			t.Errorf("manifest with %s accepted", to)
		}
	}
	for _, v := range []string{"0.1.0", "1.10.0-rc.1", "2.0.0+build.5"} {
		if !validSemver(v) {
			t.Errorf("version %q refused", v)
		}
	}
}

func TestPolicy(t *testing.T) {
	m, err := ParseManifest([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPolicy(m.Capabilities, nil)
	sends := []struct {
		group, op, resource string
		want                bool
	}{
		{"user", "x", "out", true},
		{"user", "x", "out/a/b", true},
		{"user", "x", "outside", false},
		{"user", "x", "in/a", false},
		{"twin", "x", "out/a", false},
	}
	for _, s := range sends {
		if got := p.AllowSend(s.group, s.op, s.resource); got != s.want {
			t.Errorf("AllowSend(%q, %q) = %v", s.group, s.resource, got)
		}
	}
	if !p.AllowKV("dev/1") || p.AllowKV("other") {
		t.Error("AllowKV ignores the prefixes")
	}
	narrowed := NewPolicy(m.Capabilities, &Capabilities{Send: []Pattern{{Group: "user", Resource: "out/a/+"}}})
	if narrowed.AllowSend("user", "x", "out/b/c") || !narrowed.AllowSend("user", "x", "out/a/c") || narrowed.AllowKV("dev/1") {
		t.Error("the ceiling does not narrow")
	}
	if err := narrowed.CheckImports([]string{"log", "kv_get", "kv_put", "send"}); !errors.Is(err, ErrMissingGrants) ||
		!strings.Contains(err.Error(), "kv (for kv_get), kv (for kv_put)") {
		t.Errorf("CheckImports = %v", err)
	}
	if err := p.CheckImports([]string{"log", "now", "config", "kv_get", "request"}); err != nil {
		t.Errorf("CheckImports with grants = %v", err)
	}
	if err := p.CheckImports([]string{"mqtt_publish", "future_import"}); !errors.Is(err, ErrMissingGrants) ||
		!strings.Contains(err.Error(), "future_import (no grant for it exists yet)") {
		t.Errorf("an import no grant covers is accepted: %v", err)
	}
	if n := testing.AllocsPerRun(100, func() { p.AllowSend("user", "x", "out/a/b"); p.AllowKV("dev/1") }); n != 0 {
		t.Errorf("checks allocate %v times", n)
	}
}

func TestRingLogger(t *testing.T) {
	ring := NewRing(3)
	l := NewRingLogger(hclog.NewNullLogger(), ring).Named("x").With("plugin", "demo")
	l.Debug("dropped")
	for _, m := range []string{"a", "b", "c", "d"} {
		l.Info(m, "k", 1)
	}
	lines := ring.Lines(0)
	if len(lines) != 3 || lines[0].Message != "b plugin=demo k=1" || lines[2].Message != "d plugin=demo k=1" {
		t.Fatalf("lines = %+v", lines)
	}
	if got := ring.Lines(1); len(got) != 1 || got[0].Message != "d plugin=demo k=1" {
		t.Fatalf("last line = %+v", got)
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	pub, err := GenerateKey(filepath.Join(dir, "k.key"), filepath.Join(dir, "k.pub"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ReadPrivateKey(filepath.Join(dir, "k.key"))
	if err != nil || !priv.Public().(ed25519.PublicKey).Equal(pub) {
		t.Fatalf("read back: %v", err)
	}
	if _, err := GenerateKey(filepath.Join(dir, "k.key"), filepath.Join(dir, "k2.pub")); err == nil {
		t.Fatal("keygen overwrote a key")
	}
}

func TestMQTTPolicy(t *testing.T) {
	granted := Capabilities{MQTT: &MQTTGrant{Publish: []string{"examples/echo/out", "dev/+/state"}, Subscribe: []string{"examples/echo/#", "dev/+/cmd"}}}
	p := NewPolicy(granted, nil)
	publishes := map[string]bool{
		"examples/echo/out": true, "examples/echo/in": false, "dev/a/state": true, "dev/a/b/state": false, "$SYS/x": false,
	}
	for topic, want := range publishes {
		if got := p.AllowPublish(topic); got != want {
			t.Errorf("AllowPublish(%q) = %v", topic, got)
		}
	}
	subscribes := map[string]bool{
		"examples/echo/in": true, "examples/echo/+": true, "examples/echo/#": true, "examples/echo": true,
		"examples/#": false, "#": false, "+/echo/in": false, "dev/+/cmd": true, "dev/a/cmd": true, "dev/#": false,
	}
	for filter, want := range subscribes {
		if got := p.AllowSubscribe(filter); got != want {
			t.Errorf("AllowSubscribe(%q) = %v", filter, got)
		}
	}
	narrowed := NewPolicy(granted, &Capabilities{MQTT: &MQTTGrant{Publish: []string{"dev/#"}, Subscribe: []string{"examples/echo/in"}}})
	if narrowed.AllowPublish("examples/echo/out") || !narrowed.AllowPublish("dev/a/state") ||
		narrowed.AllowSubscribe("examples/echo/#") || !narrowed.AllowSubscribe("examples/echo/in") {
		t.Error("the ceiling does not narrow MQTT")
	}
	if err := p.CheckImports([]string{"mqtt_publish", "mqtt_subscribe", "mqtt_unsubscribe"}); err != nil {
		t.Errorf("CheckImports with mqtt grants = %v", err)
	}
	noSub := NewPolicy(Capabilities{MQTT: &MQTTGrant{Publish: []string{"#"}}}, nil)
	if err := noSub.CheckImports([]string{"mqtt_publish", "mqtt_unsubscribe"}); err == nil ||
		!strings.Contains(err.Error(), "mqtt.subscribe (for mqtt_unsubscribe)") {
		t.Errorf("CheckImports without the subscribe grant = %v", err)
	}
	if _, err := ParseManifest([]byte(strings.Replace(manifest, `"capabilities":{`, `"capabilities":{"mqtt":{"publish":["a/#/b"]},`, 1))); err == nil {
		t.Error("a manifest with an invalid mqtt filter is accepted")
	}
	if n := testing.AllocsPerRun(100, func() { p.AllowPublish("dev/a/state"); p.AllowSubscribe("examples/echo/+") }); n != 0 {
		t.Errorf("mqtt checks allocate %v times", n)
	}
}

// TestManifestABIMatchesImports: the manifest's abi must be a version this
// host implements and must cover the module's imports: "1" with the MQTT
// imports of ABI 1.1 is refused, naming the import and the version to
// declare, as is "1.1" with the device I/O imports of 1.2, and so is "1.3".
func TestManifestABIMatchesImports(t *testing.T) {
	mqtt := []string{"log", "mqtt_publish"}
	for _, c := range []struct {
		abi, want string
		imports   []string
	}{
		{"1", "", []string{"log", "send", "kv_put"}},
		{"1.0", "", []string{"log"}},
		{"1.1", "", mqtt},
		{"1", `abi "1", but the module imports mqtt_publish, which ABI 1.1 added: declare abi "1.1"`, mqtt},
		{"1.0", `abi "1.0", but the module imports mqtt_publish`, mqtt},
		{"1.2", "", []string{"log", "tcp_connect", "serial_read"}},
		{"1.1", `abi "1.1", but the module imports tcp_connect, which ABI 1.2 added: declare abi "1.2"`, []string{"mqtt_publish", "tcp_connect"}},
		{"1", `abi "1", but the module imports udp_open, which ABI 1.2 added`, []string{"udp_open"}},
		{"1.3", "", []string{"http_request", "http_reply", "tcp_connect"}},
		{"1.2", `abi "1.2", but the module imports http_request, which ABI 1.3 added: declare abi "1.3"`, []string{"http_request"}},
		{"1.4", `abi "1.4" is not a version this host implements (1.0 to 1.3)`, nil},
		{"1.01", "is not a version this host implements", nil},
		{"2", "is not a version this host implements", nil},
		{"1.", "is not a version this host implements", nil},
	} {
		m := Manifest{Name: "demo", Version: "1.0.0", Kind: "handler", ABI: c.abi}
		err := m.Validate()
		if err == nil {
			err = m.CheckABI(c.imports)
		}
		switch {
		case c.want == "" && err != nil:
			t.Errorf("abi %q with %v: %v", c.abi, c.imports, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("abi %q with %v: %v, want %q", c.abi, c.imports, err, c.want)
		}
	}
}

// TestDeviceIOGrants: the tcp, udp and serial grants are validated naming
// the field and index, deny by default, keep names and addresses apart,
// and are narrowed by the operator's ceiling, also at install.
func TestDeviceIOGrants(t *testing.T) {
	for _, c := range []struct{ caps, want string }{
		{`{"tcp":["10.0.0.5:502","10.0.0.5"]}`, `capabilities.tcp[1]: "10.0.0.5": want host:port`},
		{`{"udp":["10.0.0.5/8:502"]}`, `capabilities.udp[0]: "10.0.0.5/8:502": prefix 10.0.0.5/8 has bits set past its length`},
		{`{"serial":["/dev/ttyS0","dev/ttyUSB*"]}`, `capabilities.serial[1]: "dev/ttyUSB*" is not an absolute, clean path`},
		{`{"serial":["/dev/../etc/*"]}`, `capabilities.serial[0]`},
		{`{"tcp":["sensor.local:0"]}`, `capabilities.tcp[0]`},
	} {
		_, err := ParseManifest([]byte(`{"name":"m","version":"1.0.0","kind":"mapper","mapper":{"protocols":["modbus"]},"abi":"1.2","capabilities":` + c.caps + `}`))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.caps, err, c.want)
		}
	}
	m, err := ParseManifest([]byte(`{"name":"m","version":"1.0.0","kind":"mapper","mapper":{"protocols":["modbus"]},"abi":"1.2","capabilities":{
		"tcp":["10.0.0.5:502","10.0.1.0/24:502","sensor.local:7000","127.0.0.1:*"],
		"udp":["10.0.0.9:161"],"serial":["/dev/ttyUSB*","/dev/ttyS0"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	target := func(s string) iogrant.Target {
		tg, err := iogrant.ParseTarget(s)
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	p := NewPolicy(m.Capabilities, nil)
	for _, c := range []struct {
		addr     string
		tcp, udp bool
	}{
		{"10.0.0.5:502", true, false},
		{"10.0.1.200:502", true, false},
		{"10.0.2.1:502", false, false},
		{"sensor.local:7000", true, false},
		{"127.0.0.1:9", true, false},
		{"localhost:9", false, false},
		{"10.0.0.9:161", false, true},
	} {
		if got := p.AllowTCP(target(c.addr)); got != c.tcp {
			t.Errorf("AllowTCP(%s) = %v", c.addr, got)
		}
		if got := p.AllowUDP(target(c.addr)); got != c.udp {
			t.Errorf("AllowUDP(%s) = %v", c.addr, got)
		}
	}
	if !p.AllowSerial("/dev/ttyUSB3") || !p.AllowSerial("/dev/ttyS0") || p.AllowSerial("/dev/ttyS1") {
		t.Error("AllowSerial ignores the globs")
	}
	if err := p.CheckImports([]string{"tcp_connect", "tcp_read", "udp_open", "serial_open"}); err != nil {
		t.Errorf("CheckImports with grants = %v", err)
	}
	// The ceiling keeps one TCP device and no serial or UDP.
	narrowed := NewPolicy(m.Capabilities, &Capabilities{TCP: []string{"10.0.1.0/28:502"}})
	if narrowed.AllowTCP(target("10.0.0.5:502")) || !narrowed.AllowTCP(target("10.0.1.3:502")) || narrowed.AllowTCP(target("10.0.1.30:502")) ||
		narrowed.AllowSerial("/dev/ttyS0") || narrowed.AllowUDP(target("10.0.0.9:161")) {
		t.Error("the ceiling does not narrow")
	}
	err = narrowed.CheckImports([]string{"tcp_connect", "serial_open", "serial_read", "udp_recv"})
	if !errors.Is(err, ErrMissingGrants) || !strings.Contains(err.Error(), "serial (for serial_open), serial (for serial_read), udp (for udp_recv)") {
		t.Errorf("CheckImports under the ceiling = %v", err)
	}
	none := NewPolicy(Capabilities{}, nil)
	if none.AllowTCP(target("127.0.0.1:1")) || none.AllowSerial("/dev/ttyS0") {
		t.Error("no grant allows device I/O")
	}
	if err := none.CheckImports([]string{"tcp_connect"}); err == nil || !strings.Contains(err.Error(), "tcp (for tcp_connect)") {
		t.Errorf("CheckImports without the tcp grant = %v", err)
	}
}

// TestMapperManifest: a mapper declares 1-16 valid, distinct protocols,
// and only a mapper declares any; each refusal names the field.
func TestMapperManifest(t *testing.T) {
	mapper := strings.Replace(manifest, `"kind":"handler"`, `"kind":"mapper","mapper":{"protocols":["virtual","modbus-tcp"]}`, 1)
	m, err := ParseManifest([]byte(mapper))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Mapper.Protocols, []string{"virtual", "modbus-tcp"}) {
		t.Fatalf("protocols = %v", m.Mapper.Protocols)
	}
	for to, want := range map[string]string{
		`"kind":"mapper"`: "kind mapper needs mapper.protocols",
		`"kind":"handler","mapper":{"protocols":["virtual"]}`: "mapper is only for kind mapper",
		`"kind":"mapper","mapper":{"protocols":[]}`:           "mapper.protocols must list 1 to 16",
		`"kind":"mapper","mapper":{"protocols":["a b"]}`:      `mapper.protocols[0] "a b" must be`,
		`"kind":"mapper","mapper":{"protocols":["v","v"]}`:    `mapper.protocols[1] "v" is listed twice`,
	} {
		_, err := ParseManifest([]byte(strings.Replace(manifest, `"kind":"handler"`, to, 1)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("manifest with %s: error %v, want %q", to, err, want)
		}
	}
}

// TestHTTPGrants: the http grant is validated naming the index, denies
// by default, and is narrowed by the operator's ceiling.
func TestHTTPGrants(t *testing.T) {
	var c Capabilities
	if err := json.Unmarshal([]byte(`{"http":["http://127.0.0.1:8080/*","ftp://h/"]}`), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), `capabilities.http[1]: "ftp://h/": scheme must be http or https`) {
		t.Errorf("validate: %v", err)
	}
	u := func(s string) *url.URL {
		v, _ := url.Parse(s)
		return v
	}
	p := NewPolicy(Capabilities{HTTP: []string{"http://127.0.0.1:8080/*", "https://api.example.com/v1/*"}}, nil)
	if !p.AllowHTTP(u("http://127.0.0.1:8080/a")) || !p.AllowHTTP(u("https://api.example.com/v1/x")) ||
		p.AllowHTTP(u("http://127.0.0.1:8081/a")) || p.AllowHTTP(u("https://api.example.com/v2/x")) {
		t.Error("AllowHTTP ignores the patterns")
	}
	narrowed := NewPolicy(Capabilities{HTTP: []string{"http://127.0.0.1:8080/*"}}, &Capabilities{HTTP: []string{"http://127.0.0.1:8080/public/*"}})
	if !narrowed.AllowHTTP(u("http://127.0.0.1:8080/public/x")) || narrowed.AllowHTTP(u("http://127.0.0.1:8080/private")) {
		t.Error("the ceiling does not narrow http")
	}
	if NewPolicy(Capabilities{}, nil).AllowHTTP(u("http://127.0.0.1:8080/")) {
		t.Error("http allowed without a grant")
	}
}
