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
mkdir -p "$work/plugins"
cp build/plugins/*.wasm "$work/plugins/"
daemon_run() {
	build/bin/edgehost run --config scripts/dev.yaml --data-dir "$work" >"$work/log" 2>&1 &
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
sleep 3
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"; wait "$pid" || true
{
	echo "BenchmarkDaemonReadyColdCache 1 $((cold * 1000000)) ns/op"
	echo "BenchmarkDaemonReadyWarmCache 1 $((warm * 1000000)) ns/op"
	echo "BenchmarkDaemonIdleRSS 1 0 ns/op $rss KiB"
} >>"$out"
echo "make run daemon: ready ${cold} ms (cold cache), ${warm} ms (warm cache), idle RSS ${rss} KiB" >&2
go run ./internal/benchtable <"$out"
