//go:build !wasip1

package sdktest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/internal/hostcall"
)

// ErrTrap is wrapped by the error of a call in which the plugin panicked:
// a wasm host sees a trap there, counts a fault and commits no KV writes.
var ErrTrap = errors.New("sdktest: plugin trapped")

// maxKeyLen is the longest KV key (SPEC §5).
const maxKeyLen = 1024

// LogLine is one line the plugin logged.
type LogLine struct {
	Level sdk.Level
	Text  string
}

// Host is a fake edgehost host for one plugin. Its exported fields may be
// set between calls. Every Host drives the same plugin: the package globals
// of the process, as one wasm instance would; calls from several Hosts or
// goroutines are serialised.
type Host struct {
	// Name is the plugin's name, set as the source of what it sends.
	Name string
	// Config is what the plugin's init and sdk.Config see.
	Config []byte
	// KV is the plugin's committed namespace; tests may seed and inspect
	// it. A call's writes reach it when the call succeeds.
	KV map[string][]byte
	// Responder answers sdk.Request; nil fails requests with
	// abi.Unavailable, as does a nil reply. An error that is or wraps an
	// abi.Code reaches the plugin as that code, any other as abi.Internal.
	// It runs inside the plugin's call and must not call into the plugin.
	Responder func(req *sdk.Message) (*sdk.Message, error)
	// Clock is the host's time; nil means time.Now.
	Clock func() time.Time
	// TCP and UDP are the endpoints the plugin may reach, as a manifest's
	// capabilities.tcp and .udp ("127.0.0.1:*"); nil denies all.
	TCP, UDP []string
	// HTTP are the URL patterns the plugin may request, as a manifest's
	// capabilities.http ("http://127.0.0.1:8080/*"); nil denies all.
	HTTP []string

	initialized   bool
	logs          []LogLine
	sent          []*sdk.Message
	published     []Publication
	subscriptions map[string]bool
	tx            map[string]write // the current call's KV writes
	kept          []byte           // a request's reply kept for request_reply
	keptHTTP      []byte           // an http_request's response kept for http_reply
	ids           int
	devices       map[int32]*device // open device handles
	lastHandle    int32
}

// write is one buffered KV write.
type write struct {
	val     []byte
	deleted bool
}

// New returns a fake host named "plugin" with an empty KV store.
func New() *Host {
	return &Host{Name: "plugin", KV: map[string][]byte{}}
}

var (
	// mu serialises calls into the plugin, which has one set of globals.
	mu sync.Mutex
	// exchange is the plugin's exchange buffer as a host caches it: asked
	// for again only when an input is larger (SPEC §3).
	exchange []byte
)

// Init runs the plugin's edgehost_init with h.Config. Call runs it on
// first use if the test has not.
func (h *Host) Init() error {
	err := h.call("init", func() abi.Code {
		if !load(h.Config) {
			return abi.Internal
		}
		return hostcall.Exports.Init(int32(len(h.Config)))
	})
	h.initialized = err == nil
	return err
}

// Call delivers m to the plugin's handler as the host would (an ID is
// assigned if m has none) and returns the decoded reply, or nil for none.
// Afterwards it fills the exchange buffer with Scribble bytes.
// A failure code the plugin returns is an error wrapping that abi.Code; a
// panic is an error wrapping ErrTrap.
func (h *Host) Call(m *sdk.Message) (*sdk.Message, error) {
	if !h.initialized {
		if err := h.Init(); err != nil {
			return nil, err
		}
	}
	req := *m
	if req.Header.ID == "" {
		req.Header.ID = h.newID()
	}
	env, err := abi.Append(nil, (*abi.Message)(&req))
	if err != nil {
		return nil, fmt.Errorf("sdktest: call: %w", err)
	}
	var reply []byte
	err = h.call("handle", func() abi.Code {
		if !load(env) {
			return abi.Internal
		}
		r, code := hostcall.Exports.Handle(int32(len(env)))
		reply = append([]byte(nil), r...) // copied out before the next call
		return code
	})
	scribble()
	if err != nil || len(reply) == 0 {
		return nil, err
	}
	out := new(sdk.Message)
	if err := abi.Decode(reply, (*abi.Message)(out)); err != nil {
		return nil, fmt.Errorf("sdktest: handle: plugin replied with a malformed envelope: %w", err)
	}
	// Complete the reply as the host does (SPEC §4).
	if out.Header.ID == "" {
		out.Header.ID = h.newID()
	}
	if out.Header.Timestamp == 0 {
		out.Header.Timestamp = h.now().UnixMilli()
	}
	return out, nil
}

