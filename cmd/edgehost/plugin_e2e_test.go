package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/plugins"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// daemonProc is a running `edgehost run`.
type daemonProc struct {
	cmd    *exec.Cmd
	logs   *logBuffer
	exited chan error
}

// logBuffer collects a process's output; the test may read it while the
// process still writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startDaemon runs the daemon on cfg and dataDir and waits until it is
// ready.
func startDaemon(t *testing.T, bin, cfg, dataDir string) *daemonProc {
	t.Helper()
	d := launch(t, bin, "--config", cfg, "--data-dir", dataDir)
	d.awaitStatus(t, bin, dataDir, true, "")
	return d
}

// launch runs `edgehost run` with args and returns at once; the process is
// killed at the end of the test if it still runs.
func launch(t *testing.T, bin string, args ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{logs: &logBuffer{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(bin, append([]string{"run"}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			<-d.exited
		}
	})
	return d
}

// awaitStatus polls `edgehost status` until it reports ready (exit 0) or,
// with ready false, not ready (exit 3, exitRemote) with want in its output; it returns
// that output.
func (d *daemonProc) awaitStatus(t *testing.T, bin, dataDir string, ready bool, want string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, code := edgehost(t, bin, "", "status", "--data-dir", dataDir)
		if ready && code == 0 || !ready && code == exitRemote && strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon never reported ready=%v %q; last status (exit %d):\n%s\nlogs:\n%s", ready, want, code, out, d.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemonProc) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		if err != nil {
			t.Fatalf("daemon exit: %v\nlogs:\n%s", err, d.logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("daemon still running 10s after SIGTERM\nlogs:\n%s", d.logs)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func pluginManifest(name, version, caps string) string {
	return fmt.Sprintf(`{"name":%q,"version":%q,"kind":"handler","abi":"1","description":"e2e","author":"tests","capabilities":%s}`,
		name, version, caps)
}

// TestPluginLifecycleEndToEnd drives the plugin commands against the real
// binary: pack, keygen, sign, install under both signature policies, the
// refusals (each with its reason, while the running plugins keep serving),
// upgrade, rollback, disable, enable, logs, a restart, and remove.
func TestPluginLifecycleEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	echoWasm, err := plugintest.Build("examples/echo")
	if err != nil {
		t.Fatal(err)
	}
	kvWasm, err := plugintest.Build("examples/kvcounter")
	if err != nil {
		t.Fatal(err)
	}
	dataDir := shortDataDir(t)
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
	admin := []string{"--data-dir", dataDir}
	remote := []string{"--admin", "", "--token", "s3cret"}
	refused := func(args []string, want string) {
		t.Helper()
		out, code := edgehost(t, bin, "", args...)
		if code == 0 || !strings.Contains(out, want) {
			t.Fatalf("edgehost %v: exit %d, want a refusal saying %q:\n%s", args, code, want, out)
		}
	}
	send := func(to, content, want string) {
		t.Helper()
		out := run(append([]string{"send", "--to", to, "--content", content}, admin...)...)
		if !strings.Contains(out, want) {
			t.Fatalf("send to %s: reply lacks %q:\n%s", to, want, out)
		}
	}

	// Authoring: keys, manifests, packages.
	for _, k := range []string{"acme", "rogue", "old"} {
		run("plugin", "keygen", "--out", at(k))
	}
	pubOf := func(k string) string {
		b, err := os.ReadFile(at(k + ".pub"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	packAs := func(out, module, manifest string) string {
		t.Helper()
		if err := os.WriteFile(at(out+".json"), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		run("plugin", "pack", "--manifest", at(out+".json"), "--module", module, "-o", at(out+".wasm"))
		return at(out + ".wasm")
	}
	echo1 := packAs("echo1", echoWasm, pluginManifest("echo", "1.0.0", "{}"))
	echo2 := packAs("echo2", echoWasm, pluginManifest("echo", "1.1.0", "{}"))
	kvCaps := `{"kv":{"prefixes":["device/"]}}`
	kv := packAs("kv", kvWasm, pluginManifest("kvcounter", "0.1.0", kvCaps))
	run("plugin", "sign", "--key", at("acme.key"), kv)

	addr := freePort(t)
	remote[1] = "http://" + addr
	cfg := filepath.Join(dataDir, "edgehost.yaml")
	oldPub, _ := plugins.ParsePublicKey(pubOf("old"))
	config := fmt.Sprintf(`modules:
  eventbus:
    enable: false
  api:
    tcp:
      address: %q
      token: s3cret
  plugins:
    trust:
      keys:
        - name: acme
          publicKey: %q
        - name: old
          publicKey: %q
      revoked: [%q]
      policy:
        local: allow-unsigned
        remote: require-signature
`, addr, pubOf("acme"), pubOf("old"), plugins.Fingerprint(oldPub))
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, bin, cfg, dataDir)

	// Unsigned, locally, under allow-unsigned.
	out := run(append([]string{"plugin", "install", echo1}, admin...)...)
	if !strings.Contains(out, "installed echo 1.0.0") {
		t.Fatalf("install output: %s", out)
	}
	t.Logf("first install: %s", strings.TrimSpace(out))
	send("echo", "hello", `"content": "hello"`)
	// Remotely, under require-signature: unsigned refused, signed accepted.
	unsignedKV := packAs("kv-unsigned", kvWasm, pluginManifest("kvcounter", "0.1.0", kvCaps))
	refused(append([]string{"plugin", "install", unsignedKV}, remote...), "package is not signed")
	if out := run(append([]string{"plugin", "install", kv}, remote...)...); !strings.Contains(out, "signer acme") {
		t.Fatalf("signed install output: %s", out)
	}
	send("kvcounter", `{"device":"d1","temperature_c":21.5}`, `"count": 1`)

	// Refusals, each with its reason; the running plugins keep serving.
	signedEcho := at("echo-signed.wasm")
	run("plugin", "sign", "--key", at("acme.key"), "-o", signedEcho, echo2)
	file, _ := os.ReadFile(signedEcho)
	pkg, err := plugins.Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(file)
	flipped[len(pkg.Module)/2] ^= 0x01
	changed := *pkg
	changed.ManifestRaw = bytes.Replace(pkg.ManifestRaw, []byte(`"1.1.0"`), []byte(`"1.1.1"`), 1)
	write := func(name string, b []byte) string {
		if err := os.WriteFile(at(name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return at(name)
	}
	wrongKey := at("echo-rogue.wasm")
	run("plugin", "sign", "--key", at("rogue.key"), "-o", wrongKey, echo2)
	revoked := at("echo-old.wasm")
	run("plugin", "sign", "--key", at("old.key"), "-o", revoked, echo2)
	noGrant := packAs("kv-nogrant", kvWasm, pluginManifest("kv2", "0.1.0", "{}"))
	run("plugin", "sign", "--key", at("acme.key"), noGrant)
	for _, c := range []struct {
		file, want string
	}{
		{write("flipped.wasm", flipped), "module was changed after signing"},
		{write("changed.wasm", changed.Bytes()), "manifest was changed after signing"},
		{wrongKey, "signed by a key that is not in the trust store"},
		{revoked, "signed by a revoked key: old"},
	} {
		refused(append([]string{"plugin", "upgrade", c.file}, remote...), c.want)
		send("echo", "still", `"content": "still"`)
	}
	refused(append([]string{"plugin", "install", noGrant}, remote...), "missing grants: kv (for kv_get)")
	send("kvcounter", `{"device":"d1"}`, `"count": 1`)

	// Upgrade, rollback, disable, enable, logs.
	run(append([]string{"plugin", "upgrade", echo2}, admin...)...)
	var list []struct {
		Name, Version, Previous, State, Signer, Origin string
		Enabled                                        bool
		CompileMS                                      float64 `json:"compile_ms"`
		LoadMS                                         float64 `json:"load_ms"`
	}
	listPlugins := func() map[string]int {
		t.Helper()
		out := run(append([]string{"plugin", "list", "-o", "json"}, admin...)...)
		list = nil
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("list -o json: %v\n%s", err, out)
		}
		idx := map[string]int{}
		for i, p := range list {
			idx[p.Name] = i
		}
		return idx
	}
	idx := listPlugins()
	if e := list[idx["echo"]]; e.Version != "1.1.0" || e.Previous != "1.0.0" || e.State != "ready" || e.Origin != "installed" {
		t.Fatalf("echo after upgrade: %+v", e)
	}
	run(append([]string{"plugin", "rollback", "echo"}, admin...)...)
	out = run(append([]string{"plugin", "info", "echo"}, admin...)...)
	if !strings.Contains(out, `"version": "1.0.0"`) || !strings.Contains(out, `"previous": "1.1.0"`) {
		t.Fatalf("info after rollback:\n%s", out)
	}
	run(append([]string{"plugin", "disable", "echo"}, admin...)...)
	if out, code := edgehost(t, bin, "", append([]string{"send", "--to", "echo", "--content", "x"}, admin...)...); code == 0 {
		t.Fatalf("send to a disabled plugin succeeded:\n%s", out)
	}
	run(append([]string{"plugin", "enable", "echo"}, admin...)...)
	send("echo", "back", `"content": "back"`)
	if out := run(append([]string{"plugin", "logs", "echo"}, admin...)...); !strings.Contains(out, "plugin rollback") {
		t.Fatalf("logs lack the rollback:\n%s", out)
	}
	run(append([]string{"plugin", "disable", "kvcounter"}, admin...)...)

	// Restart: same versions, same enabled state, from the compilation cache.
	d.stop(t)
	d = startDaemon(t, bin, cfg, dataDir)
	idx = listPlugins()
	e, k := list[idx["echo"]], list[idx["kvcounter"]]
	if e.Version != "1.0.0" || e.Previous != "1.1.0" || !e.Enabled || e.State != "ready" {
		t.Fatalf("echo after restart: %+v", e)
	}
	if k.Version != "0.1.0" || k.Enabled || k.State != "disabled" || k.Signer != "acme" {
		t.Fatalf("kvcounter after restart: %+v", k)
	}
	t.Logf("echo after restart: compile %.1f ms, load (compile+instantiate+init) %.1f ms", e.CompileMS, e.LoadMS)
	send("echo", "again", `"content": "again"`)
	run(append([]string{"plugin", "enable", "kvcounter"}, admin...)...)
	send("kvcounter", `{"device":"d1"}`, `"count": 1`)
	run(append([]string{"plugin", "remove", "kvcounter"}, admin...)...)
	refused(append([]string{"plugin", "info", "kvcounter"}, admin...), "404")
	d.stop(t)
}
