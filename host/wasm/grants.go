package wasm

import "github.com/edgehost/edgehost/abi"

// Grants decides at call time whether a plugin may use a capability. The
// send, request, KV, mqtt_publish and mqtt_subscribe imports ask it before
// acting; a refusal returns
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
