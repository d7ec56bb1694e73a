package plugintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// NeedTool skips the test when the command name is not installed, except
// under CI (CI=true), where make test installs it and a missing tool is a
// failure rather than a silently skipped claim.
func NeedTool(tb testing.TB, name string) {
	tb.Helper()
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is not installed; scripts/deps.sh installs it", name)
	}
	tb.Skipf("%s is not installed; run scripts/deps.sh (make test does)", name)
}

// BuildC compiles C source into a wasm reactor with Debian's clang and
// wasi-libc, as abi/SPEC.md tells plugin authors to, and returns the .wasm
// file's path under dir.
func BuildC(dir, name, source string) (string, error) {
	src := filepath.Join(dir, name+".c")
	if err := os.WriteFile(src, []byte(source), 0o644); err != nil {
		return "", fmt.Errorf("build C plugin %s: %w", name, err)
	}
	out := filepath.Join(dir, name+".wasm")
	cmd := exec.Command("clang", "--target=wasm32-wasi", "-O2", "-mexec-model=reactor", "-o", out, src)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build C plugin %s: %w\n%s", name, err, msg)
	}
	return out, nil
}

// SpecExample returns the first fenced code block in the given language
// from abi/SPEC.md, so tests run the very code the spec shows.
func SpecExample(lang string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	spec, err := os.ReadFile(filepath.Join(root, "abi", "SPEC.md"))
	if err != nil {
		return "", fmt.Errorf("read SPEC.md: %w", err)
	}
	start := strings.Index(string(spec), "```"+lang+"\n")
	if start < 0 {
		return "", fmt.Errorf("SPEC.md has no %s example", lang)
	}
	body := string(spec[start+len("```"+lang+"\n"):])
	end := strings.Index(body, "```")
	if end < 0 {
		return "", fmt.Errorf("SPEC.md: unterminated %s example", lang)
	}
	return body[:end], nil
}
