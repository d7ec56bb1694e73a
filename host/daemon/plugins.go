package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/pluginhost"
)

// The Daemon serves the admin API's plugin endpoints through the plugin
// host. Every method fails when plugins are disabled in the config.

var errNoPlugins = fmt.Errorf("%w: the plugins module is disabled in the config", api.ErrConflict)

// Plugins implements api.PluginBackend.
func (d *Daemon) Plugins() []api.PluginInfo {
	if d.plugins == nil {
		return []api.PluginInfo{}
	}
	return d.plugins.List()
}

// Plugin implements api.PluginBackend.
func (d *Daemon) Plugin(name string) (api.PluginInfo, error) {
	if d.plugins == nil {
		return api.PluginInfo{}, errNoPlugins
	}
	info, err := d.plugins.Info(name)
	return info, apiError(err)
}

// InstallPlugin implements api.PluginBackend.
func (d *Daemon) InstallPlugin(ctx context.Context, file []byte, source string, upgrade bool) (api.PluginInfo, error) {
	if d.plugins == nil {
		return api.PluginInfo{}, errNoPlugins
	}
	src := pluginhost.SourceRemote
	if source == api.SourceLocal {
		src = pluginhost.SourceLocal
	}
	var info pluginhost.Info
	var err error
	if upgrade {
		info, err = d.plugins.Upgrade(ctx, file, src)
	} else {
		info, err = d.plugins.Install(ctx, file, src)
	}
	return info, apiError(err)
}

// RollbackPlugin implements api.PluginBackend.
func (d *Daemon) RollbackPlugin(ctx context.Context, name string) (api.PluginInfo, error) {
	if d.plugins == nil {
		return api.PluginInfo{}, errNoPlugins
	}
	info, err := d.plugins.Rollback(ctx, name)
	return info, apiError(err)
}

// SetPluginEnabled implements api.PluginBackend.
func (d *Daemon) SetPluginEnabled(ctx context.Context, name string, enabled bool) (api.PluginInfo, error) {
	if d.plugins == nil {
		return api.PluginInfo{}, errNoPlugins
	}
	info, err := d.plugins.SetEnabled(ctx, name, enabled)
	return info, apiError(err)
}

// RemovePlugin implements api.PluginBackend.
func (d *Daemon) RemovePlugin(ctx context.Context, name string) error {
	if d.plugins == nil {
		return errNoPlugins
	}
	return apiError(d.plugins.Remove(ctx, name))
}

// PluginLogs implements api.PluginBackend.
func (d *Daemon) PluginLogs(name string, n int) ([]api.LogLine, error) {
	if d.plugins == nil {
		return nil, errNoPlugins
	}
	lines, err := d.plugins.Logs(name, n)
	if err != nil {
		return nil, apiError(err)
	}
	out := make([]api.LogLine, len(lines))
	for i, l := range lines {
		out[i] = api.LogLine(l)
	}
	return out, nil
}

// ReloadPlugins implements api.PluginReloader: the config is re-read for
// its trust store, as SIGHUP does.
func (d *Daemon) ReloadPlugins(ctx context.Context) (api.PluginsReport, error) {
	var next *config.Config
	var cfgErr error
	if d.reload != nil {
		next, cfgErr = d.reload()
	}
	return d.reloadPlugins(ctx, next, cfgErr)
}

// reloadPlugins re-reads the plugin dir, and makes next's trust store (if
// next is not nil) the one of the installs that follow; cfgErr says why
// there is no next.
func (d *Daemon) reloadPlugins(ctx context.Context, next *config.Config, cfgErr error) (api.PluginsReport, error) {
	if d.plugins == nil {
		return api.PluginsReport{}, errNoPlugins
	}
	var trust *config.PluginTrust
	if next != nil {
		trust = &next.Modules.Plugins.Trust
	}
	rep, err := d.plugins.Reload(ctx, trust)
	if cfgErr != nil {
		rep.Error = fmt.Sprintf("config not re-read, the trust store in force is kept: %v", cfgErr)
	}
	return rep, apiError(err)
}

// reloadPluginsOnSignal is reloadPlugins for SIGHUP: it logs a line for
// the trust store and one for the plugin dir, with counts, and a line per
// refused file (pluginhost).
func (d *Daemon) reloadPluginsOnSignal(ctx context.Context, next *config.Config, cfgErr error) {
	if d.plugins == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	rep, err := d.reloadPlugins(rctx, next, cfgErr)
	if t := rep.Trust; t != nil {
		d.log.Info("SIGHUP: trust store reloaded", "keys", t.Keys, "added", len(t.Added), "removed", len(t.Removed),
			"revoked", t.Revoked, "policy_local", t.PolicyLocal, "policy_remote", t.PolicyRemote)
	}
	switch {
	case err != nil:
		d.log.Warn("SIGHUP: plugin dir not reloaded", "error", err)
	case len(rep.Refused) > 0:
		d.log.Warn("SIGHUP: plugin dir reloaded, not fully", "dir", rep.Dir, "plugins", rep.Plugins, "loaded", len(rep.Loaded),
			"upgraded", len(rep.Upgraded), "removed", len(rep.Removed), "unchanged", rep.Unchanged, "refused", rep.Refused)
	default:
		d.log.Info("SIGHUP: plugin dir reloaded", "dir", rep.Dir, "plugins", rep.Plugins, "loaded", len(rep.Loaded),
			"upgraded", len(rep.Upgraded), "removed", len(rep.Removed), "unchanged", rep.Unchanged)
	}
}

// apiError marks a plugin host error with the API error of its kind.
func apiError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pluginhost.ErrNotFound):
		return kindError{api.ErrNotFound, err}
	case errors.Is(err, pluginhost.ErrConflict), errors.Is(err, pluginhost.ErrNotRunning):
		return kindError{api.ErrConflict, err}
	case errors.Is(err, pluginhost.ErrRefused):
		return kindError{api.ErrRefused, err}
	}
	return err
}

// kindError is err, also matching kind with errors.Is, without changing
// its message.
type kindError struct{ kind, err error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }
