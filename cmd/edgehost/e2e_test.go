package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/plugintest"
)

// buildBinary builds the edgehost binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	root, err := plugintest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "edgehost")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/edgehost")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build edgehost: %v\n%s", err, out)
	}
	return bin
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

	var logs bytes.Buffer
	daemon := exec.Command(bin, "run", "--config", cfg, "--data-dir", dataDir)
	daemon.Stdout, daemon.Stderr = &logs, &logs
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	t.Cleanup(func() {
		if daemon.ProcessState == nil {
			daemon.Process.Kill()
			<-exited
		}
	})

	// Wait for readiness through the CLI, as an operator would.
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, code := edgehost(t, bin, "", "status", "--data-dir", dataDir)
		if code == 0 {
			if !strings.Contains(out, "ready") || !strings.Contains(out, "echo") {
				t.Fatalf("status output lacks readiness or the plugin:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready: %s\nlogs:\n%s", out, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// To the plugin by name, and through the router by group and resource.
	for _, args := range [][]string{
		{"--to", "echo"},
		{"--to", "plugins:user", "--group", "user", "--resource", "echo/a/b"},
	} {
		out, code := edgehost(t, bin, "", append([]string{"send", "--data-dir", dataDir, "--content", "hello edge"}, args...)...)
		if code != 0 {
			t.Fatalf("send %v exited %d:\n%s\nlogs:\n%s", args, code, out, logs.String())
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

	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("daemon exit after SIGTERM: %v\nlogs:\n%s", err, logs.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("daemon still running 5s after SIGTERM\nlogs:\n%s", logs.String())
	}
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
