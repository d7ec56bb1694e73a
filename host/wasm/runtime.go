package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/edgehost/edgehost/host/wasm/internal/instrument"
	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
)

// RuntimeConfig configures a Runtime.
type RuntimeConfig struct {
	// CacheDir keeps compiled machine code on disk, so a restart does not
	// recompile. Empty: compiled code is shared in memory only.
	CacheDir string
	// Logger receives the runtime's own messages; plugins log under
	// PluginConfig.Logger. Nil: discard.
	Logger hclog.Logger
	// CompileWorkers is how many goroutines compile one module's functions
	// in parallel. Zero: GOMAXPROCS; never fewer than 2, since only a
	// parallel compilation can be cancelled.
	CompileWorkers int
}

// Runtime compiles plugin modules and loads plugins. Every plugin it loads
// shares its compilation cache, so a module is compiled to machine code once
// per digest however many plugins use it. It is safe for concurrent use.
type Runtime struct {
	cache    wazero.CompilationCache
	cacheDir string
	// cacheResets counts the times an unreadable cache entry made the
	// runtime empty the on-disk cache and compile again.
	cacheResets atomic.Uint64
	rt          wazero.Runtime // compiles and validates; never instantiates
	logger      hclog.Logger
	workers     int

	// closing is cancelled by Close; it cuts compilations short.
	closing context.Context
	cancel  context.CancelFunc

	mu      sync.Mutex
	closed  bool
	busy    sync.WaitGroup // compilations and loads in flight; Close waits for them
	modules map[[sha256.Size]byte]*compileCall
	plugins map[*Plugin]struct{}
}

// compileCall is one compilation; callers asking for the same digest while
// it runs wait for it instead of compiling again.
type compileCall struct {
	done chan struct{}
	m    *Module
	err  error
}

// NewRuntime returns a Runtime whose compilation cache lives in
// cfg.CacheDir (created if missing) when set.
func NewRuntime(ctx context.Context, cfg RuntimeConfig) (*Runtime, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cache := wazero.NewCompilationCache()
	if cfg.CacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(cfg.CacheDir); err != nil {
			return nil, fmt.Errorf("wasm runtime: compilation cache in %s: %w", cfg.CacheDir, err)
		}
	}
	workers := cfg.CompileWorkers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(workers, 2)
	r := &Runtime{
		cache:    cache,
		cacheDir: cfg.CacheDir,
		logger:   logger,
		workers:  workers,
		modules:  map[[sha256.Size]byte]*compileCall{},
		plugins:  map[*Plugin]struct{}{},
	}
	r.closing, r.cancel = context.WithCancel(context.Background())
	r.rt = wazero.NewRuntimeWithConfig(ctx, r.runtimeConfig())
	return r, nil
}

// runtimeConfig is the configuration of every wazero runtime r creates. It
// must be the same for all of them (apart from the memory limit, which does
// not change compiled code) so that they share compiled code.
func (r *Runtime) runtimeConfig() wazero.RuntimeConfig {
	// Runaway guests are stopped by the safepoints the instrumentation
	// inserts (safepoint.go), not by wazero's close-on-done, which costs a
	// goroutine per call and a trip into Go at every loop iteration.
	return wazero.NewRuntimeConfig().
		WithCompilationCache(r.cache).
		WithCloseOnContextDone(false)
}

// Compile compiles and validates a plugin module against abi/SPEC.md. It
// compiles each distinct module (by sha256 digest) once: concurrent and
// later calls with the same bytes return the same *Module until it is closed.
// Errors name the missing export or the unknown import.
func (r *Runtime) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	digest := sha256.Sum256(wasm)
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, fmt.Errorf("compile module %s: runtime %w", shortDigest(digest), ErrClosed)
		}
		c, running := r.modules[digest]
		if !running {
			c = &compileCall{done: make(chan struct{})}
			r.modules[digest] = c
			r.busy.Add(1)
		}
		r.mu.Unlock()

		if !running {
			c.m, c.err = r.compile(ctx, digest, wasm)
			if c.err != nil {
				r.forget(digest, c)
			}
			close(c.done)
			r.busy.Done()
			return c.m, c.err
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("compile module %s: %w", shortDigest(digest), ctx.Err())
		}
		// Another caller's cancelled context is no reason to fail this one.
		if c.err != nil && (errors.Is(c.err, context.Canceled) || errors.Is(c.err, context.DeadlineExceeded)) {
			continue
		}
		return c.m, c.err
	}
}

