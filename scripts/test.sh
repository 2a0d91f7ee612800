#!/usr/bin/env bash
# All tests: installs what is missing, runs the conformance suites
# (containerd's own Go tests against distd: scripts/peer-tests.sh), then the
# project's node:test suite, whose summary closes the output.
#   bash scripts/test.sh            everything
#   bash scripts/test.sh --quick    node suite only
#   bash scripts/test.sh [--quick] <path filter…>   a subset of the node suite
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh || exit 1
quick=0
if [[ "${1:-}" == --quick ]]; then quick=1; shift; fi
rc=0
if (( ! quick && $# == 0 )); then
  echo "== conformance: containerd's Go suites against distd"
  bash scripts/peer-tests.sh || rc=1
fi
echo "== node:test suite"
node scripts/run-tests.mjs "$@" || rc=1
exit $rc
