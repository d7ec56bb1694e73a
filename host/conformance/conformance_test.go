package conformance

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/plugins"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/edgehost/edgehost/internal/plugintest"
)

func TestMain(m *testing.M) { plugintest.Main(m) }

// pack builds the Go plugin in dir and packs it with a manifest.
func pack(t *testing.T, dir, manifest string) []byte {
	t.Helper()
	module := plugintest.MustRead(t, dir)
	file, err := plugins.Pack(module, []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func manifest(name, abiVersion, caps string) string {
	return fmt.Sprintf(`{"name":%q,"version":"1.0.0","kind":"handler","abi":%q,"capabilities":%s}`, name, abiVersion, caps)
}

func check(t *testing.T, file []byte, opts Options) *Report {
	t.Helper()
	opts.CacheDir = plugintest.CacheDir(t)
	if opts.Calls == 0 {
		opts.Calls = 300
	}
	rep, err := Run(context.Background(), file, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func result(rep *Report, name string) Check {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	return Check{Name: name, Result: "missing"}
}

// TestExamplesConform: every SDK's three examples pass the checks.
func TestExamplesConform(t *testing.T) {
	cases := []struct {
		name, manifest string
		route          abi.Route
	}{
		{"echo", manifest("echo", "1", "{}"), abi.Route{}},
		{"kvcounter", manifest("kvcounter", "1", `{"kv":{}}`), abi.Route{Source: "t", Group: "user", Operation: "incr", Resource: "kvcounter/n"}},
		{"mqtt-echo", manifest("mqtt-echo", "1.1", `{"mqtt":{"publish":["#"],"subscribe":["#"]}}`), abi.Route{}},
	}
	for _, lang := range plugintest.Languages {
		t.Run(lang, func(t *testing.T) {
			plugintest.NeedLanguage(t, lang)
			for _, c := range cases {
				file, err := plugins.Pack(plugintest.MustReadExample(t, lang, c.name), []byte(c.manifest))
				if err != nil {
					t.Fatal(err)
				}
				rep := check(t, file, Options{Message: c.route})
				for _, ch := range rep.Checks {
					if ch.Result == Fail {
						t.Errorf("%s %s: %s failed: %s", lang, c.name, ch.Name, ch.Detail)
					}
				}
				if !rep.Passed() || len(rep.Checks) < 12 {
					t.Errorf("%s %s: report %+v", lang, c.name, rep)
				}
			}
		})
	}
}

// Each rule broken is reported as a failure of its own check, naming what
// is wrong.
func TestBrokenPluginsAreReported(t *testing.T) {
	faulty := plugintest.MustRead(t, "host/wasm/testdata/plugins/faulty")
	cases := []struct {
		name  string
		file  []byte
		route abi.Route
		check string
		want  string
	}{
		{"a handler that traps", faulty, abi.Route{Group: "user", Operation: "panic", Resource: "x"}, "handle", "fault (trap)"},
		{"a handler that loops", faulty, abi.Route{Group: "user", Operation: "loop", Resource: "x"}, "handle", "fault (timeout)"},
		{"a reply outside memory", faulty, abi.Route{Group: "user", Operation: "badptr", Resource: "x"}, "handle", "outside memory"},
		{"an import the host lacks", plugintest.MustRead(t, "host/wasm/testdata/plugins/badimport"), abi.Route{}, "exports and imports", "does not provide"},
		{"abi 1 with MQTT imports", pack(t, "examples/mqtt-echo", manifest("mqtt-echo", "1", `{"mqtt":{"publish":["#"],"subscribe":["#"]}}`)), abi.Route{},
			"manifest abi", "declare abi \"1.1\""},
		{"MQTT imports without the grant", pack(t, "examples/mqtt-echo", manifest("mqtt-echo", "1.1", "{}")), abi.Route{}, "grants", "mqtt"},
		{"not a package", []byte("not a wasm module"), abi.Route{}, "package", "plugin package"},
	}
	for _, c := range cases {
		rep := check(t, c.file, Options{Message: c.route, Calls: 20})
		got := result(rep, c.check)
		if got.Result != Fail || !strings.Contains(got.Detail, c.want) || rep.Passed() {
			t.Errorf("%s: check %q = %+v, want a failure saying %q", c.name, c.check, got, c.want)
		}
	}
	// A module that needs more memory at start than the limit.
	rep := check(t, faulty, Options{Limits: wasm.Limits{MemoryPages: 8}})
	if got := result(rep, "initial memory"); got.Result != Fail || !strings.Contains(got.Detail, "over the limit of 8") {
		t.Errorf("initial memory over the limit: %+v", got)
	}
}
