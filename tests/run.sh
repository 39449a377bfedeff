#!/usr/bin/env bash
# The whole test suite: unit, property, format-vector and integration tests.
# Installs what the tests need from Debian when missing (run as root on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v tar >/dev/null || need+=(tar)
command -v setfattr >/dev/null || need+=(attr)
command -v setpriv >/dev/null || need+=(util-linux)
command -v ps >/dev/null || need+=(procps)
[ -x /usr/sbin/sshd ] && [ -x /usr/lib/openssh/sftp-server ] || need+=(openssh-server openssh-sftp-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    # Packages must not start daemons (openssh-server would listen on 0.0.0.0:22).
    made_policy=
    [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
  else
    echo "tests/run.sh: missing ${need[*]} (not root: cannot install; dependent tests will skip)" >&2
  fi
fi

log=$(mktemp)
services=$(mktemp -d)
cleanup() {
  tests/services/sshd.sh stop "$services/sshd" || true
  rm -rf "$log" "$services"
}
trap cleanup EXIT
# Services the tests talk to (on 127.0.0.1); each writes env lines the tests read.
if [ -x /usr/sbin/sshd ]; then
  tests/services/sshd.sh start "$services/sshd" && . "$services/sshd/env"
fi
status=0
cargo test --workspace --all-targets --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (cargo prints one "test result" line per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "summary: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
