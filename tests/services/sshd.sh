#!/usr/bin/env bash
# A real OpenSSH sshd on 127.0.0.1 for rime's SFTP tests.
#
#   sshd.sh start STATE_DIR   generate host and user keys, start sshd, write STATE_DIR/env
#   sshd.sh stop STATE_DIR    stop the sshd this script started (by recorded PID and start time)
#   sshd.sh restart STATE_DIR start it again on the same port with the same keys (outage tests)
#
# Login is root with the generated key only (no passwords, no PAM); `Subsystem sftp internal-sftp`.
# The same sshd also listens on a second port whose SFTP server refuses `hardlink@openssh.com`
# (`internal-sftp -P hardlink`, a deny list: the extension is still advertised, its requests answer
# PERMISSION_DENIED), as some servers and file systems without hard links do.
# STATE_DIR/env exports:
#   RIME_TEST_SSH_HOST, RIME_TEST_SSH_PORT, RIME_TEST_SSH_USER
#   RIME_TEST_SSH_NOLINK_PORT  the second port (same host, user, keys, host key)
#   RIME_TEST_SFTP_NOLINK_URL  sftp://user@host:NOLINK_PORT (append an absolute path)
#   RIME_TEST_SSH_KEY          private key accepted by the server
#   RIME_TEST_SSH_KNOWN_HOSTS  known_hosts file holding the server's host key
#   RIME_TEST_SSH_CONFIG       ssh config (-F): Host rime-test-sshd names all of the above;
#                              every host uses the known_hosts file above
#   RIME_TEST_SSH_STATE        STATE_DIR (tests call this script with stop/restart on it)
#   RIME_TEST_SSHD_SCRIPT      absolute path of this script
set -euo pipefail

cmd=${1:?usage: sshd.sh start|stop|restart STATE_DIR}
state=${2:?usage: sshd.sh start|stop|restart STATE_DIR}
mkdir -p "$state"
state=$(cd "$state" && pwd)
script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

pid_alive() { # pid starttime
  [ -r "/proc/$1/stat" ] && [ "$(awk '{print $22}' "/proc/$1/stat" 2>/dev/null)" = "$2" ]
}

launch() {
  mkdir -p /run/sshd
  /usr/sbin/sshd -D -e -f "$state/sshd_config" </dev/null >>"$state/sshd.log" 2>&1 &
  local pid=$!
  # Wait for the port to accept connections (sshd starts in about a second).
  local port
  for port in $(cat "$state/port" "$state/nolink_port"); do
    for _ in $(seq 1 100); do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "sshd.sh: sshd exited at start; log:" >&2; cat "$state/sshd.log" >&2; return 1
      fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
      sleep 0.05
    done
  done
  echo "$pid $(awk '{print $22}' "/proc/$pid/stat")" >"$state/sshd.pid"
}

descendants() { # pid: its children, grandchildren...
  local c
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$c"
    descendants "$c"
  done
}

# Stop the listener and its sessions (open SFTP connections drop, as when a server goes down).
stop() {
  [ -f "$state/sshd.pid" ] || return 0
  read -r pid start <"$state/sshd.pid"
  if pid_alive "$pid" "$start"; then
    local sessions; sessions=$(descendants "$pid")
    kill "$pid" 2>/dev/null || true
    [ -n "$sessions" ] && kill $sessions 2>/dev/null || true
    for _ in $(seq 1 50); do pid_alive "$pid" "$start" || break; sleep 0.05; done
    pid_alive "$pid" "$start" && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$state/sshd.pid"
}

case "$cmd" in
start)
  if [ ! -x /usr/sbin/sshd ]; then echo "sshd.sh: /usr/sbin/sshd missing (apt-get install openssh-server)" >&2; exit 1; fi
  stop
  rm -f "$state"/host_ed25519_key* "$state"/user_key* "$state/known_hosts"
  ssh-keygen -q -t ed25519 -N '' -C rime-test-host -f "$state/host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C rime-test-user -f "$state/user_key"
  cp "$state/user_key.pub" "$state/authorized_keys"
  started=
  for _attempt in 1 2 3 4 5; do # a free port may be taken before sshd binds it
    port=$(free_port)
    nolink_port=$(free_port)
    [ "$nolink_port" = "$port" ] && nolink_port=$((port + 1))
    echo "$port" >"$state/port"
    echo "$nolink_port" >"$state/nolink_port"
    cat >"$state/sshd_config" <<CFG
ListenAddress 127.0.0.1
Port $port
Port $nolink_port
HostKey $state/host_ed25519_key
PidFile none
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AuthorizedKeysFile $state/authorized_keys
Subsystem sftp internal-sftp
MaxStartups 100:30:200
MaxSessions 50
LogLevel ERROR
Match LocalPort $nolink_port
  ForceCommand internal-sftp -P hardlink
CFG
    hostkey=$(cut -d' ' -f1,2 "$state/host_ed25519_key.pub")
    printf '[127.0.0.1]:%s %s\n' "$port" "$hostkey" "$nolink_port" "$hostkey" >"$state/known_hosts"
    cat >"$state/ssh_config" <<CFG
Host rime-test-sshd
  HostName 127.0.0.1
  Port $port
  User root
  IdentityFile $state/user_key
  IdentitiesOnly yes
Host *
  UserKnownHostsFile $state/known_hosts
  GlobalKnownHostsFile /dev/null
CFG
    if launch; then started=1; break; fi
  done
  [ -n "$started" ] || { echo "sshd.sh: could not start sshd" >&2; exit 1; }
  cat >"$state/env" <<ENV
export RIME_TEST_SSH_HOST=127.0.0.1
export RIME_TEST_SSH_PORT=$port
export RIME_TEST_SSH_USER=root
export RIME_TEST_SSH_NOLINK_PORT=$nolink_port
export RIME_TEST_SFTP_NOLINK_URL=sftp://root@127.0.0.1:$nolink_port
export RIME_TEST_SSH_KEY=$state/user_key
export RIME_TEST_SSH_KNOWN_HOSTS=$state/known_hosts
export RIME_TEST_SSH_CONFIG=$state/ssh_config
export RIME_TEST_SSH_STATE=$state
export RIME_TEST_SSHD_SCRIPT=$script
ENV
  echo "sshd.sh: sshd on 127.0.0.1:$port, without hardlink@openssh.com on :$nolink_port (state $state)"
  ;;
stop) stop ;;
restart)
  stop
  launch || exit 1
  ;;
*) echo "usage: sshd.sh start|stop|restart STATE_DIR" >&2; exit 2 ;;
esac
