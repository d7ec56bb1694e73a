package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/wasm/internal/instrument"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// minBuffer is the smallest exchange buffer the host asks for, so small
// messages of varying sizes do not each call edgehost_buffer.
const minBuffer = 4096

// instanceKey is the context key under which an instance's context carries
// the instance, for the host functions it calls.
type instanceKey struct{}

// instance is one instantiation of a plugin's module. It runs one call at a
// time; every field below the line is touched only by the goroutine that
// holds the instance.
type instance struct {
	p     *Plugin
	mod   api.Module
	mem   api.Memory
	depth api.Global // the instrumented call depth, read after a trap
	// ctx is the context of every call into the instance: it carries the
	// instance for the host functions, and has no Done channel, so wazero
	// starts nothing per call.
	ctx context.Context
	// deadline ends the current call: the safepoint the instrumented guest
	// calls (safepoint.go) makes it trap once the deadline has passed.
	deadline time.Time

	fnBuffer, fnInit, fnHandle, fnTick, fnStop api.Function
	stack                                      []uint64 // CallWithStack's params and results

	bufPtr, bufCap uint32 // the exchange buffer; bufCap 0 until asked for

	callCtx  context.Context // the caller's context during a call, for imports
	in       *abi.Message    // the message edgehost_handle is handling; nil in other calls
	kept     []byte          // the reply request kept for request_reply
	keptHTTP []byte          // the response http_request kept for http_reply
	tx       kvTx            // the KV writes of the current call
	outbox   []held          // sends and publishes held behind tx
	// lastTopic is the topic of the last mqtt_publish, reused while the
	// guest publishes on the same one.
	lastTopic string
	io        ioTable // device I/O handles; they outlive calls
	oom       bool    // the guest reported running out of memory in this call
	timedOut  bool    // the safepoint stopped this call at its deadline
	pages     int64   // linear memory pages counted in p.pages
	dead      bool    // the instance must not serve another call

	stdout, stderr *lineWriter
}

// newInstance instantiates the plugin's module and initialises it: the
// reactor initialiser, the ABI version check and edgehost_init with the
// plugin's config. Any failure is a *FaultError of kind FaultStart (or
// timeout/memory), or a *CodeError when edgehost_init refused.
func (p *Plugin) newInstance(ctx context.Context) (*instance, error) {
	inst := &instance{p: p, stack: make([]uint64, 1), callCtx: ctx}
	inst.ctx = context.WithValue(context.Background(), instanceKey{}, inst)
	inst.stdout = &lineWriter{inst: inst, stream: "stdout"}
	inst.stderr = &lineWriter{inst: inst, stream: "stderr"}

	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(exportInitialize).
		WithStdout(inst.stdout).
		WithStderr(inst.stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader)
	// The start functions (_initialize) run under the call timeout too.
	inst.deadline = time.Now().Add(p.limits.CallTimeout)
	mod, err := p.rt.InstantiateModule(inst.ctx, p.compiled, cfg)
	if mod != nil {
		inst.mod = mod
		inst.mem = mod.Memory()
		inst.depth = mod.ExportedGlobal(instrument.DepthExport)
		p.live.Add(1)
	}
	if err != nil {
		fe := inst.fault(FaultStart, fmt.Errorf("instantiate: %w", err))
		inst.close()
		return nil, fe
	}
	inst.fnBuffer = mod.ExportedFunction(abi.ExportBuffer)
	inst.fnInit = mod.ExportedFunction(abi.ExportInit)
	inst.fnHandle = mod.ExportedFunction(abi.ExportHandle)
	inst.fnTick = mod.ExportedFunction(abi.ExportTick)
	inst.fnStop = mod.ExportedFunction(abi.ExportStop)
	if err := inst.start(ctx); err != nil {
		inst.close()
		return nil, err
	}
	inst.countPages()
	return inst, nil
}

// start checks the ABI version and runs edgehost_init.
func (inst *instance) start(ctx context.Context) error {
	p := inst.p
	if err := inst.call(ctx, inst.mod.ExportedFunction(abi.ExportABIVersion), FaultStart); err != nil {
		return err
	}
	if v := int32(inst.stack[0]); v != abi.Major {
		return &FaultError{Plugin: p.name, Kind: FaultStart,
			Err: fmt.Errorf("%s returned %d; this host implements ABI major version %d", abi.ExportABIVersion, v, abi.Major)}
	}
	buf, err := inst.exchange(ctx, len(p.config))
	if err != nil {
		return err
	}
	copy(buf, p.config)
	inst.stack[0] = uint64(len(p.config))
	if err := inst.call(ctx, inst.fnInit, FaultStart); err != nil {
		inst.abort()
		return err
	}
	if code := abi.Code(int32(inst.stack[0])); code != abi.OK {
		inst.abort()
		return &CodeError{Plugin: p.name, Export: abi.ExportInit, Code: code}
	}
	return inst.commit(ctx)
}

