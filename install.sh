#!/usr/bin/env bash
# Installs pmxcfs-ts and everything it and its tests need on Debian 12, as root.
# Safe to run again: it installs only what is missing, brings the program to this
# checkout's version and restarts the daemon.
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

# The program: the sources under $PREFIX/app, then /usr/bin/pmxcfs. `deno compile` needs
# Deno's `denort` runtime, which only dl.deno.land serves (not the npm registry): where it
# cannot be had, /usr/bin/pmxcfs is a launcher that runs the installed sources with the
# pinned Deno instead of a single compiled binary.
app="$PREFIX/app"
rm -rf "$app.new"
mkdir -p "$app.new"
cp -r "$here/main.ts" "$here/deno.json" "$here/src" "$here/ffi" "$app.new/"
rm -rf "$app"
mv "$app.new" "$app"
# --v8-flags=--stack-size=2048 (here and in the launcher): why, and the one TypeScript
# definition of the flags, in src/daemon/deno_flags.ts; keep in step.
if (cd "$app" && "$deno" compile --quiet --allow-all --v8-flags=--stack-size=2048 \
  --output "$PREFIX/pmxcfs.compiled" main.ts) >/dev/null 2>&1; then
  install -m 0755 "$PREFIX/pmxcfs.compiled" /usr/bin/pmxcfs.new
  echo "install.sh: /usr/bin/pmxcfs is a compiled binary"
else
  cat >/usr/bin/pmxcfs.new <<LAUNCHER
#!/bin/sh
# pmxcfs-ts launcher (deno compile was not possible on this machine: no denort runtime)
exec "$deno" run --allow-all --v8-flags=--stack-size=2048 --quiet "$app/main.ts" "\$@"
LAUNCHER
  chmod 0755 /usr/bin/pmxcfs.new
  echo "install.sh: /usr/bin/pmxcfs launches $app/main.ts (no denort for deno compile here)"
fi
mv -f /usr/bin/pmxcfs.new /usr/bin/pmxcfs
cat >/usr/bin/create_pmxcfs_db.new <<LAUNCHER
#!/bin/sh
exec "$deno" run --allow-all --quiet "$app/src/tools/create_pmxcfs_db.ts" "\$@"
LAUNCHER
chmod 0755 /usr/bin/create_pmxcfs_db.new
mv -f /usr/bin/create_pmxcfs_db.new /usr/bin/create_pmxcfs_db

# The service: systemd where it runs, otherwise started directly. A running daemon is
# restarted so the new version serves.
unit_dir=/etc/systemd/system
mkdir -p "$unit_dir"
install -m 0644 "$here/packaging/pmxcfs.service" "$unit_dir/pmxcfs.service"
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable pmxcfs.service >/dev/null 2>&1
  systemctl restart pmxcfs.service
else
  pidfile=/run/pve-cluster.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    pid="$(cat "$pidfile")"
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  /usr/bin/pmxcfs
fi
if [ -L /etc/pve/local ]; then
  echo "install.sh: /etc/pve is mounted; local -> $(readlink /etc/pve/local)"
else
  echo "install.sh: /etc/pve is not mounted" >&2
  exit 1
fi
