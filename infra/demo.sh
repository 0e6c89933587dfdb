#!/usr/bin/env bash
# The main job on embedded defaults: sets up, starts Redis if none is reachable, starts the
# scheduler, workers and estimator as separate processes, runs the demo workflows with and
# without speculation, and prints the table. Extra arguments go to `gambit demo` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh
exec node packages/cli/dist/bin.js demo "$@"
