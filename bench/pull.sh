#!/usr/bin/env bash
# bench/pull.sh: dist pull / fetch / unpack against containerd 1.6 and the
# decompress+extract floors, on the rig's debian:bookworm (3 gzip layers,
# 63 MB compressed, 150 MB / 8065 tar entries uncompressed).
#
# Every measured command starts from a cold local store (hyperfine --prepare);
# registry blobs stay in the page cache (loopback HTTP). The anchors (ctr,
# skopeo, umoci, pigz|tar, igzip|tar) are measured by the rig's own
# bench-anchors.sh in the same run (its private containerd, its cleaners).
# Rig pitfall 8 (ext4 bulk-delete penalty): cold stores are made by *moving*
# the old root into a trash dir (deleted only at the very end), every prepare
# syncs, a settle extraction runs first, and each benchmark waits for
# /proc/pressure/io to go quiet.
#
# Prints medians, ratios against the goals (dist pull ≤ 1/3 of ctr images
# pull; dist unpack ≤ 1.3 × igzip -dc | tar -x) and the peak RSS of dist pull
# (/usr/bin/time -v "Maximum resident set size"), also by image size
# (scripts/pull-rss.sh: 16 MiB to 1 GiB generated images; RSS_SIZES,
# SKIP_RSS_SIZES=1).
#
# Needs: the rig up (/work/shared/rig/up.sh), a build (npm run build),
# hyperfine, jq, /usr/bin/time. Env: RUNS (5), RIG_HOME (/work/shared/rig),
# DIST_BIN (default bin/dist, the launcher users run; a .js file runs with node), BENCH_DIR ($RIG_DIR/bench-dist),
# ONLY="dist-pull-overlayfs ..." (subset of the dist benchmarks),
# SKIP_ANCHORS=1 (reuse the anchor JSON of an earlier run), SKIP_PAIRED=1 (no
# alternating rounds: unpack/floor, pull/ctr pull), KEEP_TRASH=1,
# PROFILE=1 (also write a --cpu-prof of one cold dist pull to $BENCH_DIR/prof).
set -euo pipefail
RIG_HOME=${RIG_HOME:-/work/shared/rig}
source "$RIG_HOME/lib.sh"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIST_BIN=${DIST_BIN:-$REPO/bin/dist}
RUNS=${RUNS:-5}
IMG=${IMG:-debian:bookworm}
REF=$REG/$IMG
B=${BENCH_DIR:-$RIG_DIR/bench-dist}
J=$B/json; W=$B/work; TRASH=$B/trash
AJ=$RIG_DIR/bench/json # bench-anchors.sh output
mkdir -p "$J" "$W" "$TRASH"

for t in hyperfine jq /usr/bin/time node; do command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 2; }; done
[[ -f $DIST_BIN && ( $DIST_BIN == *.js || -f $REPO/build/bin/dist.js ) ]] || { echo "no build for $DIST_BIN: cd $REPO && npm run build" >&2; exit 2; }
curl -sf "http://$REG/v2/" >/dev/null || { echo "registry $REG down: run $RIG_HOME/up.sh" >&2; exit 2; }

if [[ $DIST_BIN == *.js ]]; then DIST="node $DIST_BIN"; else DIST=$DIST_BIN; fi
ROOT=$W/root

# ---- cleaners (hyperfine --prepare): move, never delete
cat > "$B/fresh.sh" <<EOF
#!/usr/bin/env bash
# fresh.sh DIR: move DIR into the trash (DIR absent afterwards), flush dirty pages
set -euo pipefail
if [[ -e "\$1" ]]; then
  mkdir -p "$TRASH"
  if grep -q " \$1/" /proc/self/mounts; then echo "\$1 has mounts" >&2; exit 1; fi
  mv "\$1" "$TRASH/\$(basename "\$1").\$(date +%s%N)"
fi
sync
EOF
cat > "$B/fetched.sh" <<EOF
#!/usr/bin/env bash
# fetched.sh DIR: a fresh dist root holding the image's content, nothing unpacked
set -euo pipefail
"$B/fresh.sh" "\$1"
$DIST --root "\$1" fetch --plain-http "$REF" >/dev/null 2>&1
sync
EOF
chmod +x "$B/fresh.sh" "$B/fetched.sh"

declare -a NAMES PREPS CMDS
declare -A DESC
add() { NAMES+=("$1"); PREPS+=("$2"); CMDS+=("$3"); DESC[$1]=$4; }
add dist-pull-overlayfs "$B/fresh.sh $ROOT" "$DIST --root $ROOT pull --plain-http --snapshotter overlayfs $REF >/dev/null 2>&1" \
  "dist pull (fetch + unpack, overlayfs), cold root"
