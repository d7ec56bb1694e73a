package pluginsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/meta"
	"github.com/edgehost/edgehost/host/pluginhost"
	"github.com/edgehost/edgehost/host/plugins"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakePlugins stands in for the plugin host, whose own tests cover the
// installs; these tests are about what this module decides to call.
type fakePlugins struct {
	mu     sync.Mutex
	calls  []string
	byName map[string]api.PluginInfo
}

func (f *fakePlugins) record(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

func (f *fakePlugins) Info(name string) (api.PluginInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.byName[name]
	if !ok {
		return api.PluginInfo{}, fmt.Errorf("plugin %q: %w", name, pluginhost.ErrNotFound)
	}
	return in, nil
}

func (f *fakePlugins) put(file []byte, call string) (api.PluginInfo, error) {
	pkg, err := plugins.Parse(file)
	if err != nil {
		return api.PluginInfo{}, err
	}
	sum := sha256.Sum256(file)
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.byName[pkg.Manifest.Name]
	in := api.PluginInfo{Name: pkg.Manifest.Name, Origin: pluginhost.OriginInstalled, Source: pluginhost.SourceCloud,
		Version: pkg.Manifest.Version, PackageDigest: hex.EncodeToString(sum[:]), Enabled: true, State: "ready",
		Previous: old.Version, PreviousDigest: old.PackageDigest}
	f.byName[in.Name] = in
	f.calls = append(f.calls, call+" "+in.Version)
	return in, nil
}

func (f *fakePlugins) Install(_ context.Context, file []byte, _ string) (api.PluginInfo, error) {
	return f.put(file, "install")
}
func (f *fakePlugins) Upgrade(_ context.Context, file []byte, _ string) (api.PluginInfo, error) {
	return f.put(file, "upgrade")
}
func (f *fakePlugins) Rollback(_ context.Context, name string) (api.PluginInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.byName[name]
	in.Version, in.Previous = in.Previous, in.Version
	in.PackageDigest, in.PreviousDigest = in.PreviousDigest, in.PackageDigest
	f.byName[name] = in
	f.calls = append(f.calls, "rollback "+in.Version)
	return in, nil
}
func (f *fakePlugins) SetEnabled(_ context.Context, name string, enabled bool) (api.PluginInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.byName[name]
	in.Enabled = enabled
	f.byName[name] = in
	f.calls = append(f.calls, fmt.Sprintf("enabled %v", enabled))
	return in, nil
}
func (f *fakePlugins) Remove(_ context.Context, name string) error {
	f.record("remove " + name)
	f.mu.Lock()
	delete(f.byName, name)
	f.mu.Unlock()
	return nil
}
func (f *fakePlugins) List() []api.PluginInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.PluginInfo
	for _, in := range f.byName {
		out = append(out, in)
	}
	return out
}

type noObjects []meta.Object

func (o noObjects) List(string, string) ([]meta.Object, error) { return o, nil }

// rig is the module on a real bus with a hub stand-in that serves chunk
// queries from packages and collects the statuses reported.
type rig struct {
	t        *testing.T
	bus      *bus.Bus
	plugins  *fakePlugins
	packages map[string][]byte
	corrupt  atomic.Bool // the next chunk comes back with a flipped byte
	statuses chan Status
	queries  atomic.Int64
	up       atomic.Bool
}

func newRig(t *testing.T, objs noObjects, installed ...api.PluginInfo) *rig {
	r := &rig{t: t, bus: bus.New(bus.Options{}), plugins: &fakePlugins{byName: map[string]api.PluginInfo{}},
		packages: map[string][]byte{}, statuses: make(chan Status, 64)}
	for _, in := range installed {
		r.plugins.byName[in.Name] = in
	}
	r.up.Store(true)
	hub, err := r.bus.Register("websocket", "hub")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.serveHub(ctx, hub) })
	m := New(r.bus, r.plugins, objs, Config{Connected: r.up.Load, ChunkTimeout: 5 * time.Second, RetryMax: 50 * time.Millisecond}, nil)
	ready := make(chan struct{})
	wg.Go(func() {
		if err := m.Run(ctx, func() { close(ready) }); err != nil {
			t.Error(err)
		}
	})
	<-ready
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		hub.Close()
		r.bus.Close()
	})
	return r
}

