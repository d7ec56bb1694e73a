package wasm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/plugintest"
)

// recurseC is a C plugin whose handle recurses without end. The recursion
// cannot be turned into a loop (two calls, a volatile bound) and keeps its
// frames in wasm locals, not in linear memory, so only the host's depth
// bound ends it.
const recurseC = `
#include <stdint.h>
#define EXPORT(name) __attribute__((export_name(name)))
static uint8_t buf[4096];
static volatile int32_t stop_at = -1;
EXPORT("edgehost_abi_version") int32_t abi_version(void) { return 1; }
EXPORT("edgehost_buffer") int32_t buffer(int32_t n) { return n <= (int32_t)sizeof buf ? (int32_t)(uintptr_t)buf : 0; }
EXPORT("edgehost_init") int32_t init(int32_t n) { return 0; }
__attribute__((noinline)) static int32_t deep(int32_t n) {
	if (n == stop_at) return 0;
	return deep(n + 1) + deep(n + 2);
}
EXPORT("edgehost_handle") int64_t handle(int32_t n) { return deep(0); }
`

// recursionChild is set in the environment of the child process that
// TestDeepRecursionIsBounded measures in.
const recursionChild = "EDGEHOST_TEST_RECURSION_CHILD"

// rss returns the process's resident set size in bytes.
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestDeepRecursionIsBounded runs four concurrent calls of an endless
// recursion under a 16-page memory limit: each ends as a stack fault at
// the host's depth bound, and the process's resident memory grows by less
// than 16 MB and is back near where it was within 10 s. (Unbounded, wazero
// grows each call's native stack to ~84 MB before it gives up.)
//
// The measuring runs in a child process of its own (this test binary, run
// again for this test alone), so that what other tests left on the heap
// does not count.
func TestDeepRecursionIsBounded(t *testing.T) {
	plugintest.NeedTool(t, "clang")
	if os.Getenv(recursionChild) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDeepRecursionIsBounded$", "-test.v")
		cmd.Env = append(os.Environ(), recursionChild+"=1")
		out, err := cmd.CombinedOutput()
		t.Logf("child:\n%s", out)
		if err != nil {
			t.Fatalf("the measuring child failed: %v", err)
		}
		return
	}
	path, err := plugintest.BuildC(t.TempDir(), "recurse", recurseC)
	if err != nil {
		t.Fatal(err)
	}
	code, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, err := testRuntime.Compile(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	p, err := testRuntime.Load(ctx, m, PluginConfig{Name: "recurse", Quarantine: Quarantine{After: 1 << 20},
		Limits: Limits{MemoryPages: 16, Instances: 4, CallTimeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)

	runtime.GC()
	debug.FreeOSMemory()
	before := rss(t)
	// The peak is sampled while the calls run: a call's stack is garbage
	// once it ends.
	peak := before
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak = max(peak, rss(t))
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				_, _, err := p.Handle(ctx, message("x", ""))
				var fe *FaultError
				if !errors.As(err, &fe) || fe.Kind != FaultStack {
					t.Errorf("endless recursion: %v, want a stack fault", err)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	grew := peak - before
	deadline := time.Now().Add(10 * time.Second)
	after := rss(t)
	for after-before > 4<<20 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		runtime.GC()
		after = rss(t)
	}
	t.Logf("RSS %d MB before, peak +%.1f MB during 4 concurrent runaway recursions, +%.1f MB after",
		before>>20, float64(grew)/(1<<20), float64(after-before)/(1<<20))
	// The race detector keeps shadow memory for everything it sees; the
	// bounds hold for the daemon as built, not under -race.
	if raceEnabled {
		return
	}
	if grew >= 16<<20 {
		t.Fatalf("RSS grew by %.1f MB during the recursions, want under 16 MB", float64(grew)/(1<<20))
	}
	if after-before > 4<<20 {
		t.Fatalf("RSS still %.1f MB above its level 10 s after the recursions", float64(after-before)/(1<<20))
	}
}
