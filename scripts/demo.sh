#!/usr/bin/env bash
# The main job, end to end: start a real CNCF distribution registry on a free
# loopback port, generate an image into one dist root, push it, pull and
# unpack it (with progress) into a fresh root, list it, look inside.
set -euo pipefail
cd "$(dirname "$0")/.."
DIST="bin/dist"
W=$(mktemp -d /tmp/dist-demo.XXXXXX)
PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cleanup() { [[ -n "${REG_PID:-}" ]] && kill "$REG_PID" 2>/dev/null; umount -R "$W/mnt" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

cat > "$W/registry.yml" <<YML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $W/registry }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$PORT }
YML
docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done
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
