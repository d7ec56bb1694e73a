package edgecoreimport

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/config"
	"go.yaml.in/yaml/v3"
)

// edgecore's own default config imports to a valid edgehost config with
// the link, the eventbus, the DMI socket and the metamanager carried, and
// every other key named with a reason.
func TestImportEdgecoreDefaultConfig(t *testing.T) {
	data, err := os.ReadFile("testdata/edgecore-defaultconfig.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(data, "edgecore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := res.Config.Modules
	if h := m.Hub; h.Server != "192.168.1.10:10000" || h.HTTPServer != "https://192.168.1.10:10002" || h.NodeName != "edge-node" ||
		h.ProjectID != "e632aba927ea4ac2b575ec1603d56f10" || h.Heartbeat != 15*time.Second || h.MessageQPS != 30 || h.MessageBurst != 60 ||
		!h.RotateCertificates || !h.Enable {
		t.Errorf("hub = %+v, want edgecore's link settings", h)
	}
	if e := m.EventBus; e.Mode != "external" || e.External.URL != "tcp://127.0.0.1:1883" || e.Embedded.Address != "127.0.0.1:1884" || e.QoS != 0 {
		t.Errorf("eventbus = %+v, want external on edgecore's mosquitto", e)
	}
	if m.Devices.DMISocket != "/etc/kubeedge/dmi.sock" || !m.Twin.Enable || !m.Meta.Enable || m.Meta.RemoteQueryTimeout != time.Minute {
		t.Errorf("devices %+v twin %+v meta %+v", m.Devices, m.Twin, m.Meta)
	}
	left := map[string]string{}
	for _, l := range res.LeftOut {
		left[l.Key] = l.Why
		if l.Why == "" || strings.Contains(l.String(), "\n") {
			t.Errorf("left out without a one-line reason: %q", l)
		}
	}
	for key, why := range map[string]string{
		"modules.edgeHub.token":                       "certificate copied into /var/lib/edgehost/hub/certs",
		"modules.metaManager.metaServer.enable":       "no metaserver",
		"modules.serviceBus.port":                     "no servicebus",
		"modules.edged.tailoredKubeletConfig.maxPods": "no edged",
		"modules.edgeHub.quic.server":                 "websocket only",
		"database.dataSource":                         "bbolt",
		"modules.edgeHub.tlsCertFile":                 "copy edgecore's there",
		"modules.deviceTwin.dmiSockPath":              "ReadWritePaths=/etc/kubeedge/",
		"modules.eventBus.mqttSessionQueueSize":       "subscriberQueue",
	} {
		if !strings.Contains(left[key], why) {
			t.Errorf("left out %s: %q, want it to say %q", key, left[key], why)
		}
	}
	for _, k := range []string{"modules.edgeHub.websocket.server", "modules.eventBus.mqttMode", "modules.edged.hostnameOverride"} {
		if !slices.Contains(res.Carried, k) {
			t.Errorf("%s not carried: %q", k, res.Carried)
		}
	}
	// Every key of the file is accounted for: carried, or left out.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var leaves []leaf
	flatten(doc.Content[0], "", &leaves)
	for _, l := range leaves {
		if _, isLeft := left[l.path]; !isLeft && !slices.Contains(res.Carried, l.path) && l.path != "apiVersion" && l.path != "kind" {
			t.Errorf("%s is neither carried nor left out", l.path)
		}
	}
	if err := res.Config.Validate(); err != nil {
		t.Errorf("imported config: %v", err)
	}
	out, err := config.Marshal(res.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse(out, "imported"); err != nil {
		t.Errorf("the written config does not parse back: %v", err)
	}
}

func TestImportRefusesOtherDocuments(t *testing.T) {
	for in, want := range map[string]string{
		"kind: CloudCore\n": `kind "CloudCore", want EdgeCore`,
		"- a\n":             "want a YAML mapping",
		"kind: EdgeCore\nmodules:\n  eventBus:\n    mqttMode: 7\n":    "modules.eventBus.mqttMode: want 0, 1 or 2",
		"kind: EdgeCore\nmodules:\n  edgeHub:\n    heartbeat: soon\n": "modules.edgeHub.heartbeat: want whole seconds",
	} {
		if _, err := Import([]byte(in), "e.yaml"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Import(%q) = %v, want %q", in, err, want)
		}
	}
}

func FuzzImport(f *testing.F) {
	if data, err := os.ReadFile("testdata/edgecore-defaultconfig.yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Import(data, "fuzz.yaml")
		if err != nil {
			return
		}
		if err := res.Config.Validate(); err != nil {
			t.Fatalf("Import returned an invalid config: %v", err)
		}
	})
}
