package wasm

import "time"

// Defaults applied to zero fields of Limits and Quarantine.
const (
	DefaultMemoryPages     = 512 // 32 MiB
	DefaultCallTimeout     = 5 * time.Second
	DefaultMaxMessageBytes = 1 << 20
	DefaultInstances       = 1
	DefaultQuarantineAfter = 5
	DefaultBackoffBase     = time.Second
	DefaultBackoffMax      = 5 * time.Minute
)

// Limits bound one plugin (abi/SPEC.md section 7). Zero fields take the
// Default* values.
type Limits struct {
	// MemoryPages caps each instance's linear memory, in 64 KiB pages.
	MemoryPages uint32
	// CallTimeout bounds every call into the guest, imports included.
	CallTimeout time.Duration
	// MaxMessageBytes caps envelopes in and out and KV values.
	MaxMessageBytes int
	// Instances is the most instances that serve calls concurrently.
	Instances int
}

func (l Limits) withDefaults() Limits {
	if l.MemoryPages == 0 {
		l.MemoryPages = DefaultMemoryPages
	}
	if l.CallTimeout <= 0 {
		l.CallTimeout = DefaultCallTimeout
	}
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if l.Instances <= 0 {
		l.Instances = DefaultInstances
	}
	return l
}

// Quarantine says when a faulting plugin is quarantined and for how long.
// Zero fields take the Default* values.
type Quarantine struct {
	// After is the number of consecutive faults that quarantine the plugin.
	After int
	// BackoffBase is the first quarantine's length; each further one
	// without a success in between doubles it.
	BackoffBase time.Duration
	// BackoffMax caps the quarantine's length.
	BackoffMax time.Duration
}

func (q Quarantine) withDefaults() Quarantine {
	if q.After <= 0 {
		q.After = DefaultQuarantineAfter
	}
	if q.BackoffBase <= 0 {
		q.BackoffBase = DefaultBackoffBase
	}
	if q.BackoffMax <= 0 {
		q.BackoffMax = DefaultBackoffMax
	}
	if q.BackoffMax < q.BackoffBase {
		q.BackoffMax = q.BackoffBase
	}
	return q
}

// backoff returns the length of the n-th consecutive quarantine (n >= 1).
func (q Quarantine) backoff(n int) time.Duration {
	d := q.BackoffBase
	for i := 1; i < n && d < q.BackoffMax; i++ {
		d *= 2
	}
	return min(d, q.BackoffMax)
}
