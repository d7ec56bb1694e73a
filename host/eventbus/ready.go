package eventbus

import "fmt"

// NotReady implements supervisor.Checker: with an external broker, a
// reason while it is not connected (publishes then wait in the queue).
func (m *Module) NotReady() []string {
	if m.cfg.Mode == "embedded" || m.stats.connected.Load() {
		return nil
	}
	return []string{fmt.Sprintf("eventbus: external broker %s is not connected (%d publishes queued)",
		m.cfg.External.URL, m.stats.depth.Load())}
}
