#!/usr/bin/env bash
# Two independent one-replica OpenStack Swift clusters with tempauth, on loopback ports.
#
#   tests/services/swift.sh start STATE_DIR        start both clusters, write STATE_DIR/env
#   tests/services/swift.sh stop STATE_DIR         stop everything this script started
#   tests/services/swift.sh stop-proxy STATE_DIR N stop proxy N (1, 2 or 1b) only (outage tests)
#   tests/services/swift.sh start-proxy STATE_DIR N start it again on the same port
#
# Installs nothing (tests/run.sh installs swift swift-proxy swift-account swift-container
# swift-object memcached). Every process is recorded in STATE_DIR/pids as "PID STARTTIME NAME" and
# stopped by that PID only (the start time guards against PID reuse). Cluster 2 gives tokens a
# short life (token_life = 8 s) so that clients really have to renew them.
#
# Env written (N = 1, 2):
#   RIME_TEST_SWIFTN_AUTH  http://127.0.0.1:PORT/auth/v1.0
#   RIME_TEST_SWIFTN_USER  test:tester
#   RIME_TEST_SWIFTN_KEY   testing
#   RIME_TEST_SWIFTN_TOKEN_LIFE  seconds a token lives on that cluster
#   RIME_TEST_SWIFT1B_AUTH cluster 1 through its spare proxy "1b" (same user and key as cluster 1),
#                          for outage tests: `stop-proxy STATE_DIR 1b` disturbs no other test
#   RIME_TEST_SWIFT_STATE  STATE_DIR (for stop-proxy/start-proxy from tests)
#   RIME_TEST_SWIFT_SCRIPT this script's path
# Ports: RIME_SWIFT_PORT_BASE (default 18600): cluster N uses BASE+10*(N-1) .. +5 (proxy, object,
# container, account, memcached, spare proxy); +9 receives (drops) its UDP log lines.
set -euo pipefail

cmd=${1:?usage: swift.sh start|stop|stop-proxy|start-proxy STATE_DIR [N]}
state=${2:?STATE_DIR missing}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3 # Debian's Swift lives in the system Python, not in pyenv's
base=${RIME_SWIFT_PORT_BASE:-18600}

# shellcheck source=tests/services/procs.sh
source "$here/procs.sh"

# Fail early and clearly when a port is taken (one Python process checks them all).
ports_free() { # PORT...
  "$py" -c 'import socket,sys
for p in sys.argv[1:]:
    s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try: s.bind(("127.0.0.1", int(p)))
    except OSError: sys.exit(f"swift.sh: port {p} is in use (set RIME_SWIFT_PORT_BASE)")
    s.close()' "$@"
}

# The rings of every cluster, built in one Python process (swift-ring-builder costs ~0.8 s a
# call, mostly importing Swift).
build_rings() { # N...
  local args=() n
  for n in "$@"; do args+=("$state/c$n/etc" "$(proxy_port "$n")"); done
  "$py" - "${args[@]}" <<'EOF'
import sys
from swift.common.ring import RingBuilder
a = sys.argv[1:]
for etc, p in zip(a[0::2], map(int, a[1::2])):
    for kind, off in (("object", 1), ("container", 2), ("account", 3)):
        b = RingBuilder(8, 1, 1)
        b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": p + off,
                   "device": "d1", "weight": 1, "meta": ""})
        b.rebalance()
        b.get_ring().save(f"{etc}/{kind}.ring.gz")
EOF
}

proxy_port() { echo $((base + 10 * ($1 - 1))); }

write_configs() { # N
  local n=$1 p d
  p=$(proxy_port "$n")
  d="$state/c$n"
  mkdir -p "$d/etc" "$d/srv/d1" "$d/run"
  local common="bind_ip = 127.0.0.1
workers = 0
user = root
swift_dir = $d/etc
devices = $d/srv
mount_check = false
disable_fallocate = true
log_udp_host = 127.0.0.1
log_udp_port = $((p + 9))
log_name = swift$n"
  local life=86400
  [ "$n" = 2 ] && life=8
  cat >"$d/etc/proxy-server.conf" <<EOF
[DEFAULT]
$common
bind_port = $p

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
token_life = $life

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$((p + 4))

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
[filter:symlink]
use = egg:swift#symlink
EOF
  local kind off
  for kind in object container account; do
    case $kind in object) off=1 ;; container) off=2 ;; account) off=3 ;; esac
    cat >"$d/etc/$kind-server.conf" <<EOF
[DEFAULT]
$common
bind_port = $((p + off))

[pipeline:main]
pipeline = $kind-server

[app:$kind-server]
use = egg:swift#$kind
EOF
  done
}

