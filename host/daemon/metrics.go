package daemon

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/hub"
	"github.com/edgehost/edgehost/host/meta"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/supervisor"
	"github.com/edgehost/edgehost/host/twin"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The daemon's Prometheus metrics are read from the counters its parts
// already keep, at scrape time: nothing here counts anything itself.
// docs/api.md lists every metric.

// Metrics implements api.MetricsBackend: the Prometheus exposition of the
// daemon's registry, which holds the daemon's counters, the Go runtime's
// and the process's.
func (d *Daemon) Metrics() http.Handler {
	opts := promhttp.HandlerOpts{}
	if d.log != nil {
		opts.ErrorLog = d.log.Named("metrics").StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn})
	}
	return promhttp.HandlerFor(d.registry(), opts)
}

// metricsRegistry is the daemon's private registry, built on first use.
type metricsRegistry struct {
	once sync.Once
	reg  *prometheus.Registry
}

// registry returns the daemon's registry, building it the first time.
func (d *Daemon) registry() *prometheus.Registry {
	d.metrics.once.Do(func() {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collector{d},
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		d.metrics.reg = reg
	})
	return d.metrics.reg
}

// collector is a prometheus.Collector over the daemon's bus, plugin host,
// eventbus, store, supervisor and metamanager. A part the daemon does not run (nil)
// contributes no metrics. It reads the Daemon's fields at scrape time, so
// it may be built before Run has set them all.
type collector struct{ d *Daemon }

// metric is one metric family whose value comes from a snapshot of type S.
type metric[S any] struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(S) float64
}

// counter is a counter family named name, labelled with labels.
func counter[S any](name, help string, value func(S) float64, labels ...string) metric[S] {
	return metric[S]{prometheus.NewDesc(name, help, labels, nil), prometheus.CounterValue, value}
}

// gauge is a gauge family named name, labelled with labels.
func gauge[S any](name, help string, value func(S) float64, labels ...string) metric[S] {
	return metric[S]{prometheus.NewDesc(name, help, labels, nil), prometheus.GaugeValue, value}
}

// describe sends the descriptors of ms.
func describe[S any](ch chan<- *prometheus.Desc, ms []metric[S]) {
	for _, m := range ms {
		ch <- m.desc
	}
}

// emit sends every metric of ms for the snapshot s, with the given label
// values.
func emit[S any](ch chan<- prometheus.Metric, ms []metric[S], s S, labels ...string) {
	for _, m := range ms {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(s), labels...)
	}
}

// boolValue is 1 for true and 0 for false.
func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var busModuleMetrics = []metric[bus.ModuleStats]{
	counter("edgehost_bus_messages_sent_total", "Messages queued for the bus module.",
		func(s bus.ModuleStats) float64 { return float64(s.Sent) }, "module", "group"),
	counter("edgehost_bus_messages_received_total", "Messages the bus module took from its queue.",
		func(s bus.ModuleStats) float64 { return float64(s.Received) }, "module", "group"),
	counter("edgehost_bus_messages_failed_total",
		"Sends to the bus module that failed: its queue stayed full until the deadline, or it closed while the sender waited.",
		func(s bus.ModuleStats) float64 { return float64(s.Failed) }, "module", "group"),
	gauge("edgehost_bus_queue_depth", "Messages waiting in the bus module's queue now.",
		func(s bus.ModuleStats) float64 { return float64(s.Queued) }, "module", "group"),
	gauge("edgehost_bus_queue_capacity", "Messages the bus module's queue holds at most.",
		func(s bus.ModuleStats) float64 { return float64(s.Capacity) }, "module", "group"),
}

var busMetrics = []metric[bus.Stats]{
	counter("edgehost_bus_no_module_total", "Sends and requests addressed to an unknown bus module or an empty group.",
		func(s bus.Stats) float64 { return float64(s.NoModule) }),
	counter("edgehost_bus_no_waiter_total", "Replies on the bus that no request was waiting for.",
		func(s bus.Stats) float64 { return float64(s.NoWaiter) }),
	counter("edgehost_bus_requests_abandoned_total",
		"Bus requests whose caller stopped waiting (deadline, cancellation, bus closed) before the reply came.",
		func(s bus.Stats) float64 { return float64(s.Abandoned) }),
	counter("edgehost_bus_messages_dropped_total", "Messages still queued when their bus module or the bus closed.",
		func(s bus.Stats) float64 { return float64(s.Dropped) }),
	gauge("edgehost_bus_requests_pending", "Bus requests waiting for a reply now.",
		func(s bus.Stats) float64 { return float64(s.Pending) }),
}

