package wasm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/edgehost/edgehost/abi"
	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Host is the message bus as a plugin sees it through the send and request
// imports. plugin is the sending plugin's name. An error that is (or wraps)
// an abi.Code reaches the guest as that code; context.DeadlineExceeded as
// abi.Timeout; any other as abi.Unavailable.
type Host interface {
	// Send queues m on the bus.
	Send(ctx context.Context, plugin string, m *abi.Message) error
	// Request sends m and waits for its reply until ctx is done.
	Request(ctx context.Context, plugin string, m *abi.Message) (abi.Message, error)
}

// PluginConfig configures a plugin for Load.
type PluginConfig struct {
	// Name names the plugin in errors, logs and the source of what it sends.
	Name string
	// Version is reported in Status.
	Version string
	// Limits bound the plugin; zero fields take defaults.
	Limits Limits
	// Quarantine says when repeated faults quarantine the plugin.
	Quarantine Quarantine
	// Config is passed to edgehost_init and returned by the config import.
	Config []byte
	// Host serves send and request; nil makes them fail with unavailable.
	Host Host
	// KV is the plugin's namespace; nil makes the KV imports fail with
	// unavailable.
	KV KV
	// Logger receives the plugin's log lines and the host's messages about
	// it. Nil: the runtime's logger, named "plugin" with plugin=Name.
	Logger hclog.Logger
	// Grants checks the plugin's send, request, KV and MQTT calls; nil
	// allows them all.
	Grants Grants
	// MQTT serves the MQTT imports (ABI 1.1); nil makes them fail with
	// unavailable.
	MQTT MQTT
}

// Plugin is a loaded plugin: a pool of instances of one module. It is safe
// for concurrent use; each instance runs one call at a time.
type Plugin struct {
	name, version string
	limits        Limits
	config        []byte
	host          Host
	kv            KV
	commits       committer // applies kv's writes in call order
	mqtt          MQTT
	grants        Grants
	logger        hclog.Logger
	owner         *Runtime
	hasTick       bool           // the module exports edgehost_tick
	rt            wazero.Runtime // this plugin's own: its memory limit
	compiled      wazero.CompiledModule

	// The pool: idle instances, and one token per instance that may still
	// be created. Together they always hold Limits.Instances items, less
	// those in use.
	idle    chan *instance
	tokens  chan struct{}
	closing chan struct{}
	closed  atomic.Bool
	live    atomic.Int64
	pages   atomic.Int64 // linear memory of the live instances, in pages

	loops atomic.Uint64 // messages refused for a chain past abi.MaxHops

	// ioCtx ends when the plugin closes, and with it every device I/O
	// wait of its instances.
	ioCtx    context.Context
	ioCancel context.CancelFunc
	ioOpen   atomic.Int64  // device handles open in live instances
	ioIn     atomic.Uint64 // bytes read from devices
	ioOut    atomic.Uint64 // bytes written to devices
	// abandoned: Close stopped waiting for calls in flight; their
	// instances are closed when the calls return.
	abandoned atomic.Bool

	moduleBytes int

	health     health // of message calls
	tickHealth health // of edgehost_tick calls
}

