#!/usr/bin/env bash
# Runs the benchmarks the issues name and prints the table that
# docs/benchmarks.md records. Ratios are computed from figures of this run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench . -benchmem -count 1 ./abi/ ./host/... | tee "$out" >&2
go run ./internal/benchtable <"$out"
