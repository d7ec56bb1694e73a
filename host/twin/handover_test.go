package twin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
)

var getSeq atomic.Int64

// twinGet asks the plugin for a device's twin over the eventbus route, as
// a mapper does, and returns its properties, or found = false on 404.
func (r *rig) twinGet(t *testing.T, id string) (twin map[string]struct {
	Actual *struct {
		Value string `json:"value"`
	} `json:"actual"`
}, found bool) {
	t.Helper()
	ev := "get-" + strconv.FormatInt(getSeq.Add(1), 10)
	r.mqtt(t, "$hw/events/device/"+id+"/twin/get", `{"event_id":"`+ev+`"}`)
	for {
		m := next(t, r.published)
		if m.Route.Resource != "$hw/events/device/"+id+"/twin/get/result" {
			continue
		}
		var res struct {
			EventID string `json:"event_id"`
			Code    int    `json:"code"`
			Twin    map[string]struct {
				Actual *struct {
					Value string `json:"value"`
				} `json:"actual"`
			} `json:"twin"`
		}
		if err := json.Unmarshal(m.Content, &res); err != nil {
			t.Fatal(err)
		}
		if res.EventID != ev {
			continue
		}
		if res.Code == 404 {
			return nil, false
		}
		return res.Twin, true
	}
}

func (r *rig) reload(t *testing.T) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := r.twin.Reload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func (r *rig) mustHave(t *testing.T, id string, want bool) {
	t.Helper()
	if _, found := r.twinGet(t, id); found != want {
		t.Fatalf("device %s registered: %v, want %v", id, found, want)
	}
}

func deviceYAML(name string, props int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: %s}\nspec:\n  properties:\n", name)
	for p := range props {
		fmt.Fprintf(&b, "    - name: p%d\n      desired: {value: \"%d\", metadata: {type: int}}\n", p, p)
	}
	return b.String()
}

// TestDevicesDirSafety: nothing short of removing a device's file removes
// it or its reported values: not a refused file, not a kind typo, not a
// devices dir that went missing; a reload adds a new file's device.
func TestDevicesDirSafety(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devices")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "a.yaml", deviceYAML("a1", 1))
	write(t, dir, "b.yaml", deviceYAML("b1", 1))
	r := newRig(t, dir)
	if rep := r.reload(t); rep.Err != nil || rep.Devices != 2 || rep.Pending != 0 {
		t.Fatalf("first reading: %+v", rep)
	}
	r.mqtt(t, "$hw/events/device/default/a1/twin/update", `{"event_id":"u1","twin":{"p0":{"actual":{"value":"19"}}}}`)
	if tw, _ := r.twinGet(t, "default/a1"); tw["p0"].Actual == nil || tw["p0"].Actual.Value != "19" {
		t.Fatalf("a1 twin %+v", tw)
	}

	// A bad file is refused by name and keeps its device; a1 keeps working.
	write(t, dir, "b.yaml", "apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: b1}\nspec:\n  properties: [\n")
	rep := r.reload(t)
	if len(rep.Refused) != 1 || !strings.Contains(rep.Refused[0], filepath.Join(dir, "b.yaml")+": yaml: line") {
		t.Fatalf("bad b.yaml: %+v", rep)
	}
	if nr := strings.Join(r.twin.NotReady(), "\n"); !strings.Contains(nr, "b.yaml") {
		t.Fatalf("NotReady %q does not name the refused file", nr)
	}
	r.mustHave(t, "default/b1", true)
	r.mqtt(t, "$hw/events/device/default/a1/twin/update", `{"event_id":"u2","twin":{"p0":{"actual":{"value":"20"}}}}`)

	// A kind typo skips the document, with a warning, and keeps the device.
	write(t, dir, "a.yaml", strings.Replace(deviceYAML("a1", 1), "kind: Device", "kind: Devcie", 1))
	rep = r.reload(t)
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "a.yaml: line 1: field kind") || rep.Removed != 0 {
		t.Fatalf("kind typo: %+v", rep)
	}

	// A missing dir is an error naming it, and changes nothing.
	moved := dir + ".moved"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	rep = r.reload(t)
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), dir) || rep.Removed != 0 {
		t.Fatalf("missing dir: %+v", rep)
	}
	if tw, _ := r.twinGet(t, "default/a1"); tw["p0"].Actual == nil || tw["p0"].Actual.Value != "20" {
		t.Fatalf("a1 twin after the dir went missing: %+v", tw)
	}
	r.mustHave(t, "default/b1", true)
	if err := os.Rename(moved, dir); err != nil {
		t.Fatal(err)
	}

	// Removing a file removes its device, and only that.
	write(t, dir, "a.yaml", deviceYAML("a1", 1))
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	if rep = r.reload(t); rep.Removed != 1 || rep.Err != nil || len(rep.Refused) != 0 {
		t.Fatalf("b.yaml removed: %+v", rep)
	}
	r.mustHave(t, "default/b1", false)
	if tw, _ := r.twinGet(t, "default/a1"); tw["p0"].Actual == nil || tw["p0"].Actual.Value != "20" {
		t.Fatalf("a1 twin after b.yaml was removed: %+v", tw)
	}

	// A new file's device arrives with a reload.
	write(t, dir, "c.yaml", deviceYAML("c1", 2))
	if rep = r.reload(t); rep.HandedOver != 1 || rep.Devices != 2 {
		t.Fatalf("c.yaml added: %+v", rep)
	}
	r.mustHave(t, "default/c1", true)
	if nr := r.twin.NotReady(); len(nr) != 0 {
		t.Fatalf("NotReady %q", nr)
	}
}