// Load starts a plugin from m: its own wazero runtime with the memory limit,
// WASI, the edgehost_v1 imports m declares, and one instance initialised
// with cfg.Config. Errors name the plugin.
func (r *Runtime) Load(ctx context.Context, m *Module, cfg PluginConfig) (*Plugin, error) {
	if cfg.Name == "" {
		return nil, errors.New("load plugin: empty name")
	}
	limits := cfg.Limits.withDefaults()
	if m.initialPages > limits.MemoryPages {
		return nil, fmt.Errorf("plugin %q: module needs %d memory pages at start, over its limit of %d",
			cfg.Name, m.initialPages, limits.MemoryPages)
	}
	if err := r.enter(); err != nil {
		return nil, fmt.Errorf("plugin %q: %w", cfg.Name, err)
	}
	defer r.leave()
	logger := cfg.Logger
	if logger == nil {
		logger = r.logger.Named("plugin").With("plugin", cfg.Name)
	}
	p := &Plugin{
		name:    cfg.Name,
		version: cfg.Version,
		limits:  limits,
		config:  slices.Clone(cfg.Config),
		host:    cfg.Host,
		kv:      cfg.KV,
		commits: committer{kv: cfg.KV},
		mqtt:    cfg.MQTT,
		grants:  cfg.Grants,
		logger:  logger,
		owner:   r,
		hasTick: m.hasTick,
		// The module as given, not as instrumented.
		moduleBytes: m.size,
		idle:        make(chan *instance, limits.Instances),
		tokens:      make(chan struct{}, limits.Instances),
		closing:     make(chan struct{}),
		health:      health{policy: cfg.Quarantine.withDefaults()},
		tickHealth:  health{policy: cfg.Quarantine.withDefaults()},
	}
	if r.cacheDir != "" {
		// The plugin's runtime reads the machine code back from the disk
		// cache, and the module is decoded once instead of twice (a Go
		// plugin's data and code sections are several MB). Without a disk
		// cache this would compile it again, so the memory is spent there.
		if err := m.dropCompiled(ctx); err != nil {
			return nil, fmt.Errorf("plugin %q: %w", cfg.Name, err)
		}
	}
	p.ioCtx, p.ioCancel = context.WithCancel(context.Background())
	p.rt = wazero.NewRuntimeWithConfig(ctx, r.runtimeConfig().WithMemoryLimitPages(limits.MemoryPages))
	// The plugin keeps nothing of m: its bytes and decoded form are
	// garbage once the caller closes it.
	if err := p.link(ctx, m); err != nil {
		p.ioCancel()
		_ = p.rt.Close(ctx)
		return nil, fmt.Errorf("plugin %q: %w", p.name, err)
	}
	inst, err := p.newInstance(ctx)
	if err != nil {
		p.ioCancel()
		_ = p.rt.Close(ctx)
		return nil, fmt.Errorf("plugin %q: start: %w", p.name, err)
	}
	p.idle <- inst
	for i := 1; i < limits.Instances; i++ {
		p.tokens <- struct{}{}
	}
	if err := r.track(p); err != nil {
		_ = p.Close(ctx)
		return nil, fmt.Errorf("plugin %q: %w", p.name, err)
	}
	p.logger.Info("plugin loaded", "version", p.version, "digest", m.Digest(), "imports", m.imports)
	return p, nil
}

// link provides WASI and the imports, and compiles the module into the
// plugin's runtime (a lookup in the shared compilation cache).
func (p *Plugin) link(ctx context.Context, m *Module) error {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.rt); err != nil {
		return fmt.Errorf("provide WASI: %w", err)
	}
	if err := instantiateImports(ctx, p.rt, m.imports); err != nil {
		return fmt.Errorf("provide imports: %w", err)
	}
	if err := instantiateSafepoint(ctx, p.rt); err != nil {
		return fmt.Errorf("provide the safepoint: %w", err)
	}
	cctx, cancel := p.owner.compileContext(ctx)
	defer cancel()
	compiled, err := p.rt.CompileModule(cctx, m.wasm)
	if err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	p.compiled = compiled
	return nil
}

// Name returns the plugin's name.
func (p *Plugin) Name() string { return p.name }

