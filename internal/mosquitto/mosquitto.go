// Package mosquitto runs a real mosquitto broker for tests, started by the
// test and stopped by its PID.
package mosquitto

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startWait bounds how long Start waits for the broker to listen.
const startWait = 10 * time.Second

// Path finds the mosquitto binary. It skips the test when it is missing,
// except under CI=true, where a missing broker is a failure.
func Path(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("mosquitto is not installed and CI=true: run scripts/deps.sh")
	}
	tb.Skip("mosquitto is not installed (scripts/deps.sh installs it); skipping the external-broker test")
	return ""
}

// Broker is a real mosquitto run as a background process.
type Broker struct {
	// Addr is the loopback host:port it listens on.
	Addr string
	tb   testing.TB
	bin  string
	conf string
	cmd  *exec.Cmd
	done chan struct{}
}

// New writes a config for a broker on addr (extra lines appended) without
// starting it; Cleanup kills it if it runs.
func New(tb testing.TB, addr string, extra ...string) *Broker {
	tb.Helper()
	b := &Broker{tb: tb, bin: Path(tb), Addr: addr}
	b.conf = filepath.Join(tb.TempDir(), "mosquitto.conf")
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatalf("mosquitto address %q: %v", addr, err)
	}
	lines := append([]string{
		"listener " + port + " 127.0.0.1",
		"allow_anonymous true",
		"persistence false",
		"user root", // keep reading the temp files after a reload
	}, extra...)
	if err := os.WriteFile(b.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Kill)
	return b
}

// Start launches the process and waits until the port accepts.
func (b *Broker) Start() {
	b.tb.Helper()
	b.cmd = exec.Command(b.bin, "-c", b.conf)
	var out strings.Builder
	b.cmd.Stdout, b.cmd.Stderr = &out, &out
	if err := b.cmd.Start(); err != nil {
		b.tb.Fatalf("start mosquitto: %v", err)
	}
	b.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(b.cmd, b.done)
	deadline := time.Now().Add(startWait)
	for {
		c, err := net.Dial("tcp", b.Addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-b.done:
			b.tb.Fatalf("mosquitto exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			b.tb.Fatalf("mosquitto did not listen on %s: %s", b.Addr, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill stops the process by its PID (SIGKILL, as a crash) and waits.
func (b *Broker) Kill() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	syscall.Kill(b.cmd.Process.Pid, syscall.SIGKILL)
	<-b.done
	b.cmd = nil
}

// Reload asks mosquitto to reread its config (SIGHUP).
func (b *Broker) Reload() {
	if err := syscall.Kill(b.cmd.Process.Pid, syscall.SIGHUP); err != nil {
		b.tb.Fatal(err)
	}
}

// PID is the running broker's process id.
func (b *Broker) PID() int { return b.cmd.Process.Pid }