var pluginMetrics = []metric[api.PluginInfo]{
	counter("edgehost_plugin_calls_total", "Calls admitted to the plugin's loaded version.",
		func(p api.PluginInfo) float64 { return float64(p.Calls) }, "plugin"),
	counter("edgehost_plugin_faults_total", "Calls to the plugin's loaded version that faulted: trap, timeout, out of memory or bad reply.",
		func(p api.PluginInfo) float64 { return float64(p.Faults) }, "plugin"),
	counter("edgehost_plugin_denied_total", "Host calls of the plugin refused for want of a grant.",
		func(p api.PluginInfo) float64 { return float64(p.Denied) }, "plugin"),
	counter("edgehost_plugin_held_failed_total",
		"Sends and MQTT publishes of the plugin held until its call's KV writes committed that then failed to go out.",
		func(p api.PluginInfo) float64 { return float64(p.HeldFailed) }, "plugin"),
	counter("edgehost_plugin_mqtt_dropped_total", "MQTT messages for the plugin's subscriptions that did not reach its queue.",
		func(p api.PluginInfo) float64 { return float64(p.MQTTDropped) }, "plugin"),
	counter("edgehost_plugin_tick_failed_total", "Calls of the plugin's edgehost_tick that failed.",
		func(p api.PluginInfo) float64 { return float64(p.TickFailed) }, "plugin"),
	counter("edgehost_plugin_loops_total",
		"Requests refused because they would reach the plugin while it waits for their reply, and messages of the plugin refused for a chain past 16 hops.",
		func(p api.PluginInfo) float64 { return float64(p.Loops) }, "plugin"),
	gauge("edgehost_plugin_io_handles", "Device I/O handles (TCP, UDP, serial) open in the plugin's live instances.",
		func(p api.PluginInfo) float64 { return float64(p.IOHandles) }, "plugin"),
	counter("edgehost_plugin_io_read_bytes_total", "Bytes the plugin read from devices through its I/O handles.",
		func(p api.PluginInfo) float64 { return float64(p.IOBytesIn) }, "plugin"),
	counter("edgehost_plugin_io_written_bytes_total", "Bytes the plugin wrote to devices through its I/O handles.",
		func(p api.PluginInfo) float64 { return float64(p.IOBytesOut) }, "plugin"),
	gauge("edgehost_plugin_instances", "Live instances of the plugin.",
		func(p api.PluginInfo) float64 { return float64(p.Instances) }, "plugin"),
	gauge("edgehost_plugin_memory_bytes", "Linear memory held by the plugin's live instances, as of their last call.",
		func(p api.PluginInfo) float64 { return float64(p.MemoryPages) * 65536 }, "plugin"),
	gauge("edgehost_plugin_quarantined", "1 while the plugin is quarantined after repeated faults, else 0.",
		func(p api.PluginInfo) float64 { return boolValue(p.State == wasm.StateQuarantined.String()) }, "plugin"),
}

// pluginStates are the states of api.PluginInfo.State (docs/api.md);
// edgehost_plugin_state has a series for each.
var pluginStates = []string{
	wasm.StateReady.String(), wasm.StateQuarantined.String(), wasm.StateClosed.String(), "disabled", "failed",
}

var pluginState = prometheus.NewDesc("edgehost_plugin_state",
	"1 for the plugin's current state, 0 for its other states.", []string{"plugin", "state"}, nil)

