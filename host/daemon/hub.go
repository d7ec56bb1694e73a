package daemon

import (
	"fmt"
	"path/filepath"

	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/hub"
	"github.com/edgehost/edgehost/host/hub/outbox"
	"github.com/edgehost/edgehost/host/store"
	"github.com/hashicorp/go-hclog"
)

// HubCertDir is where the cloud link keeps its CA, certificate and key.
func HubCertDir(dataDir string) string { return filepath.Join(dataDir, "hub", "certs") }

// newHub builds the cloud link from cfg over the store's hub/outbox
// namespace.
func newHub(cfg *config.Config, b *bus.Bus, st *store.Store, log hclog.Logger) (*hub.Module, error) {
	h := cfg.Modules.Hub
	box, err := outbox.Open(st.Namespace("hub", "outbox"), outbox.Options{TTL: h.Outbox.TTL, MaxBytes: h.Outbox.MaxBytes})
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	return hub.New(b, box, hub.Config{
		Server: h.Server, NodeName: h.NodeName, ProjectID: h.ProjectID, CertServer: h.HTTPServer, Token: h.Token,
		CertDir: HubCertDir(cfg.DataDir), Heartbeat: h.Heartbeat, QPS: float64(h.MessageQPS), Burst: h.MessageBurst,
		ReconnectMax: h.ReconnectMax, MaxFrameBytes: h.MaxFrameBytes, RotateCertificates: h.RotateCertificates,
	}, log), nil
}
