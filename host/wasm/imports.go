package wasm

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// hostFunc is one edgehost_v1 import: its type and its implementation,
// which reads its parameters from stack and writes its result there.
type hostFunc struct {
	sig signature
	fn  func(inst *instance, mem api.Memory, stack []uint64)
}

func types(ts ...api.ValueType) []api.ValueType { return ts }

// hostFuncs are the imports of abi/SPEC.md section 5, by name.
var hostFuncs = map[string]hostFunc{
	abi.ImportLog:          {signature{types(i32, i32, i32), nil}, importLog},
	abi.ImportSend:         {signature{types(i32, i32), types(i32)}, importSend},
	abi.ImportRequest:      {signature{types(i32, i32, i32, i32, i32), types(i32)}, importRequest},
	abi.ImportRequestReply: {signature{types(i32, i32), types(i32)}, importRequestReply},
	abi.ImportKVGet:        {signature{types(i32, i32, i32, i32), types(i32)}, importKVGet},
	abi.ImportKVPut:        {signature{types(i32, i32, i32, i32), types(i32)}, importKVPut},
	abi.ImportKVDelete:     {signature{types(i32, i32), types(i32)}, importKVDelete},
	abi.ImportKVList:       {signature{types(i32, i32, i32, i32), types(i32)}, importKVList},
	abi.ImportNow:          {signature{nil, types(i64)}, importNow},
	abi.ImportConfig:       {signature{types(i32, i32), types(i32)}, importConfig},

	// ABI 1.1 (section 5.1).
	abi.ImportMQTTPublish:     {signature{types(i32, i32, i32, i32, i32, i32), types(i32)}, importMQTTPublish},
	abi.ImportMQTTSubscribe:   {signature{types(i32, i32), types(i32)}, importMQTTSubscribe},
	abi.ImportMQTTUnsubscribe: {signature{types(i32, i32), types(i32)}, importMQTTUnsubscribe},

	// ABI 1.2 (section 5.2).
	abi.ImportTCPConnect:  {signature{types(i32, i32, i32), types(i32)}, importTCPConnect},
	abi.ImportTCPRead:     {signature{types(i32, i32, i32, i32), types(i32)}, importTCPRead},
	abi.ImportTCPWrite:    {signature{types(i32, i32, i32, i32), types(i32)}, importTCPWrite},
	abi.ImportTCPClose:    {signature{types(i32), types(i32)}, importTCPClose},
	abi.ImportUDPOpen:     {signature{types(i32, i32), types(i32)}, importUDPOpen},
	abi.ImportUDPSend:     {signature{types(i32, i32, i32, i32), types(i32)}, importUDPSend},
	abi.ImportUDPRecv:     {signature{types(i32, i32, i32, i32), types(i32)}, importUDPRecv},
	abi.ImportUDPClose:    {signature{types(i32), types(i32)}, importUDPClose},
	abi.ImportSerialOpen:  {signature{types(i32, i32, i32, i32, i32, i32), types(i32)}, importSerialOpen},
	abi.ImportSerialRead:  {signature{types(i32, i32, i32, i32), types(i32)}, importSerialRead},
	abi.ImportSerialWrite: {signature{types(i32, i32, i32, i32), types(i32)}, importSerialWrite},
	abi.ImportSerialClose: {signature{types(i32), types(i32)}, importSerialClose},

	// ABI 1.3 (section 5.3).
	abi.ImportHTTPRequest: {signature{types(i32, i32, i32, i32, i32), types(i32)}, importHTTPRequest},
	abi.ImportHTTPReply:   {signature{types(i32, i32), types(i32)}, importHTTPReply},
}

