#!/usr/bin/env bash
# distd under load next to the real containerd 1.6, in one run: 50 clients
# each ingesting and reading back 100 blobs (scripts/distd-load.mjs), first
# against a fresh distd, then against a private containerd on a temp root.
# Prints both throughput lines and distd's peak RSS.
set -uo pipefail
cd "$(dirname "$0")/.."
ARGS=("$@")
W=$(mktemp -d /tmp/load-compare.XXXXXX)
cleanup() { [[ -n "${CPID:-}" ]] && kill "$CPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
echo "--- distd"
node scripts/distd-load.mjs "${ARGS[@]}" | tee "$W/distd.txt"; r1=${PIPESTATUS[0]}
if ! command -v containerd >/dev/null; then echo "containerd not installed: no comparison"; exit $r1; fi
cat > "$W/config.toml" <<TOML
version = 2
root = "$W/root"
state = "$W/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$W/containerd.sock"
[ttrpc]
  address = "$W/containerd.sock.ttrpc"
TOML
containerd --config "$W/config.toml" > "$W/containerd.log" 2>&1 &
CPID=$!
for _ in $(seq 100); do [[ -S "$W/containerd.sock" ]] && break; sleep 0.1; done
echo "--- containerd $(containerd --version | awk '{print $3}')"
node scripts/distd-load.mjs --address "$W/containerd.sock" --max-rss-mb 100000 "${ARGS[@]}" | tee "$W/ctd.txt"; r2=${PIPESTATUS[0]}
echo "--- side by side"
printf 'distd:      %s\ncontainerd: %s\n' "$(grep -i 'MB/s' "$W/distd.txt" | head -1)" "$(grep -i 'MB/s' "$W/ctd.txt" | head -1)"
exit $(( r1 || r2 ))
