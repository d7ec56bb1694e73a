package devices

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/pluginhost"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// TestManyVirtualDevices is a load run, not a check: 1000 devices of the
// real virtual mapper, 5 properties each (counter, sine, random, echo,
// constant), every one collected and reported each second, through the
// real plugin host. The twin is a bus module that counts the updates (its
// own cost is measured in host/twin). It prints the process's CPU, RSS,
// the worst lateness of a cycle and the missed cycles over the run. Set
// EDGEHOST_DEVICES_LOAD to its length (e.g. 60s) to run it.
func TestManyVirtualDevices(t *testing.T) {
	length := os.Getenv("EDGEHOST_DEVICES_LOAD")
	if length == "" {
		t.Skip("set EDGEHOST_DEVICES_LOAD=60s to run the 1000-device load run")
	}
	window, err := time.ParseDuration(length)
	if err != nil {
		t.Fatalf("EDGEHOST_DEVICES_LOAD: %v", err)
	}
	const devices, warmup = 1000, 5 * time.Second
	virtualWasm, err := plugintest.Build("plugins/virtual")
	if err != nil {
		t.Fatal(err)
	}
	dir, data := t.TempDir(), t.TempDir()
	var yaml strings.Builder
	for i := range devices {
		fmt.Fprintf(&yaml, `---
apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: sim-%d}
spec:
  protocol: {protocolName: virtual}
  properties:
    - {name: count, desired: {metadata: {type: int}}, visitors: {configData: {data: {kind: counter}}}}
    - {name: temp, desired: {metadata: {type: float}}, visitors: {configData: {data: {kind: sine, amplitude: 5, period: "30s"}}}}
    - {name: hum, desired: {metadata: {type: int}}, visitors: {configData: {data: {kind: random, min: 0, max: 100}}}}
    - {name: lamp, visitors: {configData: {data: {kind: echo, initial: "off"}}}}
    - {name: fw, visitors: {configData: {data: {kind: constant, value: "1.0"}}}}
`, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "sim.yaml"), []byte(yaml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(data, "edgehost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rt, err := wasm.NewRuntime(context.Background(), wasm.RuntimeConfig{CacheDir: plugintest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	var updates atomic.Uint64
	sink, err := b.Register("twin", eventbus.TwinGroup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Close)
	go func() {
		for {
			if _, err := sink.Receive(context.Background()); err != nil {
				return
			}
			updates.Add(1)
		}
	}()
	limits := config.Default().Modules.Plugins.Limits
	ph := pluginhost.New(b, rt, st, nil, config.Plugins{Enable: true, Dir: filepath.Join(data, "plugins"), Limits: limits,
		List: []config.Plugin{{Name: "virtual", Path: virtualWasm, Limits: limits, Mapper: &config.Mapper{Protocols: []string{"virtual"}}}}}, nil)
	run(t, "plugins", ph)
	m := New(b, plugins(ph), nil, Config{DevicesDir: dir}, nil)
	run(t, "devices", m)

	time.Sleep(warmup)
	before, beforeStats, beforeUpdates := cpuTime(), m.Stats(), updates.Load()
	m.stats.worstLateNS.Store(0)
	m.stats.worstDoneNS.Store(0)
	m.stats.doneNS.Store(0)
	m.stats.doneCount.Store(0)
	start := time.Now()
	time.Sleep(window)
	elapsed := time.Since(start)
	cpu, s := cpuTime()-before, m.Stats()
	t.Logf("%d devices x 5 properties, collect and report every 1 s, GOMAXPROCS %d, %s after %s of warm-up:",
		devices, runtime.GOMAXPROCS(0), elapsed.Round(time.Second), warmup)
	t.Logf("  device reads %.0f/s, twin updates %.0f/s, missed cycles %d, errors %v",
		float64(s.Reads-beforeStats.Reads)/elapsed.Seconds(), float64(updates.Load()-beforeUpdates)/elapsed.Seconds(),
		s.Missed-beforeStats.Missed, s.Errors)
	t.Logf("  CPU %.1f%% of one core (%.0f ms/s), RSS %d MB", 100*cpu.Seconds()/elapsed.Seconds(), 1000*cpu.Seconds()/elapsed.Seconds(), rssMB())
	t.Logf("  worst lateness: read queued %s after its cycle fell due, answer applied %s after (mean %s)",
		s.WorstLateness, s.WorstCompletion, s.MeanCompletion)
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssMB is the process's resident set now, from /proc (0 elsewhere).
func rssMB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb / 1024
		}
	}
	return 0
}