// instantiateImports provides the named edgehost_v1 imports, and only those,
// in rt.
func instantiateImports(ctx context.Context, rt wazero.Runtime, names []string) error {
	b := rt.NewHostModuleBuilder(abi.ImportModule)
	for _, name := range names {
		h := hostFuncs[name]
		b.NewFunctionBuilder().
			WithGoModuleFunction(guard(name, h), h.sig.params, h.sig.results).
			WithName(name).
			Export(name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// guard adapts h to wazero: it finds the calling instance in the context
// and turns a panic in the host function into an internal error for the
// guest, so a host bug never takes the daemon down.
func guard(name string, h hostFunc) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		inst, _ := ctx.Value(instanceKey{}).(*instance)
		if inst == nil {
			// Not called through an instance of ours: refuse.
			if len(h.sig.results) > 0 {
				stack[0] = fail(abi.Internal)
			}
			return
		}
		defer func() {
			if r := recover(); r != nil {
				inst.p.logger.Error("host import panicked", "import", name, "panic", fmt.Sprint(r))
				if len(h.sig.results) > 0 {
					stack[0] = fail(abi.Internal)
				}
			}
		}()
		h.fn(inst, mod.Memory(), stack)
	}
}

// fail encodes -code as an i32 result.
func fail(c abi.Code) uint64 { return api.EncodeI32(-int32(c)) }

// ok encodes a non-negative length as an i32 result.
func ok(n int) uint64 { return api.EncodeI32(int32(n)) }

// read returns guest memory [ptr, ptr+n) from i32 stack values, or false
// when it lies outside memory.
func read(mem api.Memory, ptr, n uint64) ([]byte, bool) {
	if int32(n) < 0 {
		return nil, false
	}
	return mem.Read(api.DecodeU32(ptr), api.DecodeU32(n))
}

// output writes data to the guest's (out, outCap) buffer per abi/SPEC.md
// section 3: the length, and nothing written when it does not fit.
func output(out []byte, data []byte) uint64 {
	if len(data) <= len(out) {
		copy(out, data)
	}
	return ok(len(data))
}

// passedCodes are the codes a Host, MQTT or KV error may carry to the
// guest by matching them under errors.Is, as the bus's and the eventbus's
// errors do.
var passedCodes = [...]abi.Code{abi.InvalidArgument, abi.Malformed, abi.TooLarge, abi.NotFound,
	abi.Denied, abi.Timeout, abi.Unavailable, abi.Internal, abi.Busy, abi.Loop, abi.Closed, abi.BadHandle, abi.Unreachable}

// codeOf maps a Host, MQTT or KV error to the code the guest sees.
func codeOf(err error, fallback abi.Code) abi.Code {
	var c abi.Code
	switch {
	case errors.As(err, &c) && c != abi.OK:
		return c
	case errors.Is(err, context.DeadlineExceeded):
		return abi.Timeout
	}
	for _, c := range passedCodes {
		if errors.Is(err, c) {
			return c
		}
	}
	return fallback
}

var logLevels = [...]hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error}

// log(level, ptr, len)
func importLog(inst *instance, mem api.Memory, stack []uint64) {
	b, ok := read(mem, stack[1], stack[2])
	if !ok {
		return
	}
	level := hclog.Info
	if l := api.DecodeI32(stack[0]); l >= 0 && int(l) < len(logLevels) {
		level = logLevels[l]
	}
	if len(b) > inst.p.limits.MaxMessageBytes {
		b = b[:inst.p.limits.MaxMessageBytes]
	}
	inst.p.logger.Log(level, string(b), "source", "guest")
}

// readEnvelope decodes (a copy of) an envelope the guest sends and fills in
// what the host sets (abi/SPEC.md section 5).
func readEnvelope(inst *instance, mem api.Memory, ptr, n uint64, m *abi.Message) abi.Code {
	b, ok := read(mem, ptr, n)
	if !ok {
		return abi.InvalidArgument
	}
	if len(b) > inst.p.limits.MaxMessageBytes {
		return abi.TooLarge
	}
	if err := abi.Decode(b, m); err != nil {
		return abi.Malformed
	}
	if m.Header.ID == "" {
		m.Header.ID = newID()
	}
	if m.Header.Timestamp == 0 {
		m.Header.Timestamp = time.Now().UnixMilli()
	}
	m.Route.Source = inst.p.name
	return abi.OK
}

