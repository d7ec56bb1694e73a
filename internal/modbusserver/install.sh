#!/usr/bin/env bash
# Installs the Modbus TCP server's one npm dependency (modbus-serial, as
# package-lock.json pins it) into internal/modbusserver/node_modules.
# Idempotent: does nothing when the locked version is installed. The
# end-to-end test and scripts/deps.sh call it.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null && command -v npm >/dev/null || {
	echo "install.sh: node and npm are needed (scripts/deps.sh installs them)" >&2
	exit 1
}
want=$(node -p 'require("./package-lock.json").packages["node_modules/modbus-serial"].version')
have=$(node -p 'try { require("./node_modules/modbus-serial/package.json").version } catch (e) { "" }')
if [ "$want" = "$have" ]; then
	exit 0
fi
npm ci --omit=optional --no-audit --no-fund --loglevel=error >&2
