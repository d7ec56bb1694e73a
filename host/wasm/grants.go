package wasm

import (
	"net/url"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/iogrant"
)

// Grants decides at call time whether a plugin may use a capability. The
// send, request, KV, mqtt_publish, mqtt_subscribe, tcp_connect, udp_open,
// serial_open and http_request imports ask it before acting; a refusal returns
// abi.Denied to the guest, is logged and counted in Status.Denied. A nil
// Grants allows everything (an operator-trusted plugin). Implementations
// must be safe for concurrent use and should not allocate.
type Grants interface {
	// AllowSend reports whether the plugin may send or request a message
	// with this route.
	AllowSend(group, operation, resource string) bool
	// AllowKV reports whether the plugin may use key (or list under the
	// prefix key) in its namespace.
	AllowKV(key string) bool
	// AllowPublish reports whether the plugin may publish on the MQTT
	// topic (a valid topic name).
	AllowPublish(topic string) bool
	// AllowSubscribe reports whether the plugin may subscribe to the MQTT
	// topic filter (a valid filter): whether its grants cover every topic
	// the filter matches.
	AllowSubscribe(filter string) bool
	// AllowTCP reports whether the plugin may connect to t (abi/SPEC.md
	// section 5.2: an address only by an address grant, a name only by a
	// grant of that name).
	AllowTCP(t iogrant.Target) bool
	// AllowUDP reports whether the plugin may open a UDP socket to t.
	AllowUDP(t iogrant.Target) bool
	// AllowSerial reports whether the plugin may open the serial device at
	// path (absolute and clean).
	AllowSerial(path string) bool
	// AllowHTTP reports whether the plugin may make an HTTP request to u,
	// an absolute http or https URL (abi/SPEC.md section 5.3).
	AllowHTTP(u *url.URL) bool
}

// deny counts and logs a refused host call and returns the result for the
// guest.
func (inst *instance) deny(imp, what, value string) uint64 {
	inst.p.health.denied.Add(1)
	inst.p.logger.Warn("capability denied", "import", imp, what, value)
	return fail(abi.Denied)
}

// allowSend checks m's route against the plugin's grants.
func (inst *instance) allowSend(m *abi.Message) bool {
	g := inst.p.grants
	return g == nil || g.AllowSend(m.Route.Group, m.Route.Operation, m.Route.Resource)
}

// allowKV checks key against the plugin's grants.
func (inst *instance) allowKV(key string) bool {
	g := inst.p.grants
	return g == nil || g.AllowKV(key)
}

// allowPublish checks an MQTT topic against the plugin's grants.
func (inst *instance) allowPublish(topic string) bool {
	g := inst.p.grants
	return g == nil || g.AllowPublish(topic)
}

// allowSubscribe checks an MQTT topic filter against the plugin's grants.
func (inst *instance) allowSubscribe(filter string) bool {
	g := inst.p.grants
	return g == nil || g.AllowSubscribe(filter)
}

// allowTCP, allowUDP and allowSerial check a device I/O open against the
// plugin's grants.
func (inst *instance) allowTCP(t iogrant.Target) bool {
	g := inst.p.grants
	return g == nil || g.AllowTCP(t)
}

func (inst *instance) allowUDP(t iogrant.Target) bool {
	g := inst.p.grants
	return g == nil || g.AllowUDP(t)
}

func (inst *instance) allowSerial(path string) bool {
	g := inst.p.grants
	return g == nil || g.AllowSerial(path)
}

// allowHTTP checks an outbound HTTP URL against the plugin's grants.
func (inst *instance) allowHTTP(u *url.URL) bool {
	g := inst.p.grants
	return g == nil || g.AllowHTTP(u)
}
