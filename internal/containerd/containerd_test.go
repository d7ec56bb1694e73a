package containerd

import (
	"context"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestPodRuns runs a busybox container in a pod on the test containerd
// through CRI, from images built here: what every runtime test relies on.
func TestPodRuns(t *testing.T) {
	c := Start(t)
	c.ImportTestImages(t)
	cri := c.CRI()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, hostNet := range []bool{true, false} {
		ns := runtimeapi.NamespaceMode_POD
		if hostNet {
			ns = runtimeapi.NamespaceMode_NODE
		}
		meta := &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "default", Uid: "uid-" + ns.String()}
		sc := &runtimeapi.PodSandboxConfig{Metadata: meta, LogDirectory: t.TempDir(),
			Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: ns}}}}
		sb, err := cri.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sc})
		if err != nil {
			t.Fatalf("RunPodSandbox (host network %v): %v\n%s", hostNet, err, c.Log())
		}
		cc, err := cri.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: sc,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, LogPath: "c.log",
				Image:   &runtimeapi.ImageSpec{Image: BusyboxImage},
				Command: []string{"sh", "-c", "echo hello > /tmp/h; exec sleep 1000"}}})
		if err != nil {
			t.Fatalf("CreateContainer: %v", err)
		}
		if _, err := cri.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cc.ContainerId}); err != nil {
			t.Fatalf("StartContainer: %v", err)
		}
		out, err := cri.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cc.ContainerId, Cmd: []string{"cat", "/tmp/h"}, Timeout: 10})
		if err != nil || string(out.GetStdout()) != "hello\n" {
			t.Fatalf("ExecSync: %v %q", err, out)
		}
	}
}
