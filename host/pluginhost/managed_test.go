package pluginhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/plugins"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// host is a running plugin host over a data dir that outlives it, so a
// test can restart it.
type host struct {
	bus   *bus.Bus
	store *store.Store
	m     *Module
	stop  func()
}

func testPluginsConfig(dir string) config.Plugins {
	limits := config.Limits{MemoryPages: 256, CallTimeout: 5 * time.Second, MaxMessageBytes: 1 << 20, Instances: 2}
	return config.Plugins{Enable: true, Dir: filepath.Join(dir, "plugins"), Limits: limits,
		Trust: config.PluginTrust{Policy: config.SignaturePolicies{Local: config.AllowUnsigned, Remote: config.RequireSignature}}}
}

// startHost runs the plugin host on dir with cfg until the returned stop
// (also called at the end of the test).
func startHost(t *testing.T, dir string, cfg config.Plugins) *host {
	t.Helper()
	return startHostWith(t, dir, cfg, nil)
}

// startHostWith is startHost with an eventbus: events, when not nil, starts
// it on the host's bus and store before the host starts, and returns it
// and what stops it, which runs after the host stops.
func startHostWith(t testing.TB, dir string, cfg config.Plugins, events func(*bus.Bus, *store.Store) (EventBus, func())) *host {
	t.Helper()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "edgehost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := wasm.NewRuntime(context.Background(), wasm.RuntimeConfig{CacheDir: plugintest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	b := bus.New(bus.Options{QueueLen: 4096})
	var ev EventBus
	stopEvents := func() {}
	if events != nil {
		ev, stopEvents = events(b, st)
	}
	m := New(b, rt, st, ev, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	readyc := make(chan struct{})
	go func() { done <- m.Run(ctx, func() { close(readyc) }) }()
	select {
	case <-readyc:
	case err := <-done:
		t.Fatalf("plugin host ended before ready: %v", err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		stopEvents()
		b.Close()
		rt.Close(context.Background())
		st.Close()
	}
	t.Cleanup(stop)
	return &host{bus: b, store: st, m: m, stop: stop}
}

// pack builds the Go plugin in pkgDir and packs it with manifest.
func pack(t testing.TB, pkgDir, manifest string) []byte {
	t.Helper()
	file, err := plugins.Pack(plugintest.MustRead(t, pkgDir), []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func echoManifest(version string) string {
	return `{"name":"echo","version":"` + version + `","kind":"handler","abi":"1",
		"receives":[{"group":"user","resource":"echo/#"}],"capabilities":{},"limits":{"instances":2}}`
}

func TestCapabilitiesDeniedLoggedAndCounted(t *testing.T) {
	dir := t.TempDir()
	cfg := testPluginsConfig(dir)
	cfg.Restrict = []config.PluginRestriction{{Plugin: "captest",
		Send: []config.Pattern{{Group: "user", Resource: "allowed/#"}}, KV: &config.KVCeiling{}}}
	h := startHost(t, dir, cfg)
	sink, err := h.bus.Register("sink", "user")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	file := pack(t, "host/pluginhost/testdata/plugins/captest", `{"name":"captest","version":"0.1.0","kind":"handler","abi":"1",
		"capabilities":{"send":[{"group":"user"}],"kv":{"prefixes":["ok/"]}}}`)
	if _, err := h.m.Install(context.Background(), file, SourceLocal); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ op, content, want string }{
		{"send", "user allowed/x", "ok"},
		{"send", "user other/x", "code 5"},   // the operator's ceiling narrows the manifest's user/#
		{"send", "twin allowed/x", "code 5"}, // no grant for group twin
		{"kv", "ok/a", "ok"},
		{"kv", "secret", "code 5"}, // outside the granted prefix
	}
	for _, c := range cases {
		r := request(t, h.bus, "captest", abi.Message{Route: abi.Route{Operation: c.op}, Content: []byte(c.content)})
		if string(r.Content) != c.want {
			t.Errorf("%s %q: reply %q, want %q", c.op, c.content, r.Content, c.want)
		}
	}
	info, err := h.m.Info("captest")
	if err != nil {
		t.Fatal(err)
	}
	if info.Denied != 3 {
		t.Errorf("denied = %d, want 3", info.Denied)
	}
	lines, _ := h.m.Logs("captest", 0)
	denials := 0
	for _, l := range lines {
		if strings.Contains(l.Message, "capability denied") {
			denials++
		}
	}
	if denials != 3 {
		t.Errorf("log has %d denials, want 3: %+v", denials, lines)
	}
}

func TestInstallRefusesMissingGrantsAndKeepsServing(t *testing.T) {
	dir := t.TempDir()
	h := startHost(t, dir, testPluginsConfig(dir))
	ctx := context.Background()
	if _, err := h.m.Install(ctx, pack(t, "examples/echo", echoManifest("1.0.0")), SourceLocal); err != nil {
		t.Fatal(err)
	}
	kv := pack(t, "examples/kvcounter", `{"name":"kvcounter","version":"1.0.0","kind":"handler","abi":"1","capabilities":{}}`)
	_, err := h.m.Install(ctx, kv, SourceLocal)
	if !errors.Is(err, ErrRefused) || !errors.Is(err, plugins.ErrMissingGrants) || !strings.Contains(err.Error(), "kv (for kv_get)") {
		t.Fatalf("install without the kv grant: %v", err)
	}
	if _, err := h.m.Info("kvcounter"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused plugin is listed: %v", err)
	}
	if _, err := h.m.Install(ctx, pack(t, "examples/echo", echoManifest("2.0.0")), SourceLocal); !errors.Is(err, ErrConflict) {
		t.Fatalf("second install of echo: %v", err)
	}
	if _, err := h.m.Install(ctx, kv, SourceRemote); !errors.Is(err, plugins.ErrUnsigned) {
		t.Fatalf("unsigned install from a require-signature source: %v", err)
	}
	r := request(t, h.bus, "echo", abi.Message{Content: []byte("still here")})
	if string(r.Content) != "still here" {
		t.Fatalf("echo reply %q", r.Content)
	}
}

func TestFailedUpgradeKeepsOldVersion(t *testing.T) {
	dir := t.TempDir()
	h := startHost(t, dir, testPluginsConfig(dir))
	ctx := context.Background()
	if _, err := h.m.Install(ctx, pack(t, "examples/echo", echoManifest("1.0.0")), SourceLocal); err != nil {
		t.Fatal(err)
	}
	// kvcounter refuses this config in its init.
	bad := pack(t, "examples/kvcounter", `{"name":"echo","version":"1.1.0","kind":"handler","abi":"1",
		"capabilities":{"kv":{}},"config":{"valid_min_c":10,"valid_max_c":0}}`)
	if _, err := h.m.Upgrade(ctx, bad, SourceLocal); err == nil || !strings.Contains(err.Error(), "edgehost_init failed") {
		t.Fatalf("upgrade with a failing init: %v", err)
	}
	info, _ := h.m.Info("echo")
	if info.Version != "1.0.0" || info.State != "ready" || !strings.Contains(info.LastError, "1.0.0 stays in service") {
		t.Fatalf("after the failed upgrade: %+v", info)
	}
	if r := request(t, h.bus, "echo", abi.Message{Content: []byte("x")}); string(r.Content) != "x" {
		t.Fatalf("echo reply %q", r.Content)
	}
}

func TestInstalledPluginsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testPluginsConfig(dir)
	h := startHost(t, dir, cfg)
	ctx := context.Background()
	if _, err := h.m.Install(ctx, pack(t, "examples/echo", echoManifest("1.0.0")), SourceLocal); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Upgrade(ctx, pack(t, "examples/echo", echoManifest("1.1.0")), SourceLocal); err != nil {
		t.Fatal(err)
	}
	kv := pack(t, "examples/kvcounter", `{"name":"kvcounter","version":"0.3.0","kind":"twin","abi":"1","capabilities":{"kv":{"prefixes":["device/"]}}}`)
	if _, err := h.m.Install(ctx, kv, SourceLocal); err != nil {
		t.Fatal(err)
	}
	request(t, h.bus, "kvcounter", abi.Message{Content: []byte(`{"device":"d1","temperature_c":20}`)})
	if _, err := h.m.SetEnabled(ctx, "kvcounter", false); err != nil {
		t.Fatal(err)
	}
	h.stop()

	h = startHost(t, dir, cfg)
	echo, err := h.m.Info("echo")
	if err != nil || echo.Version != "1.1.0" || echo.Previous != "1.0.0" || echo.State != "ready" {
		t.Fatalf("echo after restart: %+v %v", echo, err)
	}
	t.Logf("echo after restart: compile %.1f ms, load %.1f ms (module %d bytes)", echo.CompileMS, echo.LoadMS,
		len(plugintest.MustRead(t, "examples/echo")))
	if kvInfo, _ := h.m.Info("kvcounter"); kvInfo.State != "disabled" || kvInfo.Enabled {
		t.Fatalf("kvcounter after restart: %+v", kvInfo)
	}
	if _, err := h.m.SetEnabled(ctx, "kvcounter", true); err != nil {
		t.Fatal(err)
	}
	r := request(t, h.bus, "kvcounter", abi.Message{Content: []byte(`{"device":"d1"}`)})
	if !strings.Contains(string(r.Content), `"count":1`) {
		t.Fatalf("kvcounter lost its state: %s", r.Content)
	}
	if info, err := h.m.Rollback(ctx, "echo"); err != nil || info.Version != "1.0.0" || info.Previous != "1.1.0" {
		t.Fatalf("rollback after restart: %+v %v", info, err)
	}
	if err := h.m.Remove(ctx, "kvcounter"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.Info("kvcounter"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed plugin still listed: %v", err)
	}
	blobs, _ := filepath.Glob(filepath.Join(cfg.Dir, "blobs", "*.wasm"))
	if len(blobs) != 2 {
		t.Errorf("blobs after remove: %d, want 2 (echo's current and previous)", len(blobs))
	}
}

// TestRemoveDuringCompile removes an installed plugin while the host
// compiles it from a cold cache, at start and during its install: the
// compilation is cut short, the plugin is gone, and nothing crashes.
func TestRemoveDuringCompile(t *testing.T) {
	dir := t.TempDir()
	cfg := testPluginsConfig(dir)
	h := startHost(t, dir, cfg)
	if _, err := h.m.Install(context.Background(), pack(t, "examples/echo", echoManifest("1.0.0")), SourceLocal); err != nil {
		t.Fatal(err)
	}
	h.stop()

	// A host whose runtime has an empty cache, so compiling takes long.
	st, err := store.Open(filepath.Join(dir, "edgehost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rt, err := wasm.NewRuntime(context.Background(), wasm.RuntimeConfig{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	b := bus.New(bus.Options{})
	defer b.Close()
	m := New(b, rt, st, nil, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	readyc := make(chan struct{})
	go func() { done <- m.Run(ctx, func() { close(readyc) }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	awaitLoading := func() {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !m.loadingNow("echo") {
			if time.Now().After(deadline) {
				t.Fatalf("echo never started loading; progress: %s", m.StartProgress())
			}
			time.Sleep(time.Millisecond)
		}
	}

	// At start.
	awaitLoading()
	if err := m.Remove(context.Background(), "echo"); err != nil {
		t.Fatalf("remove during the start-up compile: %v", err)
	}
	<-readyc
	if _, err := m.Info("echo"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("echo after its removal at start: %v", err)
	}

	// During its install.
	installed := make(chan error, 1)
	go func() {
		_, err := m.Install(context.Background(), pack(t, "examples/echo", echoManifest("1.0.1")), SourceLocal)
		installed <- err
	}()
	awaitLoading()
	if err := m.Remove(context.Background(), "echo"); err != nil {
		t.Fatalf("remove during the install's compile: %v", err)
	}
	if err := <-installed; !errors.Is(err, context.Canceled) {
		t.Fatalf("install cut short by remove: %v, want context.Canceled", err)
	}
	if _, err := m.Info("echo"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("echo after its removal during install: %v", err)
	}
	if recs, err := m.pstore.List(); err != nil || len(recs) != 0 {
		t.Fatalf("installed records after the removals: %v, %v", recs, err)
	}
}

// loadingNow reports whether a load of the plugin called name is in flight.
func (m *Module) loadingNow(name string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.loading[name]
	return ok
}
