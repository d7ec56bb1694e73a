package containerd

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// File is one regular file or symlink of an image layer.
type File struct {
	// Path is where it is in the image, without a leading slash.
	Path string
	// Data is a regular file's content; Link, when set, makes it a
	// symlink to Link instead.
	Data []byte
	Link string
	Mode int64
}

// ImageConfig is the part of an OCI image config the test images set.
type ImageConfig struct {
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	Env        []string `json:"Env,omitempty"`
}

// WriteImage writes an OCI image layout tar to path: one gzip layer of
// files, the config, the manifest and an index whose entry carries name
// in the io.containerd.image.name annotation, which `ctr images import`
// names the image by.
func WriteImage(path, name string, cfg ImageConfig, files []File) error {
	layer, err := layerTar(files)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layer)
	if err := zw.Close(); err != nil {
		return err
	}
	platform := map[string]string{"architecture": runtime.GOARCH, "os": "linux"}
	config := imageConfig(cfg, layer)
	desc := func(mt string, b []byte) map[string]any {
		return map[string]any{"mediaType": mt, "digest": digest(b), "size": len(b)}
	}
	manifest, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc("application/vnd.oci.image.config.v1+json", config),
		"layers": []any{desc("application/vnd.oci.image.layer.v1.tar+gzip", gz.Bytes())}})
	entry := desc("application/vnd.oci.image.manifest.v1+json", manifest)
	entry["platform"] = platform
	entry["annotations"] = map[string]string{"io.containerd.image.name": name,
		"org.opencontainers.image.ref.name": name[strings.LastIndex(name, ":")+1:]}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []any{entry}})
	blobs := map[string][]byte{}
	for _, b := range [][]byte{gz.Bytes(), config, manifest} {
		blobs["blobs/sha256/"+strings.TrimPrefix(digest(b), "sha256:")] = b
	}
	blobs["oci-layout"] = []byte(`{"imageLayoutVersion":"1.0.0"}`)
	blobs["index.json"] = index
	return writeTar(path, []string{"blobs/sha256/"}, blobs)
}

// WriteDockerArchive writes the image as `docker save` does (a
// docker-archive tar: manifest.json naming the config and the
// uncompressed layer, and the image's RepoTags).
func WriteDockerArchive(path, name string, cfg ImageConfig, files []File) error {
	layer, err := layerTar(files)
	if err != nil {
		return err
	}
	config := imageConfig(cfg, layer)
	configName := strings.TrimPrefix(digest(config), "sha256:") + ".json"
	layerName := strings.TrimPrefix(digest(layer), "sha256:") + "/layer.tar"
	manifest, _ := json.Marshal([]any{map[string]any{"Config": configName, "RepoTags": []string{name}, "Layers": []string{layerName}}})
	return writeTar(path, []string{filepath.Dir(layerName) + "/"}, map[string][]byte{configName: config, layerName: layer, "manifest.json": manifest})
}

// imageConfig is an OCI image config of one layer.
func imageConfig(cfg ImageConfig, layer []byte) []byte {
	config, _ := json.Marshal(map[string]any{"architecture": runtime.GOARCH, "os": "linux", "config": cfg,
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(layer)}}})
	return config
}

// writeTar writes dirs and then files, in name order, as a tar at path.
func writeTar(path string, dirs []string, files map[string][]byte) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	ow := tar.NewWriter(out)
	for _, d := range dirs {
		if err := ow.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		b := files[name]
		if err := ow.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := ow.Write(b); err != nil {
			return err
		}
	}
	if err := ow.Close(); err != nil {
		return err
	}
	return out.Close()
}

// layerTar is a layer of files, with their parent dirs.
func layerTar(files []File) ([]byte, error) {
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	dirs := map[string]bool{}
	for _, f := range files {
		for d := filepath.Dir(f.Path); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range sortedKeys(dirs) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		h := &tar.Header{Name: f.Path, Mode: f.Mode, Size: int64(len(f.Data)), Typeflag: tar.TypeReg}
		if f.Link != "" {
			h = &tar.Header{Name: f.Path, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: f.Link}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if f.Link == "" {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return layer.Bytes(), nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// sortedKeys returns m's keys sorted: parents before their children.
func sortedKeys(m map[string]bool) []string {
	return slices.Sorted(maps.Keys(m))
}

// BusyboxFiles are the busybox image's files: Debian's busybox-static as
// /bin/busybox and a link per applet, /etc/passwd and /etc/group, /tmp.
func BusyboxFiles(tb testing.TB) []File {
	tb.Helper()
	bin, err := exec.LookPath("busybox")
	if err != nil {
		tb.Fatalf("busybox: %v", err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		tb.Fatal(err)
	}
	list, err := exec.Command(bin, "--list").Output()
	if err != nil {
		tb.Fatalf("busybox --list: %v", err)
	}
	files := []File{{Path: "bin/busybox", Data: data, Mode: 0o755}}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			files = append(files, File{Path: "bin/" + applet, Link: "busybox"})
		}
	}
	return append(files, File{Path: "etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\n"), Mode: 0o644},
		File{Path: "etc/group", Data: []byte("root:x:0:\n"), Mode: 0o644},
		File{Path: "tmp/.keep", Mode: 0o644})
}

// busyboxConfig is the busybox image's config: PATH=/bin, Cmd sh.
var busyboxConfig = ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}

// BusyboxTar writes the busybox image (BusyboxImage, BusyboxFiles) as an
// OCI tar in dir and returns its path.
func BusyboxTar(tb testing.TB, dir string) string {
	tb.Helper()
	path := filepath.Join(dir, "busybox.tar")
	if err := WriteImage(path, BusyboxImage, busyboxConfig, BusyboxFiles(tb)); err != nil {
		tb.Fatalf("write busybox image: %v", err)
	}
	return path
}

// BusyboxDockerTar writes the busybox image as a docker-archive tar
// named name in dir and returns its path.
func BusyboxDockerTar(tb testing.TB, dir, name string) string {
	tb.Helper()
	path := filepath.Join(dir, "busybox-docker.tar")
	if err := WriteDockerArchive(path, name, busyboxConfig, BusyboxFiles(tb)); err != nil {
		tb.Fatalf("write busybox docker-archive: %v", err)
	}
	return path
}

// PauseTar builds the pause command (internal/containerd/pause, static)
// and writes the PauseImage as an OCI tar in dir.
func PauseTar(tb testing.TB, dir string) string {
	tb.Helper()
	bin := filepath.Join(dir, "pause")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "github.com/edgehost/edgehost/internal/containerd/pause")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build pause: %v: %s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "pause.tar")
	if err := WriteImage(path, PauseImage, ImageConfig{Entrypoint: []string{"/pause"}}, []File{{Path: "pause", Data: data, Mode: 0o755}}); err != nil {
		tb.Fatalf("write pause image: %v", err)
	}
	return path
}

// Import imports an OCI image tar with `ctr images import` into the CRI
// plugin's namespace.
func (c *Containerd) Import(tb testing.TB, tarPath string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.Ctr(ctx, "images", "import", tarPath); err != nil {
		tb.Fatalf("import %s: %v", tarPath, err)
	}
}

// ImportTestImages builds and imports the pause and busybox images.
func (c *Containerd) ImportTestImages(tb testing.TB) {
	tb.Helper()
	dir := tb.TempDir()
	c.Import(tb, PauseTar(tb, dir))
	c.Import(tb, BusyboxTar(tb, dir))
	if out, err := c.Ctr(context.Background(), "images", "ls", "-q"); err != nil || !strings.Contains(out, BusyboxImage) {
		tb.Fatalf("images after import: %q %v", out, err)
	}
}
