package wasm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/plugintest"
)

func TestCompileReportsImportsAndMemory(t *testing.T) {
	echo := compile(t, "echo")
	if len(echo.Imports()) != 0 {
		t.Errorf("echo imports %v, want none from edgehost_v1", echo.Imports())
	}
	t.Logf("raw echo plugin: %d initial memory pages (%d KiB)", echo.InitialMemoryPages(), echo.InitialMemoryPages()*64)
	if echo.InitialMemoryPages() > 64 {
		t.Errorf("echo starts with %d memory pages, goal is <= 64 (is crypto linked?)", echo.InitialMemoryPages())
	}
	faulty := compile(t, "faulty")
	want := []string{"config", "kv_delete", "kv_get", "kv_list", "kv_put", "log", "now", "request", "request_reply", "send"}
	if got := faulty.Imports(); !slices.Equal(got, want) {
		t.Errorf("faulty imports %v, want %v", got, want)
	}
	if len(echo.Digest()) != 64 || echo.Digest() == faulty.Digest() {
		t.Errorf("digests %q %q", echo.Digest(), faulty.Digest())
	}
}

func TestUnknownImportRefused(t *testing.T) {
	_, err := testRuntime.Compile(context.Background(), plugintest.MustRead(t, pluginDir+"badimport"))
	want := "imports edgehost_v1.foo, which this host (ABI 1.3) does not provide"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
}

func TestMissingExportRefused(t *testing.T) {
	_, err := testRuntime.Compile(context.Background(), plugintest.MustRead(t, pluginDir+"noexport"))
	want := `missing required export "edgehost_handle"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
}

func TestCompileOncePerDigest(t *testing.T) {
	ctx := context.Background()
	r, err := NewRuntime(ctx, RuntimeConfig{CacheDir: testCacheDir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	wasm := plugintest.MustRead(t, pluginDir+"echo")
	mods := make([]*Module, 4)
	var wg sync.WaitGroup
	for i := range mods {
		wg.Go(func() {
			m, err := r.Compile(ctx, wasm)
			if err != nil {
				t.Error(err)
			}
			mods[i] = m
		})
	}
	wg.Wait()
	for _, m := range mods[1:] {
		if m != mods[0] {
			t.Fatal("concurrent compiles of the same module returned different modules")
		}
	}
	if err := mods[0].Close(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := r.Compile(ctx, wasm)
	if err != nil || again == mods[0] {
		t.Fatalf("compile after close: %v (same module: %v)", err, again == mods[0])
	}
}

// cacheFiles lists the files of a compilation cache directory.
func cacheFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	files := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files[path] = info.ModTime().UnixNano()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestCompilationCacheReusedAcrossRuntimes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wasm := plugintest.MustRead(t, pluginDir+"echo")
	compileIn := func() {
		r, err := NewRuntime(ctx, RuntimeConfig{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(ctx)
		m, err := r.Compile(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		p, err := r.Load(ctx, m, PluginConfig{Name: "echo"})
		if err != nil {
			t.Fatal(err)
		}
		mustEcho(t, p, "cached")
	}
	compileIn()
	first := cacheFiles(t, dir)
	if len(first) == 0 {
		t.Fatal("the first runtime wrote nothing to the cache directory")
	}
	compileIn()
	second := cacheFiles(t, dir)
	if len(second) != len(first) {
		t.Fatalf("the second runtime wrote new cache entries: %d files, then %d", len(first), len(second))
	}
	for path, mtime := range first {
		if second[path] != mtime {
			t.Fatalf("the second runtime rewrote %s instead of reusing it", path)
		}
	}
}

func TestLoadRefusesMemoryBelowInitial(t *testing.T) {
	m := compile(t, "echo")
	_, err := testRuntime.Load(context.Background(), m, PluginConfig{Name: "tiny", Limits: Limits{MemoryPages: 2}})
	if err == nil || !strings.Contains(err.Error(), `plugin "tiny"`) || !strings.Contains(err.Error(), "memory pages") {
		t.Fatalf("got %v, want a refusal naming the plugin and its memory", err)
	}
}

func TestRuntimeCloseClosesPlugins(t *testing.T) {
	ctx := context.Background()
	r, err := NewRuntime(ctx, RuntimeConfig{CacheDir: testCacheDir})
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Compile(ctx, plugintest.MustRead(t, pluginDir+"echo"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Load(ctx, m, PluginConfig{Name: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.State != StateClosed {
		t.Fatalf("plugin state after runtime close: %s", st.State)
	}
	if _, err := r.Compile(ctx, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("compile after close: %v", err)
	}
}

// TestRuntimeCloseDuringCompile closes a runtime while it compiles a Go
// plugin from a cold cache and while it loads one: Close must cut the
// compilation short or wait for it, never close wazero's engine under it.
func TestRuntimeCloseDuringCompile(t *testing.T) {
	code := plugintest.MustRead(t, pluginDir+"echo")
	for _, delay := range []time.Duration{0, time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond} {
		ctx := context.Background()
		r, err := NewRuntime(ctx, RuntimeConfig{})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			m, err := r.Compile(ctx, code)
			if err == nil {
				_, err = r.Load(ctx, m, PluginConfig{Name: "echo"})
			}
			done <- err
		}()
		time.Sleep(delay)
		if err := r.Close(ctx); err != nil {
			t.Fatalf("close after %s: %v", delay, err)
		}
		// Either the compile finished before Close, or it was cut short
		// with an error that says the runtime closed.
		if err := <-done; err != nil && !errors.Is(err, ErrClosed) {
			t.Fatalf("compile or load cut short after %s: %v, want one wrapping ErrClosed", delay, err)
		}
	}
}

// TestCorruptCacheEntryIsReplaced damages every entry of an on-disk cache:
// the next runtime must compile the module again (counted), and the one
// after that load it from the rewritten cache.
func TestCorruptCacheEntryIsReplaced(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	code := plugintest.MustRead(t, pluginDir+"echo")
	compileIn := func() *Runtime {
		r, err := NewRuntime(ctx, RuntimeConfig{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		m, err := r.Compile(ctx, code)
		if err != nil {
			t.Fatalf("compile with a damaged cache: %v", err)
		}
		p, err := r.Load(ctx, m, PluginConfig{Name: "echo"})
		if err != nil {
			t.Fatal(err)
		}
		mustEcho(t, p, "from the cache")
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		return r
	}
	compileIn()
	files := cacheFiles(t, dir)
	if len(files) == 0 {
		t.Fatal("nothing cached")
	}
	for path := range files {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	}
	if r := compileIn(); r.CacheResets() != 1 {
		t.Fatalf("cache resets = %d, want 1", r.CacheResets())
	}
	if r := compileIn(); r.CacheResets() != 0 {
		t.Fatalf("the rewritten cache did not load: %d resets", r.CacheResets())
	}
}