// chain sets the Chain of m, a message the guest makes while handling
// inst.in (if any), and refuses it with abi.Loop past abi.MaxHops
// (abi/SPEC.md section 5). A request's Waiting is the handled request's
// plus this plugin; a message handled without anyone waiting (a one-way
// message, a tick) starts a new Waiting, as its sender is not blocked.
func (inst *instance) chain(m *abi.Message) abi.Code {
	p := inst.p
	in := inst.in
	if in != nil {
		if in.Header.Chain.Hops >= abi.MaxHops {
			if p.loops.Add(1) == 1 {
				p.logger.Warn("message refused: the chain of messages it ends is too long; further refusals are logged at debug",
					"hops", in.Header.Chain.Hops+1, "max", abi.MaxHops, "group", m.Route.Group, "operation", m.Route.Operation)
			} else {
				p.logger.Debug("message refused: chain too long", "hops", in.Header.Chain.Hops+1, "group", m.Route.Group)
			}
			return abi.Loop
		}
		m.Header.Chain.Hops = in.Header.Chain.Hops + 1
	}
	if !m.Header.Sync {
		return abi.OK
	}
	if in == nil || !in.Header.Sync || in.Header.Chain.Waiting == "" {
		m.Header.Chain.Waiting = p.name
		return abi.OK
	}
	m.Header.Chain.Waiting = in.Header.Chain.Waiting + " " + p.name
	return abi.OK
}

// send(ptr, len) -> i32
func importSend(inst *instance, mem api.Memory, stack []uint64) {
	var m abi.Message
	if c := readEnvelope(inst, mem, stack[0], stack[1], &m); c != abi.OK {
		stack[0] = fail(c)
		return
	}
	if !inst.allowSend(&m) {
		stack[0] = inst.deny(abi.ImportSend, "route", m.Route.Group+" "+m.Route.Operation+" "+m.Route.Resource)
		return
	}
	if c := inst.chain(&m); c != abi.OK {
		stack[0] = fail(c)
		return
	}
	if inst.p.host == nil {
		stack[0] = fail(abi.Unavailable)
		return
	}
	if inst.holding() {
		inst.hold(held{msg: m})
		stack[0] = ok(0)
		return
	}
	if err := inst.p.host.Send(inst.callCtx, inst.p.name, &m); err != nil {
		stack[0] = fail(codeOf(err, abi.Unavailable))
		return
	}
	stack[0] = ok(0)
}

// request(ptr, len, timeout_ms, out_ptr, out_cap) -> i32
func importRequest(inst *instance, mem api.Memory, stack []uint64) {
	inst.kept = nil
	out, valid := read(mem, stack[3], stack[4])
	if !valid {
		stack[0] = fail(abi.InvalidArgument)
		return
	}
	var m abi.Message
	if c := readEnvelope(inst, mem, stack[0], stack[1], &m); c != abi.OK {
		stack[0] = fail(c)
		return
	}
	if !inst.allowSend(&m) {
		stack[0] = inst.deny(abi.ImportRequest, "route", m.Route.Group+" "+m.Route.Operation+" "+m.Route.Resource)
		return
	}
	if inst.p.host == nil {
		stack[0] = fail(abi.Unavailable)
		return
	}
	m.Header.Sync = true
	if c := inst.chain(&m); c != abi.OK {
		stack[0] = fail(c)
		return
	}
	timeout := time.Duration(api.DecodeI32(stack[2])) * time.Millisecond
	if timeout <= 0 {
		timeout = inst.p.limits.CallTimeout
	}
	// The wait ends at the request's timeout, at the call's deadline, or
	// when the caller gives up.
	deadline := time.Now().Add(timeout)
	if inst.deadline.Before(deadline) {
		deadline = inst.deadline
	}
	ctx, cancel := context.WithDeadline(inst.callCtx, deadline)
	defer cancel()
	reply, err := inst.p.host.Request(ctx, inst.p.name, &m)
	if err != nil {
		stack[0] = fail(codeOf(err, abi.Unavailable))
		return
	}
	n := reply.EncodedLen()
	if n > inst.p.limits.MaxMessageBytes || reply.Validate() != nil {
		stack[0] = fail(abi.TooLarge)
		return
	}
	if n <= len(out) {
		_, _ = abi.EncodeTo(out, &reply)
	} else {
		inst.kept, _ = abi.Append(nil, &reply)
	}
	stack[0] = ok(n)
}

// request_reply(out_ptr, out_cap) -> i32
func importRequestReply(inst *instance, mem api.Memory, stack []uint64) {
	out, valid := read(mem, stack[0], stack[1])
	switch {
	case !valid:
		stack[0] = fail(abi.InvalidArgument)
	case inst.kept == nil:
		stack[0] = fail(abi.NotFound)
	default:
		stack[0] = output(out, inst.kept)
	}
}

// readKey returns a KV key from guest memory, or the code to fail with.
func readKey(mem api.Memory, ptr, n uint64) (string, abi.Code) {
	b, ok := read(mem, ptr, n)
	if !ok || len(b) == 0 || len(b) > MaxKeyLen {
		return "", abi.InvalidArgument
	}
	return string(b), abi.OK
}