func (r *rig) serveHub(ctx context.Context, hub *bus.Endpoint) {
	for {
		msg, err := hub.Receive(ctx)
		if err != nil {
			return
		}
		switch msg.Route.Operation {
		case abi.OpQuery:
			r.queries.Add(1)
			var q ChunkQuery
			json.Unmarshal(msg.Content, &q)
			file, ok := r.packages[q.Digest]
			if !ok {
				r.bus.Respond(msg.Reply(abi.OpError, []byte("package "+q.Digest+": not on this hub")))
				continue
			}
			data := append([]byte(nil), file[q.Offset:q.Offset+int64(q.Length)]...)
			if r.corrupt.CompareAndSwap(true, false) {
				data[0] ^= 0xff
			}
			c, _ := json.Marshal(Chunk{Digest: q.Digest, Offset: q.Offset, Size: int64(len(file)), Data: data})
			r.bus.Respond(msg.Reply(abi.OpResponse, c))
		case abi.OpUpdate:
			var st Status
			if err := json.Unmarshal(msg.Content, &st); err != nil {
				r.t.Errorf("status: %v", err)
			}
			r.statuses <- st
		}
	}
}

// pkg is a package of plugin name at version, big enough for a few
// chunks, known to the hub.
func (r *rig) pkg(name, version string) (file []byte, digest string) {
	module := []byte("\x00asm\x01\x00\x00\x00")
	// A custom section of filler so the package spans chunks.
	filler := make([]byte, 2*ChunkBytes+1234)
	module = append(module, 0)
	module = append(module, uleb(len(filler)+2)...)
	module = append(module, 1, 'x')
	module = append(module, filler...)
	manifest := fmt.Sprintf(`{"name":%q,"version":%q,"kind":"handler","abi":"1"}`, name, version)
	file, err := plugins.Pack(module, []byte(manifest))
	if err != nil {
		r.t.Fatal(err)
	}
	sum := sha256.Sum256(file)
	digest = hex.EncodeToString(sum[:])
	r.packages[digest] = file
	return file, digest
}

