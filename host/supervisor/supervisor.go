// Package supervisor starts the daemon's modules in dependency order, keeps
// them running, and stops them in reverse order.
//
// A module that fails to start, or whose Run returns an error while the
// daemon is up, is restarted with exponential backoff; its state is visible
// in Status. One failing module does not take the daemon down.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Module is one part of the daemon (the bus adapter, the plugin host, the
// admin API, ...).
type Module interface {
	// Name is the module's name in logs and status.
	Name() string
	// Run starts the module and serves until ctx is cancelled, then returns
	// nil. It calls ready once it serves; a module that fails returns an
	// error and is restarted.
	Run(ctx context.Context, ready func()) error
}

// Progresser is implemented by a module whose start can take long, such as
// the plugin host compiling plugins. Start keeps waiting for the module as
// long as the description it returns changes, and names it when the module
// is still not ready.
type Progresser interface {
	// StartProgress describes how far the module's start has come, e.g.
	// "2 of 4 plugins loaded; compiling devicetwin".
	StartProgress() string
}

// Checker is implemented by a module that can run without serving fully,
// such as the plugin host with a plugin that failed to load.
type Checker interface {
	// NotReady returns why the module does not serve fully; none when it
	// does. Each reason names what is wrong.
	NotReady() []string
}

// State is a module's lifecycle state.
type State string

// Module states.
const (
	Starting   State = "starting"
	Running    State = "running"
	Restarting State = "restarting"
	Stopped    State = "stopped"
)

// ModuleStatus is one module's state as Status reports it.
type ModuleStatus struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since"`
}

// Options tune the supervisor. The zero value is usable.
type Options struct {
	// StartTimeout bounds how long Start waits for one module to be ready
	// without progress before going on to the next (default 10s). A module
	// that implements Progresser gets StartTimeout again each time its
	// progress changes.
	StartTimeout time.Duration
	// StopTimeout bounds how long Stop waits for one module to return
	// (default 5s).
	StopTimeout time.Duration
	// BackoffBase and BackoffMax bound the restart backoff (defaults 100ms, 30s).
	BackoffBase, BackoffMax time.Duration
	Logger                  hclog.Logger
}

// Supervisor runs modules. Create one with New.
type Supervisor struct {
	opts    Options
	log     hclog.Logger
	mu      sync.Mutex
	entries []*entry
	started bool
}

type entry struct {
	mod    Module
	cancel context.CancelFunc
	done   chan struct{}
	ready  chan struct{}

	mu     sync.Mutex
	status ModuleStatus
}

// New returns a supervisor for the given modules, which are started in the
// order given (each one's dependencies first) and stopped in reverse.
func New(opts Options, modules ...Module) *Supervisor {
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Second
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 5 * time.Second
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	s := &Supervisor{opts: opts, log: opts.Logger.Named("supervisor")}
	for _, m := range modules {
		s.entries = append(s.entries, &entry{mod: m, status: ModuleStatus{Name: m.Name(), State: Stopped}})
	}
	return s
}

// Start starts every module in order, waiting for each to be ready (up to
// StartTimeout) before starting the next. It returns an error naming the
// modules that were not ready; those keep being retried in the background.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("supervisor: already started")
	}
	s.started = true
	s.mu.Unlock()

	var notReady []error
	for _, e := range s.entries {
		runCtx, cancel := context.WithCancel(context.Background())
		e.cancel = cancel
		e.done = make(chan struct{})
		e.ready = make(chan struct{})
		go s.keepRunning(runCtx, e)
		if err := s.awaitReady(ctx, e); err != nil {
			if ctx.Err() != nil {
				return err
			}
			notReady = append(notReady, err)
		}
	}
	return errors.Join(notReady...)
}

// progressPoll is how often awaitReady looks at a starting module's
// progress.
const progressPoll = 250 * time.Millisecond

