package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// cloud is an `edgehost hub serve` the daemon is joined to, killed with
// SIGKILL and started again on the same ports and CA every so often, so
// the cloud link's outbox and reconnects are part of the load.
type cloud struct {
	bin, dir   string
	ws, certs  string
	cmd        *exec.Cmd
	exited     chan error
	log        *os.File
	kills      atomic.Uint64
	startFails atomic.Uint64
}

// startCloud starts the reference cloud under dir and returns it with a
// bootstrap token for the daemon.
func startCloud(bin, dir string) (*cloud, string, error) {
	ws, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	certs, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	log, err := os.Create(filepath.Join(dir, "hub.log"))
	if err != nil {
		return nil, "", err
	}
	c := &cloud{bin: bin, dir: filepath.Join(dir, "hub"), ws: ws, certs: certs, log: log}
	if err := c.start(); err != nil {
		return nil, "", err
	}
	out, err := exec.Command(bin, "hub", "token", "--data-dir", c.dir).Output()
	if err != nil {
		c.stop()
		return nil, "", fmt.Errorf("hub token: %w", err)
	}
	return c, strings.TrimSpace(string(out)), nil
}

// config is the daemon's modules.hub section for this cloud. The upstream
// rate limit is raised above the twin's update rate: at edgecore's default
// (30 messages/s) every edge_updated of 200 updates/s would queue in the
// outbox for ever, which is a sizing question, not what the soak watches.
func (c *cloud) config(token string) string {
	return fmt.Sprintf("  hub:\n    enable: true\n    server: %s\n    httpServer: https://%s\n    nodeName: soak-node\n"+
		"    token: %s\n    heartbeat: 5s\n    reconnectMax: 2s\n    messageQPS: 2000\n    messageBurst: 4000\n", c.ws, c.certs, token)
}

func (c *cloud) start() error {
	c.cmd = exec.Command(c.bin, "hub", "serve", "--data-dir", c.dir, "--listen", c.ws, "--https", c.certs, "--host", "127.0.0.1")
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("hub serve: %w", err)
	}
	c.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan error) { exited <- cmd.Wait() }(c.cmd, c.exited)
	return nil
}

// stop kills the cloud and waits for it.
func (c *cloud) stop() {
	if c.cmd != nil && c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// outages kills the cloud every interval and starts it again after down,
// until ctx ends.
func (c *cloud) outages(ctx context.Context, every, down time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.stop()
		c.kills.Add(1)
		select {
		case <-ctx.Done():
		case <-time.After(down):
		}
		if err := c.start(); err != nil {
			c.startFails.Add(1)
			fmt.Fprintln(os.Stderr, "soak:", err)
		}
	}
}

// drainOutbox waits until the cloud link's outbox is empty or wait has
// passed, then prints what went through it.
func drainOutbox(raw *http.Client, wait time.Duration) {
	deadline := time.Now().Add(wait)
	var m string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var err error
		m, err = metrics(ctx, raw)
		cancel()
		if err == nil && metricValue(m, "edgehost_hub_outbox_depth") == "0" || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	fmt.Printf("\ncloud link: outbox appended %s, sent %s, left %s; connects %s, disconnects %s\n",
		metricValue(m, "edgehost_hub_outbox_appended_total"), metricValue(m, "edgehost_hub_outbox_sent_total"),
		metricValue(m, "edgehost_hub_outbox_depth"), metricValue(m, "edgehost_hub_connects_total"),
		metricValue(m, "edgehost_hub_disconnects_total"))
}

// metricValue is the value of the unlabelled sample name in the
// exposition m, or "?".
func metricValue(m, name string) string {
	for _, line := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