add dist-pull-native "$B/fresh.sh $ROOT" "$DIST --root $ROOT pull --plain-http --snapshotter native $REF >/dev/null 2>&1" \
  "dist pull (fetch + unpack, native), cold root"
add dist-fetch "$B/fresh.sh $ROOT" "$DIST --root $ROOT fetch --plain-http $REF >/dev/null 2>&1" \
  "dist fetch (content only), cold root"
add dist-unpack-overlayfs "$B/fetched.sh $ROOT" "$DIST --root $ROOT unpack --snapshotter overlayfs $REF >/dev/null 2>&1" \
  "dist unpack (content present, overlayfs)"
add dist-unpack-native "$B/fetched.sh $ROOT" "$DIST --root $ROOT unpack --snapshotter native $REF >/dev/null 2>&1" \
  "dist unpack (content present, native)"
add dist-startup "$B/fresh.sh $ROOT" "$DIST --root $ROOT images ls >/dev/null 2>&1" \
  "dist images ls on an empty root (node start + module load + db open)"

io_settle() {
  [[ -r /proc/pressure/io ]] || { sync; sleep 2; return 0; }
  local i a
  sync
  for i in $(seq 1 "${SETTLE_MAX_S:-180}"); do
    a=$(awk '/^some/{split($2,x,"="); print x[2]}' /proc/pressure/io)
    awk -v a="$a" 'BEGIN{exit !(a < 0.5)}' && { ((i > 1)) && log "io settled after ${i}s"; return 0; }
    sleep 1
  done
  log "io did not settle (some avg10=$a)"
}

sel() { [[ -z ${ONLY:-} ]] || [[ " $ONLY " == *" $1 "* ]]; }

# ---- settle: absorb a pending bulk-create-after-delete penalty
log "settle: one cold pull"
"$B/fresh.sh" "$ROOT"; $DIST --root "$ROOT" pull --plain-http --snapshotter overlayfs "$REF" >/dev/null 2>&1
"$B/fresh.sh" "$ROOT"

for i in "${!NAMES[@]}"; do
  n=${NAMES[$i]}; sel "$n" || continue
  io_settle
  log "bench $n"
  hyperfine --style basic --shell bash --runs "$RUNS" --prepare "${PREPS[$i]}" \
    --export-json "$J/$n.json" -n "$n" "${CMDS[$i]}" > "$J/$n.txt" 2>&1 ||
    { log "bench $n FAILED"; cat "$J/$n.txt" >&2; exit 1; }
done

# ---- peak RSS of a cold dist pull
RSS=""
for sn in overlayfs native; do
  "$B/fresh.sh" "$ROOT"; io_settle
  /usr/bin/time -v $DIST --root "$ROOT" pull --plain-http --snapshotter "$sn" "$REF" >/dev/null 2> "$B/time-$sn.txt"
  kb=$(awk -F': ' '/Maximum resident set size/{print $2}' "$B/time-$sn.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$B/time-$sn.txt")
  usr=$(awk -F': ' '/User time/{print $2}' "$B/time-$sn.txt"); sys=$(awk -F': ' '/System time/{print $2}' "$B/time-$sn.txt")
  RSS+="dist pull ($sn): peak RSS $((kb / 1024)) MiB ($kb kB); wall $wall, user ${usr}s, sys ${sys}s"$'\n'
done
# ---- peak RSS by image size (generated one-layer images, a registry of its own)
RSS_BY_SIZE=""
if [[ ${SKIP_RSS_SIZES:-0} != 1 ]]; then
  log "bench peak RSS by image size"
  RSS_BY_SIZE=$(SIZES="${RSS_SIZES:-16 256 1024}" RUNS=3 bash "$REPO/scripts/pull-rss.sh" 2>&1) ||
    { log "pull-rss FAILED"; echo "$RSS_BY_SIZE" >&2; exit 1; }
fi
if [[ ${PROFILE:-0} == 1 ]]; then
  mkdir -p "$B/prof"; "$B/fresh.sh" "$ROOT"; io_settle
  node --cpu-prof --cpu-prof-dir "$B/prof" "$REPO/build/bin/dist.js" --root "$ROOT" pull --plain-http --snapshotter overlayfs "$REF" >/dev/null 2>&1
  log "cpu profile: $(ls -t "$B/prof"/*.cpuprofile | head -1)"
fi
"$B/fresh.sh" "$ROOT"