// call runs fn with inst.stack until the call timeout. A failure is a
// *FaultError (kind from the failure, else fallback) and marks the instance
// dead.
func (inst *instance) call(ctx context.Context, fn api.Function, fallback FaultKind) error {
	inst.callCtx = ctx
	inst.oom, inst.timedOut = false, false
	inst.deadline = time.Now().Add(inst.p.limits.CallTimeout)
	err := fn.CallWithStack(inst.ctx, inst.stack)
	inst.callCtx = nil
	inst.kept = nil
	inst.keptHTTP = nil
	if err != nil {
		inst.dead = true
		return inst.fault(fallback, err)
	}
	return nil
}

// fault classifies a failed call.
func (inst *instance) fault(fallback FaultKind, err error) *FaultError {
	kind := fallback
	switch {
	case inst.timedOut:
		kind = FaultTimeout
		err = fmt.Errorf("call ran past %s: %w", inst.p.limits.CallTimeout, err)
	case inst.depth != nil && inst.depth.Get() > instrument.MaxDepth:
		kind = FaultStack
		err = fmt.Errorf("calls nested deeper than %d: %w", instrument.MaxDepth, err)
	case inst.oom || inst.memoryFull():
		kind = FaultMemory
		err = fmt.Errorf("out of memory (limit %d pages): %w", inst.p.limits.MemoryPages, err)
	}
	return &FaultError{Plugin: inst.p.name, Kind: kind, Err: err}
}

// memoryFull reports whether the guest's memory has reached the page limit.
func (inst *instance) memoryFull() bool {
	return inst.mem != nil && inst.mem.Size()/65536 >= inst.p.limits.MemoryPages
}

// exchange returns the first n bytes of the guest's exchange buffer, asking
// the guest for one first when it has none or it is too small (abi/SPEC.md
// section 3). The
// slice aliases guest memory: write into it before the next call.
func (inst *instance) exchange(ctx context.Context, n int) ([]byte, error) {
	if inst.bufCap == 0 || uint64(n) > uint64(inst.bufCap) {
		want := max(n, minBuffer)
		if limit := inst.p.limits.MaxMessageBytes; want < limit {
			want = min(nextPow2(want), limit)
		}
		inst.stack[0] = uint64(want)
		if err := inst.call(ctx, inst.fnBuffer, FaultTrap); err != nil {
			return nil, err
		}
		ptr := uint32(inst.stack[0])
		if ptr == 0 {
			return nil, &CodeError{Plugin: inst.p.name, Export: abi.ExportBuffer, Code: abi.TooLarge}
		}
		if _, ok := inst.mem.Read(ptr, uint32(want)); !ok {
			inst.dead = true
			return nil, &FaultError{Plugin: inst.p.name, Kind: FaultMalformedReply,
				Err: fmt.Errorf("%s(%d) returned %#x, outside memory of %d bytes", abi.ExportBuffer, want, ptr, inst.mem.Size())}
		}
		inst.bufPtr, inst.bufCap = ptr, uint32(want)
	}
	b, _ := inst.mem.Read(inst.bufPtr, uint32(n)) // in range: memory never shrinks
	return b, nil
}

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// handle passes in (n bytes encoded) to edgehost_handle and decodes the
// reply.
func (inst *instance) handle(ctx context.Context, in *abi.Message, n int) (reply abi.Message, ok bool, c pendingCommit, err error) {
	p := inst.p
	buf, err := inst.exchange(ctx, n)
	if err != nil {
		return reply, false, c, err
	}
	if _, err := abi.EncodeTo(buf, in); err != nil {
		return reply, false, c, fmt.Errorf("plugin %q: %w", p.name, err)
	}
	inst.stack[0] = uint64(n)
	inst.in = in
	err = inst.call(ctx, inst.fnHandle, FaultTrap)
	inst.in = nil
	if err != nil {
		inst.abort()
		return reply, false, c, err
	}
	ptr, length, code := abi.UnpackReply(int64(inst.stack[0]))
	if code != abi.OK {
		inst.abort()
		return reply, false, c, &CodeError{Plugin: p.name, Export: abi.ExportHandle, Code: code}
	}
	if length > 0 {
		if err := inst.readReply(ptr, length, &reply); err != nil {
			inst.abort()
			return abi.Message{}, false, c, err
		}
		if err := inst.replyHeader(in, &reply); err != nil {
			inst.abort()
			return abi.Message{}, false, c, err
		}
	}
	return reply, length > 0, inst.detach(), nil
}