var eventbusMetrics = []metric[eventbus.Stats]{
	counter("edgehost_eventbus_published_total",
		"MQTT messages handed to a broker, once per broker; a queued publish counts when it goes out.",
		func(s eventbus.Stats) float64 { return float64(s.Published) }),
	counter("edgehost_eventbus_received_total", "MQTT messages taken from a broker by the bridge or by a subscription.",
		func(s eventbus.Stats) float64 { return float64(s.Received) }),
	counter("edgehost_eventbus_bridged_total", "MQTT messages the bridge put on the bus.",
		func(s eventbus.Stats) float64 { return float64(s.Bridged) }),
	counter("edgehost_eventbus_unrouted_total", "Bridged MQTT messages whose bus group had no module.",
		func(s eventbus.Stats) float64 { return float64(s.Unrouted) }),
	counter("edgehost_eventbus_bus_failed_total",
		"Bridged MQTT messages whose bus send failed otherwise: a full queue until the deadline, a closed bus.",
		func(s eventbus.Stats) float64 { return float64(s.BusFailed) }),
	counter("edgehost_eventbus_rejected_total",
		"MQTT messages refused: invalid topic, payload over the limit or malformed, full queue, bad packet from an embedded-broker client, bad bus request.",
		func(s eventbus.Stats) float64 { return float64(s.Rejected) }),
	counter("edgehost_eventbus_queue_full_total", "Publishes refused because the external-broker queue was full (also in rejected).",
		func(s eventbus.Stats) float64 { return float64(s.QueueFull) }),
	counter("edgehost_eventbus_queued_total", "Publishes that waited in the queue for the external broker.",
		func(s eventbus.Stats) float64 { return float64(s.Queued) }),
	gauge("edgehost_eventbus_queue_depth", "Publishes waiting in the queue for the external broker now.",
		func(s eventbus.Stats) float64 { return float64(s.QueueDepth) }),
	counter("edgehost_eventbus_reconnects_total", "Connections to the external broker made after one was lost or failed.",
		func(s eventbus.Stats) float64 { return float64(s.Reconnects) }),
	gauge("edgehost_eventbus_external_connected", "1 while the external broker is connected, else 0 (always 0 in embedded mode).",
		func(s eventbus.Stats) float64 { return boolValue(s.Connected) }),
	counter("edgehost_eventbus_subscriber_dropped_all_total",
		"Messages lost by any subscriber queue, ended ones included: QoS 0 finding it full, or still queued when it ended.",
		func(s eventbus.Stats) float64 { return float64(s.SubscriberDropped) }),
	counter("edgehost_eventbus_subscriber_refused_all_total",
		"QoS 1 messages refused by any subscriber queue, ended ones included, after their back-pressure bound.",
		func(s eventbus.Stats) float64 { return float64(s.SubscriberRefused) }),
	counter("edgehost_eventbus_client_inflight_dropped_total",
		"Messages the embedded broker dropped for a client with maxInflight unacknowledged QoS 1 messages (or no packet id left).",
		func(s eventbus.Stats) float64 { return float64(s.InflightDropped) }),
	counter("edgehost_eventbus_client_writes_dropped_total",
		"Messages the embedded broker dropped for a client with maxPendingWrites packets waiting to be written.",
		func(s eventbus.Stats) float64 { return float64(s.WritesDropped) }),
}

// eventbusSubscriberMetrics are labelled with the subscriber (a plugin's
// name, or "bridge") and its filter.
var eventbusSubscriberMetrics = []metric[eventbus.SubscriberStats]{
	counter("edgehost_eventbus_subscriber_delivered_total", "MQTT messages the subscriber's queue handed to it.",
		func(s eventbus.SubscriberStats) float64 { return float64(s.Delivered) }, "subscriber", "filter"),
	counter("edgehost_eventbus_subscriber_dropped_total",
		"MQTT messages the subscriber lost: QoS 0 finding its queue full, or still queued when it unsubscribed.",
		func(s eventbus.SubscriberStats) float64 { return float64(s.Dropped) }, "subscriber", "filter"),
	counter("edgehost_eventbus_subscriber_refused_total",
		"QoS 1 MQTT messages refused because the subscriber's queue stayed full past their back-pressure bound.",
		func(s eventbus.SubscriberStats) float64 { return float64(s.Refused) }, "subscriber", "filter"),
	gauge("edgehost_eventbus_subscriber_queue_depth", "MQTT messages waiting in the subscriber's queue now.",
		func(s eventbus.SubscriberStats) float64 { return float64(s.Depth) }, "subscriber", "filter"),
	gauge("edgehost_eventbus_subscriber_queue_capacity", "MQTT messages the subscriber's queue holds at most (subscriberQueue).",
		func(s eventbus.SubscriberStats) float64 { return float64(s.Capacity) }, "subscriber", "filter"),
}

var runtimeMetrics = []metric[*wasm.Runtime]{
	counter("edgehost_wasm_cache_resets_total",
		"Times an unreadable compilation cache entry made the plugin runtime empty the on-disk cache and compile again.",
		func(r *wasm.Runtime) float64 { return float64(r.CacheResets()) }),
}