# ---- paired: dist unpack and igzip -dc | tar -x alternating, round by round.
# The anchors below run minutes after dist's benchmarks, and this disk's
# speed drifts between such runs (the floor's median has moved 0.45–0.70 s
# from run to run); alternating puts both under the same conditions, and the
# median of the per-round ratios is the comparison to trust.
PAIRED=""
if sel dist-unpack-overlayfs && [[ ${SKIP_PAIRED:-0} != 1 ]]; then
  L=$LAYOUTS/debian
  MF=$L/blobs/sha256/$(jq -r --arg t "${IMG#*:}" '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]==$t)|.digest' "$L/index.json" | cut -d: -f2)
  LFILES=""; for d in $(jq -r '.layers[].digest' "$MF" | cut -d: -f2); do LFILES+=" $L/blobs/sha256/$d"; done
  now() { date +%s.%N; }
  : > "$B/paired.txt"
  log "paired: dist unpack vs igzip -dc | tar -x, $RUNS rounds"
  for r in $(seq 1 "$RUNS"); do
    "$B/fetched.sh" "$ROOT"; io_settle
    t0=$(now); $DIST --root "$ROOT" unpack --snapshotter overlayfs "$REF" >/dev/null 2>&1; t1=$(now)
    "$B/fresh.sh" "$W/tarx"; mkdir -p "$W/tarx"; io_settle
    t2=$(now); for f in $LFILES; do igzip -dc "$f" | tar -x -C "$W/tarx"; done; t3=$(now)
    echo "$t0 $t1 $t2 $t3" | awk '{ d = $2 - $1; f = $4 - $3; printf "%.3f %.3f %.3f\n", d, f, d / f }' >> "$B/paired.txt"
  done
  "$B/fresh.sh" "$W/tarx"
  PAIRED=$(awk '
    function median(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    { d[NR] = $1; f[NR] = $2; r[NR] = $3 }
    END { md = median(d, NR); mf = median(f, NR); mr = median(r, NR)
      printf "| dist unpack / igzip -dc \\| tar -x, alternating (%d rounds; per-round ratios %s) | %.3f s / %.3f s | %.2f× | %s |\n",
        NR, rounds, md, mf, mr, (mr <= 1.3 ? "meets ≤ 1.3×" : "misses ≤ 1.3×") }
  ' rounds="$(awk '{printf "%s%s", (NR > 1 ? " " : ""), $3}' "$B/paired.txt")" "$B/paired.txt")
fi

# ---- anchors: the rig's own benchmarks, same conditions
if [[ ${SKIP_ANCHORS:-0} != 1 ]]; then
  RUNS=$RUNS RESULTS=$B/anchors.md \
    ONLY="ctr-pull ctr-pull-native ctr-content-fetch ctr-unpack-only skopeo-copy-oci umoci-unpack pigz-tar-x-disk igzip-tar-x-disk" \
    "$RIG_HOME/bench-anchors.sh" > "$B/anchors.log" 2>&1 || { cat "$B/anchors.log" >&2; exit 1; }
fi

# ---- paired: dist pull and ctr images pull alternating, round by round, for
# the same reason as above (after the anchors: their containerd and cleaner).
PAIRED_PULL=""
ACLEAN=$RIG_DIR/bench/clean-ctd.sh
if sel dist-pull-overlayfs && [[ ${SKIP_PAIRED:-0} != 1 && -x $ACLEAN ]]; then
  BCTD=$RIG_DIR/containerd-bench
  CTRB="ctr --address $BCTD/containerd.sock -n bench"
  SNB=$(cat "$BCTD/snapshotter")
  ATRASH=$RIG_DIR/bench/trash; mkdir -p "$ATRASH" # the cleaner moves containerd's root there
  : > "$B/paired-pull.txt"
  log "paired: dist pull vs ctr images pull ($SNB), $RUNS rounds"
  for r in $(seq 1 "$RUNS"); do
    "$B/fresh.sh" "$ROOT"; io_settle
    t0=$(date +%s.%N); $DIST --root "$ROOT" pull --plain-http --snapshotter overlayfs "$REF" >/dev/null 2>&1; t1=$(date +%s.%N)
    "$ACLEAN" >/dev/null 2>&1; io_settle
    t2=$(date +%s.%N); $CTRB images pull --plain-http --snapshotter "$SNB" "$REF" >/dev/null; t3=$(date +%s.%N)
    echo "$t0 $t1 $t2 $t3" | awk '{ d = $2 - $1; c = $4 - $3; printf "%.3f %.3f %.3f\n", d, c, d / c }' >> "$B/paired-pull.txt"
  done
  "$B/fresh.sh" "$ROOT"; "$ACLEAN" >/dev/null 2>&1
  [[ ${KEEP_TRASH:-0} == 1 ]] || rm -rf "$ATRASH"
  PAIRED_PULL=$(awk '
    function median(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    { d[NR] = $1; c[NR] = $2; r[NR] = $3; rounds = rounds (NR > 1 ? " " : "") $3 }
    END { md = median(d, NR); mc = median(c, NR); mr = median(r, NR)
      printf "| dist pull / ctr images pull (overlayfs), alternating (%d rounds; per-round ratios %s) | %.3f s / %.3f s | %.2f× | %s |\n",
        NR, rounds, md, mc, mr, (mr <= 0.3333 ? "meets ≤ 0.3333×" : "misses ≤ 0.3333×") }
  ' "$B/paired-pull.txt")
fi

# ---- table
med() { local f; for f in "$J/$1.json" "$AJ/$1.json"; do [[ -f $f ]] && { jq -r '.results[0].median' "$f"; return; }; done; echo ""; }
row() {
  local n=$1 f
  for f in "$J/$n.json" "$AJ/$n.json"; do
    [[ -f $f ]] || continue
    jq -r --arg n "$n" --arg d "${2:-}" '.results[0] | "| \($n) | \(.median*1000|round/1000) | \(.min*1000|round/1000) | \(.max*1000|round/1000) | \($d) |"' "$f"
    return
  done
}
ratio() { # ratio A B GOAL LABEL
  local a b; a=$(med "$1"); b=$(med "$2")
  [[ -n $a && -n $b ]] || return 0
  awk -v a="$a" -v b="$b" -v g="$3" -v l="$4" 'BEGIN { r = a / b; printf "| %s | %.3f s / %.3f s | %.2f× | %s |\n", l, a, b, r, (g == "" ? "" : (r <= g ? "meets ≤ " g "×" : "misses ≤ " g "×")) }'
}
{
  echo "# dist pull benchmark ($(date -u '+%F %H:%M') UTC, $(nproc) cores, $(uname -r), RUNS=$RUNS, load $(cut -d' ' -f1-3 /proc/loadavg))"
  echo
  echo "Image $REF; dist $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?') ($DIST_BIN); node $(node --version)."
  echo
  echo "| benchmark | median s | min s | max s | what |"
  echo "|---|---:|---:|---:|---|"
  for n in "${NAMES[@]}"; do row "$n" "${DESC[$n]}"; done
  row ctr-pull "ctr images pull (overlayfs), cold store"
  row ctr-pull-native "ctr images pull (native), cold store"
  row ctr-content-fetch "ctr content fetch, cold store"
  row ctr-unpack-only "ctr images pull with content present (unpack only, overlayfs)"
  row skopeo-copy-oci "skopeo copy docker:// → oci: (fetch only)"
  row umoci-unpack "umoci unpack of the OCI layout"
  row pigz-tar-x-disk "pigz -dc | tar -x, fresh ext4 dir (floor)"
  row igzip-tar-x-disk "igzip -dc | tar -x, fresh ext4 dir (floor)"
  echo
  echo "| ratio | medians | ratio | goal |"
  echo "|---|---:|---:|---|"
  ratio dist-pull-overlayfs ctr-pull 0.3333 "dist pull / ctr images pull (overlayfs)"
  [[ -z $PAIRED_PULL ]] || echo "$PAIRED_PULL"
  ratio dist-pull-native ctr-pull-native 0.3333 "dist pull / ctr images pull (native)"
  ratio dist-fetch ctr-content-fetch "" "dist fetch / ctr content fetch"
  ratio dist-fetch skopeo-copy-oci "" "dist fetch / skopeo copy"
  ratio dist-unpack-overlayfs igzip-tar-x-disk 1.3 "dist unpack (overlayfs) / igzip -dc | tar -x"
  [[ -z $PAIRED ]] || echo "$PAIRED"
  ratio dist-unpack-overlayfs pigz-tar-x-disk "" "dist unpack (overlayfs) / pigz -dc | tar -x"
  ratio dist-unpack-overlayfs ctr-unpack-only "" "dist unpack / ctr unpack-only (overlayfs)"
  ratio dist-unpack-overlayfs umoci-unpack "" "dist unpack (overlayfs) / umoci unpack"
  echo
  printf '%s' "$RSS"
  if [[ -n $RSS_BY_SIZE ]]; then
    echo
    echo "Peak RSS of a cold dist pull by image size (scripts/pull-rss.sh: generated one-layer images, goal: under 150 MB and flat):"
    echo '```'
    echo "$RSS_BY_SIZE"
    echo '```'
  fi
} | tee "$B/results.md"

[[ ${KEEP_TRASH:-0} == 1 ]] || rm -rf "$TRASH"