func uleb(n int) []byte {
	var out []byte
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

func (r *rig) send(op, name string, spec Spec, rv string) {
	o := Object{Kind: "EdgehostPlugin", Spec: spec}
	o.Metadata.Name, o.Metadata.Namespace, o.Metadata.ResourceVersion = name, "default", rv
	content, _ := json.Marshal(o)
	msg := abi.Message{Header: abi.Header{ResourceVersion: rv},
		Route: abi.Route{Source: "metamanager", Group: "resource", Operation: op, Resource: "default/" + ObjectType + "/" + name}, Content: content}
	if err := r.bus.SendToGroup(context.Background(), Group, msg); err != nil {
		r.t.Fatal(err)
	}
}

// status waits for the next status whose state is not fetching.
func (r *rig) status() Status {
	r.t.Helper()
	for {
		select {
		case st := <-r.statuses:
			if st.State != StateFetching {
				return st
			}
		case <-time.After(20 * time.Second):
			r.t.Fatal("no status reported in 20s")
		}
	}
}

func TestApplyDecidesInstallUpgradeRollbackRemove(t *testing.T) {
	r := newRig(t, nil)
	_, d1 := r.pkg("echo", "1.0.0")
	_, d2 := r.pkg("echo", "2.0.0")
	size := int64(len(r.packages[d1]))
	steps := []struct {
		op   string
		spec Spec
		want string
		call string
	}{
		{abi.OpInsert, Spec{Digest: d1, Size: size}, StateInstalled, "install 1.0.0"},
		{abi.OpUpdate, Spec{Digest: d1, Size: size}, StateUnchanged, ""},
		{abi.OpUpdate, Spec{Digest: d2, Size: int64(len(r.packages[d2]))}, StateUpgraded, "upgrade 2.0.0"},
		{abi.OpUpdate, Spec{Digest: d1}, StateRolledBack, "rollback 1.0.0"},
		{abi.OpDelete, Spec{}, StateRemoved, "remove echo"},
	}
	for i, s := range steps {
		before := len(r.plugins.calls)
		queries := r.queries.Load()
		r.send(s.op, "echo", s.spec, fmt.Sprint(i+1))
		st := r.status()
		if st.State != s.want || st.Error != "" || st.ResourceVersion != fmt.Sprint(i+1) {
			t.Fatalf("step %d (%s): status %+v, want state %s", i, s.op, st, s.want)
		}
		r.plugins.mu.Lock()
		calls := r.plugins.calls[before:]
		r.plugins.mu.Unlock()
		if (s.call == "" && len(calls) != 0) || (s.call != "" && (len(calls) != 1 || calls[0] != s.call)) {
			t.Fatalf("step %d: calls %v, want %q", i, calls, s.call)
		}
		// Only a package the node does not hold is fetched: 3 chunks.
		if fetched := r.queries.Load() - queries; (s.want == StateInstalled || s.want == StateUpgraded) != (fetched == 3) {
			t.Fatalf("step %d: %d chunk queries", i, fetched)
		}
	}
}

func TestApplyRefusesWhatItCannotTrust(t *testing.T) {
	r := newRig(t, nil, api.PluginInfo{Name: "conf", Origin: "config"})
	file, digest := r.pkg("echo", "1.0.0")
	_, otherName := r.pkg("ohce", "1.0.0")
	size := int64(len(file))
	cases := []struct {
		name string
		spec Spec
		want string
	}{
		{"echo", Spec{Digest: strings.Repeat("0", 64), Size: size}, "not on this hub"},
		{"echo", Spec{Digest: digest, Size: size + 1}, "bytes in the cloud, not spec.size"},
		{"echo", Spec{Digest: otherName, Size: size}, `the package is plugin "ohce", the object "echo"`},
		{"echo", Spec{Package: file, Digest: otherName}, "spec.package's sha256 is"},
		{"echo", Spec{Digest: "XYZ", Size: size}, "is not a hex sha256"},
		{"echo", Spec{Digest: digest}, "spec.size, needed to fetch it, is not set"},
		{"conf", Spec{Digest: digest, Size: size}, "comes from the node's config"},
	}
	for i, c := range cases {
		r.send(abi.OpUpdate, c.name, c.spec, fmt.Sprint(i+1))
		if st := r.status(); st.State != StateFailed || !strings.Contains(st.Error, c.want) {
			t.Errorf("case %d: status %+v, want failed with %q", i, st, c.want)
		}
	}
	if len(r.plugins.calls) != 0 {
		t.Fatalf("the plugin host was called: %v", r.plugins.calls)
	}
	// A corrupted chunk is caught by the digest; the install does not
	// happen.
	r.corrupt.Store(true)
	r.send(abi.OpUpdate, "echo", Spec{Digest: digest, Size: size}, "100")
	if st := r.status(); st.State != StateFailed || !strings.Contains(st.Error, "the package fetched has sha256") {
		t.Fatalf("corrupted chunk: %+v", st)
	}
}

func TestFetchWaitsForTheLink(t *testing.T) {
	r := newRig(t, nil)
	r.up.Store(false)
	file, digest := r.pkg("echo", "1.0.0")
	r.send(abi.OpInsert, "echo", Spec{Digest: digest, Size: int64(len(file))}, "1")
	select {
	case st := <-r.statuses:
		if st.State != StateFetching || !strings.Contains(st.Error, "link is down") {
			t.Fatalf("first status %+v, want fetching: the cloud link is down", st)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no fetching status")
	}
	r.up.Store(true)
	if st := r.status(); st.State != StateInstalled {
		t.Fatalf("after the link came back: %+v", st)
	}
}

func TestResumeActsOnStoredObjectsAndDeletedOnes(t *testing.T) {
	f, _ := (&rig{t: t, packages: map[string][]byte{}}).pkg("echo", "1.0.0")
	o := Object{Spec: Spec{Package: f}}
	o.Metadata.Name = "echo"
	content, _ := json.Marshal(o)
	r := newRig(t, noObjects{{Key: "default/" + ObjectType + "/echo", ResourceVersion: "4", Content: content}},
		api.PluginInfo{Name: "gone", Origin: pluginhost.OriginInstalled, Source: pluginhost.SourceCloud},
		api.PluginInfo{Name: "mine", Origin: pluginhost.OriginInstalled, Source: pluginhost.SourceLocal})
	got := map[string]string{}
	for range 2 {
		st := r.status()
		got[st.Name] = st.State
	}
	if got["echo"] != StateInstalled || got["gone"] != StateRemoved {
		t.Fatalf("statuses after resume: %v", got)
	}
	if _, err := r.plugins.Info("mine"); err != nil {
		t.Fatal("a plugin installed locally was removed on resume")
	}
}