// kv_get(key_ptr, key_len, out_ptr, out_cap) -> i32
func importKVGet(inst *instance, mem api.Memory, stack []uint64) {
	key, c := readKey(mem, stack[0], stack[1])
	out, valid := read(mem, stack[2], stack[3])
	switch {
	case c != abi.OK || !valid:
		stack[0] = fail(abi.InvalidArgument)
		return
	case inst.p.kv == nil:
		stack[0] = fail(abi.Unavailable)
		return
	case !inst.allowKV(key):
		stack[0] = inst.deny(abi.ImportKVGet, "key", key)
		return
	}
	v, found, err := inst.tx.get(&inst.p.commits, key)
	switch {
	case err != nil:
		inst.p.logger.Error("kv get failed", "key", key, "error", err)
		stack[0] = fail(codeOf(err, abi.Internal))
	case !found:
		stack[0] = fail(abi.NotFound)
	default:
		stack[0] = output(out, v)
	}
}

// kv_put(key_ptr, key_len, val_ptr, val_len) -> i32
func importKVPut(inst *instance, mem api.Memory, stack []uint64) {
	key, c := readKey(mem, stack[0], stack[1])
	val, valid := read(mem, stack[2], stack[3])
	switch {
	case c != abi.OK || !valid:
		stack[0] = fail(abi.InvalidArgument)
	case len(val) > inst.p.limits.MaxMessageBytes:
		stack[0] = fail(abi.TooLarge)
	case inst.p.kv == nil:
		stack[0] = fail(abi.Unavailable)
	case !inst.allowKV(key):
		stack[0] = inst.deny(abi.ImportKVPut, "key", key)
	default:
		inst.tx.put(key, slices.Clone(val), false)
		stack[0] = ok(0)
	}
}

// kv_delete(key_ptr, key_len) -> i32
func importKVDelete(inst *instance, mem api.Memory, stack []uint64) {
	key, c := readKey(mem, stack[0], stack[1])
	switch {
	case c != abi.OK:
		stack[0] = fail(c)
	case inst.p.kv == nil:
		stack[0] = fail(abi.Unavailable)
	case !inst.allowKV(key):
		stack[0] = inst.deny(abi.ImportKVDelete, "key", key)
	default:
		inst.tx.put(key, nil, true)
		stack[0] = ok(0)
	}
}

// kv_list(prefix_ptr, prefix_len, out_ptr, out_cap) -> i32
func importKVList(inst *instance, mem api.Memory, stack []uint64) {
	prefix, okPrefix := read(mem, stack[0], stack[1])
	out, valid := read(mem, stack[2], stack[3])
	switch {
	case !okPrefix || !valid || len(prefix) > MaxKeyLen:
		stack[0] = fail(abi.InvalidArgument)
		return
	case inst.p.kv == nil:
		stack[0] = fail(abi.Unavailable)
		return
	case !inst.allowKV(string(prefix)):
		stack[0] = inst.deny(abi.ImportKVList, "prefix", string(prefix))
		return
	}
	keys, err := inst.tx.list(&inst.p.commits, string(prefix))
	if err != nil {
		inst.p.logger.Error("kv list failed", "prefix", string(prefix), "error", err)
		stack[0] = fail(codeOf(err, abi.Internal))
		return
	}
	size := 0
	for _, k := range keys {
		size += 2 + len(k)
	}
	if size > len(out) {
		stack[0] = ok(size)
		return
	}
	off := 0
	for _, k := range keys {
		binary.LittleEndian.PutUint16(out[off:], uint16(len(k)))
		off += 2 + copy(out[off+2:], k)
	}
	stack[0] = ok(size)
}

// now() -> i64
func importNow(_ *instance, _ api.Memory, stack []uint64) {
	stack[0] = api.EncodeI64(time.Now().UnixNano())
}

// config(out_ptr, out_cap) -> i32
func importConfig(inst *instance, mem api.Memory, stack []uint64) {
	out, valid := read(mem, stack[0], stack[1])
	if !valid {
		stack[0] = fail(abi.InvalidArgument)
		return
	}
	stack[0] = output(out, inst.p.config)
}

// newID returns a random UUID (version 4) for a message the guest sent
// without one.
func newID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}
