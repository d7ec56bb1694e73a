package wasm

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// growC is a C plugin whose handle asks memory.grow for more pages than the
// host's limit allows and replies with what it returned, then, with a
// message "use", writes past the end of its memory.
const growC = `
#include <stdint.h>
#define EXPORT(name) __attribute__((export_name(name)))
static uint8_t buf[4096];
static uint8_t reply[64];
EXPORT("edgehost_abi_version") int32_t abi_version(void) { return 1; }
EXPORT("edgehost_buffer") int32_t buffer(int32_t n) { return n <= (int32_t)sizeof buf ? (int32_t)(uintptr_t)buf : 0; }
EXPORT("edgehost_init") int32_t init(int32_t n) { return 0; }
EXPORT("edgehost_handle") int64_t handle(int32_t n) {
	int32_t got = __builtin_wasm_memory_grow(0, 1000);
	if (buf[1] == 1) { /* sync: the request "use" is sent as a request */
		volatile uint8_t *past = (uint8_t *)(uintptr_t)(__builtin_wasm_memory_size(0) * 65536);
		*past = 1;
	}
	/* reply: an envelope with only content = the 4 bytes of got */
	for (int i = 0; i < 28; i++) reply[i] = 0;
	reply[0] = 1;
	reply[24] = 4;
	reply[28] = got & 0xff; reply[29] = (got >> 8) & 0xff; reply[30] = (got >> 16) & 0xff; reply[31] = (got >> 24) & 0xff;
	return ((int64_t)32 << 32) | (uint32_t)(uintptr_t)reply;
}
`

// TestMemoryGrowPastTheLimit: abi/SPEC.md section 7, as wasm has it: a
// memory.grow past the page limit returns -1 and the call goes on (the
// guest may cope); a guest that then touches memory it does not have
// traps, and that is the fault.
func TestMemoryGrowPastTheLimit(t *testing.T) {
	plugintest.NeedTool(t, "clang")
	path, err := plugintest.BuildC(t.TempDir(), "grow", growC)
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
	p, err := testRuntime.Load(ctx, m, PluginConfig{Name: "grow", Limits: Limits{MemoryPages: 16, CallTimeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	r, ok, err := p.Handle(ctx, &abi.Message{Header: abi.Header{ID: "g"}})
	if err != nil || !ok || len(r.Content) != 4 || int32(uint32(r.Content[0])|uint32(r.Content[1])<<8|uint32(r.Content[2])<<16|uint32(r.Content[3])<<24) != -1 {
		t.Fatalf("grow past the limit: reply %v ok %v err %v, want content -1 and no fault", r.Content, ok, err)
	}
	if st := p.Status(); st.Faults != 0 {
		t.Fatalf("status %+v after a refused grow, want no fault", st)
	}
	var fe *FaultError
	if _, _, err := p.Handle(ctx, &abi.Message{Header: abi.Header{ID: "u", Sync: true}}); !errors.As(err, &fe) || fe.Kind != FaultTrap && fe.Kind != FaultMemory {
		t.Fatalf("a write past memory: %v, want a fault", err)
	}
}
