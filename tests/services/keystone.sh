#!/usr/bin/env bash
# Keystone v3 (SQLite, under uwsgi) and a Swift proxy that authenticates with it (authtoken +
# keystoneauth), in front of cluster 1 of tests/services/swift.sh (its rings, storage servers and
# memcached; accounts are AUTH_<project id>, apart from tempauth's AUTH_test).
#
#   tests/services/keystone.sh start STATE_DIR [SWIFT_STATE_DIR]  (swift.sh must be running;
#        SWIFT_STATE_DIR defaults to $RIME_TEST_SWIFT_STATE from swift.sh's env file)
#   tests/services/keystone.sh stop STATE_DIR
#
# Installs nothing (tests/run.sh installs python3-keystone python3-keystonemiddleware uwsgi
# uwsgi-plugin-python3). A first bootstrap costs 15-40 s of CPU; the bootstrapped database and
# keys are kept in RIME_KEYSTONE_CACHE (default /var/tmp/rime-keystone-cache) and copied on the
# next start, which then takes a few seconds.
#
# Env written:
#   RIME_TEST_KEYSTONE_AUTH_URL         http://127.0.0.1:PORT/v3
#   RIME_TEST_KEYSTONE_USERNAME / _PASSWORD / _PROJECT_NAME / _USER_DOMAIN_NAME /
#   _PROJECT_DOMAIN_NAME / _REGION      a member of project "rime"
#   RIME_TEST_KEYSTONE_APP_CRED_ID / _APP_CRED_SECRET   an application credential of that user
#   RIME_TEST_KEYSTONE_ADMIN_PASSWORD   password of "admin" (project admin), to revoke tokens
#   RIME_TEST_KEYSTONE_SWIFT_URL        the keystoneauth proxy's account URL prefix
# Ports: RIME_KEYSTONE_PORT (default 18640) for Keystone, +1 for the Swift proxy.
set -euo pipefail

cmd=${1:?usage: keystone.sh start|stop STATE_DIR [SWIFT_STATE_DIR]}
state=${2:?STATE_DIR missing}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
kport=${RIME_KEYSTONE_PORT:-18640}
sport=$((kport + 1))
cache=${RIME_KEYSTONE_CACHE:-/var/tmp/rime-keystone-cache}
admin_pw=rime-admin-pw
user_pw=rime-user-pw
# Bump when bootstrap or populate change: the cached bootstrapped copy is then rebuilt.
bootstrap_version=2

# shellcheck source=tests/services/procs.sh
source "$here/procs.sh"

write_keystone_conf() {
  cat >"$state/keystone.conf" <<EOF
[DEFAULT]
log_file = $state/keystone.log
[database]
connection = sqlite:///$state/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $state/fernet-keys
[fernet_receipts]
key_repository = $state/fernet-keys
[credential]
key_repository = $state/credential-keys
[cache]
enabled = false
EOF
}

# db_sync, keys, bootstrap; then the test project, user, application credential, and Swift's
# service and endpoints, through the REST API (one Python process).
bootstrap() {
  local km=(keystone-manage --config-file "$state/keystone.conf")
  "${km[@]}" db_sync >>"$state/bootstrap.log" 2>&1
  "$py" -c 'import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL")' "$state/keystone.db"
  mkdir -p -m 0700 "$state/fernet-keys" "$state/credential-keys"
  "${km[@]}" fernet_setup --keystone-user root --keystone-group root >>"$state/bootstrap.log" 2>&1
  "${km[@]}" credential_setup --keystone-user root --keystone-group root >>"$state/bootstrap.log" 2>&1
  "${km[@]}" bootstrap --bootstrap-password "$admin_pw" \
    --bootstrap-admin-url "http://127.0.0.1:$kport/v3" \
    --bootstrap-public-url "http://127.0.0.1:$kport/v3" \
    --bootstrap-internal-url "http://127.0.0.1:$kport/v3" \
    --bootstrap-region-id RegionOne >>"$state/bootstrap.log" 2>&1
}

start_keystone() {
  launch keystone "$state/uwsgi.log" env OS_KEYSTONE_CONFIG_FILES="$state/keystone.conf" XDG_CACHE_HOME="$state/cache" \
    /usr/bin/uwsgi --plugin python3 --http11-socket "127.0.0.1:$kport" --wsgi-file /usr/bin/keystone-wsgi-public \
    --master --die-on-term --processes 2 --threads 1 --need-app
  wait_port "$kport" keystone
}

# Objects created through the API once Keystone serves; prints "APP_ID APP_SECRET".
populate() {
  "$py" - "$kport" "$sport" "$admin_pw" "$user_pw" <<'EOF'
import json, sys, time, urllib.request, urllib.error
kport, sport, admin_pw, user_pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
base = f"http://127.0.0.1:{kport}/v3"

def call(method, path, body=None, token=None, ok=(200, 201, 204)):
    req = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"X-Auth-Token": token} if token else {})})
    try:
        r = urllib.request.urlopen(req, timeout=60)
    except urllib.error.HTTPError as e:
        sys.exit(f"keystone.sh: {method} {path}: HTTP {e.code} {e.read()[:300]!r}")
    data = r.read()
    return r.headers, (json.loads(data) if data else None)

def token(user, pw, project):
    h, _ = call("POST", "/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": pw}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
    return h["X-Subject-Token"]

deadline = time.time() + 60
while True:
    try:
        adm = token("admin", admin_pw, "admin"); break
    except SystemExit:
        if time.time() > deadline: raise
        time.sleep(0.5)
    except OSError:
        if time.time() > deadline: raise
        time.sleep(0.5)

