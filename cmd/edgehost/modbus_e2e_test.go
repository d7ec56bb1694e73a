package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/internal/modbustest"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// nodeModbus is internal/modbusserver's server.js running in node: a real
// Modbus TCP device in its own process (modbus-serial's ServerTCP), which
// the test changes through stdin and whose writes it reads on stdout.
type nodeModbus struct {
	t     *testing.T
	dir   string
	addr  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

// startNodeModbus installs the server's npm package if it is missing
// (idempotent) and starts it on addr.
func startNodeModbus(t *testing.T, addr string) *nodeModbus {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed (scripts/deps.sh installs it); skipping the Modbus end-to-end test")
	}
	root, err := plugintest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "internal", "modbusserver")
	if out, err := exec.Command(filepath.Join(dir, "install.sh")).CombinedOutput(); err != nil {
		t.Fatalf("install the Modbus server's npm package: %v\n%s", err, out)
	}
	s := &nodeModbus{t: t, dir: dir, addr: addr}
	s.start()
	t.Cleanup(s.kill)
	return s
}

// start runs the server and waits until it listens.
func (s *nodeModbus) start() {
	s.t.Helper()
	_, port, _ := strings.Cut(s.addr, ":")
	s.cmd = exec.Command("node", filepath.Join(s.dir, "server.js"), port)
	s.cmd.Stderr = os.Stderr
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		s.t.Fatal(err)
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start node: %v", err)
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
		}
	}()
	s.await("listening " + s.addr)
}

// kill stops the server by its PID and waits for it.
func (s *nodeModbus) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	_ = s.cmd.Wait()
	s.cmd = nil
}

// set changes a register or bit on the device.
func (s *nodeModbus) set(kind string, addr, value int) {
	s.t.Helper()
	line := fmt.Sprintf("set %s %d %d", kind, addr, value)
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		s.t.Fatalf("modbus server: %v", err)
	}
	s.await(line)
}

