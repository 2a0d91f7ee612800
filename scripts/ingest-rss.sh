#!/usr/bin/env bash
# Peak memory of `dist content ingest` for a large blob read from stdin.
#
# Generates a deterministic pseudo-random stream (AES-128-CTR of zeros, so it
# can be produced twice without storing it), hashes it once for the expected
# digest, then pipes it into
#   node build/bin/dist.js --root <tmp> content ingest \
#        --expected-digest D --expected-size N <ref>
# and reports the dist process's peak RSS (/usr/bin/time -v, else VmHWM
# polled from /proc). Fails when the ingest fails, the blob is not in the
# store afterwards, or the peak exceeds the limit.
#
# Usage: bash scripts/ingest-rss.sh            (1024 MiB, limit 150 MB)
#        INGEST_MIB=256 RSS_LIMIT_MB=150 RSS_METHOD=proc bash scripts/ingest-rss.sh
# Needs a built tree (npm run build: tsc, then the CLI bundle).
set -euo pipefail

MIB=${INGEST_MIB:-1024}
LIMIT_MB=${RSS_LIMIT_MB:-150}
HERE=$(cd "$(dirname "$0")/.." && pwd)
DIST="$HERE/build/bin/dist.js"
[ -f "$DIST" ] || { echo "ingest-rss: $DIST missing: build first (npm run build)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dist-ingest-rss.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"
SIZE=$((MIB * 1024 * 1024))

# Deterministic stream of $SIZE bytes on stdout (node, streaming with backpressure).
gen() {
  node --input-type=module -e '
    import { createCipheriv } from "node:crypto";
    const total = Number(process.argv[1]);
    const c = createCipheriv("aes-128-ctr", Buffer.alloc(16, 7), Buffer.alloc(16, 0));
    const zero = Buffer.alloc(1 << 20);
    let left = total;
    function pump() {
      while (left > 0) {
        const n = Math.min(left, zero.length);
        left -= n;
        if (!process.stdout.write(c.update(zero.subarray(0, n)))) return void process.stdout.once("drain", pump);
      }
    }
    process.stdout.on("error", (e) => { if (e.code !== "EPIPE") throw e; process.exit(0); });
    pump();
  ' "$SIZE"
}

DIGEST="sha256:$(gen | sha256sum | cut -d' ' -f1)"

STATUS=0
if [ -x /usr/bin/time ] && [ "${RSS_METHOD:-time}" != proc ]; then
  gen | /usr/bin/time -v -o "$WORK/time.txt" node "$DIST" --root "$ROOT" content ingest \
    --expected-digest "$DIGEST" --expected-size "$SIZE" rss-test || STATUS=$?
  PEAK_KB=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/time.txt")
else
  # Poll VmHWM (the kernel's own peak) of the dist process until it exits.
  gen | node "$DIST" --root "$ROOT" content ingest \
    --expected-digest "$DIGEST" --expected-size "$SIZE" rss-test &
  PID=$!
  PEAK_KB=0
  while kill -0 "$PID" 2>/dev/null; do
    HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PID/status" 2>/dev/null || true)
    [ -n "$HWM" ] && [ "$HWM" -gt "$PEAK_KB" ] && PEAK_KB=$HWM
    sleep 0.05
  done
  wait "$PID" || STATUS=$?
fi

if [ "$STATUS" -ne 0 ]; then
  echo "ingest-rss: dist content ingest failed (exit $STATUS)" >&2
  exit 1
fi
# The blob must be in the store, with the right size.
if ! node "$DIST" --root "$ROOT" content ls -q | grep -qx "$DIGEST"; then
  echo "ingest-rss: $DIGEST not in the store after ingest" >&2
  exit 1
fi
BLOB="$ROOT/content/blobs/sha256/${DIGEST#sha256:}"
if [ -f "$BLOB" ] && [ "$(stat -c %s "$BLOB")" -ne "$SIZE" ]; then
  echo "ingest-rss: blob size $(stat -c %s "$BLOB") != $SIZE" >&2
  exit 1
fi

PEAK_MB=$(( (PEAK_KB + 1023) / 1024 ))
echo "peak RSS: $PEAK_MB MB for $MIB MiB ingest"
if [ "$PEAK_MB" -ge "$LIMIT_MB" ]; then
  echo "ingest-rss: peak RSS $PEAK_MB MB is not under $LIMIT_MB MB" >&2
  exit 1
fi
