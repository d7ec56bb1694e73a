package pluginhost

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/config"
)

const devioPlugin = "host/wasm/testdata/plugins/devio"

func devioManifest(abiVersion, caps string) string {
	return `{"name":"devio","version":"0.1.0","kind":"mapper","abi":"` + abiVersion + `","mapper":{"protocols":["devio"]},"capabilities":{` + caps + `}}`
}

// TestDeviceIOInstallChecksAndCeiling: an installed module that imports the
// device I/O functions needs abi 1.2 and a grant for each transport it
// imports, or it is refused naming the import; once installed, the
// operator's ceiling narrows its tcp grant, and a connection outside it is
// denied and counted while one inside reaches a real server.
func TestDeviceIOInstallChecksAndCeiling(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	dir := t.TempDir()
	cfg := testPluginsConfig(dir)
	cfg.Restrict = []config.PluginRestriction{{Plugin: "devio", TCP: []string{"127.0.0.1:" + port}, UDP: []string{"127.0.0.1:*"},
		Serial: []string{"/dev/ttyUSB*"}}}
	h := startHost(t, dir, cfg)
	ctx := context.Background()
	all := `"tcp":["127.0.0.1:*"],"udp":["127.0.0.1:*"],"serial":["/dev/ttyUSB*"]`
	for _, c := range []struct{ manifest, want string }{
		{devioManifest("1.2", `"udp":["127.0.0.1:*"],"serial":["/dev/ttyUSB*"]`), "missing grants: tcp (for tcp_close), tcp (for tcp_connect)"},
		{devioManifest("1.2", `"tcp":["127.0.0.1:*"]`), "serial (for serial_open)"},
		{devioManifest("1.2", `"tcp":["127.0.0.1:*"]`), "udp (for udp_open)"},
		{devioManifest("1.1", all), `abi "1.1", but the module imports serial_close, which ABI 1.2 added: declare abi "1.2"`},
	} {
		_, err := h.m.Install(ctx, pack(t, devioPlugin, c.manifest), SourceLocal)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("install %s: %v, want %q", c.manifest, err, c.want)
		}
	}
	if _, err := h.m.Install(ctx, pack(t, devioPlugin, devioManifest("1.2", all)), SourceLocal); err != nil {
		t.Fatal(err)
	}
	send := func(op, content string) string {
		return string(request(t, h.bus, "devio", abi.Message{Route: abi.Route{Operation: op}, Content: []byte(content)}).Content)
	}
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// Granted by the manifest, but over the ceiling.
	if r := send("tcp", other.Addr().String()+" 1000"); r != "code 5" {
		t.Errorf("connect over the ceiling: %q, want code 5", r)
	}
	if r := send("tcp", ln.Addr().String()+" 1000"); r != "h 1" {
		t.Fatalf("connect within the ceiling: %q", r)
	}
	if r := send("write", "1 ping"); r != "n 4" {
		t.Fatalf("write: %q", r)
	}
	if r := send("read", "1 16 1000"); r != "data ping" {
		t.Fatalf("read: %q", r)
	}
	info, err := h.m.Info("devio")
	if err != nil {
		t.Fatal(err)
	}
	if info.Denied != 1 || denials(t, h.m, "devio") != 1 || info.IOHandles != 1 || info.IOBytesIn != 4 || info.IOBytesOut != 4 {
		t.Errorf("info: denied %d (logged %d), handles %d, in %d, out %d; want 1, 1, 1, 4, 4",
			info.Denied, denials(t, h.m, "devio"), info.IOHandles, info.IOBytesIn, info.IOBytesOut)
	}
}
