package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/plugintest"
)

// config import-edgecore on edgecore's default config writes a config that
// config check and run accept, and lists what it left out on stderr and in
// the file.
func TestImportEdgecore(t *testing.T) {
	bin := buildBinary(t)
	repo, err := plugintest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	fixture := filepath.Join(repo, "host/edgecoreimport/testdata/edgecore-defaultconfig.yaml")
	out := filepath.Join(t.TempDir(), "edgehost.yaml")
	res, code := edgehostSplit(t, bin, "config", "import-edgecore", fixture, "--out", out)
	if code != 0 {
		t.Fatalf("import-edgecore: exit %d\n%s", code, res.all())
	}
	for _, want := range []string{"left out: modules.metaManager.metaServer.enable = false: edgehost has no metaserver",
		"left out: modules.serviceBus.enable = false", "wrote " + out} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#   modules.serviceBus.port = 9060: edgehost has no servicebus", "server: 192.168.1.10:10000",
		"mode: external", "url: tcp://127.0.0.1:1883", "dmiSocket: /etc/kubeedge/dmi.sock", "nodeName: edge-node"} {
		if !strings.Contains(string(written), want) {
			t.Errorf("the written config lacks %q", want)
		}
	}
	if check, code := edgehost(t, bin, "", "config", "check", out); code != 0 {
		t.Errorf("config check of the import: exit %d %s", code, check)
	}
	// --out never replaces a file.
	if res, code := edgehostSplit(t, bin, "config", "import-edgecore", fixture, "--out", out); code != exitRuntime || !strings.Contains(res.stderr, "file exists") {
		t.Errorf("import over an existing file: exit %d\n%s", code, res.all())
	}
}
