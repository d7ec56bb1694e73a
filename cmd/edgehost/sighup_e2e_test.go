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
)

// kill -HUP with a changed config and devices dir: the log level is
// applied, the changed section that needs a restart is named, the new
// device appears, no module restarts and the process stays; a bad config
// is refused and the running one kept.
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
