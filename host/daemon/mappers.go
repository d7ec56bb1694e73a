package daemon

import (
	"context"
	"fmt"
	"slices"

	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/devices"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/pluginhost"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// newDevices is the devices module over the plugin host's mapper plugins
// and the eventbus (nil: desired values are not written), restoring the
// cloud's devices from stored (nil: none).
func newDevices(cfg *config.Config, b *bus.Bus, plugins *pluginhost.Module, events *eventbus.Module,
	stored func(typ string) ([]devices.StoredObject, error), log hclog.Logger) *devices.Module {
	var ev devices.EventBus
	if events != nil {
		ev = events
	}
	return devices.New(b, mapperSource(plugins), ev, devices.Config{DevicesDir: cfg.Modules.Devices.Dir, NodeName: nodeName(cfg),
		Stored: stored}, log)
}

// mapperSource lists the plugin host's mapper plugins and starts its
// built-in mappers when a device needs one.
func mapperSource(p *pluginhost.Module) devices.MapperSource { return pluginMappers{p} }

// pluginMappers is the plugin host as the devices module sees it.
type pluginMappers struct{ p *pluginhost.Module }

// Mappers implements devices.MapperSource.
func (s pluginMappers) Mappers() []devices.Mapper {
	var out []devices.Mapper
	for _, mp := range s.p.Mappers() {
		out = append(out, devices.Mapper(mp))
	}
	return out
}

// StartMapper implements devices.MapperStarter.
func (s pluginMappers) StartMapper(ctx context.Context, protocol string) (bool, error) {
	return s.p.StartMapper(ctx, protocol)
}

// wasmProtocols is what DMI refuses to native mappers: the protocols the
// mapper plugins in service declare, those of the built-in mappers not
// started yet, and those the config reserves for wasm mappers not
// installed yet.
func (d *Daemon) wasmProtocols(reserved []string) func() []string {
	return func() []string {
		out := slices.Clone(reserved)
		if d.plugins != nil {
			for _, p := range append(devices.Protocols(mapperSource(d.plugins)), d.plugins.DormantProtocols()...) {
				if !slices.Contains(out, p) {
					out = append(out, p)
				}
			}
		}
		return out
	}
}

// ListDevices implements api.MappedDevicesBackend.
func (d *Daemon) ListDevices() []api.DeviceInfo {
	if d.devices == nil {
		return []api.DeviceInfo{}
	}
	return d.devices.ListDevices()
}

// GetDevice implements api.MappedDevicesBackend.
func (d *Daemon) GetDevice(id string) (api.DeviceDetail, error) {
	if d.devices == nil {
		return api.DeviceDetail{}, fmt.Errorf("device %s: %w (the plugin host is disabled, so no mapper runs)", id, api.ErrNotFound)
	}
	return d.devices.GetDevice(id)
}

var devicesMetrics = []metric[devices.Stats]{
	counter("edgehost_devices_reads_total", "Device reads answered by wasm mappers (a read call carries many devices).",
		func(s devices.Stats) float64 { return float64(s.Reads) }),
	counter("edgehost_devices_writes_total", "Desired values written to devices by wasm mappers.",
		func(s devices.Stats) float64 { return float64(s.Writes) }),
	counter("edgehost_devices_missed_cycles_total", "Collect cycles skipped: the last read was still running, or the mapper's queue was full.",
		func(s devices.Stats) float64 { return float64(s.Missed) }),
	counter("edgehost_devices_reports_total", "Twin updates of values read by wasm mappers.",
		func(s devices.Stats) float64 { return float64(s.Reports) }),
	gauge("edgehost_devices", "Devices the devices module knows.",
		func(s devices.Stats) float64 { return float64(s.Devices) }),
	gauge("edgehost_devices_bound", "Devices a wasm mapper plugin serves.",
		func(s devices.Stats) float64 { return float64(s.Bound) }),
	gauge("edgehost_devices_worst_lateness_seconds", "The longest a read was queued after its collect cycle fell due.",
		func(s devices.Stats) float64 { return s.WorstLateness.Seconds() }),
}

var devicesErrors = []metric[uint64]{
	counter("edgehost_devices_errors_total", "Errors of wasm mapper calls by kind: timeout, call, malformed, device, property, write, twin.",
		func(n uint64) float64 { return float64(n) }, "kind"),
}

// collectDevices emits the devices module's metrics.
func (d *Daemon) collectDevices(ch chan<- prometheus.Metric) {
	if d.devices == nil {
		return
	}
	s := d.devices.Stats()
	emit(ch, devicesMetrics, s)
	for _, k := range devices.KindNames {
		emit(ch, devicesErrors, s.Errors[k], k)
	}
}

// storedObjects lists what the metamanager stored of a type, for the
// devices module; nil without a metamanager.
func (d *Daemon) storedObjects(typ string) ([]devices.StoredObject, error) {
	if d.meta == nil {
		return nil, nil
	}
	objs, err := d.meta.List("", typ)
	if err != nil {
		return nil, err
	}
	out := make([]devices.StoredObject, len(objs))
	for i, o := range objs {
		out[i] = devices.StoredObject{Resource: o.Key, Content: o.Content}
	}
	return out, nil
}
