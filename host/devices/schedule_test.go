package devices

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/twin"
)

// waitFor bounds every wait in these tests; it is a hang guard, not a
// speed claim.
const waitFor = 20 * time.Second

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestAligned(t *testing.T) {
	base := time.Unix(1000, 0)
	for _, tc := range []struct {
		now   time.Time
		cycle time.Duration
		want  time.Time
	}{
		{base, time.Second, time.Unix(1001, 0)},
		{base.Add(300 * time.Millisecond), time.Second, time.Unix(1001, 0)},
		{base.Add(300 * time.Millisecond), 250 * time.Millisecond, base.Add(500 * time.Millisecond)},
	} {
		if got := aligned(tc.now, tc.cycle); !got.Equal(tc.want) {
			t.Errorf("aligned(%v, %v) = %v, want %v", tc.now, tc.cycle, got, tc.want)
		}
	}
}

// TestPopDueCountsMissedCycles: a loop that falls three cycles behind
// reads once, counts the cycles it skipped, and schedules the next read
// at the first cycle after now rather than piling the late ones up.
func TestPopDueCountsMissedCycles(t *testing.T) {
	var s schedule
	d := &device{gen: 1}
	p := &property{collect: time.Second}
	start := time.Unix(1000, 0)
	s.add(d, p, start)
	type pop struct {
		due    time.Time
		missed int
	}
	var pops []pop
	collect := func(_ *device, _ *property, due time.Time, missed int) { pops = append(pops, pop{due, missed}) }
	s.popDue(start.Add(500*time.Millisecond), collect)
	if len(pops) != 0 {
		t.Fatalf("popped %v before the first cycle", pops)
	}
	s.popDue(time.Unix(1004, 200e6), collect)
	if len(pops) != 1 || !pops[0].due.Equal(time.Unix(1001, 0)) || pops[0].missed != 3 {
		t.Fatalf("pops = %+v, want one of the cycle at 1001 with 3 missed", pops)
	}
	if next, _ := s.next(); !next.Equal(time.Unix(1005, 0)) {
		t.Fatalf("next = %v, want 1005", next)
	}
	// A removed device's entry is dropped when it falls due.
	d.removed = true
	s.popDue(time.Unix(1006, 0), collect)
	if len(pops) != 1 || s.len() != 0 {
		t.Fatalf("removed device: pops %d, %d entries left", len(pops), s.len())
	}
}

// fakeMapper is a mapper plugin stood in for by a bus module that answers
// reads as a mapper would: every property's value is the number of reads
// it has answered.
type fakeMapper struct {
	name  string
	block chan struct{} // when not nil, each read's answer waits for a receive from it
	mu    sync.Mutex
	reads int // read calls answered
	devs  int // devices in them
}

func (f *fakeMapper) serve(t *testing.T, b *bus.Bus) {
	ep, err := b.Register(f.name, "plugins")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ep.Close)
	go func() {
		for {
			msg, err := ep.Receive(context.Background())
			if err != nil {
				return
			}
			go f.answer(b, msg)
		}
	}()
}

func (f *fakeMapper) answer(b *bus.Bus, msg abi.Message) {
	if msg.Route.Operation != abi.MapperOpRead {
		b.Respond(msg.Reply(abi.OpResponse, nil))
		return
	}
	if f.block != nil {
		<-f.block
	}
	var req abi.MapperRead
	json.Unmarshal(msg.Content, &req)
	f.mu.Lock()
	f.reads++
	f.devs += len(req.Devices)
	n := f.reads
	f.mu.Unlock()
	var out abi.MapperReadReply
	for _, d := range req.Devices {
		dv := abi.MapperDeviceValues{ID: d.ID}
		for _, p := range d.Properties {
			dv.Properties = append(dv.Properties, abi.MapperValue{Name: p.Name, Value: strconv.Itoa(n)})
		}
		out.Devices = append(out.Devices, dv)
	}
	b2, _ := json.Marshal(out)
	b.Respond(msg.Reply(abi.OpResponse, b2))
}

func (f *fakeMapper) counts() (reads, devs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads, f.devs
}

// rig is a module under a fake clock with fake mappers, driven by the
// test: nothing runs the schedule loop, the test calls dispatchDue.
type rig struct {
	m     *Module
	clock *fakeClock
	twin  chan abi.Message
}