func (r *Runtime) compile(ctx context.Context, digest [sha256.Size]byte, wasm []byte) (*Module, error) {
	code, kept, err := r.instrumented(digest, wasm)
	if err != nil {
		return nil, fmt.Errorf("compile module %s: %w", shortDigest(digest), err)
	}
	ctx, cancel := r.compileContext(ctx)
	defer cancel()
	compiled, err := r.rt.CompileModule(ctx, code)
	if err != nil && kept != "" && ctx.Err() == nil {
		// A damaged kept module: rewrite it from the original.
		r.logger.Warn("kept instrumented module unusable; instrumenting again", "path", kept, "error", err)
		os.Remove(kept)
		if code, _, err = r.instrumented(digest, wasm); err != nil {
			return nil, fmt.Errorf("compile module %s: %w", shortDigest(digest), err)
		}
		compiled, err = r.rt.CompileModule(ctx, code)
	}
	if err != nil && r.cacheDir != "" && strings.Contains(err.Error(), "compilationcache:") {
		// wazero reports an unreadable entry (a crash mid-write, a bad
		// disk) on every load and never replaces it. Its key is wazero's
		// own, so the whole on-disk cache goes: the others compile again
		// once, on their next cold load.
		r.cacheResets.Add(1)
		r.logger.Warn("compilation cache entry unreadable; emptying the cache and compiling again",
			"digest", shortDigest(digest), "dir", r.cacheDir, "error", err)
		if rmErr := emptyDir(r.cacheDir); rmErr != nil {
			return nil, fmt.Errorf("compile module %s: %w (and emptying the cache failed: %w)", shortDigest(digest), err, rmErr)
		}
		compiled, err = r.rt.CompileModule(ctx, code)
	}
	if err != nil {
		if r.closing.Err() != nil {
			err = fmt.Errorf("runtime %w while compiling", ErrClosed)
		}
		return nil, fmt.Errorf("compile module %s: %w", shortDigest(digest), err)
	}
	m, err := newModule(r, digest, code, compiled)
	if err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	m.size = len(wasm)
	r.logger.Debug("compiled plugin module", "digest", m.Digest(), "bytes", len(wasm), "imports", m.imports)
	return m, nil
}

// instrumented returns wasm rewritten by instrument.Module. With an on-disk
// cache the result is kept there too, by digest and instrumentation
// version, since the pass costs more than loading the compiled code (~13 ms
// for a 2 MB Go module): a restart reads it back. A kept file that is not
// what the pass gives (a damaged disk) is caught when wazero validates it:
// kept names the file it came from, and compile then instruments afresh.
func (r *Runtime) instrumented(digest [sha256.Size]byte, wasm []byte) (code []byte, kept string, err error) {
	if r.cacheDir == "" {
		code, err = instrument.Module(wasm)
		return code, "", err
	}
	dir := filepath.Join(r.cacheDir, "instrumented-v"+instrument.Version)
	path := filepath.Join(dir, hex.EncodeToString(digest[:])+".wasm")
	if code, err := os.ReadFile(path); err == nil {
		return code, path, nil
	}
	if code, err = instrument.Module(wasm); err != nil {
		return nil, "", err
	}
	if err := writeAtomically(dir, path, code); err != nil {
		// Only a cost at the next start: log it and go on.
		r.logger.Warn("could not keep the instrumented module", "path", path, "error", err)
	}
	return code, "", nil
}

// writeAtomically writes b to path through a temporary file in dir, so a
// reader never sees half of it.
func writeAtomically(dir, path string, b []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(f.Name())
		return werr
	}
	return os.Rename(f.Name(), path)
}

// CacheResets counts the times an unreadable on-disk cache entry made the
// runtime empty the cache and compile again.
func (r *Runtime) CacheResets() uint64 { return r.cacheResets.Load() }

// emptyDir removes the files under dir, keeping the directories (wazero
// made them when the cache was opened and writes into them).
func emptyDir(dir string) error {
	return filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Remove(path)
	})
}

// compileContext is ctx, also cancelled when r closes, and asking wazero to
// compile a module's functions on r.workers goroutines. With more than one
// worker wazero checks the context between functions, which is what lets
// Close cut a compilation short instead of waiting seconds for it.
func (r *Runtime) compileContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(experimental.WithCompilationWorkers(ctx, r.workers))
	stop := context.AfterFunc(r.closing, cancel)
	return ctx, func() { stop(); cancel() }
}

// enter registers an operation that uses the shared compilation cache, so
// Close waits for it; it fails once r is closed. Call leave when done.
func (r *Runtime) enter() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("runtime %w", ErrClosed)
	}
	r.busy.Add(1)
	return nil
}

func (r *Runtime) leave() { r.busy.Done() }

// forget removes digest's entry if it is still c.
func (r *Runtime) forget(digest [sha256.Size]byte, c *compileCall) {
	r.mu.Lock()
	if r.modules[digest] == c {
		delete(r.modules, digest)
	}
	r.mu.Unlock()
}

// track records a loaded plugin so Close can close it; it fails once the
// runtime is closed.
func (r *Runtime) track(p *Plugin) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("runtime %w", ErrClosed)
	}
	r.plugins[p] = struct{}{}
	return nil
}

func (r *Runtime) untrack(p *Plugin) {
	r.mu.Lock()
	delete(r.plugins, p)
	r.mu.Unlock()
}

// Close cancels the compilations in flight and waits for them and for the
// loads in flight to end (wazero's shared engine must not be closed under
// them), closes every plugin loaded from r, then the modules and the
// compilation cache. The on-disk cache stays for the next Runtime. If ctx
// ends first, Close returns its error and leaves the engine to the process
// exit rather than close it under a running compilation.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.cancel()

	idle := make(chan struct{})
	go func() { r.busy.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-ctx.Done():
		return fmt.Errorf("close wasm runtime: waiting for compilations in flight: %w", ctx.Err())
	}

	r.mu.Lock()
	plugins := make([]*Plugin, 0, len(r.plugins))
	for p := range r.plugins {
		plugins = append(plugins, p)
	}
	r.mu.Unlock()

	var errs []error
	for _, p := range plugins {
		errs = append(errs, p.Close(ctx))
	}
	errs = append(errs, r.rt.Close(ctx), r.cache.Close(ctx))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close wasm runtime: %w", err)
	}
	return nil
}
