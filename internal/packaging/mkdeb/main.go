// Command mkdeb builds edgehost's .deb offline with nfpm's Go API: the
// binary, the systemd unit, the default config (kept on upgrade when the
// operator changed it) and the data dir. `make deb` runs it; see
// docs/systemd.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

func main() {
	var binary, unit, config, version, arch, out string
	flag.StringVar(&binary, "binary", "", "the edgehost binary")
	flag.StringVar(&unit, "unit", "packaging/edgehost.service", "the systemd unit")
	flag.StringVar(&config, "config", "", "the default config (edgehost config default)")
	flag.StringVar(&version, "version", "", "the package version (Debian syntax)")
	flag.StringVar(&arch, "arch", "amd64", "the Debian architecture")
	flag.StringVar(&out, "out", "", "the .deb to write")
	flag.Parse()
	if err := build(binary, unit, config, version, arch, out); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func build(binary, unit, config, version, arch, out string) error {
	for name, v := range map[string]string{"-binary": binary, "-config": config, "-version": version, "-out": out} {
		if v == "" {
			return fmt.Errorf("%s is required", name)
		}
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:          "edgehost",
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none", // the Makefile's version is already Debian syntax
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "edgehost maintainers <edgehost@localhost>",
		Description:   "Edge daemon replacing KubeEdge's edgecore; device drivers, routes and twin logic are wasm plugins",
		Homepage:      "https://github.com/edgehost/edgehost",
		Overridables: nfpm.Overridables{
			Contents: files.Contents{
				{Source: binary, Destination: "/usr/bin/edgehost", FileInfo: &files.ContentFileInfo{Mode: 0o755}},
				{Source: unit, Destination: "/usr/lib/systemd/system/edgehost.service", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
				// The config may hold the cloud token: root only, and an
				// operator's edits survive upgrades.
				{Source: config, Destination: "/etc/edgehost/edgehost.yaml", Type: files.TypeConfigNoReplace,
					FileInfo: &files.ContentFileInfo{Mode: 0o600}},
				{Destination: "/var/lib/edgehost", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o700}},
			},
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return fmt.Errorf("package contents: %w", err)
	}
	packager, err := nfpm.Get("deb")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := packager.Package(info, f); err != nil {
		f.Close()
		os.Remove(out)
		return fmt.Errorf("build %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	fmt.Println(out)
	return nil
}