func newRig(t *testing.T, mappers []Mapper, devices ...twin.Mapping) *rig {
	t.Helper()
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	r := &rig{clock: &fakeClock{t: time.Unix(1000, 0)}, twin: make(chan abi.Message, 10000)}
	ep, err := b.Register("twin", eventbus.TwinGroup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ep.Close)
	go func() {
		for {
			msg, err := ep.Receive(context.Background())
			if err != nil {
				return
			}
			r.twin <- msg
		}
	}()
	r.m = New(b, MapperFunc(func() []Mapper { return mappers }), nil, Config{Now: r.clock.Now, Queue: 4, Workers: 1}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); r.m.shutdown() })
	r.m.mu.Lock()
	r.m.ctx = ctx
	r.m.dir = map[string]twin.Mapping{}
	for _, d := range devices {
		r.m.dir[d.ID] = d
	}
	r.m.mu.Unlock()
	r.m.bind()
	return r
}

// sensor is a device of protocol with n properties read every cycle.
func sensor(id, protocol string, n int, cycle time.Duration) twin.Mapping {
	mp := twin.Mapping{ID: id, Protocol: protocol}
	for i := range n {
		mp.Properties = append(mp.Properties, twin.MappedProperty{Name: "p" + strconv.Itoa(i), Type: "int", CollectCycle: cycle, ReportCycle: cycle})
	}
	return mp
}

// until waits for cond, failing the test after waitFor.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *rig) device(id string) *device {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	return r.m.devices[id]
}

func (r *rig) reads(id string) uint64 {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	return r.m.devices[id].reads
}

// TestReadsAreBatched: the due properties of many devices of one mapper
// go out in few calls, each device's properties in one entry.
func TestReadsAreBatched(t *testing.T) {
	fast := &fakeMapper{name: "fast"}
	var devs []twin.Mapping
	for i := range 100 {
		devs = append(devs, sensor("default/d"+strconv.Itoa(i), "p", 5, time.Second))
	}
	r := newRig(t, []Mapper{{Name: "fast", Protocols: []string{"p"}}}, devs...)
	fast.serve(t, r.m.bus)
	r.clock.add(time.Second)
	r.m.dispatchDue()
	until(t, "100 devices read", func() bool { _, n := fast.counts(); return n == 100 })
	reads, _ := fast.counts()
	if want := (100 + batchDevices - 1) / batchDevices; reads != want {
		t.Fatalf("%d read calls for 100 devices, want %d", reads, want)
	}
	until(t, "values applied", func() bool { return r.reads("default/d99") == 1 })
	if got := r.m.Stats().Missed; got != 0 {
		t.Fatalf("missed = %d, want 0", got)
	}
}

// TestSlowMapperDelaysOnlyItsOwnDevices: while one mapper answers
// nothing, its device misses every cycle after the first (counted, not
// queued), and the other mapper's device is read every cycle.
func TestSlowMapperDelaysOnlyItsOwnDevices(t *testing.T) {
	slow := &fakeMapper{name: "slow", block: make(chan struct{})}
	fast := &fakeMapper{name: "fast"}
	r := newRig(t, []Mapper{{Name: "slow", Protocols: []string{"s"}}, {Name: "fast", Protocols: []string{"f"}}},
		sensor("default/slow-0", "s", 2, time.Second), sensor("default/fast-0", "f", 2, time.Second))
	slow.serve(t, r.m.bus)
	fast.serve(t, r.m.bus)
	const cycles = 5
	for i := 1; i <= cycles; i++ {
		r.clock.add(time.Second)
		r.m.dispatchDue()
		until(t, "fast device read", func() bool { return r.reads("default/fast-0") == uint64(i) })
	}
	r.m.mu.Lock()
	sd, fd := r.m.devices["default/slow-0"], r.m.devices["default/fast-0"]
	slowMissed, fastMissed, reading := sd.missed, fd.missed, sd.reading
	r.m.mu.Unlock()
	// The slow device's first read is in flight; each later cycle of its
	// two properties is missed.
	if want := uint64(2 * (cycles - 1)); slowMissed != want || !reading {
		t.Fatalf("slow device: missed %d (want %d), reading %v", slowMissed, want, reading)
	}
	if fastMissed != 0 {
		t.Fatalf("fast device missed %d cycles", fastMissed)
	}
	close(slow.block)
	until(t, "slow device's read applied", func() bool { return r.reads("default/slow-0") == 1 })
}

