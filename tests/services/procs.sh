# Process bookkeeping shared by the service scripts (sourced; needs $state and $py).
# Every process is recorded in $state/pids as "PID STARTTIME NAME" and stopped by that PID only;
# the start time (field 22 of /proc/PID/stat) guards against a reused PID.

starttime() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null || true; }

# Start a process in the background, record it, and return immediately.
launch() { # NAME LOGFILE CMD...
  local name=$1 log=$2
  shift 2
  setsid "$@" >>"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid $(starttime "$pid") $name" >>"$state/pids"
}

# Stop the recorded processes whose name matches the pattern (all when empty).
stop_recorded() { # PATTERN
  local pat=${1:-} keep=() pid st name
  [ -f "$state/pids" ] || return 0
  local waitfor=()
  while read -r pid st name; do
    if [ -n "$pat" ] && [ "$name" != "$pat" ]; then
      keep+=("$pid $st $name")
      continue
    fi
    if [ -n "$st" ] && [ "$(starttime "$pid")" = "$st" ]; then
      kill -TERM "$pid" 2>/dev/null || true
      waitfor+=("$pid:$st")
    fi
  done <"$state/pids"
  for w in "${waitfor[@]}"; do
    pid=${w%%:*} st=${w#*:}
    for _ in $(seq 50); do
      [ "$(starttime "$pid")" = "$st" ] || break
      sleep 0.1
    done
    [ "$(starttime "$pid")" = "$st" ] && kill -KILL "$pid" 2>/dev/null || true
  done
  if [ ${#keep[@]} -gt 0 ]; then printf '%s\n' "${keep[@]}" >"$state/pids"; else : >"$state/pids"; fi
}

wait_port() { # PORT WHAT
  for _ in $(seq 200); do
    if "$py" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$1" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$(basename "$0"): $2 did not start listening on 127.0.0.1:$1 (see the logs in $state)" >&2
  return 1
}

