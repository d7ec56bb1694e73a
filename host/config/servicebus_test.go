package config

import (
	"strings"
	"testing"
	"time"
)

// TestServiceBusConfig: the defaults are edgecore's, and every bad value
// is an error naming its key.
func TestServiceBusConfig(t *testing.T) {
	d := Default().Modules.ServiceBus
	if !d.Enable || d.Server.Enable || d.Server.Address != "127.0.0.1:9060" || d.ClientTimeout != 10*time.Second || d.MaxBodyBytes != 5_000_000 ||
		d.DefaultRoute != "native" {
		t.Errorf("defaults %+v", d)
	}
	_, err := Parse([]byte("modules:\n  servicebus:\n    clientTimeout: 0s\n    maxBodyBytes: -1\n    concurrency: 0\n    defaultRoute: wasm\n"+
		"    server:\n      enable: true\n      address: nowhere\n      timeout: -1s\n"), "sb.yaml")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"modules.servicebus.clientTimeout: must be > 0, got 0s",
		"modules.servicebus.maxBodyBytes: must be > 0, got -1",
		"modules.servicebus.concurrency: must be > 0, got 0",
		`modules.servicebus.server.address: must be host:port, got "nowhere"`,
		"modules.servicebus.server.timeout: must be > 0, got -1s",
		`modules.servicebus.defaultRoute: must be one of native, plugin, got "wasm"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestServiceBusDefaultRoutePlugin: the plugin default route needs the
// built-in plugins.
func TestServiceBusDefaultRoutePlugin(t *testing.T) {
	if _, err := Parse([]byte("modules:\n  servicebus:\n    defaultRoute: plugin\n"), "sb.yaml"); err != nil {
		t.Errorf("plugin default route refused: %v", err)
	}
	_, err := Parse([]byte("modules:\n  plugins:\n    builtin: false\n  servicebus:\n    defaultRoute: plugin\n"), "sb.yaml")
	if err == nil || !strings.Contains(err.Error(), `modules.servicebus.defaultRoute: "plugin" needs modules.plugins.enable and modules.plugins.builtin`) {
		t.Errorf("without built-in plugins: %v", err)
	}
}