// TestFailedCallsTakeTheDeviceOffline: a mapper that answers with an
// error takes its device offline, counts the error, and tells the twin.
func TestFailedCallsTakeTheDeviceOffline(t *testing.T) {
	r := newRig(t, []Mapper{{Name: "gone", Protocols: []string{"g"}}}, sensor("default/g-0", "g", 1, time.Second))
	// No module "gone" on the bus: every call fails.
	r.clock.add(time.Second)
	r.m.dispatchDue()
	until(t, "read applied", func() bool { return r.reads("default/g-0") == 1 })
	info, err := r.m.GetDevice("default/g-0")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != abi.StateOffline || info.Errors["call"] != 1 || info.LastError == "" {
		t.Fatalf("device = %+v, want offline with one call error", info.DeviceInfo)
	}
	select {
	case msg := <-r.twin:
		topic, _ := eventbus.TopicOfTwinResource(msg.Route.Resource)
		if topic != "$hw/events/device/default/g-0/state/update" || !json.Valid(msg.Content) {
			t.Fatalf("twin got %s %s", topic, msg.Content)
		}
	case <-time.After(waitFor):
		t.Fatal("no state update for the twin")
	}
}

// TestReportsFollowTheReportCycle: values are handed to the twin at the
// first read, then only when changed and once per report cycle.
func TestReportsFollowTheReportCycle(t *testing.T) {
	mp := sensor("default/r-0", "f", 1, time.Second)
	mp.Properties[0].ReportCycle = 3 * time.Second
	fast := &fakeMapper{name: "fast"}
	r := newRig(t, []Mapper{{Name: "fast", Protocols: []string{"f"}}}, mp)
	fast.serve(t, r.m.bus)
	var updates int
	for i := 1; i <= 7; i++ {
		r.clock.add(time.Second)
		r.m.dispatchDue()
		until(t, "read", func() bool { return r.reads("default/r-0") == uint64(i) })
	}
	deadline := time.After(100 * time.Millisecond)
	for done := false; !done; {
		select {
		case msg := <-r.twin:
			if topic, _ := eventbus.TopicOfTwinResource(msg.Route.Resource); topic == "$hw/events/device/default/r-0/twin/update" {
				updates++
			}
		case <-deadline:
			done = true
		}
	}
	// Reads at 1001..1007 change the value every time; reports at 1001
	// (the first), 1004 and 1007.
	if updates != 3 {
		t.Fatalf("%d twin updates over 7 reads with a 3 s report cycle, want 3", updates)
	}
}

// twinUpdates counts the twin updates of id the rig's twin got so far.
func (r *rig) twinUpdates(id string) int {
	n := 0
	for {
		select {
		case msg := <-r.twin:
			if topic, _ := eventbus.TopicOfTwinResource(msg.Route.Resource); topic == "$hw/events/device/"+id+"/twin/update" {
				n++
			}
		case <-time.After(100 * time.Millisecond):
			return n
		}
	}
}

// TestReportCycleCountsCyclesNotAnswers: a changed value is reported once
// a report cycle has passed since the cycle of the last report, even when
// this answer came earlier in its cycle than the last one did (the old
// rule compared answer times and held such a value back a whole cycle).
func TestReportCycleCountsCyclesNotAnswers(t *testing.T) {
	gate := make(chan struct{})
	slow := &fakeMapper{name: "fast", block: gate}
	r := newRig(t, []Mapper{{Name: "fast", Protocols: []string{"f"}}}, sensor("default/j-0", "f", 1, time.Second))
	slow.serve(t, r.m.bus)
	// The first cycle's answer is applied 300 ms into the cycle...
	r.clock.add(time.Second)
	r.m.dispatchDue()
	r.clock.add(300 * time.Millisecond)
	gate <- struct{}{}
	until(t, "first read", func() bool { return r.reads("default/j-0") == 1 })
	// ...the second's at once.
	r.clock.add(700 * time.Millisecond)
	r.m.dispatchDue()
	gate <- struct{}{}
	until(t, "second read", func() bool { return r.reads("default/j-0") == 2 })
	if n := r.twinUpdates("default/j-0"); n != 2 {
		t.Fatalf("%d twin updates for two changed values a report cycle apart, want 2", n)
	}
}

