#!/usr/bin/env bash
# Installs what the test suite needs beyond Go on a fresh Debian machine:
# - mosquitto and its clients: the real external MQTT broker the eventbus
#   tests run against;
# - clang, lld, wasi-libc and the wasm32 compiler runtime: the C plugins the
#   runtime tests build (including the example printed in abi/SPEC.md) and
#   the C SDK's examples;
# - Debian's rustc (1.63; /usr/bin/rustc, which a rustup rustc on PATH may
#   shadow) and its wasm32-wasi std: the Rust SDK's examples;
# - Node.js and npm, when the machine has none (Debian's), and the
#   AssemblyScript compiler pinned by sdk/assemblyscript/package-lock.json
#   (npm ci into sdk/assemblyscript/node_modules, ignored by git): the
#   AssemblyScript SDK's examples;
# - the npm package internal/modbusserver runs (a real Modbus TCP server in
#   its own process, for the Modbus end-to-end test);
# - containerd, runc, containernetworking-plugins and busybox-static: the
#   real container runtime the host/runtime and pod e2e tests start
#   (internal/containerd), and the busybox their test image is built from;
# - docker-registry: the real image registry (with htpasswd auth) the pod
#   e2e test pulls from with imagePullSecrets' credentials;
# - chromium: the headless browser the dashboard's test drives.
# Idempotent: when every package is installed it does nothing, and it runs
# `apt-get update` at most once, only if something is missing. Needs root
# (or sudo) only when it has to install.
set -euo pipefail

packages=(mosquitto mosquitto-clients clang lld wasi-libc libclang-rt-14-dev-wasm32 rustc libstd-rust-dev-wasm32
	containerd runc containernetworking-plugins busybox-static docker-registry chromium)

# Node.js may come from elsewhere than Debian (as on the project's
# machines); only a machine without node and npm gets Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	packages+=(nodejs npm)
fi

root=$(cd "$(dirname "$0")/.." && pwd)
as_compiler() {
	if [ ! -x "$root/sdk/assemblyscript/node_modules/.bin/asc" ]; then
		echo "deps.sh: npm ci in sdk/assemblyscript" >&2
		(cd "$root/sdk/assemblyscript" && npm ci --no-audit --no-fund --loglevel=error >&2)
	fi
}
modbusserver="$root/internal/modbusserver/install.sh"

# npm installs, once: after the Debian packages, which may bring npm.
npm_packages() {
	as_compiler
	"$modbusserver"
}

missing=()
for pkg in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$pkg")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	npm_packages
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null 2>&1; then
	sudo=(sudo)
else
	echo "deps.sh: need root to install: ${missing[*]}" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
npm_packages
