// Package plugintest builds real wasm plugins for tests and benchmarks.
//
// Tests load the same .wasm files the Makefile builds: Build compiles a Go
// plugin package with GOOS=wasip1 into the repository's ignored build dir, so
// `go test` works on a fresh clone without running make first, and the Go
// build cache makes repeated builds cheap.
package plugintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
)

// RepoRoot returns the directory holding the repository's go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repo root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Build compiles the Go plugin in pkgDir (relative to the repository root,
// e.g. "examples/echo") and returns the path of the .wasm file, under
// build/test-plugins/ (apart from the plugins make builds, which make run
// loads). It builds each package once per process.
func Build(pkgDir string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[pkgDir]; ok {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	outDir := filepath.Join(root, "build", "test-plugins")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("build plugin %s: %w", pkgDir, err)
	}
	name := strings.ReplaceAll(filepath.ToSlash(filepath.Clean(pkgDir)), "/", "_") + ".wasm"
	out := filepath.Join(outDir, name)
	// Build to a temporary name and rename, so concurrent test binaries
	// never read a half-written module.
	tmp, err := os.CreateTemp(outDir, name+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("build plugin %s: %w", pkgDir, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", tmp.Name(), "./"+filepath.ToSlash(pkgDir))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build plugin %s: %w\n%s", pkgDir, err, msg)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("build plugin %s: %w", pkgDir, err)
	}
	built[pkgDir] = out
	return out, nil
}

// MustRead builds the plugin in pkgDir and returns its bytes, failing the
// test or benchmark on error.
func MustRead(tb interface {
	Helper()
	Fatalf(string, ...any)
}, pkgDir string) []byte {
	tb.Helper()
	p, err := Build(pkgDir)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatalf("read plugin %s: %v", pkgDir, err)
	}
	return b
}
