package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgehost/edgehost/host/api"
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
