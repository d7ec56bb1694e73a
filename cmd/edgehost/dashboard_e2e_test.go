package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// cdp is a connection to one page of a headless Chromium over the DevTools
// protocol.
type cdp struct {
	t    *testing.T
	conn *websocket.Conn
	seq  int
}

// call sends method with params and returns the result.
func (c *cdp) call(method string, params any) json.RawMessage {
	c.t.Helper()
	c.seq++
	if err := c.conn.WriteJSON(map[string]any{"id": c.seq, "method": method, "params": params}); err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct{ Message string }
		}
		c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := c.conn.ReadJSON(&msg); err != nil {
			c.t.Fatalf("%s: %v", method, err)
		}
		if msg.ID != c.seq {
			continue // an event
		}
		if msg.Error != nil {
			c.t.Fatalf("%s: %s", method, msg.Error.Message)
		}
		return msg.Result
	}
}

// eval evaluates a JavaScript expression in the page and returns its
// value as a string.
func (c *cdp) eval(expr string) string {
	c.t.Helper()
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	json.Unmarshal(c.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}), &r)
	if r.Result.Value == nil {
		return ""
	}
	return fmt.Sprint(r.Result.Value)
}

// headlessChromium starts Debian's chromium on url and connects to its page.
func headlessChromium(t *testing.T, url string) *cdp {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not installed (scripts/deps.sh installs it)")
		}
		t.Skip("chromium not installed: the dashboard is not driven")
	}
	cmd := exec.Command(bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--remote-debugging-port=0", "--user-data-dir="+t.TempDir(), "--window-size=1100,900", "about:blank")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Its own process group: chromium's renderer and helper processes
	// outlive the browser's main process and keep writing into the
	// profile dir, which the test's TempDir cleanup then cannot remove.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pgid := cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGKILL)
		cmd.Wait()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if syscall.Kill(-pgid, 0) != nil {
				return // the whole group is gone
			}
		}
	})
	listening := regexp.MustCompile(`DevTools listening on ws://([^/]+)/`)
	var host string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			host = m[1]
			break
		}
	}
	if host == "" {
		t.Fatal("chromium printed no DevTools address")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	resp, err := http.Get("http://" + host + "/json/list")
	if err != nil {
		t.Fatalf("chromium page list: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
		t.Fatalf("chromium page list: %v", err)
	}
	for _, tg := range targets {
		if tg.Type != "page" {
			continue
		}
		conn, _, err := websocket.DefaultDialer.Dial(tg.WS, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c := &cdp{t: t, conn: conn}
		c.call("Page.navigate", map[string]any{"url": url})
		return c
	}
	t.Fatalf("chromium has no page: %+v", targets)
	return nil
}

// thermostatDevice is a virtual device whose setpoint (a constant the
// mapper cannot write) never reaches its desired value, and whose mode (an
// echo) does.
const thermostatDevice = `apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: thermostat, namespace: default}
spec:
  protocol: {protocolName: virtual}
  properties:
    - name: setpoint
      collectCycle: 200
      reportCycle: 200
      desired: {value: "21", metadata: {type: int}}
      visitors: {protocolName: virtual, configData: {data: {kind: constant, value: "18"}}}
    - name: mode
      collectCycle: 200
      reportCycle: 200
      desired: {value: "auto", metadata: {type: string}}
      visitors: {protocolName: virtual, configData: {data: {kind: echo, initial: "off"}}}
`

// The dashboard, served over the TCP listener with its token, shows the
// plugins, the cloud link, a device's twin value changing as the virtual
// mapper reads it, and the twins' desired and reported values side by
// side, the out-of-sync one highlighted. With EDGEHOST_DASHBOARD_PNG set, the test
// writes a screenshot there (docs/dashboard.png).
func TestDashboardInHeadlessChromium(t *testing.T) {
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
	if err := os.WriteFile(filepath.Join(devicesDir, "thermostat.yaml"), []byte(thermostatDevice), 0o644); err != nil {
		t.Fatal(err)
	}
	api := freeAddr(t)
	const token = "dashboard-test-token"
	cfg := writeConfig(t, dataDir, fmt.Sprintf("modules:\n  api:\n    tcp:\n      address: %s\n      token: %s\n"+
		"  eventbus:\n    embedded:\n      address: %s\n  hub:\n    nodeName: edge-1\n  devices:\n    dir: %s\n", api, token, freeAddr(t), devicesDir))
	d := startDaemon(t, bin, cfg, dataDir)
	defer d.stop(t)

	page := headlessChromium(t, "http://"+api+"/ui/#token="+token)
	count := `(() => { const r = document.querySelector('tr[data-device="default/sim-0"][data-property="count"]');` +
		` return r ? r.cells[5].textContent : ""; })()`
	await := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !ok(); time.Sleep(200 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the dashboard never showed %s; page text:\n%s\nlogs:\n%s", what, page.eval("document.body.innerText"), d.logs)
			}
		}
	}
	first := -1
	await("the counter's reported value", func() bool {
		v, err := strconv.Atoi(page.eval(count))
		first = v
		return err == nil
	})
	await("the counter changing", func() bool {
		v, err := strconv.Atoi(page.eval(count))
		return err == nil && v > first
	})
	// The twins table: the desired value of the devices file beside the
	// value the mapper reported, the setpoint it cannot reach highlighted.
	twin := func(property string) string {
		return page.eval(`(() => { const r = document.querySelector('tr[data-twin-device="default/thermostat"][data-twin-property="` + property + `"]');` +
			` return r ? [r.cells[2].querySelector(".value").textContent, r.cells[3].querySelector(".value").textContent, r.className].join("|") : ""; })()`)
	}
	await("the setpoint out of sync: desired 21, reported 18", func() bool { return twin("setpoint") == "21|18|out-of-sync" })
	await("the mode in sync: desired and reported auto", func() bool { return twin("mode") == "auto|auto|" })
	// The CLI shows the same twin.
	out, code := edgehost(t, bin, "", "twin", "get", "default/thermostat", "-o", "json", "--data-dir", dataDir)
	var tw struct {
		OutOfSync  int `json:"out_of_sync"`
		Properties []struct {
			Name, Desired, Reported string
			InSync                  bool `json:"in_sync"`
		}
	}
	if err := json.Unmarshal([]byte(out), &tw); code != 0 || err != nil || tw.OutOfSync != 1 || len(tw.Properties) != 2 ||
		tw.Properties[1].Name != "setpoint" || tw.Properties[1].Desired != "21" || tw.Properties[1].Reported != "18" || tw.Properties[1].InSync {
		t.Errorf("twin get -o json: exit %d, %v:\n%s", code, err, out)
	}
	out, code = edgehost(t, bin, "", "twin", "list", "-o", "wide", "--data-dir", dataDir)
	if code != 0 || !regexp.MustCompile(`default/thermostat\s+setpoint\s+int\s+"21"\s+\S+\s+-\s+"18"\s+\S+\s+cloud 0/edge \d+\s+no`).MatchString(out) {
		t.Errorf("twin list -o wide: exit %d:\n%s", code, out)
	}
	text := page.eval("document.body.innerText")
	for _, want := range []string{"ready", "devicetwin", "virtual", "off (modules.hub.enable: false)", "bus", "1 out of sync"} {
		if !strings.Contains(text, want) {
			t.Errorf("the dashboard lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "cannot reach the daemon") {
		t.Errorf("the dashboard could not reach the API:\n%s", text)
	}
	if png := os.Getenv("EDGEHOST_DASHBOARD_PNG"); png != "" {
		var shot struct{ Data string }
		json.Unmarshal(page.call("Page.captureScreenshot", map[string]any{"format": "png"}), &shot)
		b, err := base64.StdEncoding.DecodeString(shot.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(png, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