// Handle passes in to the plugin's edgehost_handle and returns its reply; ok
// is false when the plugin consumed the message without replying. Errors
// name the plugin: a *FaultError when the call faulted, a *CodeError when
// the guest returned a failure code, one wrapping ErrQuarantined or
// ErrClosed when the call was not made, abi.TooLarge when in is over
// Limits.MaxMessageBytes. ctx is checked before the call and used by the
// imports the guest calls; the call itself is bounded by Limits.CallTimeout.
func (p *Plugin) Handle(ctx context.Context, in *abi.Message) (reply abi.Message, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return reply, false, fmt.Errorf("plugin %q: %w", p.name, err)
	}
	n := in.EncodedLen()
	if n > p.limits.MaxMessageBytes {
		return reply, false, fmt.Errorf("plugin %q: message of %d bytes is over the limit of %d: %w",
			p.name, n, p.limits.MaxMessageBytes, abi.TooLarge)
	}
	probe, err := p.admit()
	if err != nil {
		return reply, false, err
	}
	inst, err := p.acquire(ctx)
	if err == nil {
		var c pendingCommit
		reply, ok, c, err = inst.handle(ctx, in, n)
		// The instance serves the next call while the store makes this
		// one's writes durable; the reply still waits for them.
		p.release(inst)
		if err == nil {
			err = c.finish(ctx)
		}
		if err != nil {
			reply, ok = abi.Message{}, false
		}
	}
	p.settle(probe, err)
	return reply, ok, err
}

// HasTick reports whether the module exports edgehost_tick.
func (p *Plugin) HasTick() bool { return p.hasTick }

// Tick runs the plugin's edgehost_tick on one instance; it does nothing when
// the plugin does not export it. Errors are those of Handle.
func (p *Plugin) Tick(ctx context.Context) error {
	if !p.hasTick {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("plugin %q: %w", p.name, err)
	}
	// Ticks keep a health of their own: a tick that keeps faulting stops
	// ticks, not the plugin's messages, and a good tick does not excuse
	// faulting messages.
	probe, err := p.tickHealth.admit(p.name, "ticks ")
	if err != nil {
		return err
	}
	inst, err := p.acquire(ctx)
	if err == nil {
		err = inst.tick(ctx)
		p.release(inst)
	}
	p.tickHealth.settle(p, "ticks", probe, err)
	return err
}

// acquire takes an idle instance, or creates one if the pool is not full,
// or waits for one.
func (p *Plugin) acquire(ctx context.Context) (*instance, error) {
	var inst *instance
	select {
	case inst = <-p.idle:
	default:
		select {
		case inst = <-p.idle:
		case <-p.tokens:
			var err error
			if inst, err = p.newInstance(ctx); err != nil {
				p.tokens <- struct{}{}
				return nil, err
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("plugin %q: waiting for an instance: %w", p.name, ctx.Err())
		case <-p.closing:
			return nil, fmt.Errorf("plugin %q: %w", p.name, ErrClosed)
		}
	}
	if p.closed.Load() {
		p.release(inst)
		return nil, fmt.Errorf("plugin %q: %w", p.name, ErrClosed)
	}
	return inst, nil
}

// release returns inst to the pool, or discards it if it is dead or Close
// has stopped waiting for it.
func (p *Plugin) release(inst *instance) {
	inst.countPages()
	if inst.dead || p.abandoned.Load() {
		inst.close()
		p.tokens <- struct{}{}
		return
	}
	p.idle <- inst
}

// Close stops the plugin: new calls fail with ErrClosed, device I/O waits
// end at once (abi.Timeout), calls in flight finish (until ctx is done,
// when they are cut short), each instance gets edgehost_stop and its device
// handles are closed, then the plugin's runtime is released.
func (p *Plugin) Close(ctx context.Context) error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(p.closing)
	p.ioCancel()
	defer p.owner.untrack(p)
	for range p.limits.Instances {
		select {
		case inst := <-p.idle:
			inst.stop(ctx)
			inst.close()
		case <-p.tokens:
		case <-ctx.Done():
			// Calls still running are stopped by closing their modules;
			// their instances close as the calls return.
			p.abandoned.Store(true)
			p.logger.Warn("closing plugin with calls in flight", "error", ctx.Err())
			if err := p.rt.Close(context.Background()); err != nil {
				return fmt.Errorf("plugin %q: close: %w", p.name, err)
			}
			return fmt.Errorf("plugin %q: close: %w", p.name, ctx.Err())
		}
	}
	if err := p.rt.Close(ctx); err != nil {
		return fmt.Errorf("plugin %q: close: %w", p.name, err)
	}
	p.logger.Info("plugin closed")
	return nil
}
