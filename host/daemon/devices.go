package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/twin"
)

// reloadSignals catches SIGHUP from the start of Run, so that it reloads
// (serveReloads) instead of ending the daemon.
func reloadSignals() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// serveReloads re-reads the config, the plugin dir, the trust store and
// the devices dir on each SIGHUP until ctx ends.
func (d *Daemon) serveReloads(ctx context.Context, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			next, cfgErr := d.reloadConfig()
			d.reloadPluginsOnSignal(ctx, next, cfgErr)
			d.log.Info("SIGHUP: re-reading the devices dir")
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			rep, err := d.ReloadDevices(rctx)
			cancel()
			switch {
			case err != nil:
				d.log.Warn("SIGHUP: devices dir not reloaded", "error", err)
			case !rep.OK():
				d.log.Warn("SIGHUP: devices dir reloaded, not fully", "dir", rep.Dir, "devices", rep.Devices, "handed_over", rep.HandedOver,
					"removed", rep.Removed, "pending", rep.Pending, "refused", rep.Refused, "error", rep.Error)
			default:
				d.log.Info("SIGHUP: devices dir reloaded", "dir", rep.Dir, "devices", rep.Devices, "handed_over", rep.HandedOver, "removed", rep.Removed)
			}
		}
	}
}

// ReloadDevices implements api.DevicesBackend.
func (d *Daemon) ReloadDevices(ctx context.Context) (api.DevicesReport, error) {
	if d.twin == nil {
		return api.DevicesReport{}, fmt.Errorf("%w: the twin module is disabled in the config", api.ErrConflict)
	}
	if d.devices != nil {
		// The mappers' view of the dir; a dir that cannot be read is the
		// twin's report's error too.
		if err := d.devices.Reload(); err != nil {
			d.log.Debug("devices module: devices dir not re-read", "error", err)
		}
	}
	rep, err := d.twin.Reload(ctx)
	if errors.Is(err, twin.ErrNoDevicesDir) {
		return api.DevicesReport{}, fmt.Errorf("%w: %w", api.ErrConflict, err)
	}
	if err != nil {
		return api.DevicesReport{}, fmt.Errorf("reload devices: %w", err)
	}
	out := api.DevicesReport{Dir: rep.Dir, Devices: rep.Devices, HandedOver: rep.HandedOver, Removed: rep.Removed,
		Pending: rep.Pending, Refused: rep.Refused, Warnings: rep.Warnings}
	if rep.Err != nil {
		out.Error = rep.Err.Error()
	}
	return out, nil
}
