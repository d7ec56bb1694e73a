package twin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/store"
	bolt "go.etcd.io/bbolt"
)

// Bounds of one hand-over message. The plugin applies a message in one
// call under its call timeout (1 s by default), and registering a device
// costs about its number of properties, so a message carries at most
// batchProperties properties (a device with more is split over several
// messages, which the plugin merges) and at most batchDevices devices.
const (
	batchProperties = 128
	batchDevices    = 16
	batchRemovals   = 8
)

// Retry delays: of a failed hand-over, and of reading a devices dir that
// cannot be read.
const (
	retryMin    = 250 * time.Millisecond
	retryMax    = 30 * time.Second
	dirRetryMin = time.Second
)

// devicesRetry is how often the registry looks for the plugin.
const devicesRetry = 250 * time.Millisecond

// Report is what one reading of the devices dir and its hand-over did.
type Report struct {
	// Dir is the devices dir.
	Dir string
	// Devices is how many devices the dir holds for the twin now.
	Devices int
	// HandedOver is how many devices were handed to the plugin (new or
	// changed ones); Removed how many were removed (their file was).
	HandedOver, Removed int
	// Pending is how many devices are still to be handed over (the
	// plugin is not running, or the hand-over failed and is retried).
	Pending int
	// Refused names each refused file and why; Warnings everything
	// skipped.
	Refused, Warnings []string
	// Err is why the dir could not be read or the hand-over is pending.
	Err error
}

// manifestKey holds, in the module's store namespace, which devices each
// file of the devices dir declared when last handed over: a device is
// removed only when its file no longer declares it.
const manifestKey = "devicesdir/manifest"

// manifest maps a file of the devices dir to the ids of its devices.
type manifest map[string][]string

// registry keeps the plugin's devices in step with the devices dir. One
// goroutine (run) owns it; NotReady and Reload talk to it.
type registry struct {
	m       *Module
	router  *router
	ns      *store.Namespace // nil: the manifest lives in memory only
	reload  chan chan Report
	stopped chan struct{} // closed when run returns

	mu     sync.Mutex
	status Report // the latest, for NotReady

	// Owned by run.
	warned  map[string]bool // warnings logged at WARN already
	dirDown bool            // the last reading failed
	retries int             // failed hand-overs since the last that took
}

func newRegistry(m *Module, r *router) *registry {
	g := &registry{m: m, router: r, reload: make(chan chan Report), stopped: make(chan struct{}), warned: map[string]bool{}}
	if m.cfg.Store != nil {
		g.ns = m.cfg.Store.Namespace("modules", ModuleName)
	}
	g.status.Dir = m.cfg.DevicesDir
	g.status.Err = errors.New("not read yet")
	return g
}

// plan is the work of one reading: devices to hand over, ids to remove,
// and the manifest once it is done.
type plan struct {
	report Report
	add    []device
	sums   map[string]uint64 // device id -> checksum, of add
	remove []string
	next   manifest
}

// run reads the dir, hands the devices to the plugin, and does it again on
// a reload; it calls settled once the first reading is handed over, has
// failed, or waits for the plugin, and returns when ctx ends.
func (g *registry) run(ctx context.Context, settled func()) {
	defer close(g.stopped)
	settled = sync.OnceFunc(settled)
	known := g.loadManifest()
	acked := map[string]uint64{} // what the plugin has, by checksum, while it runs
	var waiters []chan Report
	var p *plan
	read, present := true, g.m.pluginPresent()
	backoff, dirBackoff := retryMin, dirRetryMin
	for {
		if read {
			read = false
			p = g.plan(known, acked)
			if p.report.Err == nil {
				dirBackoff = dirRetryMin
			}
		}
		var wait time.Duration
		switch {
		case p.report.Err != nil && p.next == nil: // the dir cannot be read
			wait, dirBackoff = dirBackoff, min(2*dirBackoff, retryMax)
		case len(p.add)+len(p.remove) == 0:
			wait = devicesRetry
		case !g.m.pluginPresent():
			p.report.Err = fmt.Errorf("waiting for the twin plugin %s", g.m.cfg.Plugin)
			wait = devicesRetry
		default:
			if err := g.handOver(ctx, p, acked); err != nil {
				if ctx.Err() != nil {
					return
				}
				p.report.Err = fmt.Errorf("hand-over to the twin plugin failed, retrying in %s: %w", backoff, err)
				log := g.m.log.Warn
				if g.retries > 0 {
					log = g.m.log.Debug
				}
				g.retries++
				log("devices not handed to the twin plugin; retrying", "dir", g.m.cfg.DevicesDir,
					"pending", p.report.Pending, "retry_in", backoff, "failures", g.retries, "error", err)
				wait, backoff = backoff, min(2*backoff, retryMax)
				break
			}
			if g.retries > 0 {
				g.m.log.Info("devices hand-over took after failing", "failures", g.retries)
				g.retries = 0
			}
			backoff = retryMin
			known = p.next
			g.saveManifest(known)
			p.report.Err = nil
			g.m.log.Info("devices handed to the twin plugin", "dir", g.m.cfg.DevicesDir, "devices", p.report.Devices,
				"handed_over", p.report.HandedOver, "removed", p.report.Removed)
			wait = devicesRetry
		}
		p.report.Pending = len(p.add) + len(p.remove)
		g.setStatus(p)
		for _, w := range waiters {
			w <- p.report
		}
		waiters = waiters[:0]
		settled()

		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case w := <-g.reload:
			waiters = append(waiters, w)
			read = true
		case <-timer.C:
			// A plugin that went away may come back with nothing, as when
			// it is installed after the daemon starts: hand it everything.
			now := g.m.pluginPresent()
			if present && !now {
				clear(acked)
			}
			if now && !present {
				read = true
			}
			present = now
			read = read || (p.report.Err != nil && p.next == nil)
		}
		timer.Stop()
	}
}

