package plugins

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// LogLine is one line of a plugin's log.
type LogLine struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

// Ring keeps the last lines of a plugin's log. It is safe for concurrent
// use.
type Ring struct {
	mu    sync.Mutex
	lines []LogLine
	next  int
	full  bool
}

// NewRing returns a ring of n lines.
func NewRing(n int) *Ring { return &Ring{lines: make([]LogLine, max(n, 1))} }

// Add appends a line, dropping the oldest when full.
func (r *Ring) Add(l LogLine) {
	r.mu.Lock()
	r.lines[r.next] = l
	r.next++
	if r.next == len(r.lines) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

// Lines returns up to the last n lines, oldest first (all when n <= 0).
func (r *Ring) Lines(n int) []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []LogLine
	if r.full {
		out = append(out, r.lines[r.next:]...)
	}
	out = append(out, r.lines[:r.next]...)
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// RingLevel is the least level a RingLogger keeps in its ring.
const RingLevel = hclog.Info

// RingLogger is an hclog.Logger that also keeps every line at RingLevel or
// above in a Ring, with its key/value pairs, whatever the level of the
// logger it wraps.
type RingLogger struct {
	hclog.Logger
	ring *Ring
	args []any
}

// NewRingLogger wraps l so its lines are also kept in ring.
func NewRingLogger(l hclog.Logger, ring *Ring) *RingLogger {
	return &RingLogger{Logger: l, ring: ring}
}

func (l *RingLogger) keep(level hclog.Level, msg string, args []any) {
	if level < RingLevel {
		return
	}
	var b strings.Builder
	b.WriteString(msg)
	all := append(append([]any(nil), l.args...), args...)
	for i := 0; i+1 < len(all); i += 2 {
		fmt.Fprintf(&b, " %v=%v", all[i], all[i+1])
	}
	l.ring.Add(LogLine{Time: time.Now(), Level: level.String(), Message: b.String()})
}

// Log implements hclog.Logger.
func (l *RingLogger) Log(level hclog.Level, msg string, args ...any) {
	l.keep(level, msg, args)
	l.Logger.Log(level, msg, args...)
}

// Trace implements hclog.Logger.
func (l *RingLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }

// Debug implements hclog.Logger.
func (l *RingLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }

// Info implements hclog.Logger.
func (l *RingLogger) Info(msg string, args ...any) { l.Log(hclog.Info, msg, args...) }

// Warn implements hclog.Logger.
func (l *RingLogger) Warn(msg string, args ...any) { l.Log(hclog.Warn, msg, args...) }

// Error implements hclog.Logger.
func (l *RingLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

// With implements hclog.Logger; the result keeps logging to the ring.
func (l *RingLogger) With(args ...any) hclog.Logger {
	return &RingLogger{Logger: l.Logger.With(args...), ring: l.ring, args: append(append([]any(nil), l.args...), args...)}
}

// Named implements hclog.Logger; the result keeps logging to the ring.
func (l *RingLogger) Named(name string) hclog.Logger {
	return &RingLogger{Logger: l.Logger.Named(name), ring: l.ring, args: l.args}
}

// ResetNamed implements hclog.Logger; the result keeps logging to the ring.
func (l *RingLogger) ResetNamed(name string) hclog.Logger {
	return &RingLogger{Logger: l.Logger.ResetNamed(name), ring: l.ring, args: l.args}
}
