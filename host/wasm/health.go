package wasm

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// State is a plugin's state.
type State int

// Plugin states.
const (
	// StateReady: the plugin serves calls.
	StateReady State = iota
	// StateQuarantined: calls fail at once until the backoff has passed;
	// then one call is let through as a probe, and its success ends the
	// quarantine.
	StateQuarantined
	// StateClosed: the plugin has been closed.
	StateClosed
)

// String returns "ready", "quarantined" or "closed".
func (s State) String() string {
	switch s {
	case StateReady:
		return "ready"
	case StateQuarantined:
		return "quarantined"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("state %d", int(s))
}

// Status is a snapshot of a plugin's health.
type Status struct {
	Name, Version string
	State         State
	// ConsecutiveFaults counts faults since the last successful call.
	ConsecutiveFaults int
	// LastFault is the most recent fault, nil if none; LastFaultAt its time.
	LastFault   *FaultError
	LastFaultAt time.Time
	// QuarantinedUntil is when the current quarantine's backoff ends.
	QuarantinedUntil time.Time
	// TicksQuarantinedUntil is when the quarantine of the plugin's ticks
	// (kept apart from its messages') ends; zero when they are not.
	TicksQuarantinedUntil time.Time
	// TickFaults counts edgehost_tick calls that faulted.
	TickFaults uint64
	// Instances is the number of live instances; MemoryPages the linear
	// memory they hold, in 64 KiB pages, as of their last call.
	Instances   int
	MemoryPages int
	// ModuleBytes is the size of the module as given (its machine code is
	// several times larger: wazero does not report it).
	ModuleBytes int
	// Calls counts the calls admitted to the plugin, Faults those that
	// faulted.
	Calls, Faults uint64
	// Denied counts host calls refused for want of a grant.
	Denied uint64
	// HeldFailed counts sends and MQTT publishes that were held until
	// their call's KV writes committed and then failed to go out.
	HeldFailed uint64
	// Loops counts sends and requests refused because the chain of
	// messages they would extend was already abi.MaxHops long.
	Loops uint64
	// IOHandles is the number of device I/O handles open in the live
	// instances; IOBytesIn and IOBytesOut count the bytes read from and
	// written to devices (abi/SPEC.md section 5.2).
	IOHandles             int
	IOBytesIn, IOBytesOut uint64
}

// health tracks faults and quarantine. The atomics let the hot path of a
// healthy plugin avoid the mutex.
type health struct {
	policy      Quarantine
	quarantined atomic.Bool
	consecutive atomic.Int64
	calls       atomic.Uint64
	faults      atomic.Uint64
	denied      atomic.Uint64
	heldFailed  atomic.Uint64

	mu          sync.Mutex
	level       int // consecutive quarantines without a success
	until       time.Time
	probing     bool
	lastFault   *FaultError
	lastFaultAt time.Time
}

// admit decides whether a call may run. probe reports that it is the one
// call let through after a quarantine's backoff.
func (p *Plugin) admit() (probe bool, err error) { return p.health.admit(p.name, "") }

// settle records the outcome of an admitted call.
func (p *Plugin) settle(probe bool, err error) { p.health.settle(p, "", probe, err) }

// admit decides for h whether a call may run; what names the calls in
// errors ("" for messages).
func (h *health) admit(plugin, what string) (probe bool, err error) {
	if !h.quarantined.Load() {
		return false, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.quarantined.Load() {
		return false, nil
	}
	if h.probing || time.Now().Before(h.until) {
		return false, fmt.Errorf("plugin %q: %s%w until %s after %d consecutive faults (last: %v)",
			plugin, what, ErrQuarantined, h.until.Format(time.RFC3339Nano), h.consecutive.Load(), h.lastFault)
	}
	h.probing = true
	return true, nil
}

// settle records the outcome of an admitted call in h.
func (h *health) settle(p *Plugin, what string, probe bool, err error) {
	h.calls.Add(1)
	fe := asFault(err)
	switch {
	case err == nil || isCode(err):
		// A failure code is an orderly answer: the plugin works.
		if !probe && h.consecutive.Load() == 0 {
			return
		}
		h.mu.Lock()
		h.consecutive.Store(0)
		if probe || !h.quarantined.Load() {
			if h.quarantined.Load() {
				p.logger.Info("plugin recovered; quarantine ended", "calls", or(what, "messages"))
			}
			h.level = 0
			h.probing = false
			h.quarantined.Store(false)
		}
		h.mu.Unlock()
	case fe != nil:
		h.faults.Add(1)
		h.mu.Lock()
		n := h.consecutive.Add(1)
		h.lastFault, h.lastFaultAt = fe, time.Now()
		if probe || (!h.quarantined.Load() && n >= int64(h.policy.After)) {
			h.level++
			h.until = h.lastFaultAt.Add(h.policy.backoff(h.level))
			h.probing = false
			h.quarantined.Store(true)
			p.logger.Warn("plugin quarantined", "calls", or(what, "messages"), "consecutive_faults", n, "until", h.until, "last_fault", fe)
		}
		h.mu.Unlock()
		p.logger.Error("plugin fault", "kind", fe.Kind, "error", fe.Err)
	default:
		// The caller's context, a message the host refused: no verdict.
		if probe {
			h.mu.Lock()
			h.probing = false
			h.mu.Unlock()
		}
	}
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// asFault returns err's *FaultError, if any.
func asFault(err error) *FaultError {
	if err == nil {
		return nil
	}
	var fe *FaultError
	errors.As(err, &fe)
	return fe
}

// isCode reports whether err is an orderly *CodeError.
func isCode(err error) bool {
	var ce *CodeError
	return errors.As(err, &ce)
}

// Status returns a snapshot of the plugin's health.
func (p *Plugin) Status() Status {
	h := &p.health
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Status{
		Name:              p.name,
		Version:           p.version,
		State:             StateReady,
		ConsecutiveFaults: int(h.consecutive.Load()),
		LastFault:         h.lastFault,
		LastFaultAt:       h.lastFaultAt,
		Instances:         int(p.live.Load()),
		MemoryPages:       int(p.pages.Load()),
		ModuleBytes:       p.moduleBytes,
		Calls:             h.calls.Load(),
		Faults:            h.faults.Load(),
		Denied:            h.denied.Load(),
		HeldFailed:        h.heldFailed.Load(),
		Loops:             p.loops.Load(),
		IOHandles:         int(p.ioOpen.Load()),
		IOBytesIn:         p.ioIn.Load(),
		IOBytesOut:        p.ioOut.Load(),
	}
	if h.quarantined.Load() {
		s.State = StateQuarantined
		s.QuarantinedUntil = h.until
	}
	s.TickFaults = p.tickHealth.faults.Load()
	if p.tickHealth.quarantined.Load() {
		p.tickHealth.mu.Lock()
		s.TicksQuarantinedUntil = p.tickHealth.until
		p.tickHealth.mu.Unlock()
	}
	if p.closed.Load() {
		s.State = StateClosed
	}
	return s
}
