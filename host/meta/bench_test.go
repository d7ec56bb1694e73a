package meta

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
)

// BenchmarkMetaInsertAck measures a cloud pod insert to its ACK through
// the bus, the store written with real fsync: p50 and p99 of the latency
// and ACKs per second, with one insert in flight (serial) and with many
// (window, as a cloud pushing a burst does). edgecore's figure on these
// machines: 2.4–3.5 ms and 33 ACKs/s.
func BenchmarkMetaInsertAck(b *testing.B) {
	for _, window := range []int{1, 64} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			r := newRig(b, Config{})
			pod := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default","uid":"53c72dfc-8d4b-4323-9b01-8f163bf35893"},"spec":{"containers":[{"image":"nginx:alpine","name":"nginx"}],"nodeName":"edge-1"},"status":{"phase":"Pending"}}`)
			var (
				mu   sync.Mutex
				sent = make(map[string]time.Time, b.N)
				lat  = make([]time.Duration, 0, b.N)
			)
			slots := make(chan struct{}, window)
			acked := make(chan struct{})
			go func() {
				defer close(acked)
				for range b.N {
					a, err := r.cloud.Receive(context.Background())
					if err != nil {
						return
					}
					mu.Lock()
					lat = append(lat, time.Since(sent[a.Header.ParentID]))
					mu.Unlock()
					<-slots
				}
			}()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				slots <- struct{}{}
				m := abi.Message{Header: abi.Header{ID: bus.NewID(), ResourceVersion: strconv.Itoa(i + 1)},
					Route: abi.Route{Source: "edgecontroller", Group: "resource", Operation: abi.OpInsert, Resource: "default/pod/p-" + strconv.Itoa(i)}, Content: pod}
				mu.Lock()
				sent[m.Header.ID] = time.Now()
				mu.Unlock()
				r.send(m)
			}
			<-acked
			elapsed := time.Since(start)
			b.StopTimer()
			if len(lat) != b.N {
				b.Fatalf("%d ACKs for %d inserts", len(lat), b.N)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "acks/s")
			st := r.store.Stats()
			if st.Commits > 0 {
				b.ReportMetric(float64(st.Updates)/float64(st.Commits), "writes/fsync")
			}
		})
	}
}
