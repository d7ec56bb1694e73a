package hub

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/hub/cloud"
)

// BenchmarkHubUpstream measures upstream messages from the bus, through
// the durable outbox (fsync on) and the mTLS websocket, to the reference
// cloud's reader, with the rate limit out of the way.
func BenchmarkHubUpstream(b *testing.B) {
	dir := b.TempDir()
	c := startCloud(b, filepath.Join(dir, "cloud"), cloud.Options{})
	cfg := testConfig(c, dir)
	cfg.QPS, cfg.Burst = 1e9, 1<<20
	e := startEdge(b, dir, cfg)
	e.expect(b, "twin", connEvent(Connected))
	msg := abi.Message{Route: abi.Route{Source: "bus", Group: "user", Operation: "upload", Resource: "sensors/temp"},
		Content: []byte(`{"event_id":"5336ffc1","timestamp":1795715941277,"temp":{"value":"20"}}`)}
	b.ResetTimer()
	start := time.Now()
	go func() {
		for range b.N {
			e.send(b, msg)
		}
	}()
	for range b.N {
		c.next(b, notKeepalive)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}
