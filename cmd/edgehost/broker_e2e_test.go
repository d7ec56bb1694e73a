package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/mosquitto"
)

// With mosquitto on the embedded broker's address, as on many KubeEdge
// nodes, the daemon stops at start with one line naming the address,
// mosquitto and mode: external, instead of retrying for ever.
func TestBrokerAddressTaken(t *testing.T) {
	bin := buildBinary(t)
	mq := mosquitto.New(t, freeAddr(t))
	mq.Start()
	dataDir := shortDataDir(t)
	cfg := writeConfig(t, dataDir, "modules:\n  eventbus:\n    embedded:\n      address: "+mq.Addr+"\n")
	d := launch(t, bin, "--config", cfg, "--data-dir", dataDir)
	select {
	case err := <-d.exited:
		if err == nil {
			t.Fatalf("daemon exited 0 with its broker address taken:\n%s", d.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon still running 30s after start with its broker address taken:\n%s", d.logs)
	}
	logs := d.logs.String()
	var line string
	for l := range strings.Lines(logs) {
		if strings.HasPrefix(l, "edgehost: ") {
			line = l
		}
	}
	for _, want := range []string{"address " + mq.Addr, fmt.Sprintf("mosquitto (pid %d)", mq.PID()), "modules.eventbus.mode: external"} {
		if !strings.Contains(line, want) {
			t.Errorf("the error line lacks %q:\n%s", want, logs)
		}
	}
}
