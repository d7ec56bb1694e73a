package devices

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/builtin"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/pluginhost"
	"github.com/edgehost/edgehost/internal/modbustest"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// modbusBuiltin builds plugins/modbus and returns it as the binary embeds
// it: the module and its manifest, whose tcp grant the host applies.
func modbusBuiltin(t *testing.T) builtin.Plugin {
	t.Helper()
	path, err := plugintest.Build("plugins/modbus")
	if err != nil {
		t.Fatal(err)
	}
	code, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	root, err := plugintest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile(filepath.Join(root, "plugins", "modbus", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	return builtin.FromModule("modbus", code, manifest)
}

// modbusModel is a KubeEdge v1beta1 DeviceModel of a Modbus meter:
// KubeEdge's visitor keys, model defaults under the instances'.
const modbusModel = `apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: meter-model}
spec:
  protocol: modbus
  properties:
    - {name: temp, type: FLOAT, visitors: {protocolName: modbus, configData: {data: {register: HoldingRegister, offset: 0, limit: 1, scale: 0.1}}}}
    - {name: level, type: INT, visitors: {protocolName: modbus, configData: {data: {register: InputRegister, offset: 1, dataType: uint32, isRegisterSwap: true}}}}
    - {name: pump, type: BOOLEAN, visitors: {protocolName: modbus, configData: {data: {register: CoilRegister, offset: 2}}}}
    - {name: door, type: BOOLEAN, visitors: {protocolName: modbus, configData: {data: {register: DiscreteInputRegister, offset: 3}}}}
    - {name: setpoint, type: INT, visitors: {protocolName: modbus, configData: {data: {register: HoldingRegister, offset: 10}}}}
    - {name: ratio, type: FLOAT, visitors: {protocolName: modbus, configData: {data: {register: HoldingRegister, offset: 20, dataType: float32}}}}
    - {name: relays, type: INT, visitors: {protocolName: modbus, configData: {data: {register: CoilRegister, offset: 30, limit: 4}}}}
`

// modbusDevice is a device of the meter model at addr (host:port).
func modbusDevice(name, addr string, extra string) string {
	host, port, _ := strings.Cut(addr, ":")
	return fmt.Sprintf(`---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: %s}
spec:
  deviceModelRef: {name: meter-model}
  protocol: {protocolName: modbus, configData: {data: {ip: %s, port: %s, slaveID: 1, timeout: 300%s}}}
  properties:
    - {name: temp, collectCycle: 100, reportCycle: 100}
    - {name: level, collectCycle: 100, reportCycle: 100}
    - {name: pump, collectCycle: 100, reportCycle: 100}
    - {name: door, collectCycle: 100, reportCycle: 100}
    - {name: setpoint, collectCycle: 100, reportCycle: 100}
    - {name: ratio, collectCycle: 100, reportCycle: 100}
    - {name: relays, collectCycle: 100, reportCycle: 100}
`, name, host, port, extra)
}

// TestModbusMapperThroughTheTwin drives the real wasm Modbus mapper,
// loaded as a built-in plugin under its manifest's grant and an operator
// ceiling, against a real Modbus TCP server in the test (simonvetter's)
// and misbehaving TCP peers: registers and coils changed on the server
// reach the twin; desired values set over MQTT are written with the right
// function codes; the server stopped takes the device offline and back
// online once it serves again (the mapper reconnects); a malformed reply,
// a wrong transaction id, an exception, a silent device and an address
// outside the grant are each a named error on their own device while the
// good one is read on.
func TestModbusMapperThroughTheTwin(t *testing.T) {
	bank := modbustest.NewBank()
	bank.SetHolding(0, 215)
	bank.SetInput(1, 0x0002, 0x0001) // 0x0001_0002 with the words swapped
	bank.SetCoil(2, true)
	good := modbustest.Serve(t, bank)
	malformed := modbustest.ServeFault(t, modbustest.Malformed)
	wrongTx := modbustest.ServeFault(t, modbustest.WrongTransaction)
	exception := modbustest.ServeFault(t, modbustest.Exception)
	silent := modbustest.ServeFault(t, modbustest.Silent)
	outside := modbustest.Serve(t, modbustest.NewBank()) // a real device, not granted

	dir := t.TempDir()
	devs := modbusModel + modbusDevice("meter-0", good.Addr, ", requestGap: 10") +
		modbusDevice("bad-frame", malformed, "") + modbusDevice("bad-tx", wrongTx, "") +
		modbusDevice("refuses", exception, "") + modbusDevice("silent", silent, "") +
		modbusDevice("outside", outside.Addr, "")
	if err := os.WriteFile(filepath.Join(dir, "meters.yaml"), []byte(devs), 0o644); err != nil {
		t.Fatal(err)
	}
	ceiling := []string{good.Addr, malformed, wrongTx, exception, silent}
	n := newNodeWith(t, dir, nodeOptions{builtins: []builtin.Plugin{modbusBuiltin(t)},
		restrict: []config.PluginRestriction{{Plugin: "modbus", TCP: ceiling}}})

	// The built-in mapper starts with the first modbus device: its load
	// (a compile under -race without the suite's precompiled cache) may
	// outlast the waits below, which are about the device, not the load.
	loaded := time.Now().Add(5 * time.Minute)
	for !slices.ContainsFunc(n.plugins.Mappers(), func(mp pluginhost.MapperPlugin) bool { return mp.Name == "modbus" }) {
		if time.Now().After(loaded) {
			t.Fatal("the built-in modbus mapper did not start for the devices in 5 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The server's values reach the twin, then follow its changes.
	want := func(what string, props map[string]string) {
		t.Helper()
		until(t, what, func() bool {
			got := n.twinActual(t, "default/meter-0")
			for k, v := range props {
				if got[k] != v {
					return false
				}
			}
			return true
		})
	}
	want("the meter's values in the twin", map[string]string{"temp": "21.5", "level": "65538", "pump": "true", "door": "false", "setpoint": "0",
		"ratio": "0", "relays": "0"})
	bank.SetHolding(0, 0xFFF6) // -1.0 °C
	bank.SetInput(1, 7, 0)
	bank.SetCoil(2, false)
	bank.SetDiscrete(3, true)
	want("the changed values in the twin", map[string]string{"temp": "-1", "level": "7", "pump": "false", "door": "true"})

	// Desired values over MQTT are written to the device: one register
	// (function 6), two (16), one coil (5), four (15).
	n.publish(t, "$hw/events/device/default/meter-0/twin/update",
		`{"event_id":"set-1","twin":{"setpoint":{"expected":{"value":"-40"}},"pump":{"expected":{"value":"true"}},`+
			`"ratio":{"expected":{"value":"12.5"}},"relays":{"expected":{"value":"5"}}}}`)
	want("the written values read back", map[string]string{"setpoint": "-40", "pump": "true", "ratio": "12.5", "relays": "5"})
	if got := int16(bank.Holding(10)); got != -40 || !bank.Coil(2) {
		t.Fatalf("server holds setpoint %d, pump %v; want -40, true", got, bank.Coil(2))
	}
	if hi, lo := bank.Holding(20), bank.Holding(21); hi != 0x4148 || lo != 0 {
		t.Fatalf("server holds ratio %04x %04x, want 4148 0000 (12.5 as float32)", hi, lo)
	}
	if !bank.Coil(30) || bank.Coil(31) || !bank.Coil(32) || bank.Coil(33) {
		t.Fatalf("server holds relays %v %v %v %v, want 5 = on off on off", bank.Coil(30), bank.Coil(31), bank.Coil(32), bank.Coil(33))
	}

	// Each fault is a named error on its own device.
	for id, wantErr := range map[string]string{
		"default/bad-frame": "malformed modbus reply",
		"default/bad-tx":    "transaction id",
		"default/refuses":   "modbus exception 2 (illegal data address)",
		"default/silent":    "no reply from " + silent,
		"default/outside":   "denied",
	} {
		until(t, id+" failing with "+wantErr, func() bool {
			d, err := n.devices.GetDevice(id)
			return err == nil && strings.Contains(d.LastError, wantErr) && d.State == abi.StateOffline
		})
		d, _ := n.devices.GetDevice(id)
		t.Logf("%s: %s", id, d.LastError)
	}
	info, err := n.plugins.Info("modbus")
	if err != nil {
		t.Fatal(err)
	}
	if info.Denied == 0 {
		t.Fatalf("modbus denied count = 0 after connecting outside its ceiling")
	}
	// The good device was read throughout, on its cycle.
	before, _ := n.devices.GetDevice("default/meter-0")
	until(t, "meter-0 read on beside the faulty devices", func() bool {
		d, _ := n.devices.GetDevice("default/meter-0")
		return d.Reads >= before.Reads+5 && d.State == abi.StateOnline && d.Errors["device"] == 0
	})

	// Requests on one connection keep the device's gap of 10 ms. Arrival
	// times carry the network's and the scheduler's jitter, so a few may
	// come closer; without pacing four in five would (five properties
	// read back to back each cycle).
	near, gaps := 0, 0
	for _, at := range bank.Arrivals() {
		for i := 1; i < len(at); i++ {
			gaps++
			if at[i].Sub(at[i-1]) < 7*time.Millisecond {
				near++
			}
		}
	}
	if gaps < 20 || near > gaps/10 {
		t.Fatalf("%d of %d requests on one connection came under 7 ms after the one before, despite the 10 ms gap", near, gaps)
	}

	// The server goes away: offline; it comes back: online, on a new
	// connection.
	good.Stop()
	until(t, "meter-0 offline with its server stopped", func() bool {
		d, _ := n.devices.GetDevice("default/meter-0")
		return d.State == abi.StateOffline && strings.Contains(d.LastError, "cannot connect")
	})
	if err := good.Start(); err != nil {
		t.Fatal(err)
	}
	bank.SetHolding(0, 250)
	until(t, "meter-0 online again", func() bool {
		d, _ := n.devices.GetDevice("default/meter-0")
		return d.State == abi.StateOnline
	})
	want("a value read after the restart", map[string]string{"temp": "25"})
}
