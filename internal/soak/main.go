// Command soak runs the daemon under mixed load for a long time and prints,
// every interval, what an operator would watch for leaks and silent drops:
// resident memory, goroutines, open files, bus queue depths and the load's
// own counts. scripts/soak.sh runs it; it is not part of the test suite.
//
// The load: MQTT clients sending KubeEdge twin updates to the built-in
// device twin and waiting for each result; admin-API requests to an
// installed echo plugin; and an upgrade of that plugin every few minutes.
// At the end it stops the daemon and reports every update and call that
// got no answer.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/plugins"
)

// options are the command's flags.
type options struct {
	bin, echo       string
	duration, every time.Duration
	upgradeEvery    time.Duration
	clients         int
	devices         int
	updateRate      int
	callRate        int
	cloudEvery      time.Duration
	cloudDown       time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "build/bin/edgehost", "the edgehost binary")
	flag.StringVar(&o.echo, "echo", "build/plugins/echo.wasm", "the echo example's module, installed and upgraded")
	flag.DurationVar(&o.duration, "duration", time.Hour, "how long to run the load")
	flag.DurationVar(&o.every, "every", time.Minute, "how often to print a row")
	flag.DurationVar(&o.upgradeEvery, "upgrade-every", 3*time.Minute, "how often to upgrade the echo plugin")
	flag.IntVar(&o.clients, "clients", 8, "MQTT clients sending twin updates")
	flag.IntVar(&o.devices, "devices", 64, "devices, shared out among the clients")
	flag.IntVar(&o.updateRate, "update-rate", 200, "twin updates per second, all clients together")
	flag.IntVar(&o.callRate, "call-rate", 50, "echo plugin calls per second")
	flag.DurationVar(&o.cloudEvery, "cloud-every", 5*time.Minute, "how often to kill the reference cloud the daemon is joined to (0: no cloud)")
	flag.DurationVar(&o.cloudDown, "cloud-down", 20*time.Second, "how long the cloud stays down each time")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// counts are the load's own tallies.
