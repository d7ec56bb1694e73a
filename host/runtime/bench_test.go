package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/meta"
	"github.com/edgehost/edgehost/internal/containerd"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// benchPods is how many pods one iteration inserts.
const benchPods = 20

// BenchmarkPodInsertToRunning inserts one pod, then benchPods pods at
// once, as the cloud does (edgecontroller insert into the real
// metamanager over the real bus and store) and measures, per pod, the
// insert to its ACK and to its Running status patch, on a real
// containerd; then the same CRI calls made
// directly (RunPodSandbox, CreateContainer, StartContainer), which is the
// floor; the process's RSS with the pods running; and the CPU the
// process spends per second once they run (the sync every second). Run with
// -benchtime=1x: every iteration starts 20 pods.
func BenchmarkPodInsertToRunning(b *testing.B) {
	r := newRig(b)
	r.run(New(r.bus, Config{Endpoint: r.ctrd.Endpoint, PodDir: r.dir, Store: r.meta}, nil))
	ctx := context.Background()
	bs, cloud := r.bus, r.cloud
	// insert sends pods prefix0..prefix{n-1} at once and returns, per
	// pod, the time to its ACK and to its Running status patch.
	insert := func(prefix string, n int) (acks, runs []time.Duration) {
		sent := map[string]time.Time{}
		for i := range n {
			name := fmt.Sprintf("%s%d", prefix, i)
			pod := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":"default","uid":"uid-%s"},`+
				`"spec":{"hostNetwork":true,"containers":[{"name":"c","image":%q,"command":["sleep","3600"]}]}}`, name, name, containerd.BusyboxImage)
			msg := abi.Message{Route: abi.Route{Source: "edgecontroller", Group: "resource", Operation: abi.OpInsert, Resource: "default/pod/" + name}, Content: []byte(pod)}
			sent[name] = time.Now()
			if err := bs.SendToGroup(ctx, meta.Group, msg); err != nil {
				b.Fatal(err)
			}
		}
		running := map[string]bool{}
		deadline, dcancel := context.WithTimeout(ctx, 2*time.Minute)
		defer dcancel()
		for len(running) < n {
			msg, err := cloud.Receive(deadline)
			if err != nil {
				b.Fatalf("%d of %d pods running: %v", len(running), n, err)
			}
			name := msg.Route.Resource[strings.LastIndex(msg.Route.Resource, "/")+1:]
			switch {
			case msg.Route.Operation == abi.OpResponse:
				acks = append(acks, time.Since(sent[name]))
			case msg.Route.Operation == abi.OpPatch && !running[name]:
				var p struct{ Status struct{ Phase string } }
				json.Unmarshal(msg.Content, &p)
				if p.Status.Phase == "Running" {
					running[name] = true
					runs = append(runs, time.Since(sent[name]))
				}
			}
		}
		return acks, runs
	}
	var acks, runs, alone []time.Duration
	for iter := range b.N {
		_, r := insert(fmt.Sprintf("solo%d-", iter), 1)
		alone = append(alone, r...)
		a, r := insert(fmt.Sprintf("p%d-", iter), benchPods)
		acks, runs = append(acks, a...), append(runs, r...)
	}
	b.StopTimer()
	rss := vmRSS(b)
	// The steady cost of syncing the running pods every second.
	const idle = 3 * time.Second
	before := cpuTime(b)
	time.Sleep(idle)
	steady := cpuTime(b) - before
	direct := directCRI(b, r.ctrd)
	b.ReportMetric(p50(acks).Seconds()*1e3, "ack-p50-ms")
	b.ReportMetric(p50(runs).Seconds()*1e3, "running-p50-ms")
	b.ReportMetric(p50(alone).Seconds()*1e3, "alone-running-ms")
	b.ReportMetric(p50(direct).Seconds()*1e3, "cri-direct-p50-ms")
	b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
	b.ReportMetric(float64(steady.Milliseconds())/idle.Seconds(), "steady-cpu-ms/s")
}

// directCRI starts benchPods pods with the three CRI calls alone,
// sequentially, and returns each one's time.
func directCRI(b *testing.B, ctrd *containerd.Containerd) []time.Duration {
	cri := ctrd.CRI()
	ctx := context.Background()
	var out []time.Duration
	for i := range benchPods {
		start := time.Now()
		sc := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "d" + strconv.Itoa(i), Namespace: "default", Uid: "direct-" + strconv.Itoa(i)},
			LogDirectory: b.TempDir(), Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}}}
		sb, err := cri.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sc})
		if err != nil {
			b.Fatal(err)
		}
		c, err := cri.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: sc,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: containerd.BusyboxImage},
				Command: []string{"sleep", "3600"}, LogPath: "c.log"}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cri.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

func p50(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// cpuTime is the CPU time this process used so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vmRSS is this process's resident set, from /proc.
func vmRSS(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
