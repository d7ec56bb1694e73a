package plugintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Languages with an SDK, as BuildExample names them: Go (sdk/), C
// (sdk/c), Rust (sdk/rust) and AssemblyScript (sdk/assemblyscript).
const (
	Go             = "go"
	C              = "c"
	Rust           = "rust"
	AssemblyScript = "assemblyscript"
)

// Languages lists every language with an SDK, Go first.
var Languages = []string{Go, C, Rust, AssemblyScript}

// Examples are the plugins every SDK has, each doing exactly what the Go
// one in examples/<name> does.
var Examples = []string{"echo", "kvcounter", "mqtt-echo"}

// ExampleDir returns the directory, relative to the repository root, of
// the example name written in lang: examples/<name> for Go, else
// examples/<lang>/<name>.
func ExampleDir(lang, name string) string {
	if lang == Go {
		return "examples/" + name
	}
	return "examples/" + lang + "/" + name
}

// NeedLanguage skips the test when lang's toolchain is not installed, or
// fails it under CI (CI=true), as NeedTool does.
func NeedLanguage(tb testing.TB, lang string) {
	tb.Helper()
	switch lang {
	case Go:
	case C:
		NeedTool(tb, "clang")
		needPath(tb, "/usr/include/wasm32-wasi", "wasi-libc")
	case Rust:
		// Debian's rustc, by full path: a rustup one earlier on PATH has
		// no wasm32-wasi std.
		NeedTool(tb, "/usr/bin/rustc")
		needPath(tb, "/usr/lib/rustlib/wasm32-wasi", "libstd-rust-dev-wasm32")
	case AssemblyScript:
		NeedTool(tb, "node")
		NeedTool(tb, "npm")
		NeedTool(tb, "flock")
	default:
		tb.Fatalf("no SDK for language %q", lang)
	}
}

// needPath is NeedTool for an installed package known by a path.
func needPath(tb testing.TB, path, pkg string) {
	tb.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is not installed (no %s); scripts/deps.sh installs it", pkg, path)
	}
	tb.Skipf("%s is not installed (no %s); run scripts/deps.sh (make test does)", pkg, path)
}

// BuildExample builds the example name written in lang (see BuildLang).
func BuildExample(lang, name string) (string, error) {
	return BuildLang(lang, ExampleDir(lang, name))
}

// BuildLang builds the plugin in dir (relative to the repository root),
// written in lang, and returns the path of its .wasm file under
// build/test-plugins/. Go plugins build as Build does; the others with
// scripts/build-plugin.sh, as make plugins builds them. Each is built once
// per process.
func BuildLang(lang, dir string) (string, error) {
	if lang == Go {
		return Build(dir)
	}
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[dir]; ok {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	outDir := filepath.Join(root, "build", "test-plugins")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("build %s plugin %s: %w", lang, dir, err)
	}
	name := strings.ReplaceAll(filepath.ToSlash(filepath.Clean(dir)), "/", "_")
	out := filepath.Join(outDir, name+".wasm")
	// A temporary name and a rename, so concurrent test binaries never
	// read a half-written module.
	tmp, err := os.CreateTemp(outDir, name+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("build %s plugin %s: %w", lang, dir, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("bash", "scripts/build-plugin.sh", lang, dir, tmp.Name())
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s plugin %s: %w\n%s", lang, dir, err, msg)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("build %s plugin %s: %w", lang, dir, err)
	}
	built[dir] = out
	return out, nil
}

// MustReadExample is MustReadLang for the example name written in lang.
func MustReadExample(tb testing.TB, lang, name string) []byte {
	tb.Helper()
	return MustReadLang(tb, lang, ExampleDir(lang, name))
}

// MustReadLang is BuildLang, returning the module's bytes, and skipping or
// failing (NeedLanguage) when lang's toolchain is missing.
func MustReadLang(tb testing.TB, lang, dir string) []byte {
	tb.Helper()
	NeedLanguage(tb, lang)
	p, err := BuildLang(lang, dir)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatalf("read plugin %s: %v", p, err)
	}
	return b
}
