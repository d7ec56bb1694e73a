#!/usr/bin/env bash
# Installs what the test suite needs beyond Go on a fresh Debian machine:
# mosquitto (the real external MQTT broker the eventbus tests run against)
# and its command-line clients. Idempotent: when everything is present it
# does nothing, and it runs `apt-get update` at most once, only if something
# is missing. Needs root (or sudo) only when it has to install.
set -euo pipefail

# command -> Debian package that provides it
declare -A need=(
	[mosquitto]=mosquitto
	[mosquitto_passwd]=mosquitto
	[mosquitto_pub]=mosquitto-clients
	[mosquitto_sub]=mosquitto-clients
)

missing=()
for cmd in "${!need[@]}"; do
	if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
		missing+=("${need[$cmd]}")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
# Unique package names, in a stable order.
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null 2>&1; then
	sudo=(sudo)
else
	echo "deps.sh: need root to install: ${pkgs[*]}" >&2
	exit 1
fi
echo "deps.sh: installing ${pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${pkgs[@]}" >/dev/null
