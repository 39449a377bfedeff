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
command -v ps >/dev/null || need+=(procps)
[ -x /usr/sbin/sshd ] && [ -x /usr/lib/openssh/sftp-server ] || need+=(openssh-server openssh-sftp-server)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v mkfs.btrfs >/dev/null || need+=(btrfs-progs)
[ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb-dump >/dev/null || need+=(mariadb-client)
# Real services for the remote-storage tests: tests/services/NAME.sh start|stop DIR writes
# DIR/env, which is sourced here; tests whose variables are unset print "skipped: ..." lines.
svc_root=$(mktemp -d /tmp/rime-services.XXXXXX)
log=$(mktemp)
trap 'rm -f "$log"; stop_services' EXIT
svc_started=()
svc_failed=0
install_debs() { # PACKAGE...
  [ "$(id -u)" = 0 ] || { echo "tests/run.sh: not root, cannot install $*" >&2; return 1; }
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then # packages must not start their daemons
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null; } || rc=$?
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return "$rc"
}
start_service() { # NAME
  mkdir -p "$svc_root/$1"
  if "tests/services/$1.sh" start "$svc_root/$1"; then
    svc_started+=("$1")
    # shellcheck disable=SC1090
    source "$svc_root/$1/env"
  else
    echo "tests/run.sh: could not start $1 (its tests will skip; the run fails)" >&2
    svc_failed=1
  fi
}
stop_services() {
  for s in "${svc_started[@]}"; do "tests/services/$s.sh" stop "$svc_root/$s" || true; done
  rm -rf "$svc_root"
}
if [ ${#need[@]} -gt 0 ]; then
  install_debs "${need[@]}" || echo "tests/run.sh: could not install ${need[*]} (dependent tests will skip)" >&2
fi
if [ "$(id -u)" = 0 ]; then
  start_service mariadb
  start_service sshd
fi
# A port range with nothing listening (another run, or a developer's services, may hold the
# default ones): FIRST, FIRST+STEP, ... ; prints the first free base of COUNT ports.
free_base() { # FIRST STEP COUNT
  python3 - "$@" <<'PY'
import socket, sys
first, step, count = map(int, sys.argv[1:])
for base in range(first, first + 20 * step, step):
    ok = True
    for p in range(base, base + count):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            ok = False
        finally:
            s.close()
        if not ok:
            break
    if ok:
        print(base)
        break
PY
}
export RIME_SWIFT_PORT_BASE=${RIME_SWIFT_PORT_BASE:-$(free_base 18600 100 20 || echo 18600)}
export RIME_KEYSTONE_PORT=${RIME_KEYSTONE_PORT:-$(free_base 18640 100 2 || echo 18640)}
# OpenStack Swift: two one-replica tempauth clusters.
swift_debs=(swift swift-proxy swift-account swift-container swift-object memcached python3-swiftclient)
if { [ -x /usr/bin/swift-proxy-server ] && [ -x /usr/bin/memcached ]; } || install_debs "${swift_debs[@]}"; then
  start_service swift
elif [ "$(id -u)" = 0 ]; then
  echo "tests/run.sh: installing ${swift_debs[*]} failed" >&2
  svc_failed=1
fi
# Keystone v3 and a keystoneauth Swift proxy in front of Swift cluster 1.
keystone_debs=(python3-keystone python3-keystonemiddleware uwsgi uwsgi-plugin-python3)
if [[ " ${svc_started[*]} " == *" swift "* ]]; then
  if { [ -x /usr/bin/keystone-manage ] && [ -x /usr/bin/uwsgi ] && [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ]; } || install_debs "${keystone_debs[@]}"; then
    mkdir -p "$svc_root/keystone"
    if tests/services/keystone.sh start "$svc_root/keystone" "$svc_root/swift"; then
      svc_started=(keystone "${svc_started[@]}") # stopped before the Swift it uses
      # shellcheck disable=SC1091
      source "$svc_root/keystone/env"
    else
      echo "tests/run.sh: could not start keystone (its tests will skip; the run fails)" >&2
      svc_failed=1
    fi
  elif [ "$(id -u)" = 0 ]; then
    echo "tests/run.sh: installing ${keystone_debs[*]} failed" >&2
    svc_failed=1
  fi
fi

status=0
cargo test --workspace --all-targets --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?

# Fuzzing: every cargo-fuzz target for a bounded time (RIME_FUZZ_SECONDS per target, 0 skips
# this), seeded from the committed corpus fuzz/corpus/<target>/; a crash, panic, hang or
# out-of-memory fails the run. fuzz/ is its own workspace; fuzz/run.sh installs cargo-fuzz if
# missing. The sanitizer build takes about 510 CPU-seconds (4-5 minutes on two cores), then
# about 33 s per target.
fuzz_seconds=${RIME_FUZZ_SECONDS:-30}
fuzz_summary="fuzz: skipped (RIME_FUZZ_SECONDS=0)"
if [ "$fuzz_seconds" != 0 ]; then
  fuzz_log=$(mktemp)
  fuzz_rc=0
  FUZZ_SECONDS=$fuzz_seconds bash fuzz/run.sh 2>&1 | tee "$fuzz_log" || fuzz_rc=$?
  fuzz_ok=$(sed -n '/^== summary$/,$p' "$fuzz_log" | grep -c ': ok,' || true)
  fuzz_bad=$(sed -n '/^== summary$/,$p' "$fuzz_log" | grep -c ': FAILED' || true)
  if [ "$fuzz_rc" != 0 ] && [ "$fuzz_bad" = 0 ]; then
    fuzz_summary="fuzz: could not build or run (exit $fuzz_rc)"
  else
    fuzz_summary="fuzz: $fuzz_ok targets ok, $fuzz_bad failed (${fuzz_seconds} s each)"
  fi
  [ "$fuzz_rc" = 0 ] || status=1
  rm -f "$fuzz_log"
fi

# One closing line for the whole suite (cargo prints one "test result" line per test binary).
awk -v fuzz="$fuzz_summary" '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "summary: %d passed, %d failed, %d skipped; %s\n", p, f, s, fuzz }' "$log"
[ "$svc_failed" = 0 ] || status=1
exit "$status"
