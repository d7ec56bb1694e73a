package containerd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Registry is a real image registry for tests: Debian's docker-registry
// (the CNCF distribution registry) on loopback, plain HTTP (containerd
// pulls from 127.0.0.1 over HTTP), its storage under a temp dir, with
// htpasswd basic auth for one user. Stopped by its PID at cleanup.
type Registry struct {
	// Addr is host:port, the registry part of an image name.
	Addr string
	cmd  *exec.Cmd
	out  bytes.Buffer
}

// registryConfig is docker-registry's config: filesystem storage,
// htpasswd auth, loopback only.
const registryConfig = `version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
auth:
  htpasswd:
    realm: edgehost-test
    path: %s
`

// StartRegistry starts a registry that lets user in with password, or
// skips the test, loudly, when docker-registry is not installed (under
// CI=true it fails: scripts/deps.sh installs it).
func StartRegistry(tb testing.TB, user, password string) *Registry {
	tb.Helper()
	if _, err := exec.LookPath("docker-registry"); err != nil {
		msg := "CANNOT RUN A REGISTRY: docker-registry (Debian package docker-registry) is not installed; run scripts/deps.sh"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip("SKIPPING the registry test. " + msg)
	}
	dir := tb.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(conf, fmt.Appendf(nil, registryConfig, filepath.Join(dir, "data"), addr, htpasswd), 0o600); err != nil {
		tb.Fatal(err)
	}
	r := &Registry{Addr: addr}
	r.cmd = exec.Command("docker-registry", "serve", conf)
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		tb.Fatalf("start docker-registry: %v", err)
	}
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	for deadline := time.Now().Add(startWait); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return r
		}
		select {
		case <-done:
			tb.Fatalf("docker-registry exited: %s", r.out.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("docker-registry did not listen on %s within %s: %s", addr, startWait, r.out.String())
		}
	}
}

// Log is what the registry printed so far.
func (r *Registry) Log() string { return r.out.String() }

// Push pushes image, which c holds, to the registry as name (a path and
// tag under r.Addr) with user's credentials, then removes that name from
// c, so a pull of it has to reach the registry. It returns the full
// image name.
func (r *Registry) Push(tb testing.TB, c *Containerd, image, name, user, password string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	full := r.Addr + "/" + name
	for _, args := range [][]string{{"images", "tag", "--force", image, full},
		{"images", "push", "--plain-http", "--user", user + ":" + password, full},
		{"images", "rm", full}} {
		if _, err := c.Ctr(ctx, args...); err != nil {
			tb.Fatalf("%v\nregistry log:\n%s", err, r.Log())
		}
	}
	return full
}
