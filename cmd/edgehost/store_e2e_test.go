package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// storeRig is a daemon with the built-in twin, a few devices, snapshots at
// shutdown only, and an MQTT client per run that records every twin
// result it gets.
type storeRig struct {
	t                 *testing.T
	bin, dataDir, cfg string
	broker            string
	devices           int
	d                 *daemonProc
	client            mqtt.Client

	mu      sync.Mutex
	results map[string]string // event id -> result payload
	arrived chan struct{}
}

func newStoreRig(t *testing.T, devices int) *storeRig {
	bin := buildBinary(t)
	needTwinWiring(t, bin)
	r := &storeRig{t: t, bin: bin, dataDir: shortDataDir(t), broker: freeAddr(t), devices: devices,
		results: map[string]string{}, arrived: make(chan struct{}, 1)}
	devDir := t.TempDir()
	var b strings.Builder
	for i := range devices {
		fmt.Fprintf(&b, "---\napiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: sensor-%d, namespace: default}\n"+
			"spec:\n  properties:\n    - name: temp\n      desired: {value: \"20\", metadata: {type: int}}\n", i)
	}
	if err := os.WriteFile(filepath.Join(devDir, "sensors.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r.cfg = writeConfig(t, r.dataDir, fmt.Sprintf("store:\n  snapshotInterval: 0s\nmodules:\n  eventbus:\n    embedded:\n      address: %s\n"+
		"  hub:\n    nodeName: edge-1\n  devices:\n    dir: %s\n", r.broker, devDir))
	return r
}

// start runs the daemon until it is ready and connects a new client.
func (r *storeRig) start() {
	r.d = startDaemon(r.t, r.bin, r.cfg, r.dataDir)
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + r.broker).SetClientID("store-e2e").SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond)
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		for _, f := range []string{"$hw/events/device/+/+/twin/update/result", "$hw/events/device/+/+/twin/get/result"} {
			c.Subscribe(f, 1, r.record).Wait()
		}
	})
	r.client = mqtt.NewClient(opts)
	if tok := r.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		r.t.Fatalf("mqtt connect: %v", tok.Error())
	}
	time.Sleep(200 * time.Millisecond) // the subscriptions are made on connect
}

func (r *storeRig) disconnect() {
	if r.client != nil {
		r.client.Disconnect(0)
		r.client = nil
	}
}

func (r *storeRig) record(_ mqtt.Client, m mqtt.Message) {
	var head struct {
		EventID string `json:"event_id"`
	}
	if json.Unmarshal(m.Payload(), &head) != nil || head.EventID == "" {
		return
	}
	r.mu.Lock()
	r.results[head.EventID] = string(m.Payload())
	r.mu.Unlock()
	select {
	case r.arrived <- struct{}{}:
	default:
	}
}

// result returns the result recorded for the event, if any.
func (r *storeRig) result(event string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.results[event]
	return res, ok
}

func sensorTopic(i int, verb string) string {
	return fmt.Sprintf("$hw/events/device/default/sensor-%d/twin/%s", i, verb)
}

// update sets sensor i's actual temp to value with event id ev.
func (r *storeRig) update(i int, ev string, value int) mqtt.Token {
	return r.client.Publish(sensorTopic(i, "update"), 1, false,
		fmt.Sprintf(`{"event_id":%q,"timestamp":1,"twin":{"temp":{"actual":{"value":"%d"}}}}`, ev, value))
}

// acked reports whether the result of ev says the update was applied.
func acked(res string) bool { return res != "" && !strings.Contains(res, `"code"`) }

