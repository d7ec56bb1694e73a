package main

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHubOutboxUnderFaults: 10k twin updates over 10 devices reach the
// hub while it is killed and restarted twice during the publishing and
// the edge is kill -9'd once with the hub down and the outbox full of
// unsent updates. Every update the twin handed to the cloud link arrives
// at least once, in order per device, with no gap; duplicates are
// counted and reported.
func TestHubOutboxUnderFaults(t *testing.T) {
	const devices, perDevice = 10, 1000
	const total = devices * perDevice
	r := newHubRigWith(t, rigOptions{devices: devices, hub: "    messageQPS: 5000\n    messageBurst: 5000\n"})
	r.start()
	r.awaitFrames(route("websocket", "resource", "keepalive", "node"), 1)

	publish := func(seq int) {
		dev, value := seq%devices, seq/devices
		topic := fmt.Sprintf("$hw/events/device/default/cloud-dev-%d/twin/update", dev)
		payload := fmt.Sprintf(`{"event_id":"e-%d","timestamp":1,"twin":{"temp":{"actual":{"value":"%d"},"metadata":{"type":"string"}}}}`, seq, value)
		if tok := r.client.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", seq, tok.Error())
		}
	}
	restartHub := func() {
		r.hub.kill()
		time.Sleep(time.Second)
		r.hub = startHub(t, r.bin, r.hub.dir, r.hub.ws, r.hub.certs)
	}
	// Two hub restarts while the updates flow.
	for seq := range total * 7 / 10 {
		publish(seq)
		if seq == total/5 || seq == total/2 {
			restartHub()
		}
	}
	// The hub down, the rest published, every update handed to the link
	// (and so in the outbox), then kill -9.
	r.hub.kill()
	for seq := total * 7 / 10; seq < total; seq++ {
		publish(seq)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for metricValue(t, r.dataDir, "edgehost_twin_upstream_total") < total {
		if time.Now().After(deadline) {
			t.Fatalf("the twin handed %d of %d updates to the link in 2 minutes\nlogs:\n%s",
				metricValue(t, r.dataDir, "edgehost_twin_upstream_total"), total, r.d.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if dropped := metricValue(t, r.dataDir, "edgehost_twin_upstream_dropped_total"); dropped != 0 {
		t.Fatalf("the twin dropped %d upstream messages", dropped)
	}
	// The intake commits a batch within milliseconds of the hand-over;
	// wait until the depth holds still.
	for last := -2; ; {
		time.Sleep(500 * time.Millisecond)
		depth := outboxDepth(t, r.dataDir)
		if depth == last {
			t.Logf("outbox depth at the kill -9: %d", depth)
			break
		}
		last = depth
	}
	r.client.Disconnect(0)
	r.client = nil
	r.d.cmd.Process.Signal(syscall.SIGKILL)
	<-r.d.exited

	r.hub = startHub(t, r.bin, r.hub.dir, r.hub.ws, r.hub.certs)
	r.start()

	// Wait for the last value of every device, then check every device's
	// sequence across the hub's whole record.
	last := fmt.Sprint(perDevice - 1)
	deadline = time.Now().Add(3 * time.Minute)
	for {
		seqs := receivedValues(t, r)
		done := 0
		for _, vs := range seqs {
			if len(vs) > 0 && vs[len(vs)-1] == last {
				done++
			}
		}
		if done == devices {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes %d of %d devices' last updates arrived\ndaemon logs:\n%s", done, devices, r.d.logs)
		}
		time.Sleep(time.Second)
	}
	duplicates := 0
	for dev, vs := range receivedValues(t, r) {
		next := 0
		for _, v := range vs {
			n, err := strconv.Atoi(v)
			switch {
			case err != nil:
				t.Fatalf("%s: value %q", dev, v)
			case n == next:
				next++
			case n < next:
				duplicates++ // sent again after a lost link or the kill
			default:
				t.Fatalf("%s: value %d arrived before %d: an update was lost or reordered", dev, n, next)
			}
		}
		if next != perDevice {
			t.Fatalf("%s: values up to %d of %d arrived", dev, next, perDevice)
		}
	}
	t.Logf("%d updates over %d devices arrived in order with no gap; %d duplicates (%.1f%%)",
		total, devices, duplicates, 100*float64(duplicates)/total)
	r.d.stop(t)
}

// receivedValues are the values of the edge_updated frames the hub
// recorded, per device, in arrival order.
func receivedValues(t *testing.T, r *hubRig) map[string][]string {
	out := map[string][]string{}
	for _, f := range r.hub.frames(t) {
		if f.Dir != "edge->cloud" || !strings.Contains(string(f.Frame), "edge_updated") {
			continue
		}
		e := f.envelope(t)
		res := e.Route["resource"]
		if e.Route["operation"] != "update" || !strings.HasSuffix(res, "/twin/edge_updated") {
			continue
		}
		twin, _ := e.Content.(map[string]any)["twin"].(map[string]any)
		temp, _ := twin["temp"].(map[string]any)
		actual, _ := temp["actual"].(map[string]any)
		if v, ok := actual["value"].(string); ok {
			out[res] = append(out[res], v)
		}
	}
	return out
}
