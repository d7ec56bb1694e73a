package devices

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/twin"
)

// Where a device comes from.
const (
	SourceDir   = "dir"
	SourceCloud = "cloud"
)

// device is one device the module knows, bound to a mapper or not. Its
// fields are guarded by Module.mu.
type device struct {
	id      string
	source  string
	mapping twin.Mapping
	run     *mapperRun // nil: no mapper serves its protocol
	gen     uint64     // bumped when it is replaced; stale heap entries are dropped
	removed bool
	props   []*property
	byName  map[string]*property
	// full is the device's read entry with every property, marshalled
	// once: most reads ask for all of them.
	full []byte

	state     string // online, offline, unknown
	stateSent string // the last state handed to the twin
	reading   bool   // a read of it is queued or in flight
	reads     uint64
	writes    uint64
	missed    uint64
	errs      [numKinds]uint64
	lastErr   string
	lastErrAt time.Time
}

// property is one property of a device and what the module knows of it.
type property struct {
	mp              abi.MapperProperty
	collect, report time.Duration

	value       string // the last value read
	readAt      time.Time
	err         string    // the last read's error, "" when it succeeded
	reported    string    // the last value handed to the twin
	reportAt    time.Time // when
	reportCycle time.Time // the cycle it was read in
	sent        bool      // reported at least once

	writing, written string // the value being written, the last written
	failed           string // the last value whose write failed, and when
	failedAt         time.Time
	missed           uint64
}

// bind brings the devices in line with the sources and the mapper
// plugins: new devices are bound and scheduled, changed ones replaced,
// removed and unbound ones closed.
func (m *Module) bind() {
	sig := m.mapperSig()
	mappers := m.mappers.Mappers()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx == nil {
		return
	}
	m.boundSig = sig
	owner := map[string]string{} // protocol -> plugin, the first to declare it
	for _, mp := range mappers {
		for _, p := range mp.Protocols {
			if other, taken := owner[p]; taken && other != mp.Name {
				if key := "protocol " + p + " " + mp.Name; !m.warned[key] {
					m.warned[key] = true
					m.log.Warn("two mapper plugins declare one protocol; the first loaded serves it", "protocol", p, "serves", other, "ignored", mp.Name)
				}
				continue
			}
			owner[p] = mp.Name
		}
	}
	want := m.wanted()
	m.startMappers(owner, want)
	for id, d := range m.devices {
		w, ok := want[id]
		runName := ""
		if d.run != nil {
			runName = d.run.name
		}
		if ok && w.source == d.source && reflect.DeepEqual(w.mapping, d.mapping) && owner[w.mapping.Protocol] == runName {
			delete(want, id)
			continue
		}
		m.removeDevice(d)
		delete(m.devices, id)
	}
	now := m.cfg.Now()
	for _, id := range slices.Sorted(maps.Keys(want)) {
		w := want[id]
		m.gen++
		d := newDevice(w.mapping, w.source, m.gen)
		m.devices[id] = d
		if name := owner[w.mapping.Protocol]; name != "" {
			d.run = m.runFor(name)
			d.run.devices++
			m.enqueue(d.run, job{kind: jobOpen, dev: d})
			for _, p := range d.props {
				m.sched.add(d, p, now)
			}
		}
	}
	for name, r := range m.runs {
		if r.devices == 0 && !ownsAny(owner, name) {
			r.stop()
			delete(m.runs, name)
		}
	}
	m.wake()
}

// startMappers asks the mapper source, if it can, to start a mapper for
// each protocol a wanted device has and no mapper serves, once per
// protocol; a mapper that starts makes the devices bind again. Called
// with m.mu held; the starts run apart.
func (m *Module) startMappers(owner map[string]string, want map[string]wantedDevice) {
	starter, ok := m.mappers.(MapperStarter)
	if !ok {
		return
	}
	for _, w := range want {
		p := w.mapping.Protocol
		if p == "" || owner[p] != "" || m.started[p] {
			continue
		}
		m.started[p] = true
		ctx := m.ctx
		m.workers.Go(func() {
			started, err := starter.StartMapper(ctx, p)
			switch {
			case err != nil:
				m.log.Warn("mapper for a device's protocol not started", "protocol", p, "error", err)
			case started:
				m.askRebind()
			}
		})
	}
}

// ownsAny reports whether plugin serves any protocol of owner.
func ownsAny(owner map[string]string, plugin string) bool {
	for _, p := range owner {
		if p == plugin {
			return true
		}
	}
	return false
}

// wantedDevice is a device one of the sources declares.
type wantedDevice struct {
	mapping twin.Mapping
	source  string
}

// wanted is every device the sources declare: the devices dir's and the
// cloud's, the cloud's winning for an id both declare. Callers hold m.mu.
func (m *Module) wanted() map[string]wantedDevice {
	out := map[string]wantedDevice{}
	for id, mp := range m.dir {
		out[id] = wantedDevice{mp, SourceDir}
	}
	for id, obj := range m.cloud {
		mp, err := twin.DecodeMapping(obj, nil)
		if err == nil && mp.Model != "" && m.models[mp.Model] != nil {
			mp, err = twin.DecodeMapping(obj, m.models[mp.Model])
		}
		if err != nil {
			m.log.Debug("cloud device not decoded", "device", id, "error", err)
			continue
		}
		mp.ID = id // the resource's, which the metamanager stored it under
		out[id] = wantedDevice{mp, SourceCloud}
	}
	return out
}

// newDevice is the module's device for a mapping.
func newDevice(mp twin.Mapping, source string, gen uint64) *device {
	d := &device{id: mp.ID, source: source, mapping: mp, gen: gen, byName: map[string]*property{}, state: abi.StateUnknown}
	for _, p := range mp.Properties {
		pr := &property{
			mp:      abi.MapperProperty{Name: p.Name, Type: p.Type, Visitor: p.Visitor},
			collect: cycle(p.CollectCycle, DefaultCollectCycle),
			report:  cycle(p.ReportCycle, DefaultReportCycle),
		}
		pr.mp.CollectCycle = pr.collect.Milliseconds()
		d.props = append(d.props, pr)
		d.byName[p.Name] = pr
	}
	d.full, _ = json.Marshal(d.mapperDevice(d.props)) // plain maps and strings: it cannot fail
	return d
}

// cycle is a property's cycle: def when unset, at least minCycle.
func cycle(c, def time.Duration) time.Duration {
	if c == 0 {
		return def
	}
	return max(c, minCycle)
}

// mapperDevice is d as a mapper sees it, with the properties props.
func (d *device) mapperDevice(props []*property) abi.MapperDevice {
	out := abi.MapperDevice{ID: d.id, Protocol: d.mapping.Protocol, ProtocolConfig: d.mapping.ProtocolConfig,
		Properties: make([]abi.MapperProperty, len(props))}
	for i, p := range props {
		out.Properties[i] = p.mp
	}
	return out
}

// removeDevice takes d out of service: its heap entries are dropped as
// they fall due, its mapper is told. Callers hold m.mu.
func (m *Module) removeDevice(d *device) {
	d.removed = true
	if d.run != nil {
		d.run.devices--
		m.enqueue(d.run, job{kind: jobClose, dev: d})
	}
}

// wake tells the scheduler its next entry may be earlier.
func (m *Module) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}
