package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/internal/plugintest"
)

// binDir holds the binary the tests build; TestMain removes it.
var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edgehost-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinary builds the edgehost binary once per test process as `make
// build` does, with the first-party plugins embedded.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		root, err := plugintest.RepoRoot()
		if err != nil {
			binError = err
			return
		}
		overlay, err := plugintest.BuiltinOverlay(binDir)
		if err != nil {
			binError = err
			return
		}
		binPath = filepath.Join(binDir, "edgehost")
		cmd := exec.Command("go", "build", "-overlay", overlay, "-o", binPath, "./cmd/edgehost")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binError = fmt.Errorf("build edgehost: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// edgehost runs the binary with args and returns its combined output and
// exit code.
func edgehost(t *testing.T, bin, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run edgehost %v: %v", args, err)
	}
	return string(out), 0
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// shortDataDir makes a data dir with a short path, removed at the end of
// the test: unix socket paths are limited to 108 bytes.
func shortDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "eh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestDaemonEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	echo, err := plugintest.Build("examples/echo")
	if err != nil {
		t.Fatal(err)
	}
	dataDir := shortDataDir(t)
	if err := os.MkdirAll(filepath.Join(dataDir, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	module, err := os.ReadFile(echo)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "plugins", "echo.wasm"), module, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dataDir, "edgehost.yaml")
	// Never assume 1883 is free: the embedded broker gets a free port.
	yaml := "modules:\n  eventbus:\n    embedded:\n      address: " + freeAddr(t) + "\n" +
		"  plugins:\n    list:\n      - name: echo\n        receives:\n          - group: user\n            resource: \"echo/#\"\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	d := launch(t, bin, "--config", cfg, "--data-dir", dataDir)
	// Wait for readiness through the CLI, as an operator would.
	if out := d.awaitStatus(t, bin, dataDir, true, ""); !strings.Contains(out, "ready") || !strings.Contains(out, "echo") {
		t.Fatalf("status output lacks readiness or the plugin:\n%s", out)
	}

	// To the plugin by name, and through the router by group and resource.
	for _, args := range [][]string{
		{"--to", "echo"},
		{"--to", "plugins:user", "--group", "user", "--resource", "echo/a/b"},
	} {
		out, code := edgehost(t, bin, "", append([]string{"send", "--data-dir", dataDir, "--content", "hello edge"}, args...)...)
		if code != 0 {
			t.Fatalf("send %v exited %d:\n%s\nlogs:\n%s", args, code, out, d.logs.String())
		}
		var reply struct {
			Header struct {
				ParentID string `json:"parent_msg_id"`
			} `json:"header"`
			Route   struct{ Operation string } `json:"route"`
			Content string                     `json:"content"`
		}
		if err := json.Unmarshal([]byte(out), &reply); err != nil {
			t.Fatalf("send output is not a message: %v\n%s", err, out)
		}
		if reply.Content != "hello edge" || reply.Header.ParentID == "" || reply.Route.Operation != "response" {
			t.Fatalf("reply = %+v", reply)
		}
	}
	out, code := edgehost(t, bin, "", "send", "--data-dir", dataDir, "--to", "nobody", "--content", "x")
	if code == 0 || !strings.Contains(out, `"nobody"`) {
		t.Fatalf("send to an unknown module: exit %d\n%s", code, out)
	}

	// What curl --unix-socket <data-dir>/admin.sock http://edgehost/metrics
	// shows: the counters of the two messages above, in Prometheus text.
	status, metrics := adminGet(t, dataDir, "/metrics")
	if status != 200 {
		t.Fatalf("/metrics = %d\n%s", status, metrics)
	}
	for _, want := range []string{
		`edgehost_plugin_calls_total{plugin="echo"} 2`,
		`edgehost_plugin_faults_total{plugin="echo"} 0`,
		`edgehost_plugin_state{plugin="devicetwin",state="ready"} 1`,
		`edgehost_bus_messages_received_total{group="plugins",module="echo"} 1`,
		`edgehost_bus_no_module_total 1`,
		`edgehost_module_up{module="plugins"} 1`,
		"edgehost_eventbus_rejected_total 0",
		"# TYPE edgehost_store_commits_total counter",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("/metrics:\n%s", metrics)
	}

	d.stop(t)
	if _, err := os.Stat(filepath.Join(dataDir, "admin.sock")); !os.IsNotExist(err) {
		t.Errorf("admin socket left behind: %v", err)
	}
}

func TestConfigCommands(t *testing.T) {
	bin := buildBinary(t)
	def, code := edgehost(t, bin, "", "config", "default")
	if code != 0 {
		t.Fatalf("config default exited %d: %s", code, def)
	}
	if out, code := edgehost(t, bin, def, "config", "check", "-"); code != 0 {
		t.Fatalf("config check rejects the default config (exit %d): %s", code, out)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown key", []string{"config", "check", write("unknown.yaml", "modules:\n  bus:\n    enabel: true\n")},
			[]string{"line 3", `unknown key "enabel"`, "modules.bus"}},
		{"wrong type", []string{"config", "check", write("type.yaml", "modules:\n  bus:\n    queueLen: lots\n")},
			[]string{"line 3", "modules.bus.queueLen"}},
		{"bad value", []string{"config", "check", write("value.yaml", "modules:\n  bus:\n    queueLen: -1\n")},
			[]string{"modules.bus.queueLen", "must be > 0"}},
		{"unreadable", []string{"config", "check", filepath.Join(dir, "missing.yaml")},
			[]string{"missing.yaml"}},
		{"run refuses a bad config", []string{"run", "--config", filepath.Join(dir, "unknown.yaml"), "--data-dir", dir},
			[]string{`unknown key "enabel"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := edgehost(t, bin, "", c.args...)
			if code == 0 {
				t.Fatalf("exit 0, want failure; output:\n%s", out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	if out, code := edgehost(t, bin, "", "status", "--data-dir", dir); code == 0 {
		t.Fatalf("status with no daemon exited 0:\n%s", out)
	}
}