// TestCloudDevicesAreBound: the cloud's Device and DeviceModel objects, as
// the metamanager hands them over, become devices bound to their mapper,
// with the model's visitor defaults under the device's; a delete removes
// the device; a resource that is not a device object is refused.
func TestCloudDevicesAreBound(t *testing.T) {
	r := newRig(t, []Mapper{{Name: "fast", Protocols: []string{"f"}}})
	model := `{"apiVersion":"devices.kubeedge.io/v1beta1","kind":"DeviceModel","metadata":{"name":"m","namespace":"site"},
"spec":{"protocol":"f","properties":[{"name":"p","type":"INT","visitors":{"configData":{"data":{"reg":1,"scale":2}}}}]}}`
	device := `{"apiVersion":"devices.kubeedge.io/v1beta1","kind":"Device","metadata":{"name":"c-0","namespace":"site"},
"spec":{"deviceModelRef":{"name":"m"},"properties":[{"name":"p","visitors":{"configData":{"data":{"scale":3}}}}]}}`
	for _, msg := range []abi.Message{
		{Route: abi.Route{Source: "metamanager", Group: "resource", Operation: abi.OpInsert, Resource: "site/devicemodel/m"}, Content: []byte(model)},
		{Route: abi.Route{Source: "metamanager", Group: "resource", Operation: abi.OpInsert, Resource: "site/device/c-0"}, Content: []byte(device)},
	} {
		if err := r.m.takeObject(&msg); err != nil {
			t.Fatal(err)
		}
	}
	r.m.bind()
	d := r.device("site/c-0")
	if d == nil || d.run == nil || d.run.name != "fast" || d.source != SourceCloud {
		t.Fatalf("cloud device = %+v, want bound to fast", d)
	}
	if v := d.props[0].mp.Visitor; v["reg"] != 1 || v["scale"] != 3 || d.props[0].mp.Type != "int" {
		t.Fatalf("visitor %v type %s, want the model's reg under the device's scale, int", v, d.props[0].mp.Type)
	}
	del := abi.Message{Route: abi.Route{Operation: abi.OpDelete, Resource: "site/device/c-0"}}
	if err := r.m.takeObject(&del); err != nil {
		t.Fatal(err)
	}
	r.m.bind()
	if r.device("site/c-0") != nil {
		t.Fatal("deleted cloud device still known")
	}
	bad := abi.Message{Route: abi.Route{Operation: abi.OpInsert, Resource: "site/pod/x"}, Content: []byte(`{}`)}
	if err := r.m.takeObject(&bad); err == nil || !strings.Contains(err.Error(), "site/pod/x") {
		t.Fatalf("pod resource: %v", err)
	}
}

// TestStoredCloudDevicesAreRestored: after a restart, the cloud's devices
// the metamanager stored are bound without the cloud sending them again.
func TestStoredCloudDevicesAreRestored(t *testing.T) {
	r := newRig(t, []Mapper{{Name: "fast", Protocols: []string{"f"}}})
	model := `{"kind":"DeviceModel","metadata":{"name":"m","namespace":"site"},"spec":{"protocol":"f","properties":[{"name":"p","type":"INT"}]}}`
	device := `{"kind":"Device","metadata":{"name":"c-0","namespace":"site"},"spec":{"deviceModelRef":{"name":"m"},"properties":[{"name":"p"}]}}`
	r.m.cfg.Stored = func(typ string) ([]StoredObject, error) {
		switch typ {
		case "device":
			return []StoredObject{{Resource: "site/device/c-0", Content: []byte(device)}, {Resource: "site/device/bad", Content: []byte("{")}}, nil
		case "devicemodel":
			return []StoredObject{{Resource: "site/devicemodel/m", Content: []byte(model)}}, nil
		}
		return nil, nil
	}
	r.m.restoreCloud()
	r.m.bind()
	if d := r.device("site/c-0"); d == nil || d.run == nil || d.run.name != "fast" || d.source != SourceCloud {
		t.Fatalf("restored cloud device = %+v, want bound to fast", d)
	}
	if r.device("site/bad") != nil {
		t.Fatal("a stored object that does not decode was taken")
	}
}
