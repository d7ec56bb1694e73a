package plugintest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// CacheEnv names the environment variable that points the tests at one
// wazero compilation cache directory for a whole `make test` run. The
// Makefile creates it empty, fills it with cmd precompile (built without
// -race, where wazero compiles a Go plugin 20-30 times faster than under
// it) and removes it afterwards, so no run depends on an earlier one. It
// builds precompile and the tests with the same wazero version string
// (-ldflags -X), since wazero keeps each version's code in its own
// subdirectory and test binaries carry no module versions.
const CacheEnv = "EDGEHOST_TEST_WASM_CACHE"

var (
	processCache   string
	processCacheMu sync.Mutex
)

// Main runs a package's tests with a compilation cache shared by all of
// them: $EDGEHOST_TEST_WASM_CACHE when set, else a directory of this
// process's, removed when the tests end. Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getenv(CacheEnv) == "" {
		dir, err := os.MkdirTemp("", "edgehost-test-wasm-cache-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "plugintest:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		processCacheMu.Lock()
		processCache = dir
		processCacheMu.Unlock()
	}
	return m.Run()
}

// CacheDir returns the compilation cache directory tests share: the run's
// ($EDGEHOST_TEST_WASM_CACHE), else the process's (see Main), else a new
// one for this test alone.
func CacheDir(tb testing.TB) string {
	if dir := os.Getenv(CacheEnv); dir != "" {
		return dir
	}
	processCacheMu.Lock()
	defer processCacheMu.Unlock()
	if processCache != "" {
		return processCache
	}
	return tb.TempDir()
}

// GoPlugins lists every Go plugin package in the repository (relative to
// its root): the examples, the first-party plugins and the test plugins
// under testdata/plugins.
func GoPlugins() ([]string, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	var pkgs []string
	for _, pattern := range []string{"examples/*/main.go", "plugins/*/main.go", "host/*/testdata/plugins/*/main.go"} {
		mains, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return nil, fmt.Errorf("list Go plugins: %w", err)
		}
		for _, m := range mains {
			rel, err := filepath.Rel(root, filepath.Dir(m))
			if err != nil {
				return nil, fmt.Errorf("list Go plugins: %w", err)
			}
			pkgs = append(pkgs, filepath.ToSlash(rel))
		}
	}
	slices.Sort(pkgs)
	return pkgs, nil
}