// readReply copies and decodes the reply at ptr. A bad reply is a fault.
func (inst *instance) readReply(ptr, length uint32, reply *abi.Message) error {
	p := inst.p
	if int64(length) > int64(p.limits.MaxMessageBytes) {
		inst.dead = true
		return &FaultError{Plugin: p.name, Kind: FaultReplyTooLarge,
			Err: fmt.Errorf("reply of %d bytes is over the limit of %d", length, p.limits.MaxMessageBytes)}
	}
	b, ok := inst.mem.Read(ptr, length)
	if !ok {
		inst.dead = true
		return &FaultError{Plugin: p.name, Kind: FaultMalformedReply,
			Err: fmt.Errorf("reply at %#x+%d lies outside memory of %d bytes", ptr, length, inst.mem.Size())}
	}
	if err := abi.Decode(b, reply); err != nil {
		inst.dead = true
		return &FaultError{Plugin: p.name, Kind: FaultMalformedReply, Err: err}
	}
	return nil
}

// replyHeader applies abi/SPEC.md section 4's rules to a reply's header:
// parent_id must be the request's id (an empty one is filled in, another
// one is a malformed reply); the guest's id is dropped, so the host gives
// the reply a fresh one when it sends it and a plugin cannot forge ids;
// sync is ignored.
func (inst *instance) replyHeader(in *abi.Message, reply *abi.Message) error {
	if p := reply.Header.ParentID; p != "" && p != in.Header.ID {
		inst.dead = true
		return &FaultError{Plugin: inst.p.name, Kind: FaultMalformedReply,
			Err: fmt.Errorf("reply's parent_id %.80q is not the request's id %.80q", p, in.Header.ID)}
	}
	reply.Header.ParentID = in.Header.ID
	reply.Header.ID = ""
	reply.Header.Sync = false
	return nil
}

// tick runs edgehost_tick.
func (inst *instance) tick(ctx context.Context) error {
	if err := inst.call(ctx, inst.fnTick, FaultTrap); err != nil {
		inst.abort()
		return err
	}
	if code := abi.Code(int32(inst.stack[0])); code != abi.OK {
		inst.abort()
		return &CodeError{Plugin: inst.p.name, Export: abi.ExportTick, Code: code}
	}
	return inst.commit(ctx)
}

// commit applies the call's KV writes, then sends the messages held behind
// them; if the writes fail, the held messages are dropped with them.
func (inst *instance) commit(ctx context.Context) error {
	return inst.detach().finish(ctx)
}

// pendingCommit is a successful call's KV writes, submitted to the
// plugin's committer, and the messages held behind them.
type pendingCommit struct {
	p    *Plugin
	s    submitted
	held []held
}

// detach submits the call's writes and takes its held messages, leaving
// the instance free for the next call. A call without writes has nothing
// to wait for.
func (inst *instance) detach() pendingCommit {
	if len(inst.tx.ops) == 0 {
		return pendingCommit{}
	}
	c := pendingCommit{p: inst.p, s: inst.p.commits.submit(inst.tx.take()), held: inst.outbox}
	inst.outbox = nil
	return c
}

// finish waits until the writes are durable, then sends the held
// messages; if the writes failed, it drops the messages and returns the
// error.
func (c pendingCommit) finish(ctx context.Context) error {
	if c.p == nil {
		return nil
	}
	if err := c.p.commits.wait(c.s); err != nil {
		if n := len(c.held); n > 0 {
			c.p.logger.Warn("dropped held messages: their call's KV writes failed", "messages", n)
		}
		return fmt.Errorf("plugin %q: commit KV writes: %w", c.p.name, errors.Join(abi.Internal, err))
	}
	c.p.flush(ctx, c.held)
	return nil
}

// stop calls edgehost_stop, if exported, before an orderly discard.
func (inst *instance) stop(ctx context.Context) {
	if inst.fnStop == nil || inst.dead {
		return
	}
	if err := inst.call(ctx, inst.fnStop, FaultTrap); err != nil {
		inst.p.logger.Warn("edgehost_stop failed", "error", err)
	}
}

// countPages brings the plugin's page count up to date with the
// instance's memory, which only the goroutine holding it may read.
func (inst *instance) countPages() {
	if inst.mem == nil {
		return
	}
	n := int64(inst.mem.Size() / 65536)
	inst.p.pages.Add(n - inst.pages)
	inst.pages = n
}

// close releases the instance and closes its device handles.
func (inst *instance) close() {
	inst.closeIO()
	inst.p.pages.Add(-inst.pages)
	inst.pages = 0
	if inst.mod != nil {
		if err := inst.mod.Close(context.Background()); err != nil {
			inst.p.logger.Debug("close instance", "error", err)
		}
		inst.p.live.Add(-1)
	}
	inst.stdout.flush()
	inst.stderr.flush()
}
