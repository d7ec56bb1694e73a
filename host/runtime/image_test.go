package runtime

import (
	"archive/tar"
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/containerd"
)

// tarOf is a tar of the named files.
func tarOf(t testing.TB, files map[string]string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range []string{"oci-layout", "./index.json", "manifest.json", "blobs/sha256/x"} {
		data, ok := files[name]
		if !ok {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	tw.Close()
	return b.Bytes()
}

func TestArchiveImages(t *testing.T) {
	dir := t.TempDir()
	oci := filepath.Join(dir, "oci.tar")
	docker := filepath.Join(dir, "docker.tar")
	files := []containerd.File{{Path: "hello", Data: []byte("hi"), Mode: 0o644}}
	if err := containerd.WriteImage(oci, "localhost/hello:1", containerd.ImageConfig{}, files); err != nil {
		t.Fatal(err)
	}
	if err := containerd.WriteDockerArchive(docker, "localhost/hello:2", containerd.ImageConfig{}, files); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string][]string{oci: {"oci", "localhost/hello:1"}, docker: {"docker", "localhost/hello:2"}} {
		format, names, err := archiveImagesFile(path)
		if err != nil || format != want[0] || !slices.Equal(names, want[1:]) {
			t.Errorf("%s: %s %q %v, want %q", filepath.Base(path), format, names, err, want)
		}
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"empty tar", map[string]string{}, "no index.json (OCI image layout) or manifest.json (docker-archive)"},
		{"no layout", map[string]string{"./index.json": `{"manifests":[]}`}, "index.json without an oci-layout file"},
		{"no manifests", map[string]string{"oci-layout": "{}", "./index.json": `{"manifests":[]}`}, "index.json lists no manifests"},
		{"tag only", map[string]string{"oci-layout": "{}", "./index.json": `{"manifests":[{"digest":"sha256:ab","annotations":{"org.opencontainers.image.ref.name":"1.0"}}]}`},
			`index.json manifests[0] (sha256:ab) has no io.containerd.image.name annotation naming the image (its org.opencontainers.image.ref.name is "1.0")`},
		{"bad index", map[string]string{"oci-layout": "{}", "./index.json": `[`}, "index.json: unexpected end of JSON input"},
		{"untagged docker", map[string]string{"manifest.json": `[{"Config":"c.json"}]`}, "manifest.json [0] (c.json) has no RepoTags"},
	} {
		_, _, err := ArchiveImages(bytes.NewReader(tarOf(t, c.files)))
		if !errors.Is(err, ErrBadArchive) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if _, _, err := ArchiveImages(strings.NewReader("plain text, not a tar at all, long enough to fill a tar block header? no")); !errors.Is(err, ErrBadArchive) {
		t.Errorf("not a tar: %v", err)
	}
}

// FuzzArchiveImages: any bytes are an archive with named images or
// refused with ErrBadArchive; nothing panics.
func FuzzArchiveImages(f *testing.F) {
	f.Add(tarOf(f, map[string]string{"oci-layout": "{}", "./index.json": `{"manifests":[{"annotations":{"io.containerd.image.name":"a/b:c"}}]}`}))
	f.Add(tarOf(f, map[string]string{"manifest.json": `[{"Config":"c.json","RepoTags":["x:1"]}]`}))
	f.Fuzz(func(t *testing.T, data []byte) {
		format, names, err := ArchiveImages(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadArchive) {
				t.Fatalf("error not ErrBadArchive: %v", err)
			}
			return
		}
		if format == "" || len(names) == 0 || slices.Contains(names, "") {
			t.Fatalf("accepted %q with names %q", format, names)
		}
	})
}
