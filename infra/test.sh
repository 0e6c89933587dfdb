#!/usr/bin/env bash
# Sets up, then runs the one command that checks everything: lint, typecheck, all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh
pnpm run check
