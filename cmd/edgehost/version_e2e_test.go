package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/plugintest"
)

// The version, commit and build date the Makefile stamps with -ldflags are
// what version, version -o json and --version print.
func TestVersionStamped(t *testing.T) {
	repo, err := plugintest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "edgehost")
	build := exec.Command("go", "build", "-ldflags",
		"-X main.version=1.2.3 -X main.commit=abc123 -X main.buildDate=2026-12-02T00:00:00Z", "-o", bin, "./cmd/edgehost")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const line = "edgehost 1.2.3 (commit abc123, built 2026-12-02T00:00:00Z, go"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if out, code := edgehost(t, bin, "", args...); code != 0 || !strings.HasPrefix(out, line) {
			t.Errorf("%v: exit %d %q, want %q...", args, code, out, line)
		}
	}
	out, code := edgehost(t, bin, "", "version", "-o", "json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil ||
		v.Version != "1.2.3" || v.Commit != "abc123" || v.BuildDate != "2026-12-02T00:00:00Z" || !strings.HasPrefix(v.Go, "go") {
		t.Errorf("version -o json: exit %d %v %q", code, err, out)
	}
}

// run reads the default config path when it exists and no --config is
// given; --config wins; without either it runs on the built-in defaults.
func TestRunConfigPath(t *testing.T) {
	dir := t.TempDir()
	def := filepath.Join(dir, "edgehost.yaml")
	if got := runConfigPath("", def); got != "" {
		t.Errorf("no default file: %q, want the built-in defaults", got)
	}
	if err := os.WriteFile(def, []byte("logLevel: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := runConfigPath("", def); got != def {
		t.Errorf("default file present: %q, want %q", got, def)
	}
	if got := runConfigPath("other.yaml", def); got != "other.yaml" {
		t.Errorf("--config given: %q", got)
	}
}
