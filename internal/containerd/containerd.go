// Package containerd runs a real containerd for tests: its own root, state,
// socket and CNI network under a temp dir, the CRI plugin configured as
// these machines need (docs/runtime.md), started by the test and stopped by
// its PID. Images are built locally as OCI layout tars (image.go) and
// imported with ctr: no registry is reached.
package containerd

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Images the test containerd has once ImportTestImages ran.
const (
	// PauseImage is the sandbox image of the config: a static pause.
	PauseImage = "localhost/pause:local"
	// BusyboxImage holds busybox-static and its applet links in /bin.
	BusyboxImage = "localhost/busybox:local"
)

// startWait bounds how long Start waits for the socket to answer.
const startWait = 30 * time.Second

// CNIBinDir is where Debian's containernetworking-plugins installs.
const CNIBinDir = "/usr/lib/cni"

// tools are the binaries a test containerd needs, each from its Debian
// package (scripts/deps.sh installs them).
var tools = map[string]string{
	"containerd":              "containerd",
	"containerd-shim-runc-v2": "containerd",
	"ctr":                     "containerd",
	"runc":                    "runc",
	"busybox":                 "busybox-static",
}

// Require checks that this machine can run containers: the tools are
// installed and the test runs as root. Where it cannot, the test is
// skipped with the reason, loudly; under CI=true missing tools are a
// failure (CI runs scripts/deps.sh first), a machine without root still a
// skip, since nothing installed can give it one.
func Require(tb testing.TB) {
	tb.Helper()
	var missing []string
	for bin, pkg := range tools {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", bin, pkg))
		}
	}
	if _, err := os.Stat(filepath.Join(CNIBinDir, "bridge")); err != nil {
		missing = append(missing, CNIBinDir+"/bridge (Debian package containernetworking-plugins)")
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("CANNOT RUN CONTAINERS: missing %s; run scripts/deps.sh", strings.Join(missing, ", "))
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip("SKIPPING the real-containerd test. " + msg)
	}
	if os.Geteuid() != 0 {
		tb.Skip("SKIPPING the real-containerd test. CANNOT RUN CONTAINERS: containerd and runc need root (mounts, namespaces, cgroups); this test runs as uid " + strconv.Itoa(os.Geteuid()))
	}
}

// Containerd is a real containerd run as a background process.
type Containerd struct {
	// Endpoint is the CRI endpoint, unix://<socket>.
	Endpoint string
	// Socket is the gRPC socket's path.
	Socket string
	// Dir holds the config, root, state and CNI files.
	Dir string
	// Bridge is the CNI bridge's name, unique to this containerd.
	Bridge string

	tb   testing.TB
	conf string
	cmd  *exec.Cmd
	done chan struct{}
	out  *bytes.Buffer
}

// configTemplate is the containerd config that runs real pods here
// (docs/runtime.md): restrict_oom_score_adj because CAP_SYS_RESOURCE is not
// in the bounding set of these machines.
var configTemplate = template.Must(template.New("config").Parse(`version = 2
root = "{{.Dir}}/root"
state = "{{.Dir}}/state"
[grpc]
  address = "{{.Dir}}/containerd.sock"
[ttrpc]
  address = "{{.Dir}}/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.Pause}}"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{{.CNIBin}}"
    conf_dir = "{{.Dir}}/cni"
[plugins."io.containerd.internal.v1.opt"]
  path = "{{.Dir}}/opt"
`))

// cniTemplate is a bridge network on a private /24 with its IPAM state
// under Dir, no gateway and no masquerade: pods reach each other and the
// host, nothing else.
var cniTemplate = template.Must(template.New("cni").Parse(`{
  "cniVersion": "0.4.0",
  "name": "{{.Bridge}}",
  "plugins": [
    {"type": "bridge", "bridge": "{{.Bridge}}", "isGateway": false, "ipMasq": false,
     "ipam": {"type": "host-local", "dataDir": "{{.Dir}}/cni-ipam",
              "ranges": [[{"subnet": "10.{{.Net}}.0/24"}]]}},
    {"type": "loopback"}
  ]
}
`))

