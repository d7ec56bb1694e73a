// Package conformance runs a plugin through the rules of abi/SPEC.md in
// the real runtime and reports, check by check, what an author must fix:
// the package and its manifest, the exports and imports, init, handling
// messages of every size and odd content, memory that stays bounded over
// many calls, concurrent instances, ticks and stop. `edgehost plugin test`
// prints its report.
//
// It checks what the host can observe from outside the guest. It cannot
// see writes a guest makes inside its own memory, so "no writes outside its
// buffers" is checked only where the host would see them: a reply must lie
// inside memory and decode, and the exchange buffer must hold what the host
// asked for.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/plugins"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/hashicorp/go-hclog"
)

// Result of one check.
const (
	Pass = "pass"
	Fail = "fail"
	// Warn: allowed by the spec, but likely not what the author meant.
	Warn = "warn"
	// Skip: the check does not apply (no tick export, an earlier failure).
	Skip = "skip"
)

// Check is one line of a report.
type Check struct {
	Name   string `json:"name"`
	Result string `json:"result"`
	// Detail says what was seen.
	Detail string `json:"detail,omitempty"`
	// Hint says what to change, for a failure or a warning.
	Hint string `json:"hint,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Plugin      string   `json:"plugin"`
	Version     string   `json:"version,omitempty"`
	ModuleBytes int      `json:"module_bytes"`
	Pages       uint32   `json:"initial_pages"`
	Imports     []string `json:"imports"`
	Checks      []Check  `json:"checks"`
}

// Passed reports whether no check failed.
func (r *Report) Passed() bool {
	for _, c := range r.Checks {
		if c.Result == Fail {
			return false
		}
	}
	return true
}

// Options tune Run; the zero value is usable.
type Options struct {
	// Config is passed to edgehost_init instead of the manifest's config.
	Config []byte
	// Message is the route of the messages sent to the plugin; the zero
	// route is group user, operation query, resource conformance/ping.
	Message abi.Route
	// Calls is how many messages the memory check sends (2000 when 0).
	Calls int
	// Limits are the plugin's limits; zero fields take the operator's
	// defaults (256 pages, 1 s, 1 MiB, 2 instances).
	Limits wasm.Limits
	// Logger receives the plugin's log lines; nil discards them.
	Logger hclog.Logger
	// CacheDir is the compilation cache (none when empty).
	CacheDir string
}

// Run checks the plugin package (or bare module) in file.
func Run(ctx context.Context, file []byte, opts Options) (*Report, error) {
	if opts.Calls <= 0 {
		opts.Calls = 2000
	}
	if opts.Message == (abi.Route{}) {
		opts.Message = abi.Route{Source: "conformance", Group: "user", Operation: abi.OpQuery, Resource: "conformance/ping"}
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	opts.Limits = withDefaults(opts.Limits)
	rt, err := wasm.NewRuntime(ctx, wasm.RuntimeConfig{Logger: opts.Logger, CacheDir: opts.CacheDir})
	if err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	defer rt.Close(context.Background())
	r := &run{ctx: ctx, opts: opts, rt: rt, rep: &Report{ModuleBytes: len(file)}}
	r.all(file)
	return r.rep, nil
}

func withDefaults(l wasm.Limits) wasm.Limits {
	if l.MemoryPages == 0 {
		l.MemoryPages = 256
	}
	if l.CallTimeout <= 0 {
		l.CallTimeout = time.Second
	}
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = 1 << 20
	}
	if l.Instances <= 0 {
		l.Instances = 2
	}
	return l
}

// run is one Run's state.
type run struct {
	ctx  context.Context
	opts Options
	rt   *wasm.Runtime
	rep  *Report
	man  *plugins.Manifest
	host *recordingHost
}

func (r *run) add(name, result, detail, hint string) {
	// A trap's stack trace follows its first line; the report keeps the
	// line (the plugin's log has the rest).
	if first, _, cut := strings.Cut(detail, "\n"); cut {
		detail = first + " (stack trace cut)"
	}
	r.rep.Checks = append(r.rep.Checks, Check{Name: name, Result: result, Detail: detail, Hint: hint})
}

// all runs the checks in order; a check the later ones depend on stops
// them when it fails.
func (r *run) all(file []byte) {
	module, ok := r.checkPackage(file)
	mod, ok := r.checkCompile(module, ok)
	if !ok {
		return
	}
	defer mod.Close(context.Background())
	p, ok := r.checkLoad(mod)
	if !ok {
		return
	}
	r.checkHandle(p)
	r.checkMQTT(p)
	r.checkSizes(p)
	r.checkOddContent(p)
	r.checkMemory(p)
	r.checkConcurrency(p)
	r.checkTick(p)
	r.checkStop(p)
}

// checkPackage reads the manifest, or accepts a bare module with a
// warning (it cannot be installed, only listed in the config).
func (r *run) checkPackage(file []byte) ([]byte, bool) {
	pkg, err := plugins.Parse(file)
	switch {
	case errors.Is(err, plugins.ErrNoManifest):
		r.rep.Plugin = "(bare module)"
		r.add("package", Warn, "no edgehost.manifest section: a bare module",
			"it can run from the config's plugin list or dir, but installing needs `edgehost plugin pack`")
		return file, true
	case err != nil:
		r.add("package", Fail, err.Error(), "rebuild the package with `edgehost plugin pack --manifest m.json --module p.wasm`")
		return nil, false
	}
	r.man = pkg.Manifest
	r.rep.Plugin, r.rep.Version = pkg.Manifest.Name, pkg.Manifest.Version
	detail := fmt.Sprintf("manifest %s %s, abi %s, kind %s", pkg.Manifest.Name, pkg.Manifest.Version, abiOr(pkg.Manifest.ABI), pkg.Manifest.Kind)
	if pkg.Signature == nil {
		r.add("package", Pass, detail+"; unsigned", "sign it (`edgehost plugin sign`) before a remote install")
	} else {
		r.add("package", Pass, detail+"; signed", "")
	}
	return pkg.Module, true
}

func abiOr(v string) string {
	if v == "" {
		return "1"
	}
	return v
}

// checkCompile compiles the module: exports and their signatures, imports
// the host provides, the manifest's abi and grants against the imports.
func (r *run) checkCompile(module []byte, ok bool) (*wasm.Module, bool) {
	if !ok {
		return nil, false
	}
	mod, err := r.rt.Compile(r.ctx, module)
	if err != nil {
		r.add("exports and imports", Fail, err.Error(), "abi/SPEC.md sections 4 and 5 list the exports required and the imports a host provides")
		return nil, false
	}
	r.rep.Imports, r.rep.Pages = mod.Imports(), mod.InitialMemoryPages()
	r.add("exports and imports", Pass, fmt.Sprintf("imports %s", strings.Join(orNone(mod.Imports()), ", ")), "")
	if r.man != nil {
		if err := r.man.CheckABI(mod.Imports()); err != nil {
			r.add("manifest abi", Fail, err.Error(), "set the manifest's \"abi\" to the version that added the newest import used")
		} else {
			r.add("manifest abi", Pass, "abi "+abiOr(r.man.ABI)+" covers the imports", "")
		}
		if err := plugins.NewPolicy(r.man.Capabilities, nil).CheckImports(mod.Imports()); err != nil {
			r.add("grants", Fail, err.Error(), "declare the capability in the manifest, or drop the import")
		} else {
			r.add("grants", Pass, "the manifest grants every capability the imports need", "")
		}
	}
	if pages := mod.InitialMemoryPages(); pages > r.opts.Limits.MemoryPages {
		r.add("initial memory", Fail, fmt.Sprintf("%d pages at start, over the limit of %d", pages, r.opts.Limits.MemoryPages),
			"shrink the initial memory (Rust: -C link-arg=-zstack-size=65536)")
		mod.Close(context.Background())
		return nil, false
	} else if pages > 64 {
		r.add("initial memory", Warn, fmt.Sprintf("%d pages (%d KiB) at start", pages, pages*64), "every instance starts with this much memory; under 64 pages is typical")
	} else {
		r.add("initial memory", Pass, fmt.Sprintf("%d pages (%d KiB) at start", pages, pages*64), "")
	}
	return mod, true
}

func orNone(s []string) []string {
	if len(s) == 0 {
		return []string{"none"}
	}
	return s
}

// checkLoad starts the plugin: _initialize, abi version, buffer, init.
func (r *run) checkLoad(mod *wasm.Module) (*wasm.Plugin, bool) {
	cfg := r.opts.Config
	name, version := "conformance", ""
	var grants wasm.Grants
	if r.man != nil {
		name, version = r.man.Name, r.man.Version
		if cfg == nil {
			cfg = r.man.Config
		}
		grants = plugins.NewPolicy(r.man.Capabilities, nil)
	}
	r.host = &recordingHost{}
	p, err := r.rt.Load(r.ctx, mod, wasm.PluginConfig{Name: name, Version: version, Limits: r.opts.Limits, Config: cfg,
		Host: r.host, KV: wasm.NewMemKV(), MQTT: r.host, Logger: r.opts.Logger, Grants: grants,
		// Every fault is reported here; quarantine would hide the next.
		Quarantine: wasm.Quarantine{After: 1 << 30}})
	if err != nil {
		r.add("init", Fail, err.Error(), "edgehost_init must return 0 for the config given (--config), and the exports of section 4 must behave")
		return nil, false
	}
	r.add("init", Pass, fmt.Sprintf("edgehost_init accepted %d bytes of config", len(cfg)), "")
	r.rep.Checks[len(r.rep.Checks)-1].Detail += "; abi version 1"
	return p, true
}

// message is a message to the plugin with content.
func (r *run) message(content []byte) abi.Message {
	return abi.Message{Header: abi.Header{ID: fmt.Sprintf("conformance-%d", time.Now().UnixNano()), Timestamp: time.Now().UnixMilli(), Sync: true},
		Route: r.opts.Message, Content: content}
}

// call sends content and describes the outcome; fault is non-nil for a
// fault.
func (r *run) call(p *wasm.Plugin, content []byte) (outcome string, fault error) {
	msg := r.message(content)
	reply, ok, err := p.Handle(r.ctx, &msg)
	var fe *wasm.FaultError
	var ce *wasm.CodeError
	switch {
	case errors.As(err, &fe):
		return "", err
	case errors.As(err, &ce):
		return "failure code " + ce.Code.String(), nil
	case err != nil:
		return "", err
	case !ok:
		return "no reply", nil
	default:
		return fmt.Sprintf("reply %s, %d bytes", reply.Route.Operation, len(reply.Content)), nil
	}
}

func (r *run) checkHandle(p *wasm.Plugin) {
	out, err := r.call(p, []byte("ping"))
	switch {
	case err != nil:
		r.add("handle", Fail, err.Error(), "edgehost_handle must return a reply, no reply (0) or a code for any message it is given")
	case strings.HasPrefix(out, "failure code"):
		r.add("handle", Warn, fmt.Sprintf("%s %s: %s", r.opts.Message.Operation, r.opts.Message.Resource, out),
			"pass the route your plugin handles (--operation, --resource) so that the checks reach its code")
	default:
		r.add("handle", Pass, fmt.Sprintf("%s %s: %s", r.opts.Message.Operation, r.opts.Message.Resource, out), "")
	}
}

// checkSizes sends content of growing sizes, past the 4096-byte first
// exchange buffer, up to the max message size.
func (r *run) checkSizes(p *wasm.Plugin) {
	max := r.opts.Limits.MaxMessageBytes - 28 - len(r.opts.Message.Source) - len(r.opts.Message.Group) -
		len(r.opts.Message.Operation) - len(r.opts.Message.Resource) - 64
	for _, n := range []int{0, 1, 4095, 4097, 65537, max} {
		content := make([]byte, n)
		for i := range content {
			content[i] = 'a' + byte(i%26)
		}
		if _, err := r.call(p, content); err != nil {
			r.add("message sizes", Fail, fmt.Sprintf("content of %d bytes: %v", n, err),
				"edgehost_buffer(n) must return at least n bytes (the host asks powers of two up to the max message size), and keep them valid between calls")
			return
		}
	}
	r.add("message sizes", Pass, fmt.Sprintf("content of 0 to %d bytes handled", max), "")
}

// checkOddContent sends content a handler may not expect.
func (r *run) checkOddContent(p *wasm.Plugin) {
	odd := map[string][]byte{
		"invalid UTF-8": {0xff, 0xfe, 0xfd},
		"binary":        {0, 1, 2, 3, 0, 0, 255},
		"broken JSON":   []byte(`{"twin": {"temp": `),
		"JSON null":     []byte("null"),
		"deep JSON":     []byte(strings.Repeat("[", 5000) + strings.Repeat("]", 5000)),
	}
	for _, name := range []string{"invalid UTF-8", "binary", "broken JSON", "JSON null", "deep JSON"} {
		if _, err := r.call(p, odd[name]); err != nil {
			r.add("odd content", Fail, fmt.Sprintf("%s: %v", name, err),
				"a handler must not trap on content it cannot parse: reply with operation error, or return a code")
			return
		}
	}
	r.add("odd content", Pass, "invalid UTF-8, binary, broken, null and deeply nested JSON handled without a fault", "")
}

// checkMemory sends many messages and checks the instances' memory stops
// growing after a warm-up.
func (r *run) checkMemory(p *wasm.Plugin) {
	warm := r.opts.Calls / 10
	var after int
	for i := range r.opts.Calls {
		if _, err := r.call(p, []byte(fmt.Sprintf("message %d", i))); err != nil {
			r.add("memory over many calls", Fail, fmt.Sprintf("call %d: %v", i, err), "")
			return
		}
		if i == warm {
			after = p.Status().MemoryPages
		}
	}
	end := p.Status().MemoryPages
	switch detail := fmt.Sprintf("%d calls: %d pages after %d, %d at the end (all instances)", r.opts.Calls, after, warm, end); {
	case end > after+r.opts.Limits.Instances:
		r.add("memory over many calls", Fail, detail, "memory grows with every message: something is kept per call (a leak)")
	default:
		r.add("memory over many calls", Pass, detail, "")
	}
}

// checkConcurrency calls from several goroutines at once: the instances
// must not share state they should not.
func (r *run) checkConcurrency(p *wasm.Plugin) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	for g := range 4 * r.opts.Limits.Instances {
		wg.Go(func() {
			for i := range 50 {
				if _, err := r.call(p, []byte(fmt.Sprintf("g%d-%d", g, i))); err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if failed != nil {
		r.add("concurrent instances", Fail, failed.Error(), "")
		return
	}
	r.add("concurrent instances", Pass, fmt.Sprintf("%d goroutines × 50 calls over %d instances", 4*r.opts.Limits.Instances, r.opts.Limits.Instances), "")
}

func (r *run) checkTick(p *wasm.Plugin) {
	if !p.HasTick() {
		r.add("tick", Skip, "no edgehost_tick export", "")
		return
	}
	for i := range 10 {
		if err := p.Tick(r.ctx); err != nil {
			var ce *wasm.CodeError
			if errors.As(err, &ce) {
				r.add("tick", Warn, fmt.Sprintf("tick %d: %v", i, err), "a tick that fails is logged every time; return 0 when there is nothing to do")
				return
			}
			r.add("tick", Fail, fmt.Sprintf("tick %d: %v", i, err), "")
			return
		}
	}
	r.add("tick", Pass, "10 ticks", "")
}

func (r *run) checkStop(p *wasm.Plugin) {
	if err := p.Close(r.ctx); err != nil {
		r.add("stop", Fail, err.Error(), "edgehost_stop must return promptly and not trap")
		return
	}
	r.add("stop", Pass, fmt.Sprintf("closed; the plugin sent %d messages and made %d requests", r.host.sends.Load(), r.host.requests.Load()), "")
}

// checkMQTT delivers a message on a topic the plugin subscribed to, as
// the eventbus does (section 5.1).
func (r *run) checkMQTT(p *wasm.Plugin) {
	filter := r.host.firstFilter()
	if filter == "" {
		r.add("mqtt delivery", Skip, "no subscription made", "")
		return
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if l == "+" || l == "#" {
			levels[i] = "conformance"
		}
	}
	topic := strings.Join(levels, "/")
	msg := abi.Message{Header: abi.Header{ID: "conformance-mqtt", Timestamp: time.Now().UnixMilli()},
		Route: abi.Route{Source: "eventbus", Group: "bus", Operation: "publish", Resource: topic}, Content: []byte(`{"conformance":true}`)}
	_, _, err := p.Handle(r.ctx, &msg)
	var fe *wasm.FaultError
	if errors.As(err, &fe) {
		r.add("mqtt delivery", Fail, fmt.Sprintf("publish on %s: %v", topic, err), "a delivery on a subscribed topic must not fault")
		return
	}
	r.add("mqtt delivery", Pass, fmt.Sprintf("publish on %s (subscribed %s) handled; %d publishes so far", topic, filter, r.host.publishes.Load()), "")
}

// recordingHost answers a plugin's sends, requests and MQTT calls: sends
// and publishes are counted and dropped, requests answered with a failure
// reply, as a host with no receiver for them would, and subscriptions are
// kept for the delivery check.
type recordingHost struct {
	sends, requests, publishes atomic.Int64
	mu                         sync.Mutex
	filters                    []string
}

func (h *recordingHost) Publish(context.Context, string, string, []byte, byte, bool) error {
	h.publishes.Add(1)
	return nil
}

func (h *recordingHost) Subscribe(_, filter string) error {
	h.mu.Lock()
	h.filters = append(h.filters, filter)
	h.mu.Unlock()
	return nil
}

func (h *recordingHost) Unsubscribe(string, string) error { return nil }

func (h *recordingHost) firstFilter() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.filters) == 0 {
		return ""
	}
	return h.filters[0]
}

func (h *recordingHost) Send(_ context.Context, _ string, _ *abi.Message) error {
	h.sends.Add(1)
	return nil
}

func (h *recordingHost) Request(_ context.Context, _ string, m *abi.Message) (abi.Message, error) {
	h.requests.Add(1)
	return m.FailureReply(abi.Failure{Reason: abi.FailureNoReceiver, Error: "conformance: nothing receives requests here"}), nil
}
