package devices

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
)

// mapperRun is one mapper plugin's queue of calls and the workers that
// make them: a slow mapper fills its own queue only.
type mapperRun struct {
	name string
	jobs chan job
	done chan struct{} // closed by stop
	// ctrl are the opens and closes to make, oldest first; they are never
	// dropped, and go before the reads. Guarded by Module.mu.
	ctrl     []job
	ctrlKick chan struct{}
	devices  int // devices bound to it; guarded by Module.mu
}

// stop ends the run's workers once their calls in flight return.
func (r *mapperRun) stop() { close(r.done) }

// Kinds of job.
const (
	jobRead = iota
	jobWrite
	jobOpen
	jobClose
)

// job is one call to a mapper.
type job struct {
	kind int
	dev  *device // write, open, close
	// read: the devices and, for each, its due properties, and when the
	// cycle fell due.
	reads []readOf
	due   time.Time
	// write: the property and value.
	prop  *property
	value string
}

// readOf is one device's share of a read.
type readOf struct {
	dev   *device
	props []*property
	force bool // report the values now, whatever the report cycle
}

// runFor returns the run of the plugin name, starting it. Callers hold
// m.mu while the module runs.
func (m *Module) runFor(name string) *mapperRun {
	if r := m.runs[name]; r != nil {
		return r
	}
	r := &mapperRun{name: name, jobs: make(chan job, m.cfg.Queue), done: make(chan struct{}), ctrlKick: make(chan struct{}, 1)}
	m.runs[name] = r
	ctx := m.ctx
	for range m.cfg.Workers {
		m.workers.Go(func() { m.work(ctx, r) })
	}
	return r
}

// enqueue queues j for r without waiting and reports whether it was
// taken: an open or close always is. Callers hold m.mu.
func (m *Module) enqueue(r *mapperRun, j job) bool {
	if j.kind == jobOpen || j.kind == jobClose {
		r.ctrl = append(r.ctrl, j)
		select {
		case r.ctrlKick <- struct{}{}:
		default:
		}
		return true
	}
	select {
	case r.jobs <- j:
		return true
	default:
		return false
	}
}

// nextCtrl takes r's oldest open or close, if any.
func (m *Module) nextCtrl(r *mapperRun) (job, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(r.ctrl) == 0 {
		return job{}, false
	}
	j := r.ctrl[0]
	r.ctrl[0] = job{}
	r.ctrl = r.ctrl[1:]
	if len(r.ctrl) > 0 {
		select {
		case r.ctrlKick <- struct{}{}: // for the other workers
		default:
		}
	}
	return j, true
}

// work makes r's calls until r stops or ctx ends: opens and closes first,
// then reads and writes.
func (m *Module) work(ctx context.Context, r *mapperRun) {
	for {
		if j, ok := m.nextCtrl(r); ok {
			m.openClose(ctx, r, j)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			return
		case <-r.ctrlKick:
		case j := <-r.jobs:
			switch j.kind {
			case jobRead:
				m.read(ctx, r, j)
			case jobWrite:
				m.write(ctx, r, j)
			}
		}
	}
}

// scheduleLoop sends the reads that fall due until ctx ends.
func (m *Module) scheduleLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := m.dispatchDue()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
			timer.Stop() // Go 1.23 timers: nothing stale is left to drain
		case <-timer.C:
		}
	}
}

// idleWait is how long the scheduler sleeps with nothing scheduled.
const idleWait = time.Minute

// dispatchDue queues a read for every device with properties due now,
// many devices a call, and returns how long until the next entry falls
// due. A device whose last read is still queued or in flight, or whose
// mapper's queue is full, misses the cycle (counted); the scheduler never
// waits for a mapper.
func (m *Module) dispatchDue() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	type pending struct {
		r     *mapperRun
		reads []readOf
		index map[*device]int
		due   time.Time
	}
	var byRun []*pending
	runs := map[*mapperRun]*pending{}
	m.sched.popDue(now, func(d *device, p *property, due time.Time, missed int) {
		if missed > 0 {
			m.miss(d, p, missed)
		}
		if d.run == nil {
			return
		}
		pd := runs[d.run]
		if pd == nil {
			pd = &pending{r: d.run, index: map[*device]int{}, due: due}
			runs[d.run] = pd
			byRun = append(byRun, pd)
		}
		if i, ok := pd.index[d]; ok {
			pd.reads[i].props = append(pd.reads[i].props, p)
			return
		}
		if d.reading {
			m.miss(d, p, 1)
			return
		}
		pd.index[d] = len(pd.reads)
		pd.reads = append(pd.reads, readOf{dev: d, props: []*property{p}})
		if due.Before(pd.due) {
			pd.due = due
		}
		if late := now.Sub(due); late > time.Duration(m.stats.worstLateNS.Load()) {
			m.stats.worstLateNS.Store(int64(late))
		}
	})
	for _, pd := range byRun {
		for _, batch := range batches(pd.reads) {
			if !m.enqueue(pd.r, job{kind: jobRead, reads: batch, due: pd.due}) {
				for _, rd := range batch {
					for _, p := range rd.props {
						m.miss(rd.dev, p, 1)
					}
				}
				continue
			}
			for _, rd := range batch {
				rd.dev.reading = true
			}
		}
	}
	next, ok := m.sched.next()
	if !ok {
		return idleWait
	}
	return max(next.Sub(now), 0)
}