// awaitReady waits until e's module is ready, or has made no progress for
// StartTimeout, or ctx ends; the error says why it is not ready.
func (s *Supervisor) awaitReady(ctx context.Context, e *entry) error {
	progresser, _ := e.mod.(Progresser)
	progress := func() string {
		if progresser == nil {
			return ""
		}
		return progresser.StartProgress()
	}
	last := progress()
	deadline := time.Now().Add(s.opts.StartTimeout)
	tick := time.NewTicker(min(progressPoll, s.opts.StartTimeout))
	defer tick.Stop()
	for {
		select {
		case <-e.ready:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("start module %q: %w", e.mod.Name(), ctx.Err())
		case now := <-tick.C:
			if p := progress(); p != last {
				last, deadline = p, now.Add(s.opts.StartTimeout)
				s.log.Info("module starting", "module", e.mod.Name(), "progress", p)
				continue
			}
			if now.Before(deadline) {
				continue
			}
			why := e.snapshot().LastError
			if why == "" {
				why = last
			}
			if why == "" {
				why = "it gave no reason"
			}
			return fmt.Errorf("module %q not ready after %s without progress: %s", e.mod.Name(), s.opts.StartTimeout, why)
		}
	}
}

// keepRunning runs e's module until its context is cancelled, restarting it
// with backoff whenever it fails.
func (s *Supervisor) keepRunning(ctx context.Context, e *entry) {
	defer close(e.done)
	log := s.log.With("module", e.mod.Name())
	var once sync.Once
	backoff := s.opts.BackoffBase
	for attempt := 0; ; attempt++ {
		e.set(Starting, nil, attempt > 0)
		ready := func() {
			e.set(Running, nil, false)
			once.Do(func() { close(e.ready) })
			log.Debug("module ready")
		}
		started := time.Now()
		err := runSafely(ctx, e.mod, ready)
		if ctx.Err() != nil {
			e.set(Stopped, err, false)
			return
		}
		if err == nil {
			err = errors.New("returned while the daemon was running")
		}
		if time.Since(started) > s.opts.BackoffMax {
			backoff = s.opts.BackoffBase // it ran well for a while: start afresh
		}
		log.Error("module failed; restarting", "error", err, "backoff", backoff)
		e.set(Restarting, err, false)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			e.set(Stopped, err, false)
			return
		case <-t.C:
		}
		backoff = min(2*backoff, s.opts.BackoffMax)
	}
}

// runSafely calls m.Run, turning a panic into an error so one module's bug
// does not end the process.
func runSafely(ctx context.Context, m Module, ready func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return m.Run(ctx, ready)
}

func (e *entry) set(st State, err error, restarted bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if restarted {
		e.status.Restarts++
	}
	if err != nil {
		e.status.LastError = err.Error()
	}
	if e.status.State != st {
		e.status.Since = time.Now()
	}
	e.status.State = st
}

func (e *entry) snapshot() ModuleStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status
}

// Stop stops the modules in reverse start order, waiting up to StopTimeout
// for each. It returns an error naming the modules that did not stop in time.
func (s *Supervisor) Stop() error {
	var late []error
	for i := len(s.entries) - 1; i >= 0; i-- {
		e := s.entries[i]
		if e.cancel == nil {
			continue
		}
		e.cancel()
		t := time.NewTimer(s.opts.StopTimeout)
		select {
		case <-e.done:
		case <-t.C:
			late = append(late, fmt.Errorf("module %q did not stop within %s", e.mod.Name(), s.opts.StopTimeout))
		}
		t.Stop()
	}
	return errors.Join(late...)
}

// Status returns every module's state, in start order.
func (s *Supervisor) Status() []ModuleStatus {
	out := make([]ModuleStatus, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.snapshot()
	}
	return out
}

// Ready reports whether every module is running and serving fully.
func (s *Supervisor) Ready() bool {
	return len(s.entries) > 0 && len(s.NotReady()) == 0
}

// NotReady returns why the daemon is not ready, a reason per line: each
// module that is not running (with its last error), and what each running
// module that implements Checker reports.
func (s *Supervisor) NotReady() []string {
	var out []string
	for _, e := range s.entries {
		st := e.snapshot()
		progresser, _ := e.mod.(Progresser)
		switch {
		case st.State == Starting && progresser != nil:
			out = append(out, fmt.Sprintf("module %s is starting: %s", st.Name, progresser.StartProgress()))
		case st.State != Running && st.LastError != "":
			out = append(out, fmt.Sprintf("module %s is %s: %s", st.Name, st.State, st.LastError))
		case st.State != Running:
			out = append(out, fmt.Sprintf("module %s is %s", st.Name, st.State))
		default:
			if c, ok := e.mod.(Checker); ok {
				out = append(out, c.NotReady()...)
			}
		}
	}
	return out
}