# Proxy "N" is cluster N's proxy; "1b" is a second proxy of cluster 1 (same rings, servers and
# memcached, port BASE+5) that only outage tests use, so stopping it disturbs no other test.
start_proxy() { # N|1b
  local n=${1%b} conf p
  p=$(proxy_port "$n")
  conf="$state/c$n/etc/proxy-server.conf"
  if [ "$1" != "$n" ]; then
    p=$((p + 5))
    sed "s/^bind_port = .*/bind_port = $p/" "$conf" >"$state/c$n/etc/proxy-server-b.conf"
    conf="$state/c$n/etc/proxy-server-b.conf"
  fi
  launch "proxy$1" "$state/c$n/proxy$1.log" /usr/bin/swift-proxy-server "$conf"
  [ "${2:-}" = nowait ] || wait_port "$p" "swift proxy $1"
}

start_cluster() { # N
  local n=$1 p
  p=$(proxy_port "$n")
  launch "memcached$n" "$state/c$n/memcached.log" /usr/bin/memcached -l 127.0.0.1 -p $((p + 4)) -U 0 -u root -m 32
  for kind in object container account; do
    launch "$kind$n" "$state/c$n/$kind.log" "/usr/bin/swift-$kind-server" "$state/c$n/etc/$kind-server.conf"
  done
  start_proxy "$n" nowait
  if [ "$n" = 1 ]; then start_proxy 1b nowait; fi
}

wait_cluster() { # N
  local p
  p=$(proxy_port "$1")
  for off in 0 1 2 3 4; do wait_port $((p + off)) "swift cluster $1 service on port $((p + off))"; done
  if [ "$1" = 1 ]; then wait_port $((p + 5)) "swift proxy 1b"; fi
}

# Wait until v1 auth answers and a container PUT works end to end (rings, servers, memcache).
smoke() { # N
  local n=$1 p
  p=$(proxy_port "$n")
  "$py" - "$p" <<'EOF'
import sys, time, urllib.request
p = int(sys.argv[1])
deadline = time.time() + 30
while True:
    try:
        r = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{p}/auth/v1.0",
            headers={"X-Auth-User": "test:tester", "X-Auth-Key": "testing"}), timeout=5)
        url, tok = r.headers["X-Storage-Url"], r.headers["X-Auth-Token"]
        req = urllib.request.Request(url + "/rime-smoke", method="PUT", headers={"X-Auth-Token": tok})
        urllib.request.urlopen(req, timeout=5)
        req = urllib.request.Request(url + "/rime-smoke", method="DELETE", headers={"X-Auth-Token": tok})
        urllib.request.urlopen(req, timeout=5)
        break
    except Exception as e:
        if time.time() > deadline:
            sys.exit(f"swift.sh: cluster on port {p} does not work: {e}")
        time.sleep(0.2)
EOF
}

case $cmd in
start)
  mkdir -p "$state"
  state=$(cd "$state" && pwd)
  if [ ! -f /etc/swift/swift.conf ]; then
    # Read from this fixed path by every Swift process; shared by both clusters.
    mkdir -p /etc/swift
    printf '[swift-hash]\nswift_hash_path_suffix = rime-test\nswift_hash_path_prefix = rime-test\n\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n' >/etc/swift/swift.conf
  fi
  export XDG_CACHE_HOME="$state/cache"
  : >>"$state/pids"
  # Both clusters start side by side (a Swift server needs a few seconds to import itself).
  ports_free $(seq "$base" $((base + 5))) $(seq $((base + 10)) $((base + 14)))
  write_configs 1
  write_configs 2
  build_rings 1 2
  start_cluster 1
  start_cluster 2
  wait_cluster 1
  wait_cluster 2
  smoke 1
  smoke 2
  {
    for n in 1 2; do
      p=$(proxy_port "$n")
      echo "export RIME_TEST_SWIFT${n}_AUTH=http://127.0.0.1:$p/auth/v1.0"
      echo "export RIME_TEST_SWIFT${n}_USER=test:tester"
      echo "export RIME_TEST_SWIFT${n}_KEY=testing"
    done
    echo "export RIME_TEST_SWIFT1B_AUTH=http://127.0.0.1:$(($(proxy_port 1) + 5))/auth/v1.0"
    echo "export RIME_TEST_SWIFT1_TOKEN_LIFE=86400"
    echo "export RIME_TEST_SWIFT2_TOKEN_LIFE=8"
    echo "export RIME_TEST_SWIFT_STATE=$state"
    echo "export RIME_TEST_SWIFT_SCRIPT=$here/swift.sh"
    # start-proxy/stop-proxy (used by the outage test) must find the same ports.
    echo "export RIME_SWIFT_PORT_BASE=$base"
  } >"$state/env"
  ;;
stop)
  stop_recorded ""
  ;;
stop-proxy)
  stop_recorded "proxy${3:?cluster number}"
  ;;
start-proxy)
  n=${3:?cluster number}
  export XDG_CACHE_HOME="$state/cache"
  start_proxy "$n"
  ;;
*)
  echo "usage: swift.sh start|stop|stop-proxy|start-proxy STATE_DIR [N]" >&2
  exit 2
  ;;
esac
