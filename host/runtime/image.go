package runtime

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criNamespace is the containerd namespace the CRI plugin keeps its
// images in.
const criNamespace = "k8s.io"

// Image annotations of an OCI index entry: containerd's name for the
// image, and the OCI ref name (often a tag only).
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

// maxArchiveIndex bounds the index.json or manifest.json read from an
// archive.
const maxArchiveIndex = 4 << 20

// importVisible bounds how long an imported image may take to show in
// CRI (containerd's CRI plugin learns of it from an event).
const importVisible = 30 * time.Second

// ErrBadArchive is the error of a file that is not an image archive
// edgehost can import.
var ErrBadArchive = errors.New("not an importable image archive")

// Image is one image an import brought into the runtime.
type Image struct {
	// Name is the image's name as the archive gives it.
	Name string `json:"name"`
	// ID is the runtime's image id (the config's digest); Size its size
	// in bytes as the runtime reports it.
	ID   string `json:"id"`
	Size uint64 `json:"size"`
}

// ArchiveImages reads an image archive, an OCI image layout tar (with
// index.json) or a docker-archive tar (`docker save`, with
// manifest.json), and returns its format ("oci" or "docker") and the
// names of the images it holds: each OCI index entry's
// io.containerd.image.name annotation, each docker manifest's RepoTags.
// An image without a name is refused: it would be imported unnamed and no
// pod could use it.
func ArchiveImages(r io.Reader) (format string, names []string, err error) {
	tr := tar.NewReader(r)
	var index, manifest []byte
	layout := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("%w: not a tar file (%v)", ErrBadArchive, err)
		}
		var dst *[]byte
		switch path.Clean(strings.TrimPrefix(h.Name, "./")) {
		case "oci-layout":
			layout = true
			continue
		case "index.json":
			dst = &index
		case "manifest.json":
			dst = &manifest
		default:
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxArchiveIndex+1))
		if err != nil {
			return "", nil, fmt.Errorf("%w: read %s: %v", ErrBadArchive, h.Name, err)
		}
		if len(b) > maxArchiveIndex {
			return "", nil, fmt.Errorf("%w: %s is over %d bytes", ErrBadArchive, h.Name, maxArchiveIndex)
		}
		*dst = b
	}
	switch {
	case manifest != nil:
		names, err := dockerNames(manifest)
		return "docker", names, err
	case index != nil:
		if !layout {
			return "", nil, fmt.Errorf("%w: index.json without an oci-layout file", ErrBadArchive)
		}
		names, err := ociNames(index)
		return "oci", names, err
	}
	return "", nil, fmt.Errorf("%w: no index.json (OCI image layout) or manifest.json (docker-archive) in the tar", ErrBadArchive)
}

func ociNames(data []byte) ([]string, error) {
	var idx struct {
		Manifests []struct {
			MediaType   string            `json:"mediaType"`
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%w: index.json: %v", ErrBadArchive, err)
	}
	if len(idx.Manifests) == 0 {
		return nil, fmt.Errorf("%w: index.json lists no manifests", ErrBadArchive)
	}
	var names []string
	for i, m := range idx.Manifests {
		name := m.Annotations[annotationImageName]
		if name == "" {
			hint := ""
			if ref := m.Annotations[annotationRefName]; ref != "" {
				hint = fmt.Sprintf(" (its %s is %q)", annotationRefName, ref)
			}
			return nil, fmt.Errorf("%w: index.json manifests[%d] (%s) has no %s annotation naming the image%s", ErrBadArchive, i, m.Digest, annotationImageName, hint)
		}
		names = append(names, name)
	}
	return names, nil
}

func dockerNames(data []byte) ([]string, error) {
	var manifests []struct {
		Config   string   `json:"Config"`
		RepoTags []string `json:"RepoTags"`
	}
	if err := json.Unmarshal(data, &manifests); err != nil {
		return nil, fmt.Errorf("%w: manifest.json: %v", ErrBadArchive, err)
	}
	if len(manifests) == 0 {
		return nil, fmt.Errorf("%w: manifest.json lists no images", ErrBadArchive)
	}
	var names []string
	for i, m := range manifests {
		if len(m.RepoTags) == 0 || slices.Contains(m.RepoTags, "") {
			return nil, fmt.Errorf("%w: manifest.json [%d] (%s) has no RepoTags naming the image", ErrBadArchive, i, m.Config)
		}
		names = append(names, m.RepoTags...)
	}
	return names, nil
}

// archiveImagesFile is ArchiveImages of the file at path.
func archiveImagesFile(path string) (string, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	return ArchiveImages(f)
}

// ImportImage imports the image archive at file into the runtime's image
// store (containerd's namespace k8s.io, the CRI plugin's) with
// containerd's own importer, `ctr images import`, which also unpacks it
// for the snapshotter; then waits until CRI sees every image and returns
// them. Only containerd is supported: ctr ships with it.
func (m *Module) ImportImage(ctx context.Context, file string) ([]Image, error) {
	format, names, err := archiveImagesFile(file)
	if err != nil {
		return nil, fmt.Errorf("image import: %w", err)
	}
	ctr, err := exec.LookPath("ctr")
	if err != nil {
		return nil, fmt.Errorf("image import needs containerd's ctr (Debian package containerd) on PATH: %w", err)
	}
	sock := strings.TrimPrefix(m.cfg.Endpoint, "unix://")
	start := time.Now()
	cmd := exec.CommandContext(ctx, ctr, "--address", sock, "--namespace", criNamespace, "images", "import", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("image import: ctr images import (%s archive): %w: %s", format, err, strings.TrimSpace(string(out)))
	}
	cri, err := dialCRI(m.cfg.Endpoint, m.cfg.CallTimeout)
	if err != nil {
		return nil, fmt.Errorf("image import: %w", err)
	}
	defer cri.close()
	out := make([]Image, 0, len(names))
	for _, name := range names {
		img, err := cri.awaitImage(ctx, name, importVisible)
		if err != nil {
			return nil, fmt.Errorf("image import: %s imported, but: %w", name, err)
		}
		out = append(out, Image{Name: name, ID: img.Id, Size: img.GetSize()})
	}
	m.log.Info("images imported", "file", file, "format", format, "images", names, "took", time.Since(start).Round(time.Millisecond))
	// Pods waiting for these images (ErrImageNeverPull) may start now.
	m.Kick()
	return out, nil
}

// awaitImage waits until CRI reports image name, for up to wait.
func (c *criClient) awaitImage(ctx context.Context, name string, wait time.Duration) (*runtimeapi.Image, error) {
	deadline := time.Now().Add(wait)
	for {
		r, err := call(ctx, c, "ImageStatus", func(ctx context.Context) (*runtimeapi.ImageStatusResponse, error) {
			return c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: name}})
		})
		if err != nil {
			return nil, err
		}
		if img := r.GetImage(); img != nil {
			return img, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the CRI runtime does not show it after %s", wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
