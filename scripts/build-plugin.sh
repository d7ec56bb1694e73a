#!/usr/bin/env bash
# build-plugin.sh LANG DIR OUT builds the plugin in DIR, written against
# the SDK of LANG (c, rust or assemblyscript; Go plugins build with go
# build), into the wasm module OUT. It is the one place that says how: the
# Makefile (make plugins) and the tests (internal/plugintest) both call it,
# and docs/sdk.md explains each line. Run it from the repository root;
# scripts/deps.sh installs the toolchains.
set -euo pipefail

if [ $# -ne 3 ]; then
	echo "usage: $0 c|rust|assemblyscript DIR OUT" >&2
	exit 2
fi
lang=$1 dir=${2%/} out=$3
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$(dirname "$out")"

case "$lang" in
c)
	# A WASI reactor (no main; _initialize runs the constructors), small
	# (-Oz) and without the name section (--strip-all).
	clang --target=wasm32-wasi -mexec-model=reactor -Oz -Wall -Wl,--strip-all \
		-I "$root/sdk/c" -o "$out" "$dir"/*.c
	;;
rust)
	# Debian's rustc by full path: a rustup rustc earlier on PATH may have
	# no wasm32-wasi std. The SDK is an rlib the plugin links (--extern);
	# the 64 KiB stack (Rust's default is 1 MiB, 17 pages) keeps the
	# module at 2 initial pages.
	rustc=${RUSTC:-/usr/bin/rustc}
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	flags=(--edition 2021 --target wasm32-wasi -C opt-level=3 -C panic=abort -C target-feature=+bulk-memory)
	"$rustc" "${flags[@]}" --crate-type rlib --crate-name edgehost --out-dir "$tmp" "$root/sdk/rust/src/lib.rs"
	"$rustc" "${flags[@]}" --crate-type cdylib --crate-name "$(basename "$dir" | tr - _)" \
		-C strip=symbols -C link-arg=-zstack-size=65536 \
		--extern edgehost="$tmp/libedgehost.rlib" -o "$tmp/plugin.wasm" "$dir/lib.rs"
	# rustc leaves its object files beside -o under names that depend on
	# the crate only, so two builds of one plugin into one directory (test
	# binaries of two packages at once) would delete each other's: build
	# in the private dir, then move the result.
	mv "$tmp/plugin.wasm" "$out"
	;;
assemblyscript)
	# The compiler is the SDK package's pinned devDependency, installed
	# from its package-lock.json once (npm ci, under a lock so parallel
	# builds do not race).
	sdk="$root/sdk/assemblyscript"
	mkdir -p "$root/build"
	if [ ! -x "$sdk/node_modules/.bin/asc" ]; then
		(
			flock 9
			if [ ! -x "$sdk/node_modules/.bin/asc" ]; then
				(cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error >&2)
			fi
		) 9>"$root/build/.npm-ci.lock"
	fi
	# --use abort=: the host provides no env.abort; the SDK's abort logs
	# through the log import and traps. asc names the function by its
	# file's path from the working directory.
	abort="$(realpath --relative-to="$PWD" "$sdk")/assembly/abort/abort"
	"$sdk/node_modules/.bin/asc" "$dir/index.ts" -O3 --runtime incremental --exportStart _initialize \
		--use "abort=$abort" -o "$out"
	;;
*)
	echo "$0: unknown language $lang" >&2
	exit 2
	;;
esac