var storeMetrics = []metric[store.Stats]{
	counter("edgehost_store_commits_total", "Write transactions committed to the store file, one fsync each.",
		func(s store.Stats) float64 { return float64(s.Commits) }),
	counter("edgehost_store_updates_total", "Store updates committed; updates per commit is the group-commit batch size.",
		func(s store.Stats) float64 { return float64(s.Updates) }),
	counter("edgehost_store_panics_total", "bbolt panics and memory faults on the store file recovered into errors (also in edgehost_store_errors_total).",
		func(s store.Stats) float64 { return float64(s.Panics) }),
	counter("edgehost_store_snapshots_total", "Store snapshots written and verified.",
		func(s store.Stats) float64 { return float64(s.Snapshots) }),
	counter("edgehost_store_snapshot_failures_total", "Store snapshots that failed to be written or verified.",
		func(s store.Stats) float64 { return float64(s.SnapshotFailures) }),
	gauge("edgehost_store_last_snapshot_age_seconds", "Seconds since the last store snapshot, or since the store was opened if none was written yet.",
		func(s store.Stats) float64 { return time.Since(firstNonZero(s.LastSnapshot.Time, s.Opened)).Seconds() }),
	gauge("edgehost_store_check_seconds", "How long the store's consistency check at start took.",
		func(s store.Stats) float64 { return s.Check.Elapsed.Seconds() }),
	gauge("edgehost_store_check_complete", "1 if the consistency check at start covered the whole store file, 0 if its time limit cut it short (or the store was new).",
		func(s store.Stats) float64 { return boolValue(s.Check.Complete) }),
}

// storeErrors is labelled by op, read or write: the store file's own
// failures, not the callers' errors.
var storeErrors = []metric[uint64]{
	counter("edgehost_store_errors_total", "Store reads (op=read) and write transactions (op=write) that bbolt failed or panicked on.",
		func(n uint64) float64 { return float64(n) }, "op"),
}

func firstNonZero(a, b time.Time) time.Time {
	if a.IsZero() {
		return b
	}
	return a
}

var twinMetrics = []metric[twin.Stats]{
	counter("edgehost_twin_upstream_total", "The twin plugin's messages for the cloud handed to the cloud link.",
		func(s twin.Stats) float64 { return float64(s.Upstream) }),
	counter("edgehost_twin_upstream_dropped_total", "The twin plugin's messages for the cloud that could not be handed to the cloud link (no link, a full queue).",
		func(s twin.Stats) float64 { return float64(s.UpstreamDropped) }),
	counter("edgehost_twin_confirms_total", "The cloud's confirms of upstream twin messages.",
		func(s twin.Stats) float64 { return float64(s.Confirms) }),
}

var metaMetrics = []metric[meta.Stats]{
	counter("edgehost_meta_objects_stored_total", "Cloud objects the metamanager wrote to the store (inserts, updates, answers to remote queries).",
		func(s meta.Stats) float64 { return float64(s.Stored) }),
	counter("edgehost_meta_objects_deleted_total", "Stored objects the metamanager removed on the cloud's delete.",
		func(s meta.Stats) float64 { return float64(s.Deleted) }),
	counter("edgehost_meta_duplicates_total", "Cloud objects received again with the stored resource version: acknowledged, not applied again.",
		func(s meta.Stats) float64 { return float64(s.Duplicates) }),
	counter("edgehost_meta_pod_uid_mismatch_total", "Pod deletes for another uid than the stored pod's: acknowledged, the stored pod kept.",
		func(s meta.Stats) float64 { return float64(s.UIDMismatch) }),
	counter("edgehost_meta_store_errors_total", "Cloud objects the store failed to write; they were not acknowledged.",
		func(s meta.Stats) float64 { return float64(s.StoreErrors) }),
	counter("edgehost_meta_acks_total", "Acknowledgements the metamanager handed to the hub, each after its object was durable.",
		func(s meta.Stats) float64 { return float64(s.Acks) }),
	counter("edgehost_meta_acks_unsent_total", "Acknowledgements that could not be handed to the hub (no hub module, full queue).",
		func(s meta.Stats) float64 { return float64(s.AckUnsent) }),
	counter("edgehost_meta_forwarded_total", "Cloud objects handed to the module that owns them.",
		func(s meta.Stats) float64 { return float64(s.Forwarded) }),
	counter("edgehost_meta_unrouted_total", "Cloud objects whose owner group had no module (pods while modules.edged is off); stored all the same.",
		func(s meta.Stats) float64 { return float64(s.Unrouted) }),
	counter("edgehost_meta_queries_failed_total", "Queries answered with an error: a remote query that timed out or failed, a store read error.",
		func(s meta.Stats) float64 { return float64(s.QueryFailed) }),
	gauge("edgehost_meta_cloud_connected", "1 while the hub last reported the cloud connected, else 0.",
		func(s meta.Stats) float64 { return boolValue(s.Connected) }),
}

