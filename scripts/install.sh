#!/usr/bin/env bash
# Installs everything dist needs on Debian bookworm (as root): the Debian
# packages its tests and demo use (a real registry, containerd/ctr, skopeo,
# umoci, igzip/pigz/zstd, Go + containerd's sources for the peer suites),
# then the npm packages, then builds into build/. Idempotent and quick when
# everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(docker-registry skopeo umoci containerd runc isal pigz zstd apache2-utils openssl jq curl
      busybox-static golang-go golang-github-containerd-containerd-dev protobuf-compiler hyperfine time)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "install.sh: need root to apt-get install: ${missing[*]}" >&2; exit 1; fi
  # Keep packaged services (docker-registry, containerd) from starting on install.
  added_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; added_policy=1; fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  if ((added_policy)); then rm -f /usr/sbin/policy-rc.d; fi
  # The packaged services must not hold the ports or sockets the tests use.
  systemctl stop docker-registry containerd 2>/dev/null || true
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
# The native addon (mknod, xattrs, mount, the ordered apply executor): built
# offline by node-gyp against the local Node headers.
if [[ ! -f native/build/Release/dist_native.node ]] || [[ -n "$(find native/src native/binding.gyp -newer native/build/Release/dist_native.node 2>/dev/null | head -1)" ]]; then
  npm run build:native --silent
fi
npm run build --silent
