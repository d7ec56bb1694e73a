package devices

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/edgehost/edgehost/host/api"
)

// Stats are the module's totals since it was made.
type Stats struct {
	// Reads counts devices read (a call reads many); Writes the writes
	// that succeeded; Missed the collect cycles skipped.
	Reads, Writes, Missed uint64
	// Reports counts twin updates of values, States the state updates
	// handed to the twin; ReportsFailed those the twin could not take.
	Reports, States, ReportsFailed uint64
	// Errors counts errors by kind (KindNames).
	Errors map[string]uint64
	// Devices is how many devices the module knows; Bound how many of
	// them a mapper serves.
	Devices, Bound int
	// WorstLateness is the longest a read was queued after its cycle fell
	// due; WorstCompletion the longest from a cycle falling due to its
	// answer being applied.
	WorstLateness, WorstCompletion time.Duration
	// MeanCompletion is the mean time from a cycle falling due to its
	// read call's answer being applied.
	MeanCompletion time.Duration
}

// Stats returns the module's counters.
func (m *Module) Stats() Stats {
	s := Stats{Reads: m.stats.reads.Load(), Writes: m.stats.writes.Load(), Missed: m.stats.missed.Load(),
		Reports: m.stats.reports.Load(), States: m.stats.states.Load(), ReportsFailed: m.stats.reportsFailed.Load(),
		Errors:          map[string]uint64{},
		WorstLateness:   time.Duration(m.stats.worstLateNS.Load()),
		WorstCompletion: time.Duration(m.stats.worstDoneNS.Load())}
	if n := m.stats.doneCount.Load(); n > 0 {
		s.MeanCompletion = time.Duration(m.stats.doneNS.Load() / n)
	}
	for k, name := range KindNames {
		s.Errors[name] = m.stats.errs[k].Load()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s.Devices = len(m.devices)
	for _, d := range m.devices {
		if d.run != nil {
			s.Bound++
		}
	}
	return s
}

// ListDevices returns every device the module knows, by id.
func (m *Module) ListDevices() []api.DeviceInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]api.DeviceInfo, 0, len(m.devices))
	for _, id := range slices.Sorted(maps.Keys(m.devices)) {
		out = append(out, m.devices[id].info())
	}
	return out
}

// GetDevice returns the device id ({namespace}/{name}) with its
// properties; api.ErrNotFound when it is not known.
func (m *Module) GetDevice(id string) (api.DeviceDetail, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.devices[id]
	if d == nil {
		return api.DeviceDetail{}, fmt.Errorf("device %s: %w", id, api.ErrNotFound)
	}
	out := api.DeviceDetail{DeviceInfo: d.info(), PropertyList: []api.PropertyInfo{}}
	for _, p := range d.props {
		out.PropertyList = append(out.PropertyList, api.PropertyInfo{Name: p.mp.Name, Type: p.mp.Type,
			Value: p.value, ReadAt: p.readAt, Error: p.err, Reported: p.reported, ReportedAt: p.reportAt,
			Written: p.written, CollectCycleMS: p.collect.Milliseconds(), ReportCycleMS: p.report.Milliseconds(), Missed: p.missed})
	}
	return out, nil
}

// info is d's line in the list. Callers hold m.mu.
func (d *device) info() api.DeviceInfo {
	in := api.DeviceInfo{ID: d.id, Source: d.source, Protocol: d.mapping.Protocol, State: d.state,
		Properties: len(d.props), Reads: d.reads, Writes: d.writes, Missed: d.missed,
		LastError: d.lastErr, LastErrorAt: d.lastErrAt}
	if d.run != nil {
		in.Mapper = d.run.name
	}
	for k, n := range d.errs {
		if n > 0 {
			if in.Errors == nil {
				in.Errors = map[string]uint64{}
			}
			in.Errors[KindNames[k]] = n
		}
	}
	return in
}
