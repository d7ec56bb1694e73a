package runtime

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxCRIMessage is the largest CRI reply taken (kubelet's 16 MiB): a
// container list of a busy node is bigger than gRPC's 4 MiB default.
const maxCRIMessage = 16 << 20

// criClient is the CRI runtime and image services over one unix socket,
// every call bounded by the call timeout.
type criClient struct {
	conn    *grpc.ClientConn
	rt      runtimeapi.RuntimeServiceClient
	img     runtimeapi.ImageServiceClient
	timeout time.Duration
}

// dialCRI connects to endpoint (unix://PATH). The connection is made on
// the first call and remade after the runtime restarts.
func dialCRI(endpoint string, timeout time.Duration) (*criClient, error) {
	if !strings.HasPrefix(endpoint, "unix://") {
		return nil, fmt.Errorf("CRI endpoint %q: only unix:// sockets are supported", endpoint)
	}
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxCRIMessage)))
	if err != nil {
		return nil, fmt.Errorf("CRI endpoint %q: %w", endpoint, err)
	}
	return &criClient{conn: conn, rt: runtimeapi.NewRuntimeServiceClient(conn), img: runtimeapi.NewImageServiceClient(conn), timeout: timeout}, nil
}

func (c *criClient) close() { c.conn.Close() }

// call runs f with ctx bounded by the call timeout.
func call[T any](ctx context.Context, c *criClient, what string, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, err := f(ctx)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("CRI %s: %w", what, err)
	}
	return v, nil
}

func (c *criClient) version(ctx context.Context) (*runtimeapi.VersionResponse, error) {
	return call(ctx, c, "Version", func(ctx context.Context) (*runtimeapi.VersionResponse, error) {
		return c.rt.Version(ctx, &runtimeapi.VersionRequest{})
	})
}

// managedFilter selects what this module made.
var managedFilter = map[string]string{labelManaged: "true"}

func (c *criClient) sandboxes(ctx context.Context) ([]*runtimeapi.PodSandbox, error) {
	r, err := call(ctx, c, "ListPodSandbox", func(ctx context.Context) (*runtimeapi.ListPodSandboxResponse, error) {
		return c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: managedFilter}})
	})
	return r.GetItems(), err
}

func (c *criClient) containers(ctx context.Context) ([]*runtimeapi.Container, error) {
	r, err := call(ctx, c, "ListContainers", func(ctx context.Context) (*runtimeapi.ListContainersResponse, error) {
		return c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: managedFilter}})
	})
	return r.GetContainers(), err
}

func (c *criClient) runSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig) (string, error) {
	r, err := call(ctx, c, "RunPodSandbox", func(ctx context.Context) (*runtimeapi.RunPodSandboxResponse, error) {
		return c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	})
	return r.GetPodSandboxId(), err
}

func (c *criClient) sandboxStatus(ctx context.Context, id string) (*runtimeapi.PodSandboxStatus, error) {
	r, err := call(ctx, c, "PodSandboxStatus", func(ctx context.Context) (*runtimeapi.PodSandboxStatusResponse, error) {
		return c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	})
	return r.GetStatus(), err
}

// removeSandbox stops and removes a sandbox and so every container in it.
func (c *criClient) removeSandbox(ctx context.Context, id string) error {
	if _, err := call(ctx, c, "StopPodSandbox", func(ctx context.Context) (*runtimeapi.StopPodSandboxResponse, error) {
		return c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
	}); err != nil {
		return err
	}
	_, err := call(ctx, c, "RemovePodSandbox", func(ctx context.Context) (*runtimeapi.RemovePodSandboxResponse, error) {
		return c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
	})
	return err
}

func (c *criClient) createContainer(ctx context.Context, sandbox string, cfg *runtimeapi.ContainerConfig, sc *runtimeapi.PodSandboxConfig) (string, error) {
	r, err := call(ctx, c, "CreateContainer", func(ctx context.Context) (*runtimeapi.CreateContainerResponse, error) {
		return c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sandbox, Config: cfg, SandboxConfig: sc})
	})
	return r.GetContainerId(), err
}

func (c *criClient) startContainer(ctx context.Context, id string) error {
	_, err := call(ctx, c, "StartContainer", func(ctx context.Context) (*runtimeapi.StartContainerResponse, error) {
		return c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
	})
	return err
}

// stopContainer stops id, killing it after grace.
func (c *criClient) stopContainer(ctx context.Context, id string, grace int64) error {
	_, err := call(ctx, c, "StopContainer", func(ctx context.Context) (*runtimeapi.StopContainerResponse, error) {
		return c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: grace})
	})
	return err
}

func (c *criClient) removeContainer(ctx context.Context, id string) error {
	_, err := call(ctx, c, "RemoveContainer", func(ctx context.Context) (*runtimeapi.RemoveContainerResponse, error) {
		return c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
	})
	return err
}

func (c *criClient) containerStatus(ctx context.Context, id string) (*runtimeapi.ContainerStatus, error) {
	r, err := call(ctx, c, "ContainerStatus", func(ctx context.Context) (*runtimeapi.ContainerStatusResponse, error) {
		return c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	})
	return r.GetStatus(), err
}

// image returns the image's id if the runtime has it, "" if not.
func (c *criClient) image(ctx context.Context, name string) (string, error) {
	r, err := call(ctx, c, "ImageStatus", func(ctx context.Context) (*runtimeapi.ImageStatusResponse, error) {
		return c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: name}})
	})
	return r.GetImage().GetId(), err
}

// pull pulls name with auth (none when nil) and returns its reference.
func (c *criClient) pull(ctx context.Context, name string, auth *runtimeapi.AuthConfig, sc *runtimeapi.PodSandboxConfig) (string, error) {
	r, err := call(ctx, c, "PullImage", func(ctx context.Context) (*runtimeapi.PullImageResponse, error) {
		return c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: name}, Auth: auth, SandboxConfig: sc})
	})
	return r.GetImageRef(), err
}

// execSync runs cmd in container id and returns its exit code and
// output; the runtime stops it after timeout.
func (c *criClient) execSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (int32, []byte, error) {
	secs := max(int64(timeout/time.Second), 1)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+c.timeout)
	defer cancel()
	r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: secs})
	if err != nil {
		return 0, nil, fmt.Errorf("CRI ExecSync: %w", err)
	}
	return r.ExitCode, append(r.Stdout, r.Stderr...), nil
}
