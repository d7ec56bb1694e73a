// Command benchtable turns `go test -bench -benchmem` output into the
// markdown table docs/benchmarks.md records: every benchmark's time,
// bytes and allocations per op, plus the ratios the issues name, computed
// from figures measured in the same run.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// result is one benchmark line.
type result struct {
	name        string
	nsPerOp     float64
	bytesPerOp  string
	allocsPerOp string
	extra       []string
}

// ratio is a figure an issue asks for: a benchmark against its baseline,
// by time/op, or by a custom metric when num and den name its unit after
// the benchmark ("Name p99-µs").
type ratio struct {
	label, num, den, goal string
}

var ratios = []ratio{
	{"plugin round trip / native round trip (256 B)", "PluginRoundTrip256/Go", "NativeRoundTrip256", "≤ 4×"},
	{"plugin round trip / native, C SDK echo", "PluginRoundTrip256/C", "NativeRoundTrip256", "—"},
	{"plugin round trip / native, Rust SDK echo", "PluginRoundTrip256/Rust", "NativeRoundTrip256", "—"},
	{"plugin round trip / native, AssemblyScript SDK echo", "PluginRoundTrip256/AssemblyScript", "NativeRoundTrip256", "—"},
	{"interrupt overhead, Go guest: safepoints / plain", "InterruptOverhead/go/instrumented", "InterruptOverhead/go/plain", "≤ 1.3×"},
	{"interrupt overhead, Go guest: close-on-done / plain", "InterruptOverhead/go/closeOnDone", "InterruptOverhead/go/plain", "—"},
	{"interrupt overhead, C guest: safepoints / plain", "InterruptOverhead/c/instrumented", "InterruptOverhead/c/plain", "≤ 1.3×"},
	{"interrupt overhead, C guest: close-on-done / plain", "InterruptOverhead/c/closeOnDone", "InterruptOverhead/c/plain", "—"},
	{"compile cold / compile from cache", "PluginCompileCold", "PluginCompileCached", "≥ 10×"},
	{"bus Send / channel hand-off", "BusSend", "ChanBaseline", "≤ 3×"},
	{"store apply serial / parallel (group commit)", "StoreApplySerial", "StoreApplyParallel", "> 1×"},
	{"MQTT plugin round trip, mosquitto / embedded", "MQTTPluginRoundTrip/mosquitto", "MQTTPluginRoundTrip/embedded", "—"},
	{"MQTT native round trip, mosquitto / embedded", "MQTTRoundTripNative/mosquitto", "MQTTRoundTripNative/embedded", "—"},
	{"Modbus poll, wasm mapper / native client (one holding register)", "ModbusPoll/mapper", "ModbusPoll/native", "≤ 2×"},
	{"fast subscriber p99, 1 s/message neighbour / alone (embedded)",
		"FastSubscriberLatency/embedded/slowNeighbour p99-µs", "FastSubscriberLatency/embedded/alone p99-µs", "≈ 1×"},
	{"fast subscriber p99, 1 s/message neighbour / alone (mosquitto)",
		"FastSubscriberLatency/mosquitto/slowNeighbour p99-µs", "FastSubscriberLatency/mosquitto/alone p99-µs", "≈ 1×"},
}

var line = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(.*)$`)

func parse(r io.Reader) ([]result, []string) {
	var out []result
	var header []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		t := sc.Text()
		if strings.HasPrefix(t, "cpu:") || strings.HasPrefix(t, "goos:") || strings.HasPrefix(t, "goarch:") {
			if !contains(header, t) {
				header = append(header, t)
			}
			continue
		}
		m := line.FindStringSubmatch(t)
		if m == nil {
			continue
		}
		ns, _ := strconv.ParseFloat(m[2], 64)
		res := result{name: m[1], nsPerOp: ns, bytesPerOp: "", allocsPerOp: ""}
		fields := strings.Fields(m[3])
		for i := 0; i+1 < len(fields); i += 2 {
			switch fields[i+1] {
			case "B/op":
				res.bytesPerOp = fields[i]
			case "allocs/op":
				res.allocsPerOp = fields[i]
			default:
				res.extra = append(res.extra, fields[i]+" "+fields[i+1])
			}
		}
		out = append(out, res)
	}
	return out, header
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func human(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func main() {
	results, header := parse(os.Stdin)
	for _, h := range header {
		fmt.Println(h + "  ")
	}
	fmt.Println()
	fmt.Println("| benchmark | time/op | B/op | allocs/op | other |")
	fmt.Println("|---|---:|---:|---:|---|")
	byName := map[string]float64{} // "Name" -> ns/op, "Name unit" -> the metric
	for _, r := range results {
		byName[r.name] = r.nsPerOp
		for _, e := range r.extra {
			if v, unit, ok := strings.Cut(e, " "); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					byName[r.name+" "+unit] = f
				}
			}
		}
		fmt.Printf("| %s | %s | %s | %s | %s |\n", r.name, human(r.nsPerOp), r.bytesPerOp, r.allocsPerOp, strings.Join(r.extra, ", "))
	}
	fmt.Println()
	fmt.Println("| ratio (same run) | value | goal |")
	fmt.Println("|---|---:|---|")
	for _, q := range ratios {
		n, okN := byName[q.num]
		d, okD := byName[q.den]
		if !okN || !okD || d == 0 {
			continue
		}
		fmt.Printf("| %s | %.2f× | %s |\n", q.label, n/d, q.goal)
	}
}
