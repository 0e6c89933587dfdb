#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: redis-server (Debian package) if missing, iproute2 (`ip`,
# for the multi-host test in network namespaces) if missing, pnpm at the pinned version,
# dependencies from the lockfile, a build of every package, and the `gambit` CLI on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=12.4.2

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "setup: installing redis-server from Debian's packages"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi

if ! command -v ip >/dev/null 2>&1; then
  echo "setup: installing iproute2 from Debian's packages"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq iproute2 >/dev/null
fi

# Debian's Chromium for the console test (test/console, driven by playwright-core).
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing chromium from Debian's packages"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium >/dev/null
fi

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  echo "setup: installing pnpm@$PNPM_VERSION"
  npm install -g --allow-scripts=pnpm "pnpm@$PNPM_VERSION" >/dev/null 2>&1 || npm install -g "pnpm@$PNPM_VERSION" >/dev/null
fi

pnpm install --frozen-lockfile --reporter=silent
pnpm exec turbo run build --output-logs=errors-only

# The `gambit` CLI on PATH: a symlink to the built entry point (node follows it to the package,
# so its dependencies resolve). Root (CI, containers): /usr/local/bin; others: ~/.local/bin, which
# must be on their PATH.
chmod +x packages/cli/dist/bin.js
BIN_DIR=/usr/local/bin
if [ "$(id -u)" -ne 0 ]; then
  BIN_DIR="$HOME/.local/bin"
  mkdir -p "$BIN_DIR"
fi
ln -sf "$PWD/packages/cli/dist/bin.js" "$BIN_DIR/gambit"
echo "setup: gambit CLI linked at $BIN_DIR/gambit"