_, p = call("POST", "/projects", {"project": {"name": "rime", "domain_id": "default"}}, adm)
pid = p["project"]["id"]
_, u = call("POST", "/users", {"user": {"name": "rimeuser", "domain_id": "default", "password": user_pw,
                                        "default_project_id": pid}}, adm)
uid = u["user"]["id"]
_, roles = call("GET", "/roles?name=member", None, adm)
rid = roles["roles"][0]["id"]
call("PUT", f"/projects/{pid}/users/{uid}/roles/{rid}", None, adm)
_, s = call("POST", "/services", {"service": {"type": "object-store", "name": "swift"}}, adm)
for iface in ("public", "internal"):
    call("POST", "/endpoints", {"endpoint": {"service_id": s["service"]["id"], "interface": iface,
        "region_id": "RegionOne", "url": f"http://127.0.0.1:{sport}/v1/AUTH_%(project_id)s"}}, adm)
ut = token("rimeuser", user_pw, "rime")
_, ac = call("POST", f"/users/{uid}/application_credentials",
             {"application_credential": {"name": "rime-test"}}, ut)
print(ac["application_credential"]["id"], ac["application_credential"]["secret"])
EOF
}

write_proxy_conf() { # SWIFT_STATE_DIR
  local sw=$1 mc
  mc=$(sed -n 's/^memcache_servers = //p' "$sw/c1/etc/proxy-server.conf")
  sed -e "s/^bind_port = .*/bind_port = $sport/" \
      -e "s/^log_name = .*/log_name = swift-keystone/" \
      -e "s/ tempauth / authtoken keystoneauth /" \
      "$sw/c1/etc/proxy-server.conf" >"$state/proxy-server.conf"
  cat >>"$state/proxy-server.conf" <<EOF

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
delay_auth_decision = True
www_authenticate_uri = http://127.0.0.1:$kport/v3
auth_url = http://127.0.0.1:$kport/v3
auth_type = password
username = admin
password = $admin_pw
project_name = admin
user_domain_id = default
project_domain_id = default
memcached_servers = $mc
# A validated token is trusted for 5 s (a validation costs ~1 s of Keystone's time here); a
# revoked token is refused once that has passed.
token_cache_time = 5
service_token_roles_required = False

[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member
EOF
}

case $cmd in
start)
  sw=${3:-${RIME_TEST_SWIFT_STATE:?SWIFT_STATE_DIR missing (start tests/services/swift.sh first)}}
  mkdir -p "$state/cache"
  state=$(cd "$state" && pwd)
  sw=$(cd "$sw" && pwd)
  : >>"$state/pids"
  "$py" -c 'import socket,sys
for p in sys.argv[1:]:
    s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try: s.bind(("127.0.0.1", int(p)))
    except OSError: sys.exit(f"keystone.sh: port {p} is in use (set RIME_KEYSTONE_PORT)")' "$kport" "$sport"
  write_keystone_conf
  # Fresh state: a database left by an earlier start would make bootstrap and populate clash.
  rm -rf "$state"/keystone.db* "$state/fernet-keys" "$state/credential-keys" "$state/appcred"
  key="v$bootstrap_version-port$kport"
  if [ -f "$cache/$key/done" ]; then
    cp -a "$cache/$key/." "$state/"
    write_keystone_conf
  else
    bootstrap
    start_keystone
    populate >"$state/appcred" || { stop_recorded keystone; exit 1; }
    mkdir -p "$cache"
    stop_recorded keystone
    # Fold the write-ahead log into the database file: the copy must hold the last writes.
    "$py" -c 'import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA wal_checkpoint(TRUNCATE)")' "$state/keystone.db"
    rm -rf "${cache:?}/$key.tmp"
    mkdir -p "$cache/$key.tmp"
    cp -a "$state/keystone.db" "$state/fernet-keys" "$state/credential-keys" "$state/appcred" "$cache/$key.tmp/"
    touch "$cache/$key.tmp/done"
    rm -rf "${cache:?}/$key"
    mv "$cache/$key.tmp" "$cache/$key"
  fi
  # shellcheck disable=SC2016
  "$py" -c 'import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL")' "$state/keystone.db"
  start_keystone
  write_proxy_conf "$sw"
  launch proxy "$state/proxy.log" /usr/bin/swift-proxy-server "$state/proxy-server.conf"
  wait_port "$sport" "swift proxy (keystoneauth)"
  read -r app_id app_secret <"$state/appcred"
  {
    echo "export RIME_TEST_KEYSTONE_AUTH_URL=http://127.0.0.1:$kport/v3"
    echo "export RIME_TEST_KEYSTONE_USERNAME=rimeuser"
    echo "export RIME_TEST_KEYSTONE_PASSWORD=$user_pw"
    echo "export RIME_TEST_KEYSTONE_PROJECT_NAME=rime"
    echo "export RIME_TEST_KEYSTONE_USER_DOMAIN_NAME=Default"
    echo "export RIME_TEST_KEYSTONE_PROJECT_DOMAIN_NAME=Default"
    echo "export RIME_TEST_KEYSTONE_REGION=RegionOne"
    echo "export RIME_TEST_KEYSTONE_APP_CRED_ID=$app_id"
    echo "export RIME_TEST_KEYSTONE_APP_CRED_SECRET=$app_secret"
    echo "export RIME_TEST_KEYSTONE_ADMIN_PASSWORD=$admin_pw"
    echo "export RIME_TEST_KEYSTONE_SWIFT_URL=http://127.0.0.1:$sport/v1"
  } >"$state/env"
  ;;
stop)
  stop_recorded ""
  ;;
*)
  echo "usage: keystone.sh start|stop STATE_DIR [SWIFT_STATE_DIR]" >&2
  exit 2
  ;;
esac
