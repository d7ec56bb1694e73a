package config

import (
	"strings"
	"testing"
	"time"
)

func TestEdgedDefaults(t *testing.T) {
	e := Default().Modules.Edged
	if e.Enable || e.CRIEndpoint != "unix:///run/containerd/containerd.sock" || e.SyncPeriod != time.Second ||
		e.RestartBackoff != 10*time.Second || e.MaxRestartBackoff != 5*time.Minute || e.NodeLeaseDuration != 40*time.Second {
		t.Errorf("edged defaults = %+v", e)
	}
	c, err := Parse([]byte("modules:\n  edged:\n    enable: true\n    criEndpoint: unix:///tmp/c.sock\n    restartBackoff: 1s\n"), "e.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Modules.Edged; !e.Enable || e.CRIEndpoint != "unix:///tmp/c.sock" || e.RestartBackoff != time.Second || e.CallTimeout != 2*time.Minute {
		t.Errorf("edged = %+v, want the given fields over the defaults", e)
	}
}

func TestEdgedValidate(t *testing.T) {
	_, err := Parse([]byte("modules:\n  edged:\n    enable: true\n    criEndpoint: tcp://x:1\n    podDir: rel\n    syncPeriod: 0s\n    restartBackoff: 10s\n    maxRestartBackoff: 1s\n    nodeLeaseDuration: 1500ms\n"), "e.yaml")
	if err == nil {
		t.Fatal("bad edged section accepted")
	}
	for _, want := range []string{`modules.edged.criEndpoint: must be unix:///path/to/socket, got "tcp://x:1"`,
		`modules.edged.podDir: must be an absolute path, got "rel"`, "modules.edged.syncPeriod: must be > 0",
		"modules.edged.maxRestartBackoff: must be at least restartBackoff (10s), got 1s",
		"modules.edged.nodeLeaseDuration: must be whole seconds, at least 1s (the Lease's leaseDurationSeconds), got 1.5s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := Parse([]byte("modules:\n  edged:\n    criEndpoint: nonsense\n"), "e.yaml"); err != nil {
		t.Errorf("a disabled edged section is not checked, got %v", err)
	}
}
