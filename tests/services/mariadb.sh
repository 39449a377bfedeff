#!/usr/bin/env bash
# A MariaDB server for the tests, bound to 127.0.0.1, data in a temporary directory.
#   mariadb.sh start STATE_DIR [DATADIR]   start; writes STATE_DIR/env and a Freezer-style
#                                          STATE_DIR/freezer-mysql.conf (host, port, user, password)
#   mariadb.sh stop STATE_DIR              clean shutdown (kill by recorded PID as a fallback)
set -euo pipefail
cmd=${1:?start|stop}; state=${2:?state dir}
mkdir -p "$state"; state=$(cd "$state" && pwd)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

case "$cmd" in
start)
  datadir=${3:-$state/data}
  port=$(free_port)
  mkdir -p "$datadir" "$state/run"
  cat >"$state/my.cnf" <<CNF
[mysqld]
user = root
datadir = $datadir
socket = $state/run/mysqld.sock
pid-file = $state/run/mysqld.pid
bind-address = 127.0.0.1
port = $port
log-bin = binlog
server-id = 1
skip-name-resolve
innodb_buffer_pool_size = 32M
innodb_log_file_size = 16M
log-error = $state/error.log
[client]
socket = $state/run/mysqld.sock
CNF
  mariadb-install-db --defaults-file="$state/my.cnf" --skip-test-db --auth-root-authentication-method=socket >"$state/install.log" 2>&1
  /usr/sbin/mariadbd --defaults-file="$state/my.cnf" >>"$state/error.log" 2>&1 &
  echo $! >"$state/pid"
  up=0
  for _ in $(seq 1 300); do
    if mariadb --defaults-file="$state/my.cnf" -uroot -e 'SELECT 1' >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$(cat "$state/pid")" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$up" != 1 ]; then
    echo "mariadb.sh: the server did not start; its log:" >&2
    tail -n 30 "$state/error.log" >&2
    exit 1
  fi
  mariadb --defaults-file="$state/my.cnf" -uroot -e "
    CREATE USER IF NOT EXISTS 'backup'@'127.0.0.1' IDENTIFIED BY 'bk-secret';
    GRANT ALL PRIVILEGES ON *.* TO 'backup'@'127.0.0.1' WITH GRANT OPTION;
    CREATE USER IF NOT EXISTS 'weak'@'127.0.0.1' IDENTIFIED BY 'weak-secret';
    GRANT SELECT ON *.* TO 'weak'@'127.0.0.1';
    FLUSH PRIVILEGES;"
  printf 'host = 127.0.0.1\nport = %s\nuser = backup\npassword = bk-secret\n' "$port" >"$state/freezer-mysql.conf"
  printf 'host = 127.0.0.1\nport = %s\nuser = weak\npassword = weak-secret\n' "$port" >"$state/weak-mysql.conf"
  cat >"$state/env" <<ENV
export RIME_TEST_MYSQL_CONF=$state/freezer-mysql.conf
export RIME_TEST_MYSQL_WEAK_CONF=$state/weak-mysql.conf
export RIME_TEST_MYSQL_STATE=$state
ENV
  ;;
stop)
  [ -f "$state/my.cnf" ] || exit 0
  mariadb-admin --defaults-file="$state/my.cnf" -uroot shutdown >/dev/null 2>&1 || true
  if [ -f "$state/pid" ]; then
    pid=$(cat "$state/pid")
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill "$pid" 2>/dev/null || true
  fi
  ;;
*) echo "usage: $0 start|stop STATE_DIR [DATADIR]" >&2; exit 2 ;;
esac