// actual asks sensor i's twin and returns its actual temp ("" when it has
// none), retrying while the twin does not know the device yet (it gets
// the devices just after the plugin loads).
func (r *storeRig) actual(i int) string {
	t := r.t
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; ; n++ {
		ev := fmt.Sprintf("get-%d-%d-%d", i, n, time.Now().UnixNano())
		r.client.Publish(sensorTopic(i, "get"), 1, false, `{"event_id":"`+ev+`"}`).Wait()
		wait := time.After(2 * time.Second)
	poll:
		for {
			if res, ok := r.result(ev); ok {
				doc := decodeDoc(t, res)
				if doc.Code == 404 {
					break poll
				}
				if doc.Code != 0 {
					t.Fatalf("get sensor-%d: %s", i, res)
				}
				if tw := doc.Twin["temp"]; tw != nil && tw.Actual != nil {
					return tw.Actual.Value
				}
				return ""
			}
			select {
			case <-r.arrived:
			case <-time.After(20 * time.Millisecond):
			case <-wait:
				break poll
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no twin get result for sensor-%d\nlogs:\n%s", i, r.d.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runRefused runs the daemon expecting it to refuse to start; it returns
// the output. A daemon that starts anyway is killed after 30s.
func runRefused(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"run"}, args...)...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the daemon started on a damaged store:\n%s", out)
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() == 0 {
		t.Fatalf("daemon exit %v, want a non-zero exit code:\n%s", err, out)
	}
	for _, crash := range []string{"goroutine ", "panic:", "SIGSEGV", "SIGBUS", "fatal error"} {
		if strings.Contains(string(out), crash) {
			t.Fatalf("the daemon crashed instead of refusing (%q):\n%s", crash, out)
		}
	}
	return string(out)
}

// TestDamagedStoreIsRefusedAndRestored: acknowledged twin updates through
// the real daemon; then, for each kind of damage, the daemon refuses to
// start with one line naming the file, the damage and the restore command,
// and after `edgehost store restore` it starts with the acknowledged state.
func TestDamagedStoreIsRefusedAndRestored(t *testing.T) {
	r := newStoreRig(t, 4)
	r.start()
	for i := range r.devices {
		ev := fmt.Sprintf("set-%d", i)
		r.update(i, ev, 100+i).Wait()
		deadline := time.Now().Add(30 * time.Second)
		for {
			res, ok := r.result(ev)
			if ok && acked(res) {
				break
			}
			if ok || time.Now().After(deadline) { // a 404 before the twin has the devices: again
				if time.Now().After(deadline) {
					t.Fatalf("update of sensor-%d not acknowledged: %q\nlogs:\n%s", i, res, r.d.logs)
				}
				r.mu.Lock()
				delete(r.results, ev)
				r.mu.Unlock()
				time.Sleep(100 * time.Millisecond)
				r.update(i, ev, 100+i).Wait()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// A backup while the daemon runs goes through the admin API.
	backup := filepath.Join(t.TempDir(), "online.db")
	if out, code := edgehost(t, r.bin, "", "store", "backup", backup, "--data-dir", r.dataDir); code != 0 || !strings.Contains(out, "from the running daemon") {
		t.Fatalf("online backup (exit %d):\n%s", code, out)
	}
	if out, code := edgehost(t, r.bin, "", "store", "check", "--file", backup); code != 0 {
		t.Fatalf("check of the online backup (exit %d):\n%s", code, out)
	}
	r.disconnect()
	r.d.stop(t)

	db := filepath.Join(r.dataDir, "edgehost.db")
	cases := []struct {
		name   string
		damage func() error
		want   string
		from   string // the backup to restore; "" for the newest snapshot
	}{
		{"0 bytes", func() error { return os.Truncate(db, 0) }, "the file is empty (0 bytes)", ""},
		{"missing", func() error { return os.Remove(db) }, "the file is missing", ""},
		{"truncated to 8 KiB", func() error { return os.Truncate(db, 8<<10) }, "shorter than the 4 pages", ""},
		{"truncated to 16 KiB, restored from the online backup", func() error { return os.Truncate(db, 16<<10) }, "(truncated?)", backup},
		{"bit flipped in meta page 0", func() error {
			f, err := os.OpenFile(db, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			b := make([]byte, 1)
			f.ReadAt(b, 16+40) // the high-water mark
			b[0] ^= 0x08
			_, err = f.WriteAt(b, 16+40)
			return err
		}, "meta page 0: checksum mismatch", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r.t = t
			if err := tc.damage(); err != nil {
				t.Fatal(err)
			}
			out := runRefused(t, r.bin, "--config", r.cfg, "--data-dir", r.dataDir)
			var refusal []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.Contains(line, "is damaged") {
					refusal = append(refusal, line)
				}
			}
			if len(refusal) != 1 {
				t.Fatalf("want one line saying the store is damaged, got %d:\n%s", len(refusal), out)
			}
			for _, w := range []string{db, tc.want, "edgehost store restore --data-dir " + r.dataDir} {
				if !strings.Contains(refusal[0], w) {
					t.Errorf("refusal lacks %q: %s", w, refusal[0])
				}
			}
			t.Log(refusal[0])
			if out, code := edgehost(t, r.bin, "", "store", "check", "--data-dir", r.dataDir); code == 0 {
				t.Errorf("store check passed the damaged store:\n%s", out)
			}
			args := []string{"store", "restore", "--data-dir", r.dataDir}
			if tc.from != "" {
				args = append(args, tc.from)
			}
			out, code := edgehost(t, r.bin, "", args...)
			if code != 0 {
				t.Fatalf("restore exit %d:\n%s", code, out)
			}
			t.Log(strings.TrimSpace(out))
			r.start()
			for i := range r.devices {
				if got := r.actual(i); got != strconv.Itoa(100+i) {
					t.Errorf("sensor-%d actual temp after restore = %q, want %d", i, got, 100+i)
				}
			}
			r.disconnect()
			r.d.stop(t)
		})
	}
}

// TestResetStoreKeepsTheDamagedFile: --reset-store starts on an empty
// store and keeps the damaged one, renamed.
func TestResetStoreKeepsTheDamagedFile(t *testing.T) {
	r := newStoreRig(t, 1)
	r.start()
	r.disconnect()
	r.d.stop(t)
	db := filepath.Join(r.dataDir, "edgehost.db")
	if err := os.Truncate(db, 16<<10); err != nil {
		t.Fatal(err)
	}
	d := launch(t, r.bin, "--config", r.cfg, "--data-dir", r.dataDir, "--reset-store")
	d.awaitStatus(t, r.bin, r.dataDir, true, "")
	d.stop(t)
	aside, _ := filepath.Glob(db + ".damaged-*")
	if len(aside) != 1 {
		t.Fatalf("damaged files kept: %v, want one\nlogs:\n%s", aside, d.logs)
	}
	if fi, err := os.Stat(aside[0]); err != nil || fi.Size() != 16<<10 {
		t.Errorf("kept file %v, %v: want the 16 KiB damaged store", fi, err)
	}
	if !strings.Contains(d.logs.String(), "--reset-store set it aside") {
		t.Errorf("no log line about the reset:\n%s", d.logs)
	}
}

// TestStoreReadFailureMakesDaemonNotReady damages the store's pages under
// a running daemon: the twin's reads fail, and the daemon says so in its
// readiness and its metrics instead of hiding it in error replies.
func TestStoreReadFailureMakesDaemonNotReady(t *testing.T) {
	r := newStoreRig(t, 2)
	r.start()
	r.actual(0) // the twin has its devices
	// bbolt maps the file shared: its next reads see these writes.
	f, err := os.OpenFile(filepath.Join(r.dataDir, "edgehost.db"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	ps := int64(os.Getpagesize())
	hdr := make([]byte, 16)
	for off := 2 * ps; off < fi.Size(); off += ps {
		f.ReadAt(hdr, off)
		if hdr[8] == 0x01 || hdr[8] == 0x02 { // branch or leaf
			f.WriteAt([]byte{0xff, 0xff, 0xff, 0x7f}, off)
		}
	}
	f.Close()
	ev := "get-after-damage"
	r.client.Publish(sensorTopic(1, "get"), 1, false, `{"event_id":"`+ev+`"}`).Wait()
	out := r.d.awaitStatus(t, r.bin, r.dataDir, false, "read and 0 write failures since start")
	t.Log(out)
	_, metrics := adminGet(t, r.dataDir, "/metrics")
	if strings.Contains(metrics, "\nedgehost_store_errors_total{op=\"read\"} 0\n") || !strings.Contains(metrics, "edgehost_store_errors_total{op=\"read\"}") {
		t.Errorf("metrics do not count the read failure:\n%s", metrics)
	}
	r.disconnect()
	r.d.cmd.Process.Kill()
	<-r.d.exited
}

// TestKill9KeepsAcknowledgedUpdates: twin updates stream from an MQTT
// client into the real daemon, which is killed with SIGKILL mid-stream;
// after each restart every update that was acknowledged is there (or a
// later one of the same device, whose ack the kill cut off). Five cycles.
func TestKill9KeepsAcknowledgedUpdates(t *testing.T) {
	const cycles = 5
	r := newStoreRig(t, 8)
	// last[i] is the value of sensor i's newest acknowledged update;
	// values grow, so the state after a restart must be at least that.
	last := make([]int, r.devices)
	value := 0
	for cycle := range cycles + 1 {
		r.start()
		for i := range r.devices {
			got := r.actual(i)
			if last[i] == 0 {
				continue
			}
			n, err := strconv.Atoi(got)
			if err != nil || n < last[i] || n > value {
				t.Fatalf("cycle %d: sensor-%d actual temp %q after kill -9, want the acknowledged %d or a later update (<= %d)",
					cycle, i, got, last[i], value)
			}
		}
		if cycle == cycles {
			r.disconnect()
			r.d.stop(t)
			break
		}
		// Stream updates; kill the daemon once enough are acknowledged,
		// while more are still in flight.
		type sent struct {
			dev, value int
		}
		var inflight []sent
		ackedNow, sentNow := 0, 0
		stopAt := 100
		deadline := time.Now().Add(60 * time.Second)
		for ackedNow < stopAt {
			if time.Now().After(deadline) {
				t.Fatalf("cycle %d: %d of %d updates acknowledged in 60s\nlogs:\n%s", cycle+1, ackedNow, sentNow, r.d.logs)
			}
			value++
			dev := value % r.devices
			ev := "v" + strconv.Itoa(value)
			r.update(dev, ev, value) // not waited for: QoS 1 in order
			inflight = append(inflight, sent{dev, value})
			sentNow++
			time.Sleep(time.Millisecond)
			// Collect the acks that have arrived.
			kept := inflight[:0]
			for _, s := range inflight {
				res, ok := r.result("v" + strconv.Itoa(s.value))
				switch {
				case ok && acked(res):
					ackedNow++
					last[s.dev] = max(last[s.dev], s.value)
				case ok && strings.Contains(res, `"code":404`):
					// Sent before the twin had its devices: not applied.
				case !ok:
					kept = append(kept, s)
				default:
					t.Fatalf("update v%d refused: %s", s.value, res)
				}
			}
			inflight = kept
		}
		if err := r.d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-r.d.exited
		// An ack that slipped in just before the kill still counts.
		unacked := 0
		for _, s := range inflight {
			if res, ok := r.result("v" + strconv.Itoa(s.value)); ok && acked(res) {
				ackedNow++
				last[s.dev] = max(last[s.dev], s.value)
			} else {
				unacked++
			}
		}
		r.disconnect()
		t.Logf("cycle %d: %d updates sent, %d acknowledged before kill -9, %d unanswered", cycle+1, sentNow, ackedNow, unacked)
	}
}
