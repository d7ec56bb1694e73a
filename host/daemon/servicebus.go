package daemon

import (
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/servicebus"
	"github.com/edgehost/edgehost/host/store"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// newServiceBus builds the servicebus from cfg; its replies must fit the
// cloud link's frames, so it gets the hub's frame limit.
func newServiceBus(cfg *config.Config, b *bus.Bus, st *store.Store, log hclog.Logger) *servicebus.Module {
	s := cfg.Modules.ServiceBus
	return servicebus.New(b, servicebus.Config{ClientTimeout: s.ClientTimeout, MaxBodyBytes: s.MaxBodyBytes,
		MaxFrameBytes: cfg.Modules.Hub.MaxFrameBytes, Concurrency: s.Concurrency, Store: st,
		Server: servicebus.ServerConfig{Enable: s.Server.Enable, Address: s.Server.Address, Timeout: s.Server.Timeout}}, log)
}

var serviceBusMetrics = []metric[servicebus.Stats]{
	counter("edgehost_servicebus_requests_total", "Cloud requests for local services the servicebus took.",
		func(s servicebus.Stats) float64 { return float64(s.Requests) }),
	counter("edgehost_servicebus_answered_total", "Cloud requests answered with the local service's own response.",
		func(s servicebus.Stats) float64 { return float64(s.Answered) }),
	counter("edgehost_servicebus_routed_total", "Cloud requests a route plugin took (the rest took the default route).",
		func(s servicebus.Stats) float64 { return float64(s.Routed) }),
	counter("edgehost_servicebus_answer_seconds_total", "Seconds spent serving the answered cloud requests (divide by answered_total for the mean).",
		func(s servicebus.Stats) float64 { return s.Duration }),
	gauge("edgehost_servicebus_in_flight", "Cloud requests being served now (at most modules.servicebus.concurrency).",
		func(s servicebus.Stats) float64 { return float64(s.InFlight) }),
	counter("edgehost_servicebus_upstream_total", "Local apps' requests sent to the cloud.",
		func(s servicebus.Stats) float64 { return float64(s.Upstream) }),
	counter("edgehost_servicebus_upstream_answered_total", "Local apps' requests the cloud answered.",
		func(s servicebus.Stats) float64 { return float64(s.UpstreamAnswered) }),
	gauge("edgehost_servicebus_targets", "Target URLs the cloud allows local apps to call now.",
		func(s servicebus.Stats) float64 { return float64(s.Targets) }),
}

var serviceBusRefused = []metric[uint64]{
	counter("edgehost_servicebus_refused_total", "Servicebus requests refused or failed, by reason (docs/servicebus.md).",
		func(n uint64) float64 { return float64(n) }, "reason"),
}

// describeServiceBus sends the servicebus metrics' descriptors.
func describeServiceBus(ch chan<- *prometheus.Desc) {
	describe(ch, serviceBusMetrics)
	describe(ch, serviceBusRefused)
}

// collectServiceBus emits the servicebus metrics.
func (d *Daemon) collectServiceBus(ch chan<- prometheus.Metric) {
	if d.servicebus == nil {
		return
	}
	s := d.servicebus.Stats()
	emit(ch, serviceBusMetrics, s)
	for _, r := range servicebus.Reasons() {
		emit(ch, serviceBusRefused, s.Refused[r], string(r))
	}
}
