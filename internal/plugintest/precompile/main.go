// Command precompile builds every Go plugin of the repository for the tests
// and compiles each into the wazero compilation cache named by
// $EDGEHOST_TEST_WASM_CACHE, so the test binaries, which run under -race
// (where wazero's compiler is 20-30 times slower), find the machine code
// already there. `make test` runs it; it is no part of edgehost.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/edgehost/edgehost/host/wasm"
	"github.com/edgehost/edgehost/internal/plugintest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "precompile:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := os.Getenv(plugintest.CacheEnv)
	if dir == "" {
		return fmt.Errorf("$%s is not set", plugintest.CacheEnv)
	}
	pkgs, err := plugintest.GoPlugins()
	if err != nil {
		return err
	}
	ctx := context.Background()
	// The tests' runtimes are configured as wasm.NewRuntime configures
	// every runtime, so they look up the same cache keys.
	rt, err := wasm.NewRuntime(ctx, wasm.RuntimeConfig{CacheDir: dir})
	if err != nil {
		return err
	}
	defer rt.Close(ctx)
	start := time.Now()
	for _, pkg := range pkgs {
		path, err := plugintest.Build(pkg)
		if err != nil {
			return err
		}
		code, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		// Test plugins that a host must refuse (a bad import, a missing
		// export) still leave their machine code in the cache.
		if m, err := rt.Compile(ctx, code); err == nil {
			m.Close(ctx)
		}
	}
	fmt.Printf("precompile: %d Go plugins built and compiled into %s in %s\n", len(pkgs), dir, time.Since(start).Round(time.Millisecond))
	return nil
}
