#!/usr/bin/env bash
# Runs the daemon for an hour (SOAK_DURATION) under mixed load and prints a
# row a minute: RSS, goroutines, open files, bus queue depth and the load's
# counts (internal/soak). Not part of the test suite; docs/benchmarks.md
# records a run. Extra arguments go to the soak command (-h lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
make --no-print-directory build plugins >&2
exec go run ./internal/soak -bin build/bin/edgehost -echo build/plugins/echo.wasm \
	-duration "${SOAK_DURATION:-1h}" "$@"
