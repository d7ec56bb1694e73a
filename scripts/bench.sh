#!/usr/bin/env bash
# Runs the benchmarks the issues name and prints the table that
# docs/benchmarks.md records. Ratios are computed from figures of this run.
# Expects `make build plugins` to have run (make bench does that).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
work=$(mktemp -d)
trap 'rm -rf "$out" "$work"' EXIT
go test -run '^$' -bench . -benchmem -count 1 ./abi/ ./host/... | tee "$out" >&2

# The daemon as `make run` starts it: time from start to ready, twice (cold
# compilation cache, then warm), and idle RSS after it settles.
# As make run: the Go examples in the plugin dir (the first-party plugins
# are in the binary), the simulated devices of examples/devices.
mkdir -p "$work/plugins"
for main in examples/*/main.go; do
	cp "build/plugins/$(basename "$(dirname "$main")").wasm" "$work/plugins/"
done
daemon_run() {
	build/bin/edgehost run --config scripts/dev.yaml --data-dir "$work" --devices-dir examples/devices >"$work/log" 2>&1 &
	pid=$!
	for _ in $(seq 200); do
		grep -q "daemon ready" "$work/log" && break
		sleep 0.05
	done
	ready_ms=$(sed -n 's/.*daemon ready: elapsed_ms=\([0-9]*\).*/\1/p' "$work/log")
}
daemon_run
cold=$ready_ms
kill -TERM "$pid"; wait "$pid" || true
daemon_run
warm=$ready_ms
sleep 10
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"; wait "$pid" || true

# The default deployment: `edgehost run` on embedded defaults (the built-in
# devicetwin, mappers dormant until a device needs one), 10 s after ready,
# warm compilation cache. Its broker gets a free port, beside whatever
# listens on 1883.
def="$work/default"
mkdir -p "$def"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'modules:\n  eventbus:\n    embedded: {address: "127.0.0.1:%s"}\n' "$port" >"$def/edgehost.yaml"
for run in cold warm; do
	build/bin/edgehost run --config "$def/edgehost.yaml" --data-dir "$def" >"$def/log" 2>&1 &
	pid=$!
	for _ in $(seq 200); do
		grep -q "daemon ready" "$def/log" && break
		sleep 0.05
	done
	sleep 10
	default_rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
	kill -TERM "$pid"; wait "$pid" || true
done
{
	echo "BenchmarkDaemonReadyColdCache 1 $((cold * 1000000)) ns/op"
	echo "BenchmarkDaemonReadyWarmCache 1 $((warm * 1000000)) ns/op"
	echo "BenchmarkDaemonIdleRSS 1 0 ns/op $rss KiB"
	echo "BenchmarkDefaultDeploymentIdleRSS 1 0 ns/op $default_rss KiB"
} >>"$out"
echo "make run daemon: ready ${cold} ms (cold cache), ${warm} ms (warm cache), idle RSS ${rss} KiB" >&2
echo "default deployment: idle RSS ${default_rss} KiB" >&2
go run ./internal/benchtable <"$out"
