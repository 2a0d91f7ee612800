#!/usr/bin/env bash
# Peak memory of `dist pull` by image size: is it bounded and flat?
#
# Starts a registry of its own (scripts/registry.sh), generates one-layer
# images of SIZES MiB of file data (scripts/gen-image.mjs: deterministic,
# gzip roughly halves them, one file per 4 MiB), pushes them with dist, then
# pulls each into a fresh root through bin/dist under /usr/bin/time -v (cold:
# a new root each time), RUNS times, and prints the median peak RSS and wall
# time per size. Fails when a pull fails, when its rootfs lacks the data,
# when a peak is not under RSS_LIMIT_MB, or when the peaks of the sizes of at
# least FLAT_FROM_MIB spread by more than FLAT_SLACK_MB (below that the
# process's buffer pools are not yet full, so smaller images take less).
#
# Usage: bash scripts/pull-rss.sh
#        SIZES="16 256 1024" RUNS=3 RSS_LIMIT_MB=150 FLAT_FROM_MIB=256 FLAT_SLACK_MB=24 SNAPSHOTTER=overlayfs bash scripts/pull-rss.sh
# Needs a built tree (npm run build) and docker-registry (scripts/install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-16 256 1024}
RUNS=${RUNS:-3}
LIMIT_MB=${RSS_LIMIT_MB:-150}
FLAT_FROM=${FLAT_FROM_MIB:-256}
SLACK_MB=${FLAT_SLACK_MB:-24}
SN=${SNAPSHOTTER:-overlayfs}
DIST=bin/dist
[ -f build/bin/dist.js ] || { echo "pull-rss: build/bin/dist.js missing: build first (npm run build)" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/dist-pull-rss.XXXXXX")
source scripts/registry.sh
cleanup() { stop_registry; rm -rf "$W"; }
trap cleanup EXIT
start_registry "$W"

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

printf '%-9s %-8s %-12s %-14s %s\n' "MiB" "files" "layer (gz)" "peak RSS MiB" "wall s (median of $RUNS, $SN)"
fail=0
declare -A PEAK
for mib in $SIZES; do
  ref=127.0.0.1:$REG_PORT/rss/img:$mib
  info=$(node scripts/gen-image.mjs "$W/src" "$ref" "$mib")
  $DIST --root "$W/src" push --plain-http "$ref" > "$W/push.log" 2>&1 || { echo "pull-rss: dist push $ref failed:" >&2; cat "$W/push.log" >&2; exit 1; }
  peaks=() walls=()
  for _ in $(seq "$RUNS"); do
    rm -rf "$W/p"
    if ! /usr/bin/time -v -o "$W/time.txt" $DIST --root "$W/p" pull --plain-http --snapshotter "$SN" "$ref" > "$W/pull.log" 2>&1; then
      echo "pull-rss: dist pull $ref failed:" >&2; cat "$W/pull.log" >&2; exit 1
    fi
    # the data is there: the last file's size, from the flattened rootfs
    rm -rf "$W/rootfs"
    $DIST --root "$W/p" rootfs "$ref" "$W/rootfs" >/dev/null
    got=$(du -sb --apparent-size "$W/rootfs/data" | cut -f1)
    want=$(( mib * 1048576 + $(stat -c %s "$W/rootfs/data") ))
    if [ "$got" -ne "$want" ]; then echo "pull-rss: $ref unpacked $got bytes under /data, want $want" >&2; exit 1; fi
    peaks+=("$(awk -F': ' '/Maximum resident set size/ { printf "%d", ($2 + 1023) / 1024 }' "$W/time.txt")")
    walls+=("$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$W/time.txt")")
  done
  peak=$(printf '%s\n' "${peaks[@]}" | median | awk '{ printf "%d", $1 + 0.5 }')
  wall=$(printf '%s\n' "${walls[@]}" | median)
  PEAK[$mib]=$peak
  files=$(sed -E 's/.*\(([0-9]+) files.*/\1/' <<< "$info")
  gz=$(sed -E 's/.*layer ([0-9.]+) MiB gzip.*/\1/' <<< "$info")
  printf '%-9s %-8s %-12s %-14s %s   (runs: %s MiB)\n' "$mib" "$files" "$gz MiB" "$peak" "$wall" "${peaks[*]}"
  max=$(printf '%s\n' "${peaks[@]}" | sort -n | tail -1)
  if [ "$max" -ge "$LIMIT_MB" ]; then echo "pull-rss: $mib MiB: peak RSS $max MiB is not under $LIMIT_MB MiB" >&2; fail=1; fi
done

flat=()
for mib in $SIZES; do [ "$mib" -ge "$FLAT_FROM" ] && flat+=("${PEAK[$mib]}"); done
if [ "${#flat[@]}" -ge 2 ]; then
  lo=$(printf '%s\n' "${flat[@]}" | sort -n | head -1); hi=$(printf '%s\n' "${flat[@]}" | sort -n | tail -1)
  echo "flat: peak RSS from $FLAT_FROM MiB up spans $lo..$hi MiB (allowed spread $SLACK_MB MiB)"
  if [ $((hi - lo)) -gt "$SLACK_MB" ]; then echo "pull-rss: peak RSS grows with image size ($lo..$hi MiB)" >&2; fail=1; fi
fi
exit $fail
