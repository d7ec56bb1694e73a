package eventbus

import (
	"sync"
	"sync/atomic"
)

// mochiQuotaReached is the message mochi logs, with the client's id as
// "client", when it drops a QoS 1 message for a client at MaximumInflight.
// mochi has no hook for that drop; TestClientOverflowCounted fails if an
// upgrade of mochi renames it.
const mochiQuotaReached = "client store quota reached"

// overflows counts and logs the messages the embedded broker drops for a
// client it cannot send to fast enough: the first drop of each connection
// at WARN, the rest at DEBUG (they are counted).
type overflows struct {
	m      *Module
	mu     sync.Mutex
	warned map[string]bool // client ids warned about, until they disconnect
}

// drop records a message dropped for client, counted in counter.
func (o *overflows) drop(client, why, topic string, counter *atomic.Uint64) {
	counter.Add(1)
	o.mu.Lock()
	first := !o.warned[client]
	o.warned[client] = true
	o.mu.Unlock()
	args := []any{"client", client, "reason", why, "topic", topic}
	if first {
		o.m.log.Warn("embedded broker dropped a message for a client; further drops for it are counted", args...)
		return
	}
	o.m.log.Debug("embedded broker dropped a message for a client", args...)
}

// forget ends client's rate limit when it disconnects.
func (o *overflows) forget(client string) {
	o.mu.Lock()
	delete(o.warned, client)
	o.mu.Unlock()
}
