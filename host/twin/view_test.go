package twin

import (
	"errors"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/api"
)

// The view reads what the real plugin stored: the devices dir's desired
// value and a mapper's reported one, each with its time and version, and
// whether they agree.
func TestTwinView(t *testing.T) {
	r := newRig(t, "testdata/devices")
	for range 2 { // membership/updated: the devices are in
		next(t, r.published)
	}
	tw, err := r.twin.Twin("default/thermo-0")
	if err != nil {
		t.Fatal(err)
	}
	temp := property(t, tw, "temp")
	if temp.Desired == nil || *temp.Desired != "20" || temp.Reported != nil || temp.InSync || tw.OutOfSync != 1 ||
		temp.DesiredAt.IsZero() || temp.Type != "int" {
		t.Fatalf("before a report: %+v %+v", tw, temp)
	}
	before := time.Now()
	r.mqtt(t, "$hw/events/device/default/thermo-0/twin/update", `{"event_id":"u1","timestamp":1,"twin":{"temp":{"actual":{"value":"19"}}}}`)
	// The plugin publishes its results before its writes commit: wait
	// for the store to have them.
	temp = awaitProperty(t, r, "default/thermo-0", "temp", func(p api.TwinProperty) bool { return p.Reported != nil })
	if *temp.Reported != "19" || temp.InSync || temp.ReportedVersion == nil || temp.ReportedVersion.Edge != 1 ||
		temp.ReportedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("after a report of 19 for a desired 20: %+v", temp)
	}
	r.mqtt(t, "$hw/events/device/default/thermo-0/twin/update", `{"event_id":"u2","timestamp":2,"twin":{"temp":{"actual":{"value":"20"}}}}`)
	temp = awaitProperty(t, r, "default/thermo-0", "temp", func(p api.TwinProperty) bool { return *p.Reported == "20" })
	if tw, _ = r.twin.Twin("default/thermo-0"); !temp.InSync || tw.OutOfSync != 0 || temp.ReportedVersion.Edge != 2 {
		t.Fatalf("after a report of the desired value: %+v", temp)
	}

	all, err := r.twin.Twins()
	if err != nil || len(all) != 2 || all[0].ID != "default/thermo-0" {
		t.Fatalf("every twin: %+v %v", all, err)
	}
	if _, err := r.twin.Twin("default/none"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("twin of an unknown device: %v", err)
	}
}

// awaitProperty reads device id's property until ok holds.
func awaitProperty(t *testing.T, r *rig, id, name string, ok func(api.TwinProperty) bool) api.TwinProperty {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		tw, err := r.twin.Twin(id)
		if err != nil {
			t.Fatal(err)
		}
		if p := property(t, tw, name); ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("device %s property %s never came: %+v", id, name, tw)
		}
	}
}

func property(t *testing.T, tw api.DeviceTwin, name string) api.TwinProperty {
	t.Helper()
	for _, p := range tw.Properties {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("device %s has no twin property %s: %+v", tw.ID, name, tw.Properties)
	return api.TwinProperty{}
}
