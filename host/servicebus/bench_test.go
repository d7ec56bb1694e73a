package servicebus

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/pluginhost"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/edgehost/edgehost/internal/plugintest"
)

// BenchmarkServicebusRoute: cloud requests (a small POST with a bearer
// token) answered by a real local HTTP service, side by side through the
// native default route, through plugins/route-default (the same work as a
// wasm plugin: forward with http_request) and through examples/route-auth
// (more work: token check in KV, header added, then the forward); 8
// requests in flight. It reports requests/s and the p50 and p99 latency
// from the request on the bus to its reply at the hub.
func BenchmarkServicebusRoute(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	p := port(b, srv)
	for _, via := range []struct{ name, pkg, config string }{
		{"native", "", ""},
		{"route-default", "plugins/route-default", ""},
		{"route-auth", "examples/route-auth", `{"tokens":["t1"],"add_header":{"X-Edge-Route":"bench"}}`},
	} {
		b.Run(via.name, func(b *testing.B) {
			r := newRig(b, Config{})
			if via.pkg != "" {
				startRoutePlugin(b, r.b, via.pkg, via.config, p+":/#")
			}
			benchRequests(b, r, p+":/bench", 8)
			if via.pkg != "" && r.m.Stats().Routed == 0 {
				b.Fatal("no request went through the plugin")
			}
		})
	}
}

// startRoutePlugin runs the plugin host on bus with the Go plugin in pkg
// (relative to the repository) receiving the route resources matching
// pattern, with config; it stops when the test ends.
func startRoutePlugin(tb testing.TB, bs *bus.Bus, pkg, pluginConfig, pattern string) {
	tb.Helper()
	dir := tb.TempDir()
	name := filepath.Base(pkg)
	if err := os.WriteFile(filepath.Join(dir, name+".wasm"), plugintest.MustRead(tb, pkg), 0o644); err != nil {
		tb.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "edgehost.db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	rt, err := wasm.NewRuntime(context.Background(), wasm.RuntimeConfig{CacheDir: plugintest.CacheDir(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rt.Close(context.Background()) })
	limits := config.Limits{MemoryPages: 256, CallTimeout: time.Second, MaxMessageBytes: 1 << 20, Instances: 8}
	spec := config.Plugin{Name: name, Limits: limits, Receives: []config.Pattern{{Group: RouteGroup, Resource: pattern}}}
	if pluginConfig != "" {
		spec.Config = config.JSON(pluginConfig)
	}
	m := pluginhost.New(bs, rt, st, nil, config.Plugins{Enable: true, Dir: dir, Limits: limits, List: []config.Plugin{spec}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done, ready := make(chan error, 1), make(chan struct{})
	go func() { done <- m.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		tb.Fatalf("plugin host: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		<-done
	})
}

// benchRequests sends b.N requests for resource, inflight at a time, and
// reports the throughput and latency percentiles.
func benchRequests(b *testing.B, r *rig, resource string, inflight int) {
	content, _ := json.Marshal(HTTPRequest{Method: "POST", Header: http.Header{"Authorization": {"Bearer t1"}}, Body: []byte(`{"v":1}`)})
	var waiters sync.Map // parent id → chan abi.Message
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			msg, err := r.hub.Receive(ctx)
			if err != nil {
				return
			}
			if ch, ok := waiters.LoadAndDelete(msg.Header.ParentID); ok {
				ch.(chan abi.Message) <- msg
			}
		}
	}()
	one := func() (time.Duration, error) {
		msg := abi.Message{Header: abi.Header{ID: bus.NewID()},
			Route: abi.Route{Source: CloudSource, Group: UserGroup, Operation: "POST", Resource: resource}, Content: content}
		ch := make(chan abi.Message, 1)
		waiters.Store(msg.Header.ID, ch)
		start := time.Now()
		if err := r.b.Send(ctx, ModuleName, msg); err != nil {
			return 0, err
		}
		reply := <-ch
		var resp HTTPResponse
		if err := json.Unmarshal(reply.Content, &resp); err != nil || resp.StatusCode != 200 {
			return 0, fmt.Errorf("reply %d %q (%v)", resp.StatusCode, resp.Body, err)
		}
		return time.Since(start), nil
	}
	for range 50 { // warm the pools and instances
		if _, err := one(); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var next sync.Mutex
	i := 0
	var failed error
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range inflight {
		wg.Go(func() {
			for {
				next.Lock()
				n := i
				i++
				next.Unlock()
				if n >= b.N {
					return
				}
				d, err := one()
				if err != nil {
					next.Lock()
					failed = err
					next.Unlock()
					return
				}
				lat[n] = d
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed != nil {
		b.Fatal(failed)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
