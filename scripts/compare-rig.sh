#!/usr/bin/env bash
# compare-rig.sh: proves that `dist pull` unpacks exactly like containerd 1.6.
#
# For every rig image (and platform) × snapshotter (native, overlayfs):
#   A  = ctr images pull + ctr images mount (read-only view) → tree-oracle
#   B  = dist pull       + dist images mount                 → tree-oracle
#   B' = dist rootfs (plain directory, no snapshotter)       → tree-oracle
# and prints a table: equal / equal except N dir mtimes / N differing paths
# (the first few diff lines of every unequal case follow the table).
#
# mtimes at or after the start of a case print as `mtime=new` (set by the
# applier at unpack time, not taken from the archive), so runs are
# reproducible. Directory mtimes are reported separately because containerd's
# native snapshotter copies parents with continuity's fs.CopyDir, which sets a
# directory's times *before* copying its entries (so every non-empty directory
# not in the next layer's tar ends up with the copy time).
#
# Needs the rig up (registry on $REG, containerd at $CTD_SOCK; see
# /work/shared/rig/README.md) and a build (npm run build).
# Env: RIG_HOME (default /work/shared/rig), OUT (default $RIG_DIR/compare),
#      ONLY="small:latest debian:bookworm" (subset of images),
#      SNAPSHOTTERS="native overlayfs", KEEP=1 (keep dist roots/outputs).
# Exit status: 0 when every case is equal (dir mtimes aside), 1 otherwise.
set -euo pipefail
RIG_HOME=${RIG_HOME:-/work/shared/rig}
source "$RIG_HOME/lib.sh"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ORACLE="node $REPO/scripts/tree-oracle.mjs"
OUT=${OUT:-$RIG_DIR/compare}
SNAPSHOTTERS=${SNAPSHOTTERS:-native overlayfs}
CTR="ctr --address $CTD_SOCK"
DIST_BIN=${DIST_BIN:-$REPO/bin/dist}   # another build (a stable copy's build/bin/dist.js) may be given
dist() { if [[ $DIST_BIN == *.js ]]; then node "$DIST_BIN" "$@"; else "$DIST_BIN" "$@"; fi; }

[[ -S $CTD_SOCK ]] || { echo "containerd socket $CTD_SOCK missing: run $RIG_HOME/up.sh" >&2; exit 2; }
curl -sf "http://$REG/v2/" >/dev/null || { echo "registry $REG down: run $RIG_HOME/up.sh" >&2; exit 2; }
[[ -f $DIST_BIN ]] || { echo "no build: cd $REPO && npm run build" >&2; exit 2; }

# image|platform ("" = host default)
CASES=(
  "small:latest|"
  "small:docker|"
  "small:zstd|"
  "multi:latest|linux/amd64"
  "multi:latest|linux/arm64/v8"
  "debian:bookworm|"
)
sel() { [[ -z ${ONLY:-} ]] || [[ " $ONLY " == *" $1 "* ]]; }

mkdir -p "$OUT"
# Drop an unpacked tree: unmount anything left, then move it aside (rig pitfall 8:
# bulk deletes slow down the next bulk create) and delete in the background.
TRASH=$OUT/trash; mkdir -p "$TRASH"
discard() {
  local d
  for d in "$@"; do
    [[ -e $d ]] || continue
    grep -q " $d" /proc/self/mounts && awk -v p="$d" '$2 ~ "^"p {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
    mv "$d" "$TRASH/$(basename "$d").$(date +%s%N)"
  done
}

# dir_mtime_strip FILE: the oracle output without the mtime of directories
dir_mtime_strip() { awk -F'\t' -v OFS='\t' '$2=="dir"{ o=""; for(i=1;i<=NF;i++) if($i !~ /^mtime=/) o=(o==""?$i:o OFS $i); print o; next } {print}' "$1"; }

# verdict A B NAME: prints one cell; writes the diff to $CASE_DIR/NAME.diff
verdict() {
  local a=$1 b=$2 name=$3 n nd
  if diff "$a" "$b" > "$CASE_DIR/$name.diff"; then echo "equal"; return 0; fi
  n=$(grep -E '^[<>]' "$CASE_DIR/$name.diff" | cut -c3- | cut -f1 | sort -u | wc -l)
  if diff <(dir_mtime_strip "$a") <(dir_mtime_strip "$b") > "$CASE_DIR/$name.nodirmtime.diff"; then
    # the known case: containerd set the time at unpack (copy) time, dist kept the archive's
    if ! grep '^<' "$CASE_DIR/$name.diff" | grep -vqP '\tdir\t.*\tmtime=new' && ! grep '^>' "$CASE_DIR/$name.diff" | grep -q 'mtime=new'; then
      echo "equal except $n dir mtimes (ctr: unpack time, dist: archive time)"
    else
      echo "equal except $n dir mtimes"
    fi
    return 0
  fi
  nd=$(grep -E '^[<>]' "$CASE_DIR/$name.nodirmtime.diff" | cut -c3- | cut -f1 | sort -u | wc -l)
  echo "$nd differing paths (+dir mtimes)"; FAILED=1; return 0
}

