#!/usr/bin/env bash
# Runs containerd 1.6's own Go test suites (shared/peer) against distd:
#   1. builds dist if needed, starts distd on a temp root + socket;
#   2. the whole Go set with the native snapshotter (goal: 38 passed, 0 failed, 1 skipped);
#   3. the snapshotter suite again with overlayfs;
#   4. stops distd. Exit status non-zero when anything failed; the last line is
#      the peer harness's "N passed, M failed, K skipped" summary (totals of both runs).
# Needs root, golang-go and golang-github-containerd-containerd-dev (scripts/install.sh).
# Env: PEER (path of shared/peer; default ../shared/peer beside the repo, then
#      /work/shared/peer; when none is there the suites are skipped, loudly),
#      PEER_DIR (scratch, default /tmp/peer), KEEP=1 keeps the temp root.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PEER=${PEER:-$(cd "$REPO/.." && pwd)/shared/peer}
[[ -x "$PEER/run-gotests.sh" ]] || PEER=$(cd "$(dirname "$0")/../../shared/peer" 2>/dev/null && pwd)
[[ -x "$PEER/run-gotests.sh" ]] || PEER=/work/shared/peer # the workspace's copy, for clones made elsewhere
if [[ ! -x "$PEER/run-gotests.sh" ]]; then
  # the suites come with the workspace (../shared/peer), not with this repository
  echo "peer-tests: SKIPPED: shared/peer not found beside the repository (set PEER=…)"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi
export PEER_DIR=${PEER_DIR:-/tmp/peer}
mkdir -p "$PEER_DIR"

cd "$REPO"
if [[ ! -f build/src/cmd/distd/main.js || -n "$(find src -name '*.ts' -newer build/src/cmd/distd/main.js 2>/dev/null | head -1)" ]]; then
  echo "peer-tests: building" >&2
  npx tsc -p tsconfig.json >/dev/null 2>&1 || true   # emits even with type errors elsewhere
fi

TMP=$(mktemp -d /tmp/distd-peer.XXXXXX)
SOCK=$TMP/run/distd.sock
LOG=$TMP/distd.log
node build/src/cmd/distd/main.js --root "$TMP/root" --state "$TMP/run" --address "$SOCK" --log-level "${DISTD_LOG_LEVEL:-info}" 2>"$LOG" &
PID=$!
stop() {
  if kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
  fi
  wait "$PID" 2>/dev/null
  if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$TMP"; else echo "peer-tests: kept $TMP" >&2; fi
}
trap stop EXIT
for _ in $(seq 1 100); do [[ -S "$SOCK" ]] && break; kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if [[ ! -S "$SOCK" ]]; then
  echo "peer-tests: distd did not start:"; cat "$LOG"
  echo "0 passed, 1 failed, 0 skipped"; exit 1
fi

pass=0; fail=0; skip=0; rc=0
run() {
  local out line
  out=$("$@" 2>&1); local r=$?
  echo "$out"
  line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' | tail -1)
  if [[ -n "$line" ]]; then
    read -r p _ f _ s _ <<<"$line"
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
  else
    fail=$((fail + 1))
  fi
  [[ $r -eq 0 ]] || rc=1
}

echo "== native: all suites" >&2
run env CONTAINERD_ADDRESS="$SOCK" ADDRESS="$SOCK" PEER_SNAPSHOTTER=native "$PEER/run-gotests.sh"
cp "$PEER_DIR/gotests.log" "$PEER_DIR/gotests-native.log" 2>/dev/null
echo "== overlayfs: snapshotter suite" >&2
run env CONTAINERD_ADDRESS="$SOCK" ADDRESS="$SOCK" PEER_SNAPSHOTTER=overlayfs "$PEER/run-gotests.sh" -test.run TestSnapshotterSuite
cp "$PEER_DIR/gotests.log" "$PEER_DIR/gotests-overlayfs.log" 2>/dev/null

if grep -q '"level":"error"' "$LOG"; then echo "peer-tests: distd logged errors:" >&2; grep '"level":"error"' "$LOG" | tail -5 >&2; fi
[[ $fail -eq 0 ]] || rc=1
echo "$pass passed, $fail failed, $skip skipped"
exit $rc
