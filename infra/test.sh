#!/usr/bin/env bash
# Sets up, then runs the one command that checks everything: lint, typecheck, all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/setup.sh
pnpm run check
# The plain closing line CI reads: counts from vitest's JSON report.
node -e 'const r = require("./.vitest-results.json"); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`)'