// plan reads the dir and works out what to hand over: every device whose
// checksum the plugin has not acknowledged, and the removal of every
// device no accepted file declares any more. A refused file keeps the
// devices it declared before.
func (g *registry) plan(known manifest, acked map[string]uint64) *plan {
	p := &plan{report: Report{Dir: g.m.cfg.DevicesDir}}
	read, err := ReadDevicesDir(g.m.cfg.DevicesDir, g.m.cfg.NodeName)
	if err != nil {
		p.report.Err = fmt.Errorf("%w; the devices it declared are kept as they were", err)
		held := 0
		for _, ids := range known {
			held += len(ids)
		}
		p.report.Devices = held
		if !g.dirDown {
			g.m.log.Error("devices dir cannot be read; keeping every device as it was, and retrying", "dir", g.m.cfg.DevicesDir, "error", err)
		} else {
			g.m.log.Debug("devices dir still cannot be read", "dir", g.m.cfg.DevicesDir, "error", err)
		}
		g.dirDown = true
		return p
	}
	g.dirDown = false
	g.m.log.Info("devices dir read", "dir", read.Dir, "devices", read.Devices(), "files", len(read.Files))
	p.report.Refused, p.report.Warnings = read.Refused(), read.Warnings
	for _, w := range read.Warnings {
		g.logOnce("devices dir: "+w, "dir", read.Dir)
	}
	for _, f := range read.Files {
		if f.Err != nil {
			g.logOnce("devices file refused; the devices it declared before are kept", "error", f.Err)
		}
	}
	p.next = manifest{}
	p.sums = map[string]uint64{}
	held := map[string]bool{}
	for _, f := range read.Files {
		var ids []string
		if f.Err != nil {
			ids = known[f.Name]
		} else {
			for _, d := range f.Devices {
				ids = append(ids, d.ID)
				sum := checksum(d)
				if acked[d.ID] != sum {
					p.add = append(p.add, d)
					p.sums[d.ID] = sum
				}
			}
			for _, id := range known[f.Name] {
				if slices.Contains(f.Skipped, id) && !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
		if len(ids) > 0 {
			p.next[f.Name] = ids
		}
		for _, id := range ids {
			held[id] = true
		}
	}
	for _, file := range sortedKeys(known) {
		for _, id := range known[file] {
			if !held[id] && !slices.Contains(p.remove, id) {
				p.remove = append(p.remove, id)
			}
		}
	}
	p.report.Devices = len(held)
	p.report.Pending = len(p.add)
	return p
}

// logOnce logs msg at WARN the first time and at DEBUG while it repeats.
func (g *registry) logOnce(msg string, args ...any) {
	key := fmt.Sprint(msg, args)
	if g.warned[key] {
		g.m.log.Debug(msg, args...)
		return
	}
	g.warned[key] = true
	g.m.log.Warn(msg, args...)
}

// handOver sends p's devices and removals in bounded batches, each alone
// (as every membership change), taking each acknowledged batch off p.
func (g *registry) handOver(ctx context.Context, p *plan, acked map[string]uint64) error {
	for len(p.add) > 0 {
		content, n, whole := nextAddBatch(p.add)
		start := time.Now()
		if err := g.deliver(ctx, content); err != nil {
			return err
		}
		for _, d := range p.add[:whole] {
			acked[d.ID] = p.sums[d.ID]
		}
		g.m.log.Debug("devices handed over", "devices", whole, "properties", n, "elapsed", time.Since(start))
		p.report.HandedOver += whole
		p.add = p.add[whole:]
		p.report.Pending = len(p.add)
	}
	for len(p.remove) > 0 {
		n := min(len(p.remove), batchRemovals)
		removed := make([]device, n)
		for i, id := range p.remove[:n] {
			removed[i] = device{ID: id, Name: id[strings.IndexByte(id, '/')+1:]}
			delete(acked, id)
		}
		content, _ := json.Marshal(membershipUpdate{EventID: eventID(), Timestamp: time.Now().UnixMilli(), Removed: removed})
		if err := g.deliver(ctx, content); err != nil {
			return err
		}
		p.report.Removed += n
		p.remove = p.remove[n:]
	}
	return nil
}

// deliver hands one membership update to the plugin, alone.
func (g *registry) deliver(ctx context.Context, content []byte) error {
	msg := abi.Message{Route: abi.Route{Source: SourceDevicesDir, Group: Group, Operation: abi.OpUpdate, Resource: ResourceDevicesDir},
		Content: content}
	msg.Header.ID = eventID()
	var err error
	g.router.alone(func() { err = g.m.deliver(ctx, msg) })
	return err
}

// membershipUpdate is KubeEdge's membership update: devices added and
// removed.
type membershipUpdate struct {
	EventID   string   `json:"event_id"`
	Timestamp int64    `json:"timestamp"`
	Added     []device `json:"added_devices"`
	Removed   []device `json:"removed_devices"`
}

// nextAddBatch encodes the first batch of devices: whole devices while
// they fit, or part of the properties of the first device when it alone
// has more than a batch holds. whole is how many devices the batch
// completes; n its properties.
func nextAddBatch(devices []device) (content []byte, n, whole int) {
	u := membershipUpdate{EventID: eventID(), Timestamp: time.Now().UnixMilli()}
	for _, d := range devices {
		props := max(len(d.Twin), 1)
		if len(u.Added) > 0 && (n+props > batchProperties || len(u.Added) == batchDevices) {
			break
		}
		if props > batchProperties {
			// Split: this batch takes the first properties and leaves
			// the rest on the device for the next.
			part := d
			part.Twin = map[string]*twin{}
			for _, key := range sortedKeys(d.Twin)[:batchProperties] {
				part.Twin[key] = d.Twin[key]
				delete(d.Twin, key)
			}
			u.Added = append(u.Added, part)
			n += batchProperties
			break
		}
		u.Added = append(u.Added, d)
		n += props
		whole++
	}
	content, _ = json.Marshal(u)
	return content, n, whole
}

// checksum identifies what a device declares, to hand over only what
// changed.
func checksum(d device) uint64 {
	b, _ := json.Marshal(d)
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

var eventSeq struct {
	sync.Mutex
	n uint64
}

// eventID names one hand-over message.
func eventID() string {
	eventSeq.Lock()
	defer eventSeq.Unlock()
	eventSeq.n++
	return "devicesdir-" + strconv.FormatUint(eventSeq.n, 10)
}

func (g *registry) setStatus(p *plan) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.status = p.report
}

// notReady returns why the devices dir is not in the plugin.
func (g *registry) notReady() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	st := g.status
	switch {
	case st.Err != nil && st.Pending > 0:
		out = append(out, fmt.Sprintf("twin: %d devices of the devices dir %s are not handed to the twin plugin yet: %v", st.Pending, st.Dir, st.Err))
	case st.Err != nil:
		out = append(out, fmt.Sprintf("twin: devices dir %s: %v", st.Dir, st.Err))
	}
	for _, r := range st.Refused {
		out = append(out, "twin: devices file refused (its devices are kept as they were): "+r)
	}
	return out
}

// Reload re-reads the devices dir and hands the plugin what changed. It
// returns once that is done, or has failed once (and is being retried), or
// when ctx ends.
func (g *registry) Reload(ctx context.Context) (Report, error) {
	w := make(chan Report, 1)
	select {
	case g.reload <- w:
	case <-g.stopped:
		return Report{}, errStopped
	case <-ctx.Done():
		return Report{}, ctx.Err()
	}
	select {
	case r := <-w:
		return r, nil
	case <-g.stopped:
		return Report{}, errStopped
	case <-ctx.Done():
		return Report{}, ctx.Err()
	}
}

// errStopped is Reload's error while the module is not running.
var errStopped = errors.New("the twin module is not running")

// loadManifest reads the manifest of the last hand-over.
func (g *registry) loadManifest() manifest {
	known := manifest{}
	if g.ns == nil {
		return known
	}
	err := g.ns.View(func(b *bolt.Bucket) error {
		if v := b.Get([]byte(manifestKey)); v != nil {
			return json.Unmarshal(v, &known)
		}
		return nil
	})
	if err != nil {
		g.m.log.Warn("devices dir manifest unreadable; no device is removed until a file that declares it is", "error", err)
		return manifest{}
	}
	return known
}

// saveManifest records the manifest of a completed hand-over.
func (g *registry) saveManifest(known manifest) {
	if g.ns == nil {
		return
	}
	b, _ := json.Marshal(known)
	if err := g.ns.Update(func(bk *bolt.Bucket) error { return bk.Put([]byte(manifestKey), b) }); err != nil {
		g.m.log.Warn("devices dir manifest not saved; devices of files removed before the next start may stay", "error", err)
	}
}
