package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// get asks for a device's twin over MQTT and returns the answer.
func (r *twinRig) get(id string) twinDoc {
	r.t.Helper()
	topic := "$hw/events/device/" + id + "/twin/get/result"
	r.mu.Lock()
	n := len(r.got[topic])
	r.mu.Unlock()
	ev := "g-" + strconv.Itoa(n)
	r.publish("$hw/events/device/"+id+"/twin/get", `{"event_id":"`+ev+`"}`)
	for _, s := range r.await(topic, n+1)[n:] {
		if d := decodeDoc(r.t, s); d.EventID == ev {
			return d
		}
	}
	r.t.Fatalf("%s: no answer to %s", topic, ev)
	return twinDoc{}
}

// awaitDevice asks for a device's twin until it is registered.
func (r *twinRig) awaitDevice(id string) twinDoc {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if d := r.get(id); d.Code == 0 {
			return d
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("device %s never registered\nlogs:\n%s", id, r.d.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *twinRig) writeDevice(file, name string) {
	r.t.Helper()
	body := fmt.Sprintf("apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: %s}\nspec:\n  properties:\n    - name: temp\n", name)
	if err := os.WriteFile(filepath.Join(r.devicesDir, file), []byte(body), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// TestDevicesDirEndToEnd runs the real daemon: SIGHUP and `edgehost devices
// reload` add a new file's device without a restart, and a restart with a
// devices dir that does not exist keeps every twin and names the dir.
func TestDevicesDirEndToEnd(t *testing.T) {
	r := newTwinRig(t, 4)
	r.d.awaitStatus(t, r.bin, r.dataDir, true, "")
	r.publish(sensor0+"update", `{"event_id":"e1","twin":{"temp":{"actual":{"value":"18"}}}}`)
	r.await(sensor0+"update/result", 1)

	// SIGHUP re-reads the dir; the daemon keeps running.
	if d := r.get("default/late-1"); d.Code != 404 {
		t.Fatalf("late-1 before it is declared: %+v", d)
	}
	r.writeDevice("late.yaml", "late-1")
	if err := r.d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	r.awaitDevice("default/late-1")
	select {
	case err := <-r.d.exited:
		t.Fatalf("daemon exited on SIGHUP: %v\nlogs:\n%s", err, r.d.logs)
	default:
	}
	// The reload is logged once it is done, which may be just after the
	// device became visible.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(r.d.logs.String(), "SIGHUP: devices dir reloaded"); {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged:\n%s", r.d.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// So does the CLI, through the admin API.
	r.writeDevice("cli.yaml", "cli-1")
	out, code := edgehost(t, r.bin, "", "devices", "reload", "--data-dir", r.dataDir)
	if code != 0 || !strings.Contains(out, "66 devices, 1 handed over, 0 removed, 0 pending") {
		t.Fatalf("devices reload (exit %d):\n%s", code, out)
	}
	if d := r.get("default/cli-1"); d.Code != 0 {
		t.Fatalf("cli-1 after the reload: %+v", d)
	}

	// Restart on a devices dir that does not exist: every twin is kept.
	r.d.stop(t)
	r.client.Disconnect(100)
	missing := filepath.Join(r.work, "no-such-devices")
	r.d = launch(t, r.bin, "--config", r.cfg, "--data-dir", r.dataDir, "--devices-dir", missing)
	r.d.awaitStatus(t, r.bin, r.dataDir, false, "devices dir "+missing)
	r.connect()
	if d := r.get("default/sensor-0"); d.Code != 0 || d.Twin["temp"].Actual == nil || d.Twin["temp"].Actual.Value != "18" {
		t.Fatalf("sensor-0 after a restart on a missing devices dir: %+v\nlogs:\n%s", d, r.d.logs)
	}
	for _, id := range []string{"late-1", "cli-1"} {
		if d := r.get("default/" + id); d.Code != 0 {
			t.Fatalf("%s after a restart on a missing devices dir: %+v", id, d)
		}
	}
	for i := range 64 {
		if d := r.get("default/sensor-" + strconv.Itoa(i)); d.Code != 0 || d.Twin["temp"] == nil {
			t.Fatalf("sensor-%d after a restart on a missing devices dir: %+v", i, d)
		}
	}
	if logs := r.d.logs.String(); !strings.Contains(logs, "devices dir cannot be read") || !strings.Contains(logs, missing) {
		t.Fatalf("the log does not name the missing dir:\n%s", logs)
	}
	out, code = edgehost(t, r.bin, "", "devices", "reload", "--data-dir", r.dataDir)
	if code != exitRemote || !strings.Contains(out, missing) {
		t.Fatalf("devices reload on a missing dir (exit %d):\n%s", code, out)
	}
	r.d.stop(t)
}
