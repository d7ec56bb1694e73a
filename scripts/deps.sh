#!/usr/bin/env bash
# Installs what the test suite needs beyond Go on a fresh Debian machine:
# - mosquitto and its clients: the real external MQTT broker the eventbus
#   tests run against;
# - clang, lld, wasi-libc and the wasm32 compiler runtime: the C plugins the
#   runtime tests build (including the example printed in abi/SPEC.md);
# - node and npm, and the npm package internal/modbusserver runs (a real
#   Modbus TCP server in its own process, for the Modbus end-to-end test).
# Idempotent: when every package is installed it does nothing, and it runs
# `apt-get update` at most once, only if something is missing. Needs root
# (or sudo) only when it has to install.
set -euo pipefail

packages=(mosquitto mosquitto-clients clang lld wasi-libc libclang-rt-14-dev-wasm32 nodejs)
# Debian's nodejs comes without npm; NodeSource's includes it.
command -v npm >/dev/null 2>&1 || packages+=(npm)
modbusserver="$(dirname "$0")/../internal/modbusserver/install.sh"

missing=()
for pkg in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$pkg")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exec "$modbusserver"
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
"$modbusserver"
