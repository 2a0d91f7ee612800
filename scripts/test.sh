#!/usr/bin/env bash
# Installs what is missing, then runs every test (node's test runner; the
# output ends with its summary).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
node scripts/run-tests.mjs "$@"
