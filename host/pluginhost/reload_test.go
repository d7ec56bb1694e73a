package pluginhost

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/plugins"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// Reload brings the dir plugins in line with the dir: a new file is
// loaded, a changed one swapped in, a removed one unloaded; a bad file,
// new or replacing a running plugin's, is refused and unloads nothing.
func TestReloadPluginDir(t *testing.T) {
	dir := t.TempDir()
	cfg := testPluginsConfig(dir)
	write := func(name string, code []byte) {
		t.Helper()
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Dir, name), code, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	echo, kv := plugintest.MustRead(t, "examples/echo"), plugintest.MustRead(t, "examples/kvcounter")
	write("echo.wasm", echo)
	h := startHost(t, dir, cfg)
	ctx := context.Background()
	reload := func() ReloadReport {
		t.Helper()
		rep, err := h.m.Reload(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	echoes := func(what string) {
		t.Helper()
		if r := request(t, h.bus, "echo", abi.Message{Content: []byte(what)}); string(r.Content) != what {
			t.Fatalf("echo answered %q to %q", r.Content, what)
		}
	}
	echoes("before")

	write("kvcounter.wasm", kv)
	write("bad.wasm", []byte("not a wasm module"))
	rep := reload()
	if !slices.Equal(rep.Loaded, []string{"kvcounter"}) || rep.Unchanged != 1 || rep.Plugins != 2 || len(rep.Upgraded)+len(rep.Removed) != 0 ||
		len(rep.Refused) != 1 || !strings.Contains(rep.Refused[0], "bad.wasm") {
		t.Fatalf("reload with a new and a bad file: %+v", rep)
	}
	if _, err := h.m.Info("bad"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused file is listed: %v", err)
	}
	if r := request(t, h.bus, "kvcounter", abi.Message{}); !strings.Contains(string(r.Content), `"devices"`) {
		t.Fatalf("the new plugin answered %q", r.Content)
	}

	// A running plugin's file turned bad: refused, the running one serves.
	write("echo.wasm", []byte("truncated"))
	if err := os.Remove(filepath.Join(cfg.Dir, "bad.wasm")); err != nil {
		t.Fatal(err)
	}
	rep = reload()
	if len(rep.Refused) != 1 || !strings.Contains(rep.Refused[0], "echo.wasm") || rep.Plugins != 2 || rep.Unchanged != 1 {
		t.Fatalf("reload over a running plugin with a bad file: %+v", rep)
	}
	echoes("still serving")
	if info, _ := h.m.Info("echo"); info.State != "ready" || !strings.Contains(info.LastError, "stays in service") {
		t.Fatalf("echo after the refused reload: %+v", info)
	}

	// A changed file is swapped in; a removed one is unloaded.
	before, _ := h.m.Info("echo")
	write("echo.wasm", kv)
	if err := os.Remove(filepath.Join(cfg.Dir, "kvcounter.wasm")); err != nil {
		t.Fatal(err)
	}
	rep = reload()
	if !slices.Equal(rep.Upgraded, []string{"echo"}) || !slices.Equal(rep.Removed, []string{"kvcounter"}) || rep.Plugins != 1 || len(rep.Refused) != 0 {
		t.Fatalf("reload with a changed and a removed file: %+v", rep)
	}
	after, _ := h.m.Info("echo")
	if after.ModuleDigest == before.ModuleDigest || after.LastError != "" || after.State != "ready" {
		t.Fatalf("echo after its upgrade from the dir: %+v (before %s)", after, before.ModuleDigest)
	}
	if r := request(t, h.bus, "echo", abi.Message{}); !strings.Contains(string(r.Content), `"devices"`) {
		t.Fatalf("the upgraded plugin answered %q", r.Content)
	}
	if _, err := h.m.Info("kvcounter"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a removed file's plugin is listed: %v", err)
	}
	if rep := reload(); rep.Unchanged != 1 || rep.Plugins != 1 || len(rep.Upgraded)+len(rep.Loaded)+len(rep.Removed)+len(rep.Refused) != 0 {
		t.Fatalf("reload of an unchanged dir: %+v", rep)
	}
}

// A reloaded trust store applies to the installs that follow; the plugins
// it no longer trusts keep running.
func TestReloadTrustStore(t *testing.T) {
	dir := t.TempDir()
	cfg := testPluginsConfig(dir)
	h := startHost(t, dir, cfg)
	ctx := context.Background()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signed := func(file []byte) []byte {
		t.Helper()
		s, err := plugins.Sign(file, priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	echo := signed(pack(t, "examples/echo", echoManifest("1.0.0")))
	if _, err := h.m.Install(ctx, echo, SourceRemote); !errors.Is(err, plugins.ErrUnknownSigner) {
		t.Fatalf("install signed by a key not yet trusted: %v", err)
	}
	trust := cfg.Trust
	trust.Keys = []config.TrustKey{{Name: "acme", PublicKey: base64.StdEncoding.EncodeToString(pub)}}
	rep, err := h.m.Reload(ctx, &trust)
	if err != nil || rep.Trust == nil || !slices.Equal(rep.Trust.Added, []string{"acme"}) || rep.Trust.Keys != 1 {
		t.Fatalf("reload adding a key: %+v %v", rep.Trust, err)
	}
	if info, err := h.m.Install(ctx, echo, SourceRemote); err != nil || info.Signer != "acme" {
		t.Fatalf("install signed by the added key: %+v %v", info, err)
	}

	trust.Keys, trust.Revoked = nil, []string{"acme"}
	if rep, err = h.m.Reload(ctx, &trust); err != nil || !slices.Equal(rep.Trust.Removed, []string{"acme"}) || rep.Trust.Revoked != 1 {
		t.Fatalf("reload removing the key: %+v %v", rep.Trust, err)
	}
	if r := request(t, h.bus, "echo", abi.Message{Content: []byte("kept")}); string(r.Content) != "kept" {
		t.Fatalf("the installed plugin after its key was removed answered %q", r.Content)
	}
	kv := signed(pack(t, "examples/kvcounter", `{"name":"kvcounter","version":"1.0.0","kind":"handler","abi":"1","capabilities":{"kv":{}}}`))
	if _, err := h.m.Install(ctx, kv, SourceRemote); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("install signed by the removed key: %v", err)
	}
}

// TestInstalledPluginWinsOverADirFileOfItsName: at start, as on reload, a
// file in the plugin dir named as an installed plugin is not loaded, so
// one plugin of the name serves (two were loaded before, and the second
// could not take the name on the bus).
func TestInstalledPluginWinsOverADirFileOfItsName(t *testing.T) {
	dir := t.TempDir()
	cfg := testPluginsConfig(dir)
	h := startHost(t, dir, cfg)
	if _, err := h.m.Install(context.Background(), pack(t, "examples/echo", echoManifest("1.0.0")), SourceLocal); err != nil {
		t.Fatal(err)
	}
	h.stop()
	// A different plugin under the installed one's name.
	if err := os.WriteFile(filepath.Join(cfg.Dir, "echo.wasm"), plugintest.MustRead(t, "examples/kvcounter"), 0o644); err != nil {
		t.Fatal(err)
	}
	h = startHost(t, dir, cfg)
	var echoes []Info
	for _, in := range h.m.List() {
		if in.Name == "echo" {
			echoes = append(echoes, in)
		}
	}
	if len(echoes) != 1 || echoes[0].Origin != OriginInstalled || echoes[0].Version != "1.0.0" || echoes[0].State != "ready" {
		t.Fatalf("plugins named echo after the start: %+v", echoes)
	}
	if r := request(t, h.bus, "echo", abi.Message{Content: []byte("installed")}); string(r.Content) != "installed" {
		t.Fatalf("echo answered %q", r.Content)
	}
}