type counts struct {
	updates, results, resultErrors, publishFailed atomic.Uint64
	calls, answers, callErrors                    atomic.Uint64
	upgrades, upgradeErrors                       atomic.Uint64
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "soak")
	if err != nil {
		return err
	}
	keep := false // a run with losses keeps its data dir and log
	defer func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}()
	broker, err := freeAddr()
	if err != nil {
		return err
	}
	devices := filepath.Join(dir, "devices")
	if err := writeDevices(devices, o.devices); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "edgehost.yaml")
	conf := fmt.Sprintf("log: {level: info}\nmodules:\n  eventbus:\n    embedded: {address: %q}\n"+
		"  plugins:\n    trust:\n      policy: {local: allow-unsigned}\n", broker)
	var hub *cloud
	if o.cloudEvery > 0 {
		var token string
		if hub, token, err = startCloud(o.bin, dir); err != nil {
			return err
		}
		defer hub.stop()
		conf += hub.config(token)
	}
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	daemon := exec.Command(o.bin, "run", "--config", cfg, "--data-dir", dir, "--devices-dir", devices)
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		return fmt.Errorf("start %s: %w", o.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	defer func() {
		if daemon.ProcessState == nil {
			daemon.Process.Kill()
			<-exited
		}
	}()
	sock := filepath.Join(dir, "admin.sock")
	client, raw := api.NewClient(sock, ""), unixClient(sock)
	if err := awaitReady(client, exited); err != nil {
		return err
	}
	module, err := os.ReadFile(o.echo)
	if err != nil {
		return err
	}
	var c counts
	version := 0
	upgrade := func() error {
		version++
		man := fmt.Sprintf(`{"name":"echo","version":"1.0.%d","kind":"handler","abi":"1","description":"soak","author":"soak","capabilities":{}}`, version)
		pkg, err := plugins.Pack(module, []byte(man))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err = client.InstallPlugin(ctx, pkg, version > 1)
		return err
	}
	if err := upgrade(); err != nil {
		return fmt.Errorf("install echo: %w", err)
	}

	ctx, stop := context.WithTimeout(context.Background(), o.duration)
	defer stop()
	var load sync.WaitGroup
	perClient := max(o.devices/o.clients, 1)
	for i := range o.clients {
		load.Go(func() { twinClient(ctx, broker, i, perClient, o.updateRate/o.clients, &c) })
	}
	load.Go(func() { echoCalls(ctx, client, o.callRate, &c) })
	if hub != nil {
		load.Go(func() { hub.outages(ctx, o.cloudEvery, o.cloudDown) })
	}
	load.Go(func() {
		t := time.NewTicker(o.upgradeEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.upgrades.Add(1)
				if err := upgrade(); err != nil {
					c.upgradeErrors.Add(1)
					fmt.Fprintln(os.Stderr, "soak: upgrade:", err)
				}
			}
		}
	})

	fmt.Println("| minute | RSS MB | goroutines | open files | bus queued | outbox | twin updates | results | result errors | echo calls | answers | call errors | upgrades | cloud kills |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	start := time.Now()
	row := func() {
		s := sample(daemon.Process.Pid, client, raw)
		var kills uint64
		if hub != nil {
			kills = hub.kills.Load()
		}
		fmt.Printf("| %.0f | %.1f | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n",
			time.Since(start).Minutes(), float64(s.rss)/(1<<20), s.goroutines, s.fds, s.queued, s.outbox,
			c.updates.Load(), c.results.Load(), c.resultErrors.Load(), c.calls.Load(), c.answers.Load(), c.callErrors.Load(), c.upgrades.Load(), kills)
	}
	tick := time.NewTicker(o.every)
	row()
	for done := false; !done; {
		select {
		case <-tick.C:
			row()
		case <-ctx.Done():
			done = true
		case err := <-exited:
			return fmt.Errorf("the daemon exited under load: %v (log in %s)", err, logf.Name())
		}
	}
	tick.Stop()
	load.Wait()
	row()
	if hub != nil {
		drainOutbox(raw, time.Minute)
	}
	losses := lossCounters(raw)
	daemon.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("daemon exit: %w", err)
		}
	case <-time.After(30 * time.Second):
		return fmt.Errorf("daemon still running 30s after SIGTERM")
	}
	lost := int64(c.updates.Load()) - int64(c.results.Load()) - int64(c.publishFailed.Load())
	unanswered := int64(c.calls.Load()) - int64(c.answers.Load()) - int64(c.callErrors.Load())
	fmt.Printf("\nupdates without a result: %d; publishes refused: %d; result errors: %d; calls without an answer: %d; call errors: %d; upgrade errors: %d\n",
		lost, c.publishFailed.Load(), c.resultErrors.Load(), unanswered, c.callErrors.Load(), c.upgradeErrors.Load())
	fmt.Println("\nthe daemon's own loss counters that are not zero:")
	for _, l := range losses {
		fmt.Println("   ", l)
	}
	if lost != 0 || unanswered != 0 || c.upgradeErrors.Load() != 0 {
		keep = true
		return fmt.Errorf("updates or calls without an answer; the daemon's data dir and log are kept in %s", dir)
	}
	return nil
}

// lossWords pick the daemon's metrics that count something lost, refused
// or failed.
var lossWords = []string{"dropped", "failed", "failure", "refused", "faults", "rejected", "unrouted", "expired",
	"abandoned", "no_waiter", "errors", "timeout", "loops", "denied"}

// lossCounters returns the daemon's /metrics samples whose name says they
// count a loss and whose value is not zero, so the soak's own counts can
// be explained by the daemon's.
func lossCounters(raw *http.Client) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := metrics(ctx, raw)
	if err != nil {
		return []string{"(metrics: " + err.Error() + ")"}
	}
	var out []string
	for _, line := range strings.Split(m, "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") || value == "0" || !strings.HasPrefix(name, "edgehost_") {
			continue
		}
		for _, w := range lossWords {
			if strings.Contains(name, w) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}

// writeDevices writes n KubeEdge v1beta1 devices with one property each.
func writeDevices(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: soak-%d, namespace: default}\n"+
			"spec:\n  properties:\n    - name: temp\n      desired: {value: \"20\", metadata: {type: int}}\n", i)
	}
	return os.WriteFile(filepath.Join(dir, "devices.yaml"), []byte(b.String()), 0o644)
}

