#!/usr/bin/env bash
# The whole test suite: unit, property, format-vector and integration tests, with the real
# services the integration tests talk to (started here on 127.0.0.1, stopped on exit).
# Installs what the tests need from Debian when missing (run as root on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v tar >/dev/null || need+=(tar)
# tar engine interop tests (engine/tests/tarinc.rs)
for t in gzip bzip2 xz zstd openssl; do
  command -v $t >/dev/null || need+=("$([ $t = xz ] && echo xz-utils || echo $t)")
done
command -v setfattr >/dev/null || need+=(attr)
command -v setpriv >/dev/null || need+=(util-linux)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v mkfs.btrfs >/dev/null || need+=(btrfs-progs)
[ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb-dump >/dev/null || need+=(mariadb-client)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    # Packages must not start their daemons (there is no init system, and the tests start
    # their own instances on loopback).
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "tests/run.sh: missing ${need[*]} (not root: cannot install; dependent tests will skip)" >&2
  fi
fi

services=$(mktemp -d /tmp/rime-services.XXXXXX)
log=$(mktemp)
stop_services() {
  for s in "$services"/*/; do
    [ -f "$s/stop" ] && bash "$(cat "$s/stop")" stop "$s" >/dev/null 2>&1 || true
  done
  rm -rf "$services" "$log"
}
trap stop_services EXIT

# start NAME SCRIPT: start a service, remember how to stop it, and take its environment.
start() {
  local dir="$services/$1/"
  mkdir -p "$dir"
  echo "$2" >"$dir/stop"
  if bash "$2" start "$dir" >"$dir/start.log" 2>&1; then
    # shellcheck disable=SC1091
    source "$dir/env"
  else
    echo "tests/run.sh: could not start $1 (its tests will skip):" >&2
    tail -n 20 "$dir/start.log" >&2
  fi
}
if [ "$(id -u)" = 0 ]; then
  start mariadb tests/services/mariadb.sh
fi

status=0
cargo test --workspace --all-targets --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (cargo prints one "test result" line per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "summary: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
