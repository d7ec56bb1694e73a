package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/plugintest"
)

// checkInstalledRoot checks what make install and the .deb put under
// root: the binary, the unit, the default config and the data dir.
func checkInstalledRoot(t *testing.T, bin, root string) {
	t.Helper()
	mode := func(rel string) os.FileMode {
		fi, err := os.Stat(filepath.Join(root, rel))
		if err != nil {
			t.Fatalf("installed tree lacks %s: %v", rel, err)
		}
		return fi.Mode()
	}
	if m := mode("usr/bin/edgehost"); m.Perm() != 0o755 {
		t.Errorf("usr/bin/edgehost mode %v, want 0755", m)
	}
	if out, code := edgehost(t, filepath.Join(root, "usr/bin/edgehost"), "", "version"); code != 0 || !strings.HasPrefix(out, "edgehost ") {
		t.Errorf("installed binary: version exit %d: %s", code, out)
	}
	unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/edgehost.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify\n", "NotifyAccess=main\n", "WatchdogSec=", "StateDirectory=edgehost\n",
		"ExecStart=/usr/bin/edgehost run --config /etc/edgehost/edgehost.yaml\n", "DeviceAllow=char-ttyUSB rw\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	if m := mode("usr/lib/systemd/system/edgehost.service"); m.Perm() != 0o644 {
		t.Errorf("unit mode %v, want 0644", m)
	}
	cfg, err := os.ReadFile(filepath.Join(root, "etc/edgehost/edgehost.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	def, code := edgehost(t, bin, "", "config", "default")
	if code != 0 || string(cfg) != def {
		t.Errorf("installed config is not `edgehost config default`:\n%s", cfg)
	}
	if m := mode("etc/edgehost/edgehost.yaml"); m.Perm() != 0o600 {
		t.Errorf("config mode %v, want 0600 (it may hold the cloud token)", m)
	}
	if out, code := edgehost(t, bin, "", "config", "check", filepath.Join(root, "etc/edgehost/edgehost.yaml")); code != 0 {
		t.Errorf("installed config does not check: %s", out)
	}
	if m := mode("var/lib/edgehost"); !m.IsDir() || m.Perm() != 0o700 {
		t.Errorf("var/lib/edgehost mode %v, want a 0700 dir", m)
	}
	verifyUnit(t, root, string(unit))
}

// verifyUnit runs systemd-analyze verify on the installed unit, its
// ExecStart pointed at the installed binary (verify checks it exists).
func verifyUnit(t *testing.T, root, unit string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit not verified")
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "edgehost.service")
	unit = strings.ReplaceAll(unit, "ExecStart=/usr/bin/edgehost", "ExecStart="+filepath.Join(root, "usr/bin/edgehost"))
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "edgehost.service") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestMakeInstall(t *testing.T) {
	bin := buildBinary(t)
	repo, err := plugintest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	make := exec.Command("make", "-C", repo, "install", "DESTDIR="+root, "PREFIX=/usr", "INSTALL_BIN="+bin)
	if out, err := make.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	checkInstalledRoot(t, bin, root)

	// A second install keeps the operator's config.
	cfg := filepath.Join(root, "etc/edgehost/edgehost.yaml")
	if err := os.WriteFile(cfg, []byte("logLevel: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	again := exec.Command("make", "-C", repo, "install", "DESTDIR="+root, "PREFIX=/usr", "INSTALL_BIN="+bin)
	if out, err := again.CombinedOutput(); err != nil || !strings.Contains(string(out), "keeping") {
		t.Fatalf("second make install: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(cfg); string(b) != "logLevel: debug\n" {
		t.Errorf("second make install replaced the config: %q", b)
	}
}

func TestMakeDeb(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg-deb")
	if err != nil {
		t.Skip("dpkg-deb not installed: the .deb cannot be unpacked")
	}
	bin := buildBinary(t)
	repo, err := plugintest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	build := t.TempDir()
	make := exec.Command("make", "-C", repo, "deb", "BUILD="+build, "INSTALL_BIN="+bin, "VERSION=1.2.3~test", "DEB_ARCH=amd64")
	if out, err := make.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	deb := filepath.Join(build, "edgehost_1.2.3~test_amd64.deb")
	fields, err := exec.Command(dpkg, "-f", deb, "Package", "Version", "Architecture").CombinedOutput()
	if err != nil || string(fields) != "Package: edgehost\nVersion: 1.2.3~test\nArchitecture: amd64\n" {
		t.Fatalf("dpkg-deb -f: %v\n%s", err, fields)
	}
	ctrl := t.TempDir()
	if out, err := exec.Command(dpkg, "-e", deb, ctrl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e: %v\n%s", err, out)
	}
	if conf, _ := os.ReadFile(filepath.Join(ctrl, "conffiles")); !strings.Contains(string(conf), "/etc/edgehost/edgehost.yaml") {
		t.Errorf("conffiles = %q, want the config (kept on upgrade)", conf)
	}
	root := t.TempDir()
	if out, err := exec.Command(dpkg, "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	checkInstalledRoot(t, bin, root)
}