// metaQueries is labelled by where the answer came from, local (the store)
// or remote (the cloud).
var metaQueries = []metric[uint64]{
	counter("edgehost_meta_queries_total", "Queries the metamanager answered from the store (answer=local) or sent to the cloud (answer=remote).",
		func(n uint64) float64 { return float64(n) }, "answer"),
}

// metaRefused is labelled by reason (docs/meta.md lists them).
var metaRefused = []metric[uint64]{
	counter("edgehost_meta_refused_total", "Messages the metamanager refused, by reason; nothing stored was changed.",
		func(n uint64) float64 { return float64(n) }, "reason"),
}

var hubMetrics = []metric[hub.Stats]{
	gauge("edgehost_hub_connected", "1 while the cloud link is up, else 0.",
		func(s hub.Stats) float64 { return boolValue(s.Connected) }),
	counter("edgehost_hub_connects_total", "Cloud links made.",
		func(s hub.Stats) float64 { return float64(s.Connects) }),
	counter("edgehost_hub_disconnects_total", "Cloud links lost: a read or write error, or two heartbeats without a frame.",
		func(s hub.Stats) float64 { return float64(s.Disconnects) }),
	counter("edgehost_hub_dial_failures_total", "Dials of the cloud (and certificate bootstraps) that failed.",
		func(s hub.Stats) float64 { return float64(s.DialFailures) }),
	counter("edgehost_hub_frames_in_total", "Downstream frames dispatched to the bus.",
		func(s hub.Stats) float64 { return float64(s.FramesIn) }),
	counter("edgehost_hub_frames_out_total", "Upstream messages written to the cloud link (again after a reconnect, if unacknowledged).",
		func(s hub.Stats) float64 { return float64(s.FramesOut) }),
	counter("edgehost_hub_keepalives_total", "Keepalives written to the cloud link.",
		func(s hub.Stats) float64 { return float64(s.Keepalives) }),
	counter("edgehost_hub_certificate_rotations_total", "Client certificates renewed with the current one.",
		func(s hub.Stats) float64 { return float64(s.Rotations) }),
	counter("edgehost_hub_certificate_rotation_failures_total", "Client certificate renewals that failed (retried while the current one is valid).",
		func(s hub.Stats) float64 { return float64(s.RotationFailures) }),
	gauge("edgehost_hub_outbox_depth", "Upstream messages waiting in the durable outbox.",
		func(s hub.Stats) float64 { return float64(s.Outbox.Depth) }),
	gauge("edgehost_hub_outbox_bytes", "Bytes of upstream frames waiting in the durable outbox.",
		func(s hub.Stats) float64 { return float64(s.Outbox.Bytes) }),
	gauge("edgehost_hub_outbox_max_bytes", "The outbox's byte cap (modules.hub.outbox.maxBytes).",
		func(s hub.Stats) float64 { return float64(s.Outbox.MaxBytes) }),
	gauge("edgehost_hub_outbox_oldest_age_seconds", "How long the oldest outbox entry has waited; 0 when empty.",
		func(s hub.Stats) float64 { return s.Outbox.OldestAge.Seconds() }),
	counter("edgehost_hub_outbox_appended_total", "Upstream messages committed to the outbox.",
		func(s hub.Stats) float64 { return float64(s.Outbox.Appended) }),
	counter("edgehost_hub_outbox_sent_total", "Outbox entries removed once the cloud acknowledged reading them.",
		func(s hub.Stats) float64 { return float64(s.Outbox.Sent) }),
	counter("edgehost_hub_outbox_expired_total", "Outbox entries removed unsent after modules.hub.outbox.ttl.",
		func(s hub.Stats) float64 { return float64(s.Outbox.Expired) }),
	counter("edgehost_hub_outbox_refused_total", "Upstream messages refused because the outbox was full.",
		func(s hub.Stats) float64 { return float64(s.Outbox.Refused) }),
}