// await waits for the server to print line.
func (s *nodeModbus) await(line string) {
	s.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		s.mu.Lock()
		for _, l := range s.lines {
			if l == line {
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.Fatalf("the Modbus server never printed %q; it printed %q", line, s.lines)
}

const modbusE2EModel = `apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: meter-model, namespace: default}
spec:
  protocol: modbus
  properties:
    - {name: temp, type: FLOAT}
    - {name: level, type: INT}
    - {name: pump, type: BOOLEAN}
    - {name: setpoint, type: INT}
`

// modbusE2EDevice is a KubeEdge v1beta1 Device of the meter model at addr,
// its visitors as KubeEdge writes them.
func modbusE2EDevice(name, addr string) string {
	host, port, _ := strings.Cut(addr, ":")
	prop := func(name, visitor string) string {
		return fmt.Sprintf("    - name: %s\n      collectCycle: 200\n      reportCycle: 200\n"+
			"      visitors: {protocolName: modbus, configData: {data: %s}}\n", name, visitor)
	}
	return fmt.Sprintf("---\napiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: %s, namespace: default}\n"+
		"spec:\n  deviceModelRef: {name: meter-model}\n"+
		"  protocol: {protocolName: modbus, configData: {data: {ip: %s, port: %s, slaveID: 1, timeout: 300}}}\n  properties:\n",
		name, host, port) +
		prop("temp", "{register: HoldingRegister, offset: 0, limit: 1, scale: 0.1}") +
		prop("level", "{register: InputRegister, offset: 1, limit: 1}") +
		prop("pump", "{register: CoilRegister, offset: 2, limit: 1}") +
		prop("setpoint", "{register: HoldingRegister, offset: 10, limit: 1}")
}

// TestModbusMapperEndToEnd runs the real daemon with its built-in Modbus
// mapper against a real Modbus TCP server in another process (node,
// modbus-serial): holding and input registers and coils changed on the
// server reach the twin; desired values published on twin/update are
// written to the server; the server killed takes the device offline and
// restarted brings it back; a malformed reply, a wrong transaction id, an
// exception and a silent device (TCP peers in the test) are each a named
// error in `edgehost devices` while the mapper keeps serving the meter.
func TestModbusMapperEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	needTwinWiring(t, bin)
	server := startNodeModbus(t, freeAddr(t))
	server.set("holding", 0, 215)
	server.set("input", 1, 7)
	server.set("coil", 2, 1)
	faults := map[string]string{
		"default/bad-frame": modbustest.ServeFault(t, modbustest.Malformed),
		"default/bad-tx":    modbustest.ServeFault(t, modbustest.WrongTransaction),
		"default/refuses":   modbustest.ServeFault(t, modbustest.Exception),
		"default/silent":    modbustest.ServeFault(t, modbustest.Silent),
	}

	r := &twinRig{t: t, bin: bin, dataDir: shortDataDir(t), work: t.TempDir(), broker: freeAddr(t),
		got: map[string][]string{}, arrived: make(chan struct{}, 1)}
	r.devicesDir = filepath.Join(r.work, "devices")
	if err := os.MkdirAll(r.devicesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	devs := modbusE2EModel + modbusE2EDevice("meter-0", server.addr)
	for id, addr := range faults {
		devs += modbusE2EDevice(strings.TrimPrefix(id, "default/"), addr)
	}
	if err := os.WriteFile(filepath.Join(r.devicesDir, "meters.yaml"), []byte(devs), 0o644); err != nil {
		t.Fatal(err)
	}
	r.cfg = filepath.Join(r.dataDir, "edgehost.yaml")
	config := fmt.Sprintf("modules:\n  eventbus:\n    embedded:\n      address: %s\n  hub:\n    nodeName: edge-1\n  devices:\n    dir: %s\n", r.broker, r.devicesDir)
	if err := os.WriteFile(r.cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	r.start()
	r.connect()
	r.awaitDevice("default/meter-0")

	actual := func(what string, want map[string]string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			doc, ok := r.get("default/meter-0"), true
			for k, v := range want {
				if p := doc.Twin[k]; p == nil || p.Actual == nil || p.Actual.Value != v {
					ok = false
				}
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: twin %+v\nlogs:\n%s", what, doc.Twin, r.d.logs)
			}
		}
	}
	actual("the server's values in the twin", map[string]string{"temp": "21.5", "level": "7", "pump": "true", "setpoint": "0"})
	server.set("holding", 0, 198)
	server.set("input", 1, 1200)
	server.set("coil", 2, 0)
	actual("the changed values in the twin", map[string]string{"temp": "19.8", "level": "1200", "pump": "false"})

	// Desired values over MQTT reach the server.
	r.publish("$hw/events/device/default/meter-0/twin/update",
		`{"event_id":"set-1","twin":{"setpoint":{"expected":{"value":"42"}},"pump":{"expected":{"value":"true"}}}}`)
	server.await("wrote holding 10 42")
	server.await("wrote coil 2 1")
	actual("the written values read back", map[string]string{"setpoint": "42", "pump": "true"})

	devices := func() map[string]api.DeviceInfo {
		t.Helper()
		out, code := edgehost(t, bin, "", "devices", "list", "--data-dir", r.dataDir, "-o", "json")
		if code != 0 {
			t.Fatalf("devices list: %s", out)
		}
		var list []api.DeviceInfo
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("devices list -o json: %v\n%s", err, out)
		}
		m := map[string]api.DeviceInfo{}
		for _, d := range list {
			m[d.ID] = d
		}
		return m
	}
	until := func(what string, ok func(map[string]api.DeviceInfo) bool) map[string]api.DeviceInfo {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			d := devices()
			if ok(d) {
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v\nlogs:\n%s", what, d, r.d.logs)
			}
		}
	}

	// Each misbehaving device fails with its own named error; the meter is
	// served meanwhile.
	named := map[string]string{
		"default/bad-frame": "malformed modbus reply",
		"default/bad-tx":    "modbus reply has transaction id",
		"default/refuses":   "modbus exception 2 (illegal data address)",
		"default/silent":    "no reply from " + faults["default/silent"],
	}
	before := until("every fault named", func(d map[string]api.DeviceInfo) bool {
		for id, want := range named {
			if !strings.Contains(d[id].LastError, want) || d[id].State != "offline" || d[id].Mapper != "modbus" {
				return false
			}
		}
		return d["default/meter-0"].State == "online"
	})
	for id := range named {
		t.Logf("%s: %s", id, before[id].LastError)
	}
	until("the meter read on beside the faults", func(d map[string]api.DeviceInfo) bool {
		m := d["default/meter-0"]
		return m.State == "online" && m.Reads >= before["default/meter-0"].Reads+10 && m.Errors["device"] == 0
	})
	if out, code := edgehost(t, bin, "", "device", "get", "default/refuses", "--data-dir", r.dataDir); code != 0 ||
		!strings.Contains(out, "modbus exception 2 (illegal data address)") {
		t.Fatalf("device get default/refuses: %s", out)
	}

	// The server killed: offline, with the reason; restarted: online.
	server.kill()
	until("the meter offline with its server killed", func(d map[string]api.DeviceInfo) bool {
		return d["default/meter-0"].State == "offline" && strings.Contains(d["default/meter-0"].LastError, "cannot connect to "+server.addr)
	})
	server.start()
	server.set("holding", 0, 250)
	until("the meter online again", func(d map[string]api.DeviceInfo) bool { return d["default/meter-0"].State == "online" })
	actual("a value read after the restart", map[string]string{"temp": "25"})
}
