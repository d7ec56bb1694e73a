package pluginhost

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/host/builtin"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// TestBuiltinRunsUnderItsManifestGrants: a built-in plugin with a manifest
// is checked against it at load as an installed one is — the Modbus
// mapper with its tcp grant loads, once a device needs it, and declares
// its protocol; the same module under a manifest without tcp is refused,
// naming the grant its tcp_connect import needs.
func TestBuiltinRunsUnderItsManifestGrants(t *testing.T) {
	code := plugintest.MustRead(t, "plugins/modbus")
	root, err := plugintest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile(filepath.Join(root, "plugins", "modbus", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	noTCP := strings.Replace(strings.Replace(string(manifest), `"name": "modbus"`, `"name": "modbus-no-tcp"`, 1),
		`"modbus"]}`, `"modbus-x"]}`, 1)
	noTCP = noTCP[:strings.Index(noTCP, `"capabilities"`)] + `"capabilities": {}}`
	dir := t.TempDir()
	cfg := testPluginsConfig(dir)
	st, err := store.Open(filepath.Join(dir, "edgehost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rt, err := wasm.NewRuntime(context.Background(), wasm.RuntimeConfig{CacheDir: plugintest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	b := bus.New(bus.Options{})
	defer b.Close()
	m := New(b, rt, st, nil, cfg, nil)
	m.SetBuiltins([]builtin.Plugin{builtin.FromModule("modbus", code, manifest), builtin.FromModule("modbus-no-tcp", code, []byte(noTCP))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- m.Run(ctx, func() { close(ready) }) }()
	defer func() { cancel(); <-done }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("plugin host ended: %v", err)
	}
	// Built-in mappers start when a device needs their protocol.
	if _, err := m.Info("modbus"); err == nil {
		t.Fatal("the built-in mapper started before a device needed it")
	}
	if started, err := m.StartMapper(ctx, "modbus"); !started || err != nil {
		t.Fatalf("StartMapper(modbus) = %v, %v", started, err)
	}
	if started, err := m.StartMapper(ctx, "modbus-x"); started || err == nil {
		t.Fatalf("StartMapper(modbus-x) = %v, %v; want the grant refusal", started, err)
	}
	ok, err := m.Info("modbus")
	if err != nil || ok.State != "ready" {
		t.Fatalf("modbus: %+v, %v", ok, err)
	}
	if mps := m.Mappers(); len(mps) != 1 || mps[0].Name != "modbus" || strings.Join(mps[0].Protocols, ",") != "modbus" {
		t.Fatalf("mappers = %v", mps)
	}
	refused, err := m.Info("modbus-no-tcp")
	if err != nil || refused.State != "failed" || !strings.Contains(refused.LastError, "tcp (for tcp_connect)") {
		t.Fatalf("modbus-no-tcp: state %s, error %q, %v; want failed for its tcp_connect", refused.State, refused.LastError, err)
	}
}