// Start writes a config under a new short temp dir (a unix socket path
// is limited to 108 bytes), starts containerd and waits until its socket
// accepts. Cleanup removes every pod, stops containerd and removes what it
// left.
func Start(tb testing.TB) *Containerd {
	tb.Helper()
	Require(tb)
	dir, err := os.MkdirTemp("", "ctrd")
	if err != nil {
		tb.Fatal(err)
	}
	c := &Containerd{tb: tb, Dir: dir, Socket: filepath.Join(dir, "containerd.sock"),
		Bridge: fmt.Sprintf("ehbr%d", rand.IntN(100000))}
	c.Endpoint = "unix://" + c.Socket
	c.conf = filepath.Join(dir, "config.toml")
	vars := map[string]string{"Dir": dir, "Pause": PauseImage, "CNIBin": CNIBinDir, "Bridge": c.Bridge,
		"Net": fmt.Sprintf("%d.%d", 100+rand.IntN(100), rand.IntN(250))}
	for _, f := range []struct {
		path string
		t    *template.Template
	}{{c.conf, configTemplate}, {filepath.Join(dir, "cni", "10-edgehost-test.conflist"), cniTemplate}} {
		var b bytes.Buffer
		if err := f.t.Execute(&b, vars); err != nil {
			tb.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(f.path, b.Bytes(), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(c.cleanup)
	c.Restart()
	return c
}

// Restart starts containerd, again after Kill, and waits until its CRI
// plugin answers. Containers that were running stay, as after a
// containerd crash; Reboot stands for a reboot.
func (c *Containerd) Restart() {
	c.tb.Helper()
	c.out = &bytes.Buffer{}
	c.cmd = exec.Command("containerd", "--config", c.conf)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	// Its own process group, so a test's signals do not reach it.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		c.tb.Fatalf("start containerd: %v", err)
	}
	c.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(c.cmd, c.done)
	deadline := time.Now().Add(startWait)
	for {
		if c.criReady() {
			return
		}
		select {
		case <-c.done:
			c.tb.Fatalf("containerd exited: %s", c.out.String())
		default:
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("containerd did not listen on %s within %s: %s", c.Socket, startWait, c.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// criReady reports whether the CRI plugin answers: the socket accepts
// before the plugin has loaded ("server is not initialized yet").
func (c *Containerd) criReady() bool {
	conn, err := net.Dial("unix", c.Socket)
	if err != nil {
		return false
	}
	conn.Close()
	gc, err := grpc.NewClient(c.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false
	}
	defer gc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = runtimeapi.NewRuntimeServiceClient(gc).ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	return err == nil
}

// Kill stops containerd by its PID with SIGKILL, as a crash, and waits.
func (c *Containerd) Kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	syscall.Kill(c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
	c.cmd = nil
}

// Log is what containerd printed so far.
func (c *Containerd) Log() string {
	if c.out == nil {
		return ""
	}
	return c.out.String()
}

// Ctr runs ctr against this containerd in namespace k8s.io (the CRI
// plugin's) and returns its output.
func (c *Containerd) Ctr(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ctr", append([]string{"-a", c.Socket, "-n", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// CRI dials this containerd's CRI runtime service; the connection closes
// with the test.
func (c *Containerd) CRI() runtimeapi.RuntimeServiceClient {
	c.tb.Helper()
	conn := c.dial()
	c.tb.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn)
}

func (c *Containerd) dial() *grpc.ClientConn {
	c.tb.Helper()
	conn, err := grpc.NewClient(c.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.tb.Fatalf("dial %s: %v", c.Endpoint, err)
	}
	return conn
}

// Reboot stands for a machine reboot under a stopped daemon: every pod's
// containers are stopped (through CRI, as the processes die at power-off;
// the records stay, as containerd's root dir does), then containerd is
// killed and started again. After it, CRI reports every sandbox NOTREADY
// and every container EXITED.
func (c *Containerd) Reboot() {
	c.tb.Helper()
	c.stopPods(false)
	c.Kill()
	c.Restart()
}

// stopPods stops every sandbox through CRI, and removes them too if
// remove.
func (c *Containerd) stopPods(remove bool) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := c.dial()
	defer conn.Close()
	cri := runtimeapi.NewRuntimeServiceClient(conn)
	pods, err := cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		c.tb.Errorf("list sandboxes: %v", err)
		return
	}
	for _, p := range pods.Items {
		if _, err := cri.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			c.tb.Errorf("stop sandbox %s: %v", p.Id, err)
		}
		if !remove {
			continue
		}
		if _, err := cri.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			c.tb.Errorf("remove sandbox %s: %v", p.Id, err)
		}
	}
}

// cleanup removes every pod through CRI (their network namespaces and CNI
// results with them), stops containerd, kills the shims it started (found
// by their PIDs: processes whose command line names this containerd's
// dir) and removes the mounts, the bridge and the dir.
func (c *Containerd) cleanup() {
	if c.cmd == nil {
		c.Restart()
	}
	c.stopPods(true)
	syscall.Kill(c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.Kill()
	}
	c.cmd = nil
	for _, pid := range c.shims() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	c.unmountUnder(c.Dir)
	exec.Command("ip", "link", "del", c.Bridge).Run()
	if err := os.RemoveAll(c.Dir); err != nil {
		c.tb.Logf("remove containerd dir: %v", err)
	}
}

// shims lists the PIDs of the processes whose command line holds Dir:
// the shims this containerd started.
func (c *Containerd) shims() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(c.Dir)) && bytes.Contains(cmdline, []byte("shim")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// unmountUnder unmounts every mount below dir, deepest first.
func (c *Containerd) unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		if err := syscall.Unmount(points[i], syscall.MNT_DETACH); err != nil {
			c.tb.Logf("unmount %s: %v", points[i], err)
		}
	}
}
