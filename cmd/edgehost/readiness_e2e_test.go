package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgehost/edgehost/internal/mosquitto"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// adminGet GETs path from the daemon's admin API over its unix socket, as
// curl --unix-socket would.
func adminGet(t *testing.T, dataDir, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", filepath.Join(dataDir, "admin.sock"))
		}}}
	resp, err := c.Get("http://edgehost" + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

func readyz(t *testing.T, dataDir string) (int, string) { return adminGet(t, dataDir, "/readyz") }

// notReadyFor waits until status and /readyz both say not ready for want,
// then checks /readyz names it too.
func notReadyFor(t *testing.T, bin, dataDir string, d *daemonProc, want string) {
	t.Helper()
	d.awaitStatus(t, bin, dataDir, false, want)
	code, body := readyz(t, dataDir)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, want) {
		t.Fatalf("/readyz = %d %s, want 503 naming %q", code, body, want)
	}
}

// readyAgain waits until status says ready and checks /readyz agrees.
func readyAgain(t *testing.T, bin, dataDir string, d *daemonProc) {
	t.Helper()
	d.awaitStatus(t, bin, dataDir, true, "")
	if code, body := readyz(t, dataDir); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s after the fix", code, body)
	}
}

func writeConfig(t *testing.T, dataDir, yaml string) string {
	t.Helper()
	cfg := filepath.Join(dataDir, "edgehost.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func copyPlugin(t *testing.T, pkg, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, plugintest.MustRead(t, pkg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBuiltinTwinWithNoConfig runs the daemon as a newcomer would, with no
// config, an empty data dir and a devices dir: the device twin built into
// the binary answers KubeEdge twin requests over MQTT on the default port.
func TestBuiltinTwinWithNoConfig(t *testing.T) {
	bin := buildBinary(t)
	if l, err := net.Listen("tcp", "127.0.0.1:1883"); err != nil {
		t.Skipf("the default MQTT port is taken here (%v); this test needs it", err)
	} else {
		l.Close()
	}
	dataDir, devices := shortDataDir(t), t.TempDir()
	device := "apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: sensor-0, namespace: default}\n" +
		"spec:\n  properties:\n    - name: temp\n      desired: {value: \"20\", metadata: {type: int}}\n"
	if err := os.WriteFile(filepath.Join(devices, "sensor.yaml"), []byte(device), 0o644); err != nil {
		t.Fatal(err)
	}
	d := launch(t, bin, "--data-dir", dataDir, "--devices-dir", devices)
	out := d.awaitStatus(t, bin, dataDir, true, "")
	if !strings.Contains(out, "devicetwin") {
		t.Fatalf("status does not list the built-in devicetwin:\n%s", out)
	}

	results := make(chan string, 4)
	opts := mqtt.NewClientOptions().AddBroker("tcp://127.0.0.1:1883").SetClientID("newcomer")
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to the default port: %v", tok.Error())
	}
	defer c.Disconnect(100)
	const topic = "$hw/events/device/default/sensor-0/twin/update"
	if tok := c.Subscribe(topic+"/result", 1, func(_ mqtt.Client, m mqtt.Message) { results <- string(m.Payload()) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	// The devices are handed to the plugin just after it loads; an update
	// that arrives first is answered 404, so ask until the device is known.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		ev := fmt.Sprintf("e%d", i)
		c.Publish(topic, 1, false, `{"event_id":"`+ev+`","timestamp":1,"twin":{"temp":{"actual":{"value":"18"}}}}`).Wait()
		select {
		case res := <-results:
			if strings.Contains(res, `"event_id":"`+ev+`"`) && !strings.Contains(res, `"code"`) && strings.Contains(res, `"18"`) {
				d.stop(t)
				return
			}
			t.Logf("result: %s", res)
		case <-time.After(2 * time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no twin update result for sensor-0\nlogs:\n%s", d.logs)
		}
	}
}

// TestReadinessTellsTheTruth checks that /readyz and `edgehost status`
// report not ready, with the reason, for each way a daemon can run without
// serving fully, and ready again once it is fixed.
func TestReadinessTellsTheTruth(t *testing.T) {
	bin := buildBinary(t)

	t.Run("missing configured plugin", func(t *testing.T) {
		dataDir := shortDataDir(t)
		cfg := writeConfig(t, dataDir, "modules:\n  eventbus:\n    enable: false\n  plugins:\n    list:\n      - name: echo\n")
		d := launch(t, bin, "--config", cfg, "--data-dir", dataDir)
		notReadyFor(t, bin, dataDir, d, "plugin echo (config) failed to load")
		d.stop(t)
		copyPlugin(t, "examples/echo", filepath.Join(dataDir, "plugins", "echo.wasm"))
		d = launch(t, bin, "--config", cfg, "--data-dir", dataDir)
		readyAgain(t, bin, dataDir, d)
		d.stop(t)
	})

	t.Run("quarantined plugin", func(t *testing.T) {
		dataDir := shortDataDir(t)
		copyPlugin(t, "host/wasm/testdata/plugins/faulty", filepath.Join(dataDir, "plugins", "faulty.wasm"))
		cfg := writeConfig(t, dataDir, "modules:\n  eventbus:\n    enable: false\n")
		d := launch(t, bin, "--config", cfg, "--data-dir", dataDir)
		d.awaitStatus(t, bin, dataDir, true, "")
		// Five traps in a row quarantine a plugin (wasm.DefaultQuarantineAfter).
		for range 5 {
			edgehost(t, bin, "", "send", "--data-dir", dataDir, "--to", "faulty", "--operation", "panic")
		}
		notReadyFor(t, bin, dataDir, d, "plugin faulty is quarantined")
		// After the backoff one call is let through as a probe; it succeeds
		// (the reply is the echo, not an error), and the quarantine ends.
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, code := edgehost(t, bin, "", "send", "--data-dir", dataDir, "--to", "faulty", "--operation", "echo", "--content", "hi")
			if code == 0 && strings.Contains(out, `"operation": "response"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the quarantined plugin never answered: %s", out)
			}
			time.Sleep(200 * time.Millisecond)
		}
		readyAgain(t, bin, dataDir, d)
		d.stop(t)
	})

	t.Run("no twin plugin", func(t *testing.T) {
		dataDir := shortDataDir(t)
		cfg := writeConfig(t, dataDir, "modules:\n  eventbus:\n    enable: false\n  plugins:\n    builtin: false\n")
		d := launch(t, bin, "--config", cfg, "--data-dir", dataDir)
		notReadyFor(t, bin, dataDir, d, "the twin plugin devicetwin is not running")
		d.stop(t)
		copyPlugin(t, "plugins/devicetwin", filepath.Join(dataDir, "plugins", "devicetwin.wasm"))
		d = launch(t, bin, "--config", cfg, "--data-dir", dataDir)
		readyAgain(t, bin, dataDir, d)
		d.stop(t)
	})

	t.Run("unreachable external broker", func(t *testing.T) {
		dataDir := shortDataDir(t)
		broker := mosquitto.New(t, freeAddr(t))
		cfg := writeConfig(t, dataDir, fmt.Sprintf("modules:\n  eventbus:\n    mode: external\n    external:\n      url: tcp://%s\n      reconnectMax: 500ms\n", broker.Addr))
		d := launch(t, bin, "--config", cfg, "--data-dir", dataDir)
		notReadyFor(t, bin, dataDir, d, "external broker tcp://"+broker.Addr+" is not connected")
		broker.Start()
		readyAgain(t, bin, dataDir, d)
		d.stop(t)
	})
}

// TestSIGTERMDuringCompile stops the daemon while it compiles its plugins
// from a cold cache: it must exit 0, not crash inside wazero.
func TestSIGTERMDuringCompile(t *testing.T) {
	bin := buildBinary(t)
	for i := range 3 {
		dataDir := shortDataDir(t)
		for _, p := range []string{"examples/echo", "examples/kvcounter", "examples/mqtt-echo"} {
			copyPlugin(t, p, filepath.Join(dataDir, "plugins", filepath.Base(p)+".wasm"))
		}
		cfg := writeConfig(t, dataDir, "modules:\n  eventbus:\n    enable: false\n")
		d := launch(t, bin, "--config", cfg, "--data-dir", dataDir)
		// The admin API comes up first; status then says the plugins are
		// loading. Each round signals a little later into the compile.
		d.awaitStatus(t, bin, dataDir, false, "module plugins is starting")
		time.Sleep(time.Duration(i) * 150 * time.Millisecond)
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-d.exited:
			if err != nil {
				t.Fatalf("round %d: exit after SIGTERM during compile: %v\nlogs:\n%s", i, err, d.logs)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: still running 30s after SIGTERM\nlogs:\n%s", i, d.logs)
		}
		if logs := d.logs.String(); strings.Contains(logs, "panic") {
			t.Fatalf("round %d: a panic in the logs:\n%s", i, logs)
		}
	}
}
