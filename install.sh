#!/usr/bin/env bash
# Installs pmxcfs-ts and everything it and its tests need on Debian 12, as root.
# Idempotent: running it again changes nothing that is already in place.
set -euo pipefail

DENO_VERSION="2.9.6"
PREFIX="${PMXCFS_PREFIX:-/opt/pmxcfs-ts}"
here="$(cd "$(dirname "$0")" && pwd)"

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: must run as root" >&2
  exit 1
fi

# Debian runtime packages. corosync's own service must not start on install:
# pmxcfs writes its config, not the package.
pkgs=(fuse3 libfuse3-3 corosync libcpg4 libquorum5 libcmap4 libqb100 iproute2 sqlite3
  util-linux procps ca-certificates attr)
# npm fetches Deno; take Debian's only when no npm is present (nodesource's nodejs ships one).
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  policy=/usr/sbin/policy-rc.d
  had_policy=0; [ -e "$policy" ] && had_policy=1
  [ "$had_policy" = 1 ] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; }
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$had_policy" = 1 ] || rm -f "$policy"
fi

# Deno from the npm registry, pinned.
deno="$PREFIX/deno/node_modules/.bin/deno"
if ! [ -x "$deno" ] || [ "$("$deno" --version | head -1 | awk '{print $2}')" != "$DENO_VERSION" ]; then
  mkdir -p "$PREFIX/deno"
  (cd "$PREFIX/deno" && [ -f package.json ] || echo '{"private":true}' >"$PREFIX/deno/package.json")
  npm install --prefix "$PREFIX/deno" --no-audit --no-fund --loglevel=error "deno@$DENO_VERSION" >/dev/null
fi
ln -sf "$deno" /usr/local/bin/deno
echo "install.sh: deno $("$deno" --version | head -1 | awk '{print $2}') at /usr/local/bin/deno"