// hubRefused is labelled by reason: hub.RefusedReasons downstream,
// hub.UpstreamRefusedReasons upstream.
var hubRefused = []metric[uint64]{
	counter("edgehost_hub_refused_total", "Downstream frames refused, by reason.",
		func(n uint64) float64 { return float64(n) }, "reason"),
}

var hubUpstreamRefused = []metric[uint64]{
	counter("edgehost_hub_upstream_refused_total", "Upstream messages refused before the outbox, by reason.",
		func(n uint64) float64 { return float64(n) }, "reason"),
}

var moduleMetrics = []metric[supervisor.ModuleStatus]{
	gauge("edgehost_module_up", "1 while the daemon module is running, else 0.",
		func(m supervisor.ModuleStatus) float64 { return boolValue(m.State == supervisor.Running) }, "module"),
	counter("edgehost_module_restarts_total", "Restarts of the daemon module after it failed.",
		func(m supervisor.ModuleStatus) float64 { return float64(m.Restarts) }, "module"),
}

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch, busModuleMetrics)
	describe(ch, busMetrics)
	describe(ch, pluginMetrics)
	ch <- pluginState
	describe(ch, eventbusMetrics)
	describe(ch, eventbusSubscriberMetrics)
	describe(ch, storeMetrics)
	describe(ch, storeErrors)
	describe(ch, runtimeMetrics)
	describe(ch, moduleMetrics)
	describe(ch, twinMetrics)
	describe(ch, devicesMetrics)
	describe(ch, devicesErrors)
	describe(ch, metaMetrics)
	describe(ch, metaQueries)
	describe(ch, metaRefused)
	describe(ch, hubMetrics)
	describe(ch, hubRefused)
	describe(ch, hubUpstreamRefused)
	describeServiceBus(ch)
	describe(ch, edgedMetrics)
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	if d.bus != nil {
		s := d.bus.Stats()
		emit(ch, busMetrics, s)
		for _, m := range s.Modules {
			emit(ch, busModuleMetrics, m, m.Name, m.Group)
		}
	}
	if d.plugins != nil {
		for _, p := range d.plugins.List() {
			emit(ch, pluginMetrics, p, p.Name)
			for _, state := range pluginStates {
				ch <- prometheus.MustNewConstMetric(pluginState, prometheus.GaugeValue, boolValue(p.State == state), p.Name, state)
			}
			// A state this list does not know still shows as current.
			if !slices.Contains(pluginStates, p.State) {
				ch <- prometheus.MustNewConstMetric(pluginState, prometheus.GaugeValue, 1, p.Name, p.State)
			}
		}
	}
	if d.events != nil {
		s := d.events.Stats()
		emit(ch, eventbusMetrics, s)
		for _, sub := range s.Subscribers {
			emit(ch, eventbusSubscriberMetrics, sub, sub.Owner, sub.Filter)
		}
	}
	if d.store != nil {
		st := d.store.Stats()
		emit(ch, storeMetrics, st)
		emit(ch, storeErrors, st.ReadErrors, "read")
		emit(ch, storeErrors, st.WriteErrors, "write")
	}
	if d.runtime != nil {
		emit(ch, runtimeMetrics, d.runtime)
	}
	if d.super != nil {
		for _, m := range d.super.Status() {
			emit(ch, moduleMetrics, m, m.Name)
		}
	}
	if d.twin != nil {
		emit(ch, twinMetrics, d.twin.Stats())
	}
	d.collectDevices(ch)
	d.collectServiceBus(ch)
	if d.meta != nil {
		s := d.meta.Stats()
		emit(ch, metaMetrics, s)
		emit(ch, metaQueries, s.QueriesLocal, "local")
		emit(ch, metaQueries, s.QueriesRemote, "remote")
		for _, r := range meta.Reasons() {
			emit(ch, metaRefused, s.Refused[r], r.String())
		}
	}
	if d.edged != nil {
		emit(ch, edgedMetrics, d.edged.Stats())
	}
	if d.hub != nil {
		s := d.hub.Stats()
		emit(ch, hubMetrics, s)
		for _, r := range hub.RefusedReasons {
			emit(ch, hubRefused, s.Refused[r], r)
		}
		for _, r := range hub.UpstreamRefusedReasons {
			emit(ch, hubUpstreamRefused, s.UpstreamRefused[r], r)
		}
	}
}
