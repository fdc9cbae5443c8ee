#!/bin/sh
# Installs everything a fresh Debian 12 machine lacks to build, test and run
# bpftime. Idempotent: when all is present it only checks and returns.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)

PACKAGES="build-essential make pkg-config clang-14 llvm-14-dev libbpf-dev libelf-dev \
libzydis-dev bpftool bpftrace linux-libc-dev redis-server redis-tools systemtap-sdt-dev \
nodejs npm"

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
# npm may come with a Node.js that is not Debian's; accept any working npm.
if command -v npm >/dev/null 2>&1; then
	missing=$(echo "$missing" | sed 's/ nodejs//; s/ npm//')
fi

if [ -n "$(echo "$missing" | tr -d ' ')" ]; then
	echo "setup: installing$missing" >&2
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
fi

# Deno and the npm packages pinned in package.json / package-lock.json.
if [ ! -x "$ROOT/node_modules/.bin/deno" ] || [ "$ROOT/package.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
	echo "setup: installing npm packages (deno, commander, picocolors)" >&2
	(cd "$ROOT" && npm install --no-audit --no-fund --loglevel=error >&2)
	# Let Deno lay out node_modules its own way now ("nodeModulesDir": "auto"), not mid-run.
	(cd "$ROOT" && node_modules/.bin/deno install --quiet >&2)
fi
"$ROOT/node_modules/.bin/deno" --version >/dev/null
