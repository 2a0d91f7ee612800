#!/usr/bin/env bash
# The main job, end to end: start a real CNCF distribution registry on a free
# loopback port, generate an image into one dist root, push it, pull and
# unpack it (with progress) into a fresh root, list it, look inside.
set -euo pipefail
cd "$(dirname "$0")/.."
DIST="bin/dist"
W=$(mktemp -d /tmp/dist-demo.XXXXXX)
source scripts/registry.sh
cleanup() { stop_registry; umount -R "$W/mnt" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

start_registry "$W"
PORT=$REG_PORT
echo "== registry (docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}')) on 127.0.0.1:$PORT"

REF=127.0.0.1:$PORT/demo/hello:v1
echo "== generate an image into $W/a"
node scripts/demo-image.mjs "$W/a" "$REF"
echo "== push"
$DIST --root "$W/a" push --plain-http "$REF"
echo "== pull into a fresh root $W/b (fetch + unpack, native snapshotter)"
$DIST --root "$W/b" pull --plain-http --snapshotter native "$REF"
echo "== images ls"
$DIST --root "$W/b" images ls
echo "== snapshots ls"
$DIST --root "$W/b" snapshots --snapshotter native ls
echo "== rootfs (flattened, no mounts)"
$DIST --root "$W/b" rootfs "$REF" "$W/rootfs"
cat "$W/rootfs/etc/motd"
[[ ! -e "$W/rootfs/etc/old.conf" ]] && echo "whiteout applied: /etc/old.conf is gone"
echo "== demo done"
