package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// kill -HUP with a changed config and devices dir: the log level is
// applied, the changed section that needs a restart is named, the new
// device appears, the device already there keeps its twin (nothing is
// lost), no module restarts and the process stays; a bad config is
// refused and the running one kept.
func TestSIGHUPReloads(t *testing.T) {
	bin := buildBinary(t)
	needTwinWiring(t, bin)
	dataDir := shortDataDir(t)
	devicesDir := filepath.Join(dataDir, "devices")
	if err := os.Mkdir(devicesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(devicesDir, "sim.yaml"), []byte(virtualDevice), 0o644); err != nil {
		t.Fatal(err)
	}
	broker := freeAddr(t)
	config := func(level string, qps int) string {
		return fmt.Sprintf("log:\n  level: %s\nmodules:\n  eventbus:\n    embedded:\n      address: %s\n"+
			"  hub:\n    nodeName: edge-1\n    messageQPS: %d\n  devices:\n    dir: %s\n", level, broker, qps, devicesDir)
	}
	cfg := writeConfig(t, dataDir, config("info", 30))
	d := startDaemon(t, bin, cfg, dataDir)
	defer d.stop(t)
	pid := d.cmd.Process.Pid
	// countTwin is sim-0's reported count and its edge version, once the
	// mapper has reported at least minEdge updates.
	countTwin := func(minEdge int64) (string, int64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			out, code := edgehost(t, bin, "", "twin", "get", "default/sim-0", "-o", "json", "--data-dir", dataDir)
			var tw api.DeviceTwin
			if code == 0 && json.Unmarshal([]byte(out), &tw) == nil {
				for _, p := range tw.Properties {
					if p.Name == "count" && p.Reported != nil && p.ReportedVersion != nil && p.ReportedVersion.Edge >= minEdge {
						return *p.Reported, p.ReportedVersion.Edge
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("sim-0 never reported a count:\n%s", out)
			}
		}
	}
	// Some 5 s of reports (one each 200 ms), so that a twin reset by the
	// reload could not have caught up by the time it is read again.
	_, edgeBefore := countTwin(25)

	writeConfig(t, dataDir, config("debug", 50))
	late := strings.ReplaceAll(strings.SplitN(virtualDevice, "---\n", 2)[0], "sim-0", "late-0")
	if err := os.WriteFile(filepath.Join(devicesDir, "late.yaml"), []byte(late), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	awaitLog := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(d.logs.String(), want); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the log never said %q:\n%s", want, d.logs)
			}
		}
	}
	awaitLog(`SIGHUP: config reloaded: applied=["log.level=debug"] changed_needs_restart=["modules.hub"]`)
	awaitLog("SIGHUP: devices dir reloaded")
	if count, edge := countTwin(0); edge < edgeBefore {
		t.Errorf("sim-0's count after the reload: %s at edge version %d, before it %d: the twin was reset", count, edge, edgeBefore)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, code := edgehost(t, bin, "", "devices", "list", "-o", "json", "--data-dir", dataDir)
		if code == 0 && strings.Contains(out, `"default/late-0"`) && strings.Contains(out, `"default/sim-0"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new device never appeared:\n%s", out)
		}
	}
	after := d.logs.String()[strings.Index(d.logs.String(), "SIGHUP: config reloaded"):]
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(after, "[DEBUG]"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no debug line after the reload to debug:\n%s", after)
		}
		after = d.logs.String()[strings.Index(d.logs.String(), "SIGHUP: config reloaded"):]
	}

	// A bad config is refused; the daemon goes on with the running one.
	writeConfig(t, dataDir, "log:\n  level: loud\n")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	awaitLog(`SIGHUP: config not reloaded; the running one is kept: error="`)

	out, code := edgehost(t, bin, "", "status", "-o", "json", "--data-dir", dataDir)
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || d.cmd.Process.Pid != pid {
		t.Fatalf("status after the reloads: exit %d %v\n%s", code, err, out)
	}
	for _, m := range st.Modules {
		if m.Restarts != 0 {
			t.Errorf("module %s restarted %d times across the reloads", m.Name, m.Restarts)
		}
	}
	select {
	case err := <-d.exited:
		t.Fatalf("daemon exited: %v\n%s", err, d.logs)
	default:
	}
}

// kill -HUP with a changed plugin dir and trust store, against the real
// binary: a new file is loaded, a bad one refused with its reason while
// everything running keeps serving, a changed one swapped in, a removed one
// unloaded; a key added to the trust store admits the next signed install.
// `edgehost plugin reload` does the same through the admin API.
func TestSIGHUPReloadsPluginDirAndTrust(t *testing.T) {
	bin := buildBinary(t)
	kvWasm, err := plugintest.Build("examples/kvcounter")
	if err != nil {
		t.Fatal(err)
	}
	dataDir := shortDataDir(t)
	pluginDir := filepath.Join(dataDir, "plugins")
	copyPlugin(t, "examples/echo", filepath.Join(pluginDir, "echo.wasm"))
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
	dd := []string{"--data-dir", dataDir}
	send := func(to, content, want string) {
		t.Helper()
		if out := run(append([]string{"send", "--to", to, "--content", content}, dd...)...); !strings.Contains(out, want) {
			t.Fatalf("send to %s: reply lacks %q:\n%s", to, want, out)
		}
	}
	run("plugin", "keygen", "--out", at("acme"))
	pub, err := os.ReadFile(at("acme.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(at("counter.json"), []byte(pluginManifest("counter", "1.0.0", `{"kv":{}}`)), 0o644); err != nil {
		t.Fatal(err)
	}
	run("plugin", "pack", "--manifest", at("counter.json"), "--module", kvWasm, "-o", at("counter.wasm"))
	run("plugin", "sign", "--key", at("acme.key"), at("counter.wasm"))
	config := func(keys string) string {
		return "modules:\n  eventbus:\n    enable: false\n  plugins:\n    trust:\n      keys: [" + keys + "]\n" +
			"      policy: {local: require-signature, remote: require-signature}\n"
	}
	cfg := writeConfig(t, dataDir, config(""))
	d := startDaemon(t, bin, cfg, dataDir)
	defer d.stop(t)
	pid := d.cmd.Process.Pid
	awaitLog := func(want ...string) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if line := logLineWith(d.logs.String(), want...); line != "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the log never had a line with %q:\n%s", want, d.logs)
			}
		}
	}
	hup := func() {
		t.Helper()
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	send("echo", "hello", `"content": "hello"`)
	if out, code := edgehost(t, bin, "", append([]string{"plugin", "install", at("counter.wasm")}, dd...)...); code == 0 ||
		!strings.Contains(out, "not in the trust store") {
		t.Fatalf("install signed by a key not yet trusted: exit %d:\n%s", code, out)
	}

	// A new file, a bad file and a new key.
	copyPlugin(t, "examples/kvcounter", filepath.Join(pluginDir, "kvcounter.wasm"))
	if err := os.WriteFile(filepath.Join(pluginDir, "bad.wasm"), []byte("not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dataDir, config(fmt.Sprintf("{name: acme, publicKey: %q}", strings.TrimSpace(string(pub)))))
	hup()
	awaitLog("SIGHUP: trust store reloaded:", "keys=1 added=1 removed=0 revoked=0")
	awaitLog("SIGHUP: plugin dir reloaded, not fully:", "plugins=2 loaded=1 upgraded=0 removed=0 unchanged=1", "bad.wasm: ")
	awaitLog("plugin file refused; what served before serves on:", "bad.wasm")
	send("kvcounter", "", `devices`)
	send("echo", "after the reload", `"content": "after the reload"`)
	if out := run(append([]string{"plugin", "install", at("counter.wasm")}, dd...)...); !strings.Contains(out, "signer acme") {
		t.Fatalf("install signed by the added key:\n%s", out)
	}

	// Through the admin API: a running plugin's file turned bad is refused
	// and the plugin serves on; a removed file's plugin is unloaded.
	if err := os.WriteFile(filepath.Join(pluginDir, "echo.wasm"), []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"kvcounter.wasm", "bad.wasm"} {
		if err := os.Remove(filepath.Join(pluginDir, f)); err != nil {
			t.Fatal(err)
		}
	}
	split, code := edgehostSplit(t, bin, append([]string{"plugin", "reload", "-o", "json"}, dd...)...)
	var rep api.PluginsReport
	if err := json.Unmarshal([]byte(split.stdout), &rep); err != nil || code != exitRemote || len(rep.Refused) != 1 ||
		!strings.Contains(rep.Refused[0], "echo.wasm") || len(rep.Removed) != 1 || rep.Removed[0] != "kvcounter" || rep.Trust == nil || rep.Trust.Keys != 1 {
		t.Fatalf("plugin reload: exit %d, %v:\n%s", code, err, split.all())
	}
	send("echo", "still serving", `"content": "still serving"`)
	if out, code := edgehost(t, bin, "", append([]string{"send", "--to", "kvcounter", "--content", ""}, dd...)...); code == 0 {
		t.Fatalf("the removed plugin answered:\n%s", out)
	}

	// A changed file is swapped in.
	if err := os.WriteFile(filepath.Join(pluginDir, "echo.wasm"), plugintest.MustRead(t, "examples/kvcounter"), 0o644); err != nil {
		t.Fatal(err)
	}
	hup()
	awaitLog("SIGHUP: plugin dir reloaded:", "plugins=1 loaded=0 upgraded=1 removed=0 unchanged=0")
	send("echo", "", `devices`)
	send("counter", "", `devices`)

	out, code := edgehost(t, bin, "", append([]string{"status", "-o", "json"}, dd...)...)
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || d.cmd.Process.Pid != pid {
		t.Fatalf("status after the reloads: exit %d %v\n%s", code, err, out)
	}
	for _, m := range st.Modules {
		if m.Restarts != 0 {
			t.Errorf("module %s restarted %d times across the reloads", m.Name, m.Restarts)
		}
	}
	select {
	case err := <-d.exited:
		t.Fatalf("daemon exited: %v\n%s", err, d.logs)
	default:
	}
}

// logLineWith returns the first line of logs holding every one of want, or
// "".
func logLineWith(logs string, want ...string) string {
	for _, line := range strings.Split(logs, "\n") {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return line
		}
	}
	return ""
}