// Tick runs the plugin's edgehost_tick.
func (h *Host) Tick() error {
	return h.call("tick", hostcall.Exports.Tick)
}

// Stop runs the plugin's edgehost_stop.
func (h *Host) Stop() error {
	return h.call("stop", func() abi.Code {
		hostcall.Exports.Stop()
		return abi.OK
	})
}

// Run runs f as if inside an export call, so that it may use the SDK's
// functions directly; its KV writes are committed when it returns.
func (h *Host) Run(f func()) error {
	return h.call("run", func() abi.Code {
		f()
		return abi.OK
	})
}

// Logs returns the lines the plugin has logged so far.
func (h *Host) Logs() []LogLine { return h.logs }

// Sent returns the messages the plugin has sent so far, as the host
// completed them (source, ID and timestamp set).
func (h *Host) Sent() []*sdk.Message { return h.sent }

// Publication is one MQTT publish a plugin made.
type Publication struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// Published returns the plugin's MQTT publishes so far.
func (h *Host) Published() []Publication { return h.published }

// Subscriptions returns the plugin's current MQTT subscriptions, sorted.
func (h *Host) Subscriptions() []string {
	var out []string
	for f := range h.subscriptions {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Deliver hands payload on topic to the plugin's handler as the host
// delivers a message from one of its MQTT subscriptions.
func (h *Host) Deliver(topic string, payload []byte) (*sdk.Message, error) {
	return h.Call(&sdk.Message{
		Route:   sdk.Route{Source: sdk.MQTTSource, Group: "bus", Operation: sdk.MQTTOperation, Resource: topic},
		Content: payload,
	})
}

// Scribble is the byte sdktest fills the exchange buffer with after each
// Call, so that a handler that keeps part of its request past the call (see
// sdk.HandlerFunc) sees it turn into 0xEE bytes in its unit tests.
const Scribble = 0xEE

// scribble overwrites the exchange buffer, as the next message would.
func scribble() {
	mu.Lock()
	defer mu.Unlock()
	for i := range exchange {
		exchange[i] = Scribble
	}
}

// load writes b into the plugin's exchange buffer, asking for a larger one
// when needed.
func load(b []byte) bool {
	if len(b) > len(exchange) || exchange == nil {
		exchange = hostcall.Exports.Buffer(int32(len(b)))
		if len(exchange) < len(b) {
			exchange = nil
			return false
		}
	}
	copy(exchange, b)
	return true
}

// call runs one export call with h as the host, committing the call's KV
// writes if it succeeds and turning a failure code or panic into an error.
func (h *Host) call(export string, f func() abi.Code) (err error) {
	mu.Lock()
	if h.KV == nil {
		h.KV = map[string][]byte{}
	}
	hostcall.Current = imports{h}
	h.tx = map[string]write{}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w in %s: panic: %v\n%s", ErrTrap, export, r, debug.Stack())
		}
		if err == nil {
			for k, w := range h.tx {
				if w.deleted {
					delete(h.KV, k)
				} else {
					h.KV[k] = w.val
				}
			}
		}
		h.tx, h.kept = nil, nil
		hostcall.Current = nil
		mu.Unlock()
	}()
	if code := f(); code != abi.OK {
		return fmt.Errorf("sdktest: plugin failed %s: %w", export, code)
	}
	return nil
}

func (h *Host) newID() string {
	h.ids++
	return "sdktest-" + strconv.Itoa(h.ids)
}

func (h *Host) now() time.Time {
	if h.Clock != nil {
		return h.Clock()
	}
	return time.Now()
}

// complete decodes an envelope the plugin sends and fills in what the host
// sets (SPEC §5).
func (h *Host) complete(env []byte) (*sdk.Message, abi.Code) {
	m := new(sdk.Message)
	if err := abi.Decode(env, (*abi.Message)(m)); err != nil {
		return nil, abi.Malformed
	}
	m.Route.Source = h.Name
	if m.Header.ID == "" {
		m.Header.ID = h.newID()
	}
	if m.Header.Timestamp == 0 {
		m.Header.Timestamp = h.now().UnixMilli()
	}
	return m, abi.OK
}

