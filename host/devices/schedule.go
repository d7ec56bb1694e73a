package devices

import (
	"container/heap"
	"time"
)

// schedule is the one timer heap of every property's collect cycle. Each
// entry is one property's next read; first reads are aligned to multiples
// of the cycle (of a second, for longer cycles) since the Unix epoch, so
// the properties of many devices with one cycle fall due together and
// their reads share calls. It is
// not safe for concurrent use: the module's lock guards it.
type schedule struct {
	h entries
}

// entry is one property's next read.
type entry struct {
	due  time.Time
	dev  *device
	prop *property
	// gen is the device's generation when the entry was made: an entry of
	// a device removed or replaced since is dropped when it falls due.
	gen uint64
}

type entries []*entry

func (h entries) Len() int           { return len(h) }
func (h entries) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h entries) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entries) Push(x any)        { *h = append(*h, x.(*entry)) }
func (h *entries) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// aligned is the first multiple of cycle after now.
func aligned(now time.Time, cycle time.Duration) time.Time {
	c := int64(cycle)
	n := now.UnixNano()
	return time.Unix(0, (n/c+1)*c)
}

// add schedules p's first read at the next multiple of its cycle, or of
// a second for a longer cycle (so a minute's cycle does not leave the
// property unread for up to a minute); the next reads follow a cycle
// apart.
func (s *schedule) add(d *device, p *property, now time.Time) {
	heap.Push(&s.h, &entry{due: aligned(now, min(p.collect, time.Second)), dev: d, prop: p, gen: d.gen})
}

// next is when the earliest entry falls due; ok is false when there is
// none.
func (s *schedule) next() (t time.Time, ok bool) {
	if len(s.h) == 0 {
		return time.Time{}, false
	}
	return s.h[0].due, true
}

// len is how many entries are scheduled.
func (s *schedule) len() int { return len(s.h) }

// popDue takes every entry due at now and calls fn with each whose device
// is still current, with the time it fell due. Each entry is scheduled again
// one cycle on; when now is past that too (the loop fell behind), the
// cycles skipped are passed as missed and the entry goes to the first
// cycle after now, so late cycles never pile up.
func (s *schedule) popDue(now time.Time, fn func(d *device, p *property, due time.Time, missed int)) {
	for len(s.h) > 0 && !s.h[0].due.After(now) {
		e := s.h[0]
		if e.dev.gen != e.gen || e.dev.removed {
			heap.Pop(&s.h)
			continue
		}
		missed := 0
		next := e.due.Add(e.prop.collect)
		if !next.After(now) {
			skipped := int(now.Sub(next)/e.prop.collect) + 1
			missed = skipped
			next = next.Add(time.Duration(skipped) * e.prop.collect)
		}
		due := e.due
		e.due = next
		heap.Fix(&s.h, 0)
		fn(e.dev, e.prop, due, missed)
	}
}
