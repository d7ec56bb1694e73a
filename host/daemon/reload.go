package daemon

import (
	"bytes"

	"github.com/edgehost/edgehost/host/config"
	"github.com/hashicorp/go-hclog"
	"go.yaml.in/yaml/v3"
)

// reloadConfig re-reads the config on SIGHUP and applies what changes
// without a restart, the log level; it names the sections that changed and
// need a restart, and keeps the running config when the new one is bad. It
// returns the new config for the other reloads (nil when there is no
// config file to re-read), or why it does not load.
func (d *Daemon) reloadConfig() (*config.Config, error) {
	if d.reload == nil {
		d.log.Info("SIGHUP: no config file to re-read (run without --config or with stdin)")
		return nil, nil
	}
	next, err := d.reload()
	if err != nil {
		d.log.Warn("SIGHUP: config not reloaded; the running one is kept", "error", err)
		return nil, err
	}
	var applied []string
	if next.Log.Level != d.cfg.Log.Level {
		d.log.SetLevel(hclog.LevelFromString(next.Log.Level))
		applied = append(applied, "log.level="+next.Log.Level)
		d.cfg.Log.Level = next.Log.Level
	}
	restart := changedSections(d.cfg, next)
	d.log.Info("SIGHUP: config reloaded", "applied", applied, "changed_needs_restart", restart)
	return next, nil
}

// changedSections names the parts of the config that differ between a and
// b (log.level and the plugins' trust store aside): dataDir, log, store,
// modules.<name>.
func changedSections(a, b *config.Config) []string {
	type part struct {
		name string
		a, b any
	}
	la, lb := a.Log, b.Log
	la.Level, lb.Level = "", ""
	parts := []part{{"dataDir", a.DataDir, b.DataDir}, {"log", la, lb}, {"store", a.Store, b.Store}}
	for _, name := range []string{"bus", "plugins", "api", "eventbus", "hub", "twin", "devices", "meta"} {
		parts = append(parts, part{"modules." + name, section(&a.Modules, name), section(&b.Modules, name)})
	}
	var changed []string
	for _, p := range parts {
		ya, errA := yaml.Marshal(p.a)
		yb, errB := yaml.Marshal(p.b)
		if errA != nil || errB != nil || !bytes.Equal(ya, yb) {
			changed = append(changed, p.name)
		}
	}
	return changed
}

// section is one module's config.
func section(m *config.Modules, name string) any {
	switch name {
	case "bus":
		return m.Bus
	case "plugins":
		// The trust store is reloaded with the plugin dir (plugins.go).
		p := m.Plugins
		p.Trust = config.PluginTrust{}
		return p
	case "api":
		return m.API
	case "eventbus":
		return m.EventBus
	case "hub":
		return m.Hub
	case "twin":
		return m.Twin
	case "devices":
		return m.Devices
	}
	return m.Meta
}
