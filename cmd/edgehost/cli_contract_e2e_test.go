package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Every listing command takes -o table|wide|json|yaml and exits 2 for any
// other value; json and yaml print documents; the exit codes are those of
// docs/cli.md.
func TestCLIContract(t *testing.T) {
	bin := buildBinary(t)
	dataDir := shortDataDir(t)
	devicesDir := filepath.Join(dataDir, "devices")
	if err := os.Mkdir(devicesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dataDir, "modules:\n  eventbus:\n    embedded:\n      address: "+freeAddr(t)+"\n  devices:\n    dir: "+devicesDir+"\n")
	d := startDaemon(t, bin, cfg, dataDir)
	defer d.stop(t)

	dd := []string{"--data-dir", dataDir}
	listings := map[string][]string{
		"status":          append([]string{"status"}, dd...),
		"version":         {"version"},
		"plugin list":     append([]string{"plugin", "list"}, dd...),
		"devices list":    append([]string{"devices", "list"}, dd...),
		"devices reload":  append([]string{"devices", "reload"}, dd...),
		"plugin reload":   append([]string{"plugin", "reload"}, dd...),
		"twin list":       append([]string{"twin", "list"}, dd...),
		"plugin logs":     append([]string{"plugin", "logs", "devicetwin"}, dd...),
		"meta list":       append([]string{"meta", "list"}, dd...),
		"store snapshots": append([]string{"store", "snapshots"}, dd...),
	}
	for name, args := range listings {
		for _, format := range []string{"table", "wide", "json", "yaml", "text"} {
			out, code := edgehostSplit(t, bin, append(args, "-o", format)...)
			if code != exitOK {
				t.Errorf("%s -o %s: exit %d, want 0:\n%s", name, format, code, out.all())
				continue
			}
			switch format {
			case "json":
				var v any
				if err := json.Unmarshal([]byte(out.stdout), &v); err != nil {
					t.Errorf("%s -o json is not JSON: %v\n%s", name, err, out.stdout)
				}
			case "yaml":
				var v any
				if err := yaml.Unmarshal([]byte(out.stdout), &v); err != nil || strings.HasPrefix(strings.TrimSpace(out.stdout), "{") {
					t.Errorf("%s -o yaml is not block YAML: %v\n%s", name, err, out.stdout)
				}
			}
		}
	}
	// Refused before anything runs, by every listing command: those that
	// need a daemon or a hub too.
	listings["devices get"] = append([]string{"devices", "get", "default/x"}, dd...)
	listings["twin get"] = append([]string{"twin", "get", "default/x"}, dd...)
	listings["pod list"] = append([]string{"pod", "list"}, dd...)
	listings["meta get"] = append([]string{"meta", "get", "default/pod/x"}, dd...)
	listings["hub get"] = []string{"hub", "get", "nodes", "--data-dir", t.TempDir()}
	listings["store check"] = append([]string{"store", "check"}, dd...)
	listings["plugin test"] = []string{"plugin", "test", filepath.Join(t.TempDir(), "none.wasm")}
	for name, args := range listings {
		out, code := edgehostSplit(t, bin, append(args, "-o", "xml")...)
		if code != exitUsage || !strings.Contains(out.stderr, `"xml" is not an output format`) || strings.Count(out.stderr, "\n") != 1 {
			t.Errorf("%s -o xml: exit %d, want %d and one line naming the format:\n%s", name, code, exitUsage, out.all())
		}
	}

	pub := filepath.Join(t.TempDir(), "x.pub")
	if err := os.WriteFile(pub, []byte("AAAA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown command", []string{"bogus"}, exitUsage, `unknown command "bogus"`},
		{"unknown subcommand", []string{"plugin", "bogus"}, exitUsage, `unknown command "bogus" for "edgehost plugin"`},
		{"unknown flag", []string{"status", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{"extra argument", []string{"version", "extra"}, exitUsage, "unknown command"},
		{"missing required flag", []string{"plugin", "sign", "f.epk"}, exitUsage, `required flag(s) "key" not set`},
		{"send without --to", append([]string{"send"}, dd...), exitUsage, "--to is required"},
		{"sign with a public key", []string{"plugin", "sign", "--key", pub, "f.epk"}, exitUsage, "x.pub is a public key; sign with the .key"},
		{"remote error", append([]string{"devices", "get", "default/none"}, dd...), exitRemote, "404"},
		{"remote error of send", append([]string{"send", "--to", "nobody"}, dd...), exitRemote, `"nobody"`},
		{"no daemon", []string{"status", "--data-dir", t.TempDir()}, exitRuntime, "is the daemon running? (socket "},
		{"ok", append([]string{"status"}, dd...), exitOK, ""},
	} {
		out, code := edgehostSplit(t, bin, c.args...)
		if code != c.code || !strings.Contains(out.stderr, c.want) {
			t.Errorf("%s (%v): exit %d, want %d and %q:\n%s", c.name, c.args, code, c.code, c.want, out.all())
		}
		if code != 0 && strings.Count(out.stderr, "\n") != 1 {
			t.Errorf("%s: the error is not one line:\n%s", c.name, out.stderr)
		}
	}
}

// An error with several parts is one line, or with -v one part a line;
// -v adds the usage after a usage error.
func TestCLIVerboseErrors(t *testing.T) {
	bin := buildBinary(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("log:\n  level: loud\nmodules:\n  bus:\n    queueLen: -1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := edgehostSplit(t, bin, "config", "check", bad)
	if code != exitRuntime || strings.Count(out.stderr, "\n") != 1 || !strings.Contains(out.stderr, `got "loud"; modules.bus.queueLen`) {
		t.Errorf("config check: exit %d, want %d and both problems on one line:\n%s", code, exitRuntime, out.all())
	}
	out, code = edgehostSplit(t, bin, "config", "check", "-v", bad)
	if code != exitRuntime || strings.Count(out.stderr, "\n") != 2 || !strings.Contains(out.stderr, "\nmodules.bus.queueLen") {
		t.Errorf("config check -v: exit %d, want %d and one problem a line:\n%s", code, exitRuntime, out.all())
	}
	out, code = edgehostSplit(t, bin, "status", "-v", "--bogus")
	if code != exitUsage || !strings.Contains(out.stderr, "Usage:\n  edgehost status") {
		t.Errorf("status -v --bogus: exit %d, want %d and the usage:\n%s", code, exitUsage, out.all())
	}
}

// output is a command's stdout and stderr, apart.
type output struct{ stdout, stderr string }

func (o output) all() string { return "stdout:\n" + o.stdout + "stderr:\n" + o.stderr }

// edgehostSplit runs the binary with args and returns its stdout, stderr
// and exit code.
func edgehostSplit(t *testing.T, bin string, args ...string) (output, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := output{stdout.String(), stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		return out, ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run edgehost %v: %v", args, err)
	}
	return out, 0
}
