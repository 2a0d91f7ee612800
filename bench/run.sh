#!/usr/bin/env bash
# npm run bench: every benchmark, each timing dist beside its anchors in the
# same run (medians and ratios; 2 noisy cores: never read one absolute time).
#   1. pull/fetch/unpack of the rig's debian:bookworm vs ctr, skopeo, umoci,
#      pigz|tar, igzip|tar (needs the rig: ../shared/rig/up.sh)
#   2. GC at scale: 100 000 blobs, 10 000 images (goal <= 2 s; images ls <= 100 ms)
#   3. 1 GiB ingest through the CLI: peak RSS (goal < 150 MB)
#   4. distd under load: 50 clients x 100 blobs, vs the real containerd
# ONLY="pull gc ingest load" picks a subset.
set -uo pipefail
cd "$(dirname "$0")/.."
ONLY=${ONLY:-pull gc ingest load}
rc=0
for b in $ONLY; do
  echo "=================== bench: $b"
  case $b in
    pull) bash bench/pull.sh || rc=1 ;;
    gc) node build/bench/gc-scale.js || rc=1 ;;
    ingest) bash scripts/ingest-rss.sh || rc=1 ;;
    load) bash scripts/load-compare.sh || rc=1 ;;
    *) echo "unknown bench $b"; rc=1 ;;
  esac
done
exit $rc