// twinClient sends twin updates for its devices at rate per second, one
// at a time per device, and counts each result.
func twinClient(ctx context.Context, broker string, id, devices, rate int, c *counts) {
	results := make(chan string, 1024)
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(fmt.Sprintf("soak-%d", id)).
		SetAutoReconnect(true).SetOrderMatters(false)
	mc := mqtt.NewClient(opts)
	if tok := mc.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		fmt.Fprintf(os.Stderr, "soak: client %d: connect: %v\n", id, tok.Error())
		return
	}
	defer mc.Disconnect(250)
	topic := func(dev int) string {
		return fmt.Sprintf("$hw/events/device/default/soak-%d/twin/update", id*devices+dev)
	}
	for dev := range devices {
		mc.Subscribe(topic(dev)+"/result", 1, func(_ mqtt.Client, m mqtt.Message) { results <- string(m.Payload()) }).Wait()
	}
	interval := time.Second / time.Duration(max(rate, 1))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	pending := map[string]bool{}
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			// Let the last results come in before counting what is missing.
			drain(results, pending, c, 10*time.Second)
			return
		case res := <-results:
			settle(res, pending, c)
		case <-tick.C:
			ev := fmt.Sprintf("c%d-%d", id, n)
			payload := fmt.Sprintf(`{"event_id":%q,"timestamp":%d,"twin":{"temp":{"actual":{"value":"%d"}}}}`, ev, time.Now().UnixMilli(), n%100)
			c.updates.Add(1)
			pending[ev] = true
			if tok := mc.Publish(topic(n%devices), 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				delete(pending, ev)
				c.publishFailed.Add(1)
			}
		}
	}
}

// settle counts one result message.
func settle(res string, pending map[string]bool, c *counts) {
	var r struct {
		EventID string `json:"event_id"`
		Code    int    `json:"code"`
	}
	if json.Unmarshal([]byte(res), &r) != nil || !pending[r.EventID] {
		return
	}
	delete(pending, r.EventID)
	c.results.Add(1)
	if r.Code != 0 {
		c.resultErrors.Add(1)
	}
}

// drain settles results until none is pending or wait has passed.
func drain(results chan string, pending map[string]bool, c *counts, wait time.Duration) {
	deadline := time.After(wait)
	for len(pending) > 0 {
		select {
		case res := <-results:
			settle(res, pending, c)
		case <-deadline:
			return
		}
	}
}

// echoCalls calls the echo plugin through the admin API rate times a
// second until ctx ends.
func echoCalls(ctx context.Context, client *api.Client, rate int, c *counts) {
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.calls.Add(1)
		callCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		resp, err := client.Inject(callCtx, api.InjectRequest{To: "echo", Wait: true,
			Message: api.MessageJSON{Route: api.RouteJSON{Operation: "query"}, Content: json.RawMessage(`"soak"`)}})
		cancel()
		switch {
		case err != nil:
			c.callErrors.Add(1)
			fmt.Fprintln(os.Stderr, "soak: echo call:", err)
		case resp.Reply == nil || resp.Reply.Route.Operation != "response":
			c.callErrors.Add(1)
			fmt.Fprintf(os.Stderr, "soak: echo call answered %+v\n", resp.Reply)
		default:
			c.answers.Add(1)
		}
	}
}

// stats is one sample of the daemon process.
type stats struct {
	rss             int64
	goroutines, fds int
	queued          int
	outbox          int // upstream messages waiting in the cloud link's outbox
}

// sample reads the daemon's resident memory and open files from /proc, its
// goroutines from /metrics and its bus queue depths from /v1/status.
func sample(pid int, client *api.Client, raw *http.Client) stats {
	var s stats
	if f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				s.rss = kb << 10
			}
		}
		f.Close()
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = len(fds)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st, err := client.Status(ctx); err == nil {
		for _, b := range st.Bus {
			s.queued += b.QueueDepth
		}
	}
	if m, err := metrics(ctx, raw); err == nil {
		for _, line := range strings.Split(m, "\n") {
			if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
				s.goroutines, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if v, ok := strings.CutPrefix(line, "edgehost_hub_outbox_depth "); ok {
				f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				s.outbox = int(f)
			}
		}
	}
	return s
}

// unixClient is an HTTP client for the admin API's unix socket. The soak
// keeps one, so it does not itself leave a connection per sample.
func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

// metrics fetches the admin API's /metrics with c.
func metrics(ctx context.Context, c *http.Client) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://edgehost/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// awaitReady polls /readyz until the daemon is ready, exits, or a minute
// passes.
func awaitReady(client *api.Client, exited <-chan error) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("the daemon exited at start: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := client.Status(ctx)
		cancel()
		if err == nil && st.Ready {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the daemon was not ready within a minute")
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