// imports implements the edgehost_v1 imports for h. Like a wasm host, it
// copies what it keeps: the plugin reuses the memory it passes.
type imports struct{ h *Host }

func (i imports) Log(level int32, msg string) {
	i.h.logs = append(i.h.logs, LogLine{Level: sdk.Level(level), Text: strings.Clone(msg)})
}

func (i imports) Send(env []byte) int32 {
	m, code := i.h.complete(env)
	if code != abi.OK {
		return -int32(code)
	}
	i.h.sent = append(i.h.sent, m)
	return 0
}

func (i imports) Request(env []byte, _ int32, out []byte) int32 {
	i.h.kept = nil
	req, code := i.h.complete(env)
	if code != abi.OK {
		return -int32(code)
	}
	if i.h.Responder == nil {
		return -int32(abi.Unavailable)
	}
	id := req.Header.ID // the responder may turn req into its reply
	reply, err := i.h.Responder(req)
	if err != nil {
		if errors.As(err, &code) && code > abi.OK {
			return -int32(code)
		}
		return -int32(abi.Internal)
	}
	if reply == nil {
		return -int32(abi.Unavailable)
	}
	r := *reply
	r.Header.ParentID = id
	if r.Header.ID == "" {
		r.Header.ID = i.h.newID()
	}
	b, err := abi.Append(nil, (*abi.Message)(&r))
	if err != nil {
		return -int32(abi.TooLarge)
	}
	if len(b) > len(out) {
		i.h.kept = b
	}
	return output(b, out)
}

func (i imports) RequestReply(out []byte) int32 {
	if i.h.kept == nil {
		return -int32(abi.NotFound)
	}
	return output(i.h.kept, out)
}

// output implements SPEC §3's rule for data from the host: copy data to
// out if it fits, return its length either way.
func output(data, out []byte) int32 {
	if len(data) <= len(out) {
		copy(out, data)
	}
	return int32(len(data))
}

func validKey(key string) bool { return len(key) >= 1 && len(key) <= maxKeyLen }

func (i imports) KVGet(key string, out []byte) int32 {
	if !validKey(key) {
		return -int32(abi.InvalidArgument)
	}
	w, ok := i.h.tx[key]
	if !ok {
		w.val, ok = i.h.KV[key]
		w.deleted = !ok
	}
	if w.deleted {
		return -int32(abi.NotFound)
	}
	return output(w.val, out)
}

func (i imports) KVPut(key string, val []byte) int32 {
	if !validKey(key) {
		return -int32(abi.InvalidArgument)
	}
	i.h.tx[strings.Clone(key)] = write{val: append([]byte{}, val...)}
	return 0
}

func (i imports) KVDelete(key string) int32 {
	if !validKey(key) {
		return -int32(abi.InvalidArgument)
	}
	i.h.tx[strings.Clone(key)] = write{deleted: true}
	return 0
}

func (i imports) KVList(prefix string, out []byte) int32 {
	var keys []string
	for k := range i.h.KV {
		if _, written := i.h.tx[k]; !written && strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	for k, w := range i.h.tx {
		if !w.deleted && strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b []byte
	for _, k := range keys {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(k)))
		b = append(b, k...)
	}
	return output(b, out)
}

func (i imports) Now() int64 { return i.h.now().UnixNano() }

func (i imports) Config(out []byte) int32 { return output(i.h.Config, out) }

func (i imports) MQTTPublish(topic string, payload []byte, qos, retain int32) int32 {
	if topic == "" || strings.ContainsAny(topic, "+#") || qos < 0 || qos > 1 || retain < 0 || retain > 1 {
		return -int32(abi.InvalidArgument)
	}
	i.h.published = append(i.h.published, Publication{Topic: topic, Payload: bytes.Clone(payload), QoS: byte(qos), Retain: retain == 1})
	return 0
}

func (i imports) MQTTSubscribe(filter string) int32 {
	if filter == "" {
		return -int32(abi.InvalidArgument)
	}
	if i.h.subscriptions == nil {
		i.h.subscriptions = map[string]bool{}
	}
	i.h.subscriptions[filter] = true
	return 0
}

func (i imports) MQTTUnsubscribe(filter string) int32 {
	delete(i.h.subscriptions, filter)
	return 0
}
