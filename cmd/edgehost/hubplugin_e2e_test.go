package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/hub/cloud"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// TestHubDeliversPlugins: the cloud installs, upgrades, rolls back and
// removes a plugin on a node through the link with `edgehost hub plugin`,
// the package (a Go plugin of several MiB) fetched in chunks; an unsigned
// package is refused under the remote policy with the signature error
// reported upstream while the running version keeps serving.
func TestHubDeliversPlugins(t *testing.T) {
	echoWasm, err := plugintest.Build("examples/echo")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	work := t.TempDir()
	at := func(name string) string { return filepath.Join(work, name) }
	run := func(args ...string) string {
		t.Helper()
		out, code := edgehost(t, bin, "", args...)
		if code != 0 {
			t.Fatalf("edgehost %v exited %d:\n%s", args, code, out)
		}
		return out
	}
	run("plugin", "keygen", "--out", at("acme"))
	pub, err := os.ReadFile(at("acme.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pack := func(version string, sign bool) string {
		manifest, file := at("echo-"+version+".json"), at("echo-"+version+".wasm")
		if err := os.WriteFile(manifest, []byte(pluginManifest("echo", version, "{}")), 0o644); err != nil {
			t.Fatal(err)
		}
		run("plugin", "pack", "--manifest", manifest, "--module", echoWasm, "-o", file)
		if sign {
			run("plugin", "sign", "--key", at("acme.key"), file)
		}
		return file
	}
	v1, v2, unsigned := pack("1.0.0", true), pack("1.1.0", true), pack("1.2.0", false)

	r := newHubRigWith(t, rigOptions{modules: "  plugins:\n    trust:\n      keys:\n        - name: acme\n          publicKey: " + strings.TrimSpace(string(pub)) + "\n"})
	r.start()
	r.awaitFrames(route("twin", "resource", "get", "membership/detail"), 1)
	hub := []string{"--data-dir", r.hub.dir, "--node", "peer-node", "--timeout", "2m"}
	edgeInfo := func() api.PluginInfo {
		t.Helper()
		var in api.PluginInfo
		if _, body := adminGet(t, r.dataDir, "/v1/plugins/echo"); json.Unmarshal([]byte(body), &in) != nil {
			t.Fatalf("plugin info: %s", body)
		}
		return in
	}
	push := func(file, want string) {
		t.Helper()
		out := run(append([]string{"hub", "plugin", "push", file}, hub...)...)
		if !strings.Contains(out, want) {
			t.Fatalf("hub plugin push %s: want %q in:\n%s\ndaemon logs:\n%s", filepath.Base(file), want, out, r.d.logs)
		}
	}

	push(v1, "plugin echo installed: version 1.0.0")
	if in := edgeInfo(); in.Version != "1.0.0" || in.Source != "cloud" || in.State != "ready" {
		t.Fatalf("after the install the node runs %+v", in)
	}
	push(v2, "plugin echo upgraded: version 1.1.0")
	push(v2, "plugin echo unchanged: version 1.1.0")

	out, code := edgehost(t, bin, "", append([]string{"hub", "plugin", "push", unsigned}, hub...)...)
	if code == 0 || !strings.Contains(out, "package is not signed") {
		t.Fatalf("unsigned push: exit %d, want the signature refusal:\n%s", code, out)
	}
	if in := edgeInfo(); in.Version != "1.1.0" || in.State != "ready" {
		t.Fatalf("after the refused push the node runs %+v", in)
	}

	out = run(append([]string{"hub", "plugin", "rollback", "echo"}, hub...)...)
	if !strings.Contains(out, "plugin echo rolled-back: version 1.0.0") {
		t.Fatalf("rollback: %s", out)
	}
	if in := edgeInfo(); in.Version != "1.0.0" || in.Previous != "1.1.0" {
		t.Fatalf("after the rollback the node runs %+v", in)
	}

	out = run(append([]string{"hub", "plugin", "remove", "echo"}, hub...)...)
	if !strings.Contains(out, "plugin echo removed") {
		t.Fatalf("remove: %s", out)
	}
	if out, code := edgehost(t, bin, "", "plugin", "info", "echo", "--data-dir", r.dataDir); code == 0 {
		t.Fatalf("plugin info after the remove: exit 0:\n%s", out)
	}

	// The hub's view: every object ACKed, the plugin's last status.
	var reports []cloud.NodeReport
	if err := json.Unmarshal([]byte(run("hub", "get", "status", "-o", "json", "--data-dir", r.hub.dir)), &reports); err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || reports[0].Plugins["echo"].State != "removed" {
		t.Fatalf("hub reports: %+v", reports)
	}
	if o := reports[0].Objects["default/edgehostplugin/echo"]; o.Operation != "delete" || o.Acked.IsZero() {
		t.Fatalf("hub's record of the object: %+v", o)
	}
	if out := run("hub", "get", "plugins", "--data-dir", r.hub.dir); !strings.Contains(out, "removed") {
		t.Fatalf("hub get plugins: %s", out)
	}
	r.d.stop(t)
}
