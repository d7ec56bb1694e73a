package pluginhost

import (
	"errors"
	"time"

	"github.com/edgehost/edgehost/host/wasm"
)

// ticker is the goroutine that calls a plugin's edgehost_tick at its
// interval (abi/SPEC.md section 4): one per plugin, whatever its traffic.
type ticker struct {
	every time.Duration
	stop  chan struct{}
}

// serveTicks brings h's ticker in line with the interval of the version in
// service: started, restarted at a new interval, or stopped. Called with
// m.mu held while running.
func (m *Module) serveTicks(h *hosted) {
	var every time.Duration
	if l := h.cur.Load(); l != nil {
		every = l.tick
	}
	if h.ticker != nil && h.ticker.every == every {
		return
	}
	h.stopTicker()
	if every <= 0 {
		return
	}
	t := &ticker{every: every, stop: make(chan struct{})}
	h.ticker = t
	ctx := m.ctx
	m.workers.Go(func() {
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.stop:
				return
			case <-tk.C:
			}
			l := h.cur.Load()
			if l == nil {
				continue
			}
			err := l.p.Tick(ctx)
			if err == nil || ctx.Err() != nil || (errors.Is(err, wasm.ErrClosed) && h.cur.Load() != l) {
				continue
			}
			h.tickFailed.Add(1)
			if !errors.Is(err, wasm.ErrQuarantined) { // said once, when the quarantine began
				h.logger.Warn("edgehost_tick failed", "error", err)
			}
		}
	})
}

// stopTicker ends h's ticker, if any. Called with m.mu held.
func (h *hosted) stopTicker() {
	if h.ticker != nil {
		close(h.ticker.stop)
		h.ticker = nil
	}
}
