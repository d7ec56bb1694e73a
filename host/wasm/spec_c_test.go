package wasm

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// TestSpecCExample compiles the C plugin printed in abi/SPEC.md with clang
// and runs it: the spec alone is enough to write a working plugin.
func TestSpecCExample(t *testing.T) {
	plugintest.NeedTool(t, "clang")
	src, err := plugintest.SpecExample("c")
	if err != nil {
		t.Fatal(err)
	}
	path, err := plugintest.BuildC(t.TempDir(), "echo", src)
	if err != nil {
		t.Fatal(err)
	}
	code, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("C echo plugin: %d bytes", len(code))
	ctx := context.Background()
	m, err := testRuntime.Compile(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	p, err := testRuntime.Load(ctx, m, PluginConfig{Name: "c-echo"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	for _, content := range [][]byte{nil, []byte("hi"), bytes.Repeat([]byte("x"), 1000)} {
		in := message("echo", string(content))
		in.Header.ResourceVersion = "42"
		reply, ok, err := p.Handle(ctx, in)
		if err != nil || !ok {
			t.Fatalf("handle: ok=%v err=%v", ok, err)
		}
		if reply.Header.ParentID != in.Header.ID || reply.Route.Operation != abi.OpResponse ||
			reply.Route.Resource != in.Route.Resource || reply.Header.ResourceVersion != "42" ||
			!bytes.Equal(reply.Content, in.Content) {
			t.Fatalf("reply = %+v", reply)
		}
	}
	// Too big for the C plugin's 64 KiB buffer: it answers with a code
	// (too large), an orderly failure, and keeps serving.
	if _, _, err := p.Handle(ctx, message("echo", string(bytes.Repeat([]byte("y"), 70000)))); err == nil {
		t.Fatal("a message over the C plugin's buffer was accepted")
	}
	if _, ok, err := p.Handle(ctx, message("echo", "again")); err != nil || !ok {
		t.Fatalf("after the refusal: ok=%v err=%v", ok, err)
	}
}