# On an early exit, leave no mounts and no image/namespace behind in the rig's containerd.
ns=""; ref=""
cleanup() {
  [[ -n ${CASE_DIR:-} ]] && for m in "$CASE_DIR/mnt-ctr" "$CASE_DIR/mnt-dist"; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
  if [[ -n $ns ]]; then
    $CTR -n "$ns" images rm --sync "$ref" >/dev/null 2>&1 || true
    $CTR namespaces rm "$ns" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

FAILED=0
ROWS=()
DETAILS=""
for c in "${CASES[@]}"; do
  img=${c%%|*}; plat=${c#*|}
  sel "$img" || continue
  for sn in $SNAPSHOTTERS; do
    tag=$(echo "$img-${plat:-default}-$sn" | tr ':/' '__')
    CASE_DIR=$OUT/$tag; discard "$CASE_DIR"; mkdir -p "$CASE_DIR"
    ref=$REG/$img
    # --platform=P: dist pull's --platform is variadic and would swallow the ref
    pflag=(); [[ -n $plat ]] && pflag=("--platform=$plat")
    marker=$CASE_DIR/marker; touch "$marker"; sleep 0.01
    log "case $img ${plat:-default} $sn"

    # ---- A: containerd (a fresh namespace: snapshots are per namespace)
    ns=cmp-$tag-$$
    mntA=$CASE_DIR/mnt-ctr; mkdir -p "$mntA"
    $CTR -n "$ns" images pull --plain-http --snapshotter "$sn" "${pflag[@]}" "$ref" > "$CASE_DIR/ctr-pull.log" 2>&1 ||
      { cat "$CASE_DIR/ctr-pull.log" >&2; exit 1; }
    # Not `ctr images mount`: in 1.6 it reads the snapshotter from a *global*
    # flag ctr does not have, so it always unpacks and mounts overlayfs.
    # The top snapshot is the committed one that is nobody's parent.
    top=$($CTR -n "$ns" snapshots --snapshotter "$sn" ls | awk 'NR>1 {k[$1]=1; if ($2 != "") p[$2]=1} END {for (x in k) if (!(x in p)) print x}')
    [[ $(wc -w <<<"$top") == 1 ]] || { echo "cannot tell the top snapshot of $ref ($sn): $top" >&2; exit 1; }
    $CTR -n "$ns" snapshots --snapshotter "$sn" view --target "$mntA" "cmp-view-$$" "$top" > "$CASE_DIR/ctr-mount.sh"
    bash -e "$CASE_DIR/ctr-mount.sh"
    $ORACLE --since "$marker" "$mntA" > "$CASE_DIR/ctr.txt"
    umount "$mntA"
    # (the view may be gone already: no lease holds it, so the GC may take it)
    $CTR -n "$ns" snapshots --snapshotter "$sn" rm "cmp-view-$$" 2>/dev/null || true
    $CTR -n "$ns" images rm --sync "$ref" >/dev/null
    $CTR namespaces rm "$ns" >/dev/null 2>&1 || true
    ns=""

    # ---- B: dist (a fresh root)
    root=$CASE_DIR/dist-root
    mntB=$CASE_DIR/mnt-dist; mkdir -p "$mntB"
    dist --root "$root" pull --plain-http --snapshotter "$sn" "${pflag[@]}" "$ref" > "$CASE_DIR/dist-pull.log" 2>&1 ||
      { cat "$CASE_DIR/dist-pull.log" >&2; exit 1; }
    dist --root "$root" images mount --snapshotter "$sn" "${pflag[@]}" "$ref" "$mntB" > "$CASE_DIR/dist-mount.log" 2>&1 ||
      { cat "$CASE_DIR/dist-mount.log" >&2; exit 1; }
    $ORACLE --since "$marker" "$mntB" > "$CASE_DIR/dist.txt"
    dist --root "$root" images unmount --snapshotter "$sn" "$mntB" >/dev/null

    # ---- B': dist rootfs (plain directory)
    rootfs=$CASE_DIR/rootfs
    dist --root "$root" rootfs "${pflag[@]}" "$ref" "$rootfs" > "$CASE_DIR/dist-rootfs.log" 2>&1 ||
      { cat "$CASE_DIR/dist-rootfs.log" >&2; exit 1; }
    $ORACLE --since "$marker" "$rootfs" > "$CASE_DIR/dist-rootfs.txt"

    vm=$(verdict "$CASE_DIR/ctr.txt" "$CASE_DIR/dist.txt" mount)
    vr=$(verdict "$CASE_DIR/ctr.txt" "$CASE_DIR/dist-rootfs.txt" rootfs)
    [[ $vm == *differing* || $vr == *differing* ]] && FAILED=1
    ROWS+=("$(printf '| %s | %s | %s | %s | %s | %s |' "$img" "${plat:-default}" "$sn" "$(wc -l < "$CASE_DIR/ctr.txt")" "$vm" "$vr")")
    for kind in mount rootfs; do
      [[ -s $CASE_DIR/$kind.diff ]] || continue
      DETAILS+=$'\n'"### $img ${plat:-default} $sn: ctr vs dist $kind (< ctr, > dist; $CASE_DIR/$kind.diff)"$'\n'
      DETAILS+=$(head -n "${SHOW:-8}" "$CASE_DIR/$kind.diff")$'\n'
    done
    [[ ${KEEP:-0} == 1 ]] || discard "$root" "$rootfs" "$mntA" "$mntB"
  done
done

{
  echo "| image | platform | snapshotter | entries (ctr) | ctr vs dist pull+mount | ctr vs dist rootfs |"
  echo "|---|---|---|---:|---|---|"
  printf '%s\n' "${ROWS[@]}"
  [[ -n $DETAILS ]] && printf '%s' "$DETAILS"
} | tee "$OUT/table.md"
(rm -rf "$TRASH" &) 2>/dev/null
exit $FAILED