// miss counts n missed cycles of p. Callers hold m.mu.
func (m *Module) miss(d *device, p *property, n int) {
	p.missed += uint64(n)
	d.missed += uint64(n)
	m.stats.missed.Add(uint64(n))
}

// batches splits reads into calls of at most batchDevices devices and
// about batchBytes of content.
func batches(reads []readOf) [][]readOf {
	var out [][]readOf
	start, size := 0, 0
	for i, rd := range reads {
		n := len(rd.dev.full)
		if i > start && (i-start >= batchDevices || size+n > batchBytes) {
			out = append(out, reads[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(reads) {
		out = append(out, reads[start:])
	}
	return out
}

// readContent is the content of a read of reads.
func readContent(reads []readOf) []byte {
	var b bytes.Buffer
	b.WriteString(`{"devices":[`)
	for i, rd := range reads {
		if i > 0 {
			b.WriteByte(',')
		}
		if len(rd.props) == len(rd.dev.props) {
			b.Write(rd.dev.full)
			continue
		}
		one, _ := json.Marshal(rd.dev.mapperDevice(rd.props)) // plain maps and strings
		b.Write(one)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// call makes one request to the mapper plugin r within the call timeout.
// A failed call and a reply with operation error are errors, with the
// kind to count them under.
func (m *Module) call(ctx context.Context, r *mapperRun, op, resource string, content []byte) (abi.Message, errKind, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.CallTimeout)
	defer cancel()
	msg := abi.Message{
		Header:  abi.Header{ID: bus.NewID(), Timestamp: m.cfg.Now().UnixMilli(), Sync: true},
		Route:   abi.Route{Source: abi.MapperSource, Group: abi.MapperGroup, Operation: op, Resource: resource},
		Content: content,
	}
	reply, err := m.bus.Request(ctx, r.name, msg)
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		return reply, kindTimeout, fmt.Errorf("mapper %s: %s %s: no answer within %s", r.name, op, resource, m.cfg.CallTimeout)
	case err != nil:
		return reply, kindCall, fmt.Errorf("mapper %s: %s %s: %w", r.name, op, resource, err)
	case reply.Route.Operation == abi.OpError:
		return reply, kindCall, fmt.Errorf("mapper %s: %s %s: %s", r.name, op, resource, reply.Content)
	}
	return reply, 0, nil
}

// read makes one read call and applies its answer.
func (m *Module) read(ctx context.Context, r *mapperRun, j job) {
	reply, kind, err := m.call(ctx, r, abi.MapperOpRead, abi.MapperResourceRead, readContent(j.reads))
	var answer abi.MapperReadReply
	if err == nil {
		if derr := json.Unmarshal(reply.Content, &answer); derr != nil {
			kind, err = kindMalformed, fmt.Errorf("mapper %s: read: the reply does not decode: %w", r.name, derr)
		}
	}
	if ctx.Err() != nil {
		return
	}
	m.apply(ctx, j, answer, kind, err)
}

// write makes one write call; once it succeeds, the property is read
// again at once and its value reported, so the twin's actual value
// follows the desired one without waiting for the cycles.
func (m *Module) write(ctx context.Context, r *mapperRun, j job) {
	m.mu.Lock()
	content, _ := json.Marshal(abi.MapperWrite{Device: j.dev.mapperDevice([]*property{j.prop}), Value: j.value})
	m.mu.Unlock()
	_, _, err := m.call(ctx, r, abi.MapperOpWrite, "device/"+j.dev.id, content)
	if ctx.Err() != nil {
		return
	}
	m.mu.Lock()
	j.prop.writing = ""
	if err != nil {
		j.prop.failed, j.prop.failedAt = j.value, m.cfg.Now()
		m.fail(j.dev, kindWrite, err)
		m.mu.Unlock()
		m.log.Debug("write failed", "device", j.dev.id, "property", j.prop.mp.Name, "error", err)
		return
	}
	j.prop.written, j.prop.failed = j.value, ""
	j.dev.writes++
	m.stats.writes.Add(1)
	m.mu.Unlock()
	m.log.Debug("written", "device", j.dev.id, "property", j.prop.mp.Name, "value", j.value)
	m.read(ctx, r, job{kind: jobRead, reads: []readOf{{dev: j.dev, props: []*property{j.prop}, force: true}}, due: m.cfg.Now()})
}

// openClose tells the mapper a device was bound or unbound. A mapper
// that does not handle them answers no handler, which is fine.
func (m *Module) openClose(ctx context.Context, r *mapperRun, j job) {
	op := abi.MapperOpOpen
	var content []byte
	m.mu.Lock()
	if j.kind == jobClose {
		op = abi.MapperOpClose
	} else {
		content = j.dev.full
	}
	m.mu.Unlock()
	_, _, err := m.call(ctx, r, op, "device/"+j.dev.id, content)
	if err != nil && ctx.Err() == nil {
		m.log.Debug("mapper "+op+" failed", "mapper", r.name, "device", j.dev.id, "error", err)
	}
}
