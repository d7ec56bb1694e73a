package meta

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/edgehost/edgehost/abi"
)

// Reason names why a message was refused. Each has its own counter and its
// first occurrence is logged at WARN, the rest at debug.
type Reason int

// The refusal reasons.
const (
	// ReasonBadResource: the resource is not {namespace}/{type}/{name}
	// within the key limits.
	ReasonBadResource Reason = iota
	// ReasonMalformedContent: an object that is not a JSON object, or a
	// connection state that is not one of the two.
	ReasonMalformedContent
	// ReasonBadResourceVersion: a resource version that is not an unsigned
	// integer.
	ReasonBadResourceVersion
	// ReasonStaleResourceVersion: an object or delete older than the
	// stored object.
	ReasonStaleResourceVersion
	// ReasonUnknownOperation: an operation meta does not handle, or a
	// write from a local module (those go to the cloud in edgecore, and
	// have no path here yet).
	ReasonUnknownOperation
	numReasons
)

var reasonNames = [numReasons]string{"bad_resource", "malformed_content", "bad_resourceversion", "stale_resourceversion", "unknown_operation"}

// String returns the reason's metric label.
func (r Reason) String() string {
	if r < 0 || r >= numReasons {
		return fmt.Sprintf("reason(%d)", int(r))
	}
	return reasonNames[r]
}

// Reasons lists every refusal reason, in order.
func Reasons() []Reason {
	rs := make([]Reason, numReasons)
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

// ErrRefused is matched by every RefusedError.
var ErrRefused = errors.New("refused")

// RefusedError is a message meta refused; it is what the sender gets back
// in an error reply and what the log says.
type RefusedError struct {
	// Reason is why, as counted.
	Reason Reason
	// MsgID, Operation and Resource identify the refused message.
	MsgID, Operation, Resource string
	// Err says what was wrong with it.
	Err error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("metamanager refused %s %q (msg %s, %s): %v", e.Operation, e.Resource, e.MsgID, e.Reason, e.Err)
}

// Is makes RefusedError match ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Unwrap returns the cause.
func (e *RefusedError) Unwrap() error { return e.Err }

// counters are the module's counters, read by Stats.
type counters struct {
	stored, deleted, duplicates, uidMismatch, storeErrors atomic.Uint64
	acks, ackUnsent                                       atomic.Uint64
	queriesLocal, queriesRemote, queryFailed              atomic.Uint64
	forwarded, unrouted, dropped                          atomic.Uint64
	refused                                               [numReasons]atomic.Uint64
	warned                                                [numReasons]atomic.Bool
	problems                                              [numProblems]atomic.Bool
}

// problem is a kind of failure that can repeat for every message; its
// first occurrence is logged at its level, the rest at debug (each is
// counted in Stats).
type problem int

const (
	problemStore problem = iota
	problemForward
	problemAck
	problemQuery
	problemBadRecord
	numProblems
)

// report logs a problem: at WARN (ERROR for the store) the first time,
// at debug after, saying so.
func (m *Module) report(p problem, msg string, args ...any) {
	if m.c.problems[p].Swap(true) {
		m.log.Debug(msg, args...)
		return
	}
	args = append(args, "note", "repeats are logged at debug and counted in /metrics")
	if p == problemStore {
		m.log.Error(msg, args...)
	} else {
		m.log.Warn(msg, args...)
	}
}

// Stats is a snapshot of the module's counters.
type Stats struct {
	// Stored counts objects written (insert, update, a cloud reply).
	Stored uint64
	// Deleted counts objects removed.
	Deleted uint64
	// Duplicates counts objects received again with the stored resource
	// version: acknowledged again, not rewritten or forwarded.
	Duplicates uint64
	// UIDMismatch counts pod deletes whose uid was not the stored pod's:
	// acknowledged, the stored pod kept.
	UIDMismatch uint64
	// StoreErrors counts writes the store failed; they were not
	// acknowledged, so the cloud sends them again.
	StoreErrors uint64
	// Acks counts acknowledgements handed to the hub.
	Acks uint64
	// AckUnsent counts acknowledgements that could not be handed to the
	// hub (no hub module, full queue).
	AckUnsent uint64
	// QueriesLocal and QueriesRemote count queries answered from the
	// store and sent to the cloud; QueryFailed counts those answered with
	// an error (timeout, cloud error, store error).
	QueriesLocal, QueriesRemote, QueryFailed uint64
	// Forwarded counts messages handed to their owner module; Unrouted
	// those whose owner group has no module (yet).
	Forwarded, Unrouted uint64
	// Dropped counts messages still queued at shutdown, unacknowledged.
	Dropped uint64
	// Refused counts refused messages by reason (Reason is the index).
	Refused [numReasons]uint64
	// Connected is the cloud connection state the hub last reported.
	Connected bool
}

// Stats returns the module's counters.
func (m *Module) Stats() Stats {
	s := Stats{
		Stored: m.c.stored.Load(), Deleted: m.c.deleted.Load(), Duplicates: m.c.duplicates.Load(),
		UIDMismatch: m.c.uidMismatch.Load(), StoreErrors: m.c.storeErrors.Load(),
		Acks: m.c.acks.Load(), AckUnsent: m.c.ackUnsent.Load(),
		QueriesLocal: m.c.queriesLocal.Load(), QueriesRemote: m.c.queriesRemote.Load(), QueryFailed: m.c.queryFailed.Load(),
		Forwarded: m.c.forwarded.Load(), Unrouted: m.c.unrouted.Load(), Dropped: m.c.dropped.Load(),
		Connected: m.connected.Load(),
	}
	for i := range s.Refused {
		s.Refused[i] = m.c.refused[i].Load()
	}
	return s
}

// refuse counts a refused message, logs it (WARN the first time per
// reason) and answers its sender with an error reply naming what was
// wrong. Nothing stored is touched.
func (m *Module) refuse(ctx context.Context, msg abi.Message, reason Reason, cause error) {
	m.replyError(ctx, msg, m.refused(msg, reason, cause))
}

// refused counts and logs a refused message and returns its error.
func (m *Module) refused(msg abi.Message, reason Reason, cause error) error {
	err := &RefusedError{Reason: reason, MsgID: msg.Header.ID, Operation: msg.Route.Operation, Resource: msg.Route.Resource, Err: cause}
	m.c.refused[reason].Add(1)
	if !m.c.warned[reason].Swap(true) {
		m.log.Warn("message refused; further refusals for this reason are logged at debug and counted",
			"reason", reason.String(), "msg_id", msg.Header.ID, "source", msg.Route.Source, "error", err)
	} else {
		m.log.Debug("message refused", "reason", reason.String(), "msg_id", msg.Header.ID, "source", msg.Route.Source, "error", err)
	}
	return err
}
