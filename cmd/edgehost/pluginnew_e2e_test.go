package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/plugintest"
)

// TestPluginNewBuildsAndConforms: for every language `plugin new` knows,
// the project it makes builds with its own build line and its package
// passes `edgehost plugin test`, as generated.
func TestPluginNewBuildsAndConforms(t *testing.T) {
	plugintest.NeedTool(t, "make")
	bin := buildBinary(t)
	root, err := plugintest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range scaffoldLangs() {
		t.Run(lang, func(t *testing.T) {
			if lang != "go" {
				plugintest.NeedLanguage(t, lang)
			}
			dir := filepath.Join(t.TempDir(), "hello-"+lang)
			if out, code := edgehost(t, bin, "", "plugin", "new", "--lang", lang, "--sdk", root, "--dir", dir, "hello-"+lang); code != 0 {
				t.Fatalf("plugin new: exit %d: %s", code, out)
			}
			if lang == "go" {
				run(t, dir, "go", "mod", "tidy")
			}
			out := run(t, dir, "make", "EDGEHOST="+bin, "test")
			if !strings.Contains(out, "\nPASS") || strings.Contains(out, "fail ") {
				t.Fatalf("make test in the new %s project:\n%s", lang, out)
			}
		})
	}
	if out, code := edgehost(t, bin, "", "plugin", "new", "--lang", "cobol", "x"); code == 0 || !strings.Contains(out, `--lang "cobol": want one of`) {
		t.Fatalf("unknown language: exit %d: %s", code, out)
	}
}

// run runs a command in dir and returns its output, failing the test if
// it fails.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v in %s: %v\n%s", name, args, dir, err, out)
	}
	return string(out)
}
