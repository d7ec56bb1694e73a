package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// reloaderBackend answers plugin reloads with a report, or with err.
type reloaderBackend struct {
	echoBackend
	err error
}

func (b *reloaderBackend) ReloadPlugins(context.Context) (PluginsReport, error) {
	return PluginsReport{Dir: "/p", Plugins: 2, Loaded: []string{"a"}, Refused: []string{"/p/b.wasm: bad magic"},
		Trust: &TrustReport{Keys: 1, Added: []string{"acme"}}}, b.err
}

func TestPluginsReload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rep, err := NewClient(serve(t, &reloaderBackend{}, ""), "").ReloadPlugins(ctx)
	if err != nil || rep.Plugins != 2 || len(rep.Loaded) != 1 || len(rep.Refused) != 1 || rep.Trust == nil || rep.Trust.Added[0] != "acme" || rep.OK() {
		t.Fatalf("reload = %+v, %v", rep, err)
	}
	c := NewClient(serve(t, &reloaderBackend{err: fmt.Errorf("%w: plugins are disabled", ErrConflict)}, ""), "")
	if _, err := c.ReloadPlugins(ctx); err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "plugins are disabled") {
		t.Fatalf("reload with plugins disabled: %v", err)
	}
	if (PluginsReport{}).OK() != true || (PluginsReport{Error: "config"}).OK() {
		t.Fatal("OK: want true for a clean report only")
	}
}