// TestDevicesDirAcrossRestarts: a file removed while the module was down
// removes its device at the next start, and a start on a dir that is gone
// removes nothing.
func TestDevicesDirAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", deviceYAML("a1", 1))
	write(t, dir, "b.yaml", deviceYAML("b1", 1))
	r := newRig(t, dir)
	r.awaitReady(t)
	r.mustHave(t, "default/b1", true)

	r.stopTwin()
	if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	r.startTwin(t, dir, "")
	r.awaitReady(t)
	r.mustHave(t, "default/b1", false)
	r.mustHave(t, "default/a1", true)

	r.stopTwin()
	missing := filepath.Join(dir, "gone")
	r.startTwin(t, missing, "")
	if rep := r.reload(t); rep.Err == nil || !strings.Contains(rep.Err.Error(), missing) || rep.Devices != 1 {
		t.Fatalf("start on a missing dir: %+v", rep)
	}
	r.mustHave(t, "default/a1", true)
}

// awaitReady waits until the twin module has nothing left to report.
func (r *rig) awaitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for len(r.twin.NotReady()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("twin not ready: %q", r.twin.NotReady())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHandOverLargeDir: 21 devices of 113 properties each reach the plugin
// under its default 1 s call timeout, which one call for the whole dir
// did not make.
func TestHandOverLargeDir(t *testing.T) {
	const devices, props = 21, 113
	dir := t.TempDir()
	for d := range devices {
		write(t, dir, fmt.Sprintf("d%02d.yaml", d), deviceYAML("d"+strconv.Itoa(d), props))
	}
	r := newRigWith(t, rigOptions{devicesDir: dir, callTimeout: time.Second})
	r.awaitReady(t)
	for d := range devices {
		tw, found := r.twinGet(t, "default/d"+strconv.Itoa(d))
		if !found || len(tw) != props {
			t.Fatalf("device d%d: found %v with %d properties, want %d", d, found, len(tw), props)
		}
	}
	// Every device changed: all of them again, in one reload.
	for d := range devices {
		write(t, dir, fmt.Sprintf("d%02d.yaml", d), deviceYAML("d"+strconv.Itoa(d), props+1))
	}
	start := time.Now()
	if rep := r.reload(t); rep.Err != nil || rep.HandedOver != devices || rep.Pending != 0 {
		t.Fatalf("reload of %d changed devices: %+v", devices, rep)
	}
	t.Logf("%d devices of %d properties handed over in %s", devices, props+1, time.Since(start))
	if tw, _ := r.twinGet(t, "default/d20"); len(tw) != props+1 {
		t.Fatalf("d20 has %d properties after the reload, want %d", len(tw), props+1)
	}
}

// TestHandOverRetried: a hand-over the plugin fails is retried until it
// takes. A module in front of the real plugin fails the first two.
func TestHandOverRetried(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", deviceYAML("a1", 3))
	var failed, handed atomic.Int64
	notReady := make(chan []string, 1)
	var r *rig
	front := func(b *bus.Bus) {
		ep, err := b.Register("twin-front", "twin-front")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ep.Close)
		go func() {
			for {
				m, err := ep.Receive(context.Background())
				if err != nil {
					return
				}
				if m.Route.Source == SourceDevicesDir {
					handed.Add(1)
					if failed.Load() < 2 {
						if failed.Add(1) == 2 {
							notReady <- r.twin.NotReady()
						}
						b.Respond(m.Reply(abi.OpError, []byte("injected failure")))
						continue
					}
				}
				orig := m
				m.Header.ID = bus.NewID()
				reply, err := b.Request(context.Background(), DefaultPlugin, m)
				if err != nil {
					reply = orig.Reply(abi.OpError, []byte(err.Error()))
				}
				reply.Header.ParentID = orig.Header.ID
				b.Respond(reply)
			}
		}()
	}
	r = newRigWith(t, rigOptions{devicesDir: dir, callTimeout: 5 * time.Second, plugin: "twin-front", front: front})
	r.awaitReady(t)
	r.mustHave(t, "default/a1", true)
	if failed.Load() != 2 || handed.Load() < 3 {
		t.Fatalf("%d hand-overs failed of %d; want 2 failed and then one that took", failed.Load(), handed.Load())
	}
	if nr := strings.Join(<-notReady, "\n"); !strings.Contains(nr, "injected failure") {
		t.Fatalf("NotReady while failing: %q", nr)
	}
}
