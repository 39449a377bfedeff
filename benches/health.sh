#!/usr/bin/env bash
# benches/health.sh — repository upkeep benchmark: retention + garbage collection, and
# verification of all data, rime vs restic.
#
# Usage (as root; it mounts a tmpfs):
#   benches/health.sh                          # whole kernel tree, 30 daily snapshots
#   SCALE=fs SNAPSHOTS=10 benches/health.sh    # small run (about a minute)
#   REPS=3 benches/health.sh                   # forget+prune three times from copies; medians
#
# Environment (defaults in brackets):
#   RIME        rime binary [target/release/rime, relative to the repo root];
#               built with `cargo build --release -p rime-cli` if missing
#   SCALE       "": the whole kernel tree; otherwise a sub-directory of it, e.g. fs
#               or drivers/net [""]
#   SRC_TREE    use this directory instead of the kernel tree [""]
#   SRC_CACHE   unpacked kernel source to reuse if present [/var/tmp/linux-src-cache]
#   SNAPSHOTS   daily snapshots to build [30]
#   KEEP_DAILY  the retention policy: --keep-daily N [7]
#   CHANGE_PCT  percentage of files changed each day [1]
#   REPS        forget+prune and check repetitions, each from a copy of the built repositories;
#               medians reported, tool order alternated [1]
#   WORK        tmpfs mount point [/tmp/rime-health]
#   TMPFS_SIZE  its size [16G]
#   OUT         Markdown report [benches/results/health-<date>.md]; tool output in ${OUT%.md}.log
#   SEED        seed for the daily changes [42]
#
# What it does:
#   1. build: SNAPSHOTS daily snapshots of the same source into a rime and a restic
#      repository (both encrypted, default compression; restic repository v2), with fake
#      dates one day apart (rime backup --time, restic backup --time). Before every snapshot
#      but the first, CHANGE_PCT % of the files change: most get a line appended (a new
#      version of the file), a tenth are deleted and a tenth added (copy of a neighbour plus
#      fresh text). Untimed, but the backup times are reported for information.
#   2. forget+prune (timed, same start state for both tools):
#        rime:   forget --keep-daily K; prune --grace-minutes 0; prune --grace-minutes 0
#                (rime's prune is two-phase: the first run repacks and marks unused packs,
#                the second deletes them; both runs count)
#        restic: forget --keep-daily K --prune
#      both with their default repack threshold (5 % unused). Afterwards both repositories
#      must hold K snapshots and pass `check`.
#   3. read-data (timed): `rime check --read-data` and `restic check --read-data` against
#      reading every file of the same repository from the page cache
#      (`find -type f | xargs cat >/dev/null`, the second of two runs; everything is on a
#      tmpfs, so this is memory bandwidth through the VFS): throughput in MiB/s of repository.
# Wall time from the shell's clock, peak RSS (largest of the commands in a phase) from GNU time.
# Targets from issue 6: forget+prune >= 3x faster than restic with peak RSS <= half;
# check --read-data >= 80 % of the page-cache read rate.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
    exit 0
fi

RIME=${RIME:-target/release/rime}
[[ $RIME == /* ]] || RIME=$ROOT/$RIME
SCALE=${SCALE:-}
SRC_TREE=${SRC_TREE:-}
SRC_CACHE=${SRC_CACHE:-/var/tmp/linux-src-cache}
SNAPSHOTS=${SNAPSHOTS:-30}
KEEP_DAILY=${KEEP_DAILY:-7}
CHANGE_PCT=${CHANGE_PCT:-1}
REPS=${REPS:-1}
WORK=${WORK:-/tmp/rime-health}
TMPFS_SIZE=${TMPFS_SIZE:-16G}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$ROOT/benches/results/health-$STAMP.md}
LOG=${LOG:-${OUT%.md}.log}
SEED=${SEED:-42}

unset RESTIC_REPOSITORY RESTIC_REPOSITORY_FILE RESTIC_PASSWORD RESTIC_PASSWORD_FILE \
      RESTIC_PASSWORD_COMMAND RESTIC_CACHE_DIR RESTIC_COMPRESSION \
      RIME_REPO RIME_PASSWORD RIME_PASSWORD_FILE RIME_PASSWORD_COMMAND
export LC_ALL=C

trap 'printf "[%s] ERROR: failed at line %s: %s\n" "$(date +%H:%M:%S)" "$LINENO" "$BASH_COMMAND" >&2' ERR
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root (mounts a tmpfs, may apt-get install)"
for v in SNAPSHOTS KEEP_DAILY REPS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
[[ $CHANGE_PCT =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "CHANGE_PCT must be a number"
((SNAPSHOTS > KEEP_DAILY)) || die "SNAPSHOTS must be larger than KEEP_DAILY, or nothing is pruned"
[[ $WORK == /?* && $WORK != *[[:space:]]* ]] || die "WORK must be an absolute path other than / (no spaces)"
WORK=${WORK%/}

# ---------------------------------------------------------------- packages --
find_kernel_cache() {
    local d
    for d in "$SRC_CACHE"/linux-source-* "$SRC_CACHE"/linux-*; do
        [[ -f $d/Makefile && -d $d/fs ]] && { printf '%s\n' "$d"; return 0; }
    done
    return 1
}
kernel_tarball() { ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n1; }
pkgs=()
command -v restic >/dev/null || pkgs+=(restic)
[[ -x /usr/bin/time ]] || pkgs+=(time)
command -v xz >/dev/null || pkgs+=(xz-utils)
if [[ -z $SRC_TREE ]] && ! find_kernel_cache >/dev/null && [[ -z $(kernel_tarball) ]]; then
    pkgs+=(linux-source)
fi
if ((${#pkgs[@]})); then
    log "installing from Debian: ${pkgs[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2
fi
if [[ ! -x $RIME ]]; then
    log "rime binary $RIME missing: cargo build --release -p rime-cli"
    (cd "$ROOT" && cargo build --release -p rime-cli) >&2
    [[ -x $RIME ]] || die "no rime binary at $RIME after the build"
fi
"$RIME" backup --help | grep -q -- --time || die "$RIME has no 'backup --time' (too old)"

# ------------------------------------------------------------------ tmpfs --
MOUNTED=0
cleanup() {
    local rc=$?
    set +e
    cd /
    if ((MOUNTED)); then
        umount -- "$WORK" 2>/dev/null || { sleep 1; umount -- "$WORK" 2>/dev/null; } ||
            umount -l -- "$WORK"
        rmdir -- "$WORK" 2>/dev/null
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mountpoint -q "$WORK" && die "$WORK is already a mount point (left over from a killed run?); umount it first"
mkdir -p "$WORK"
mount -t tmpfs -o "size=$TMPFS_SIZE,mode=0755" rime-health "$WORK"
MOUNTED=1
mkdir -p "$WORK"/{tmp,home,repo,built} "$(dirname "$OUT")"
: >"$LOG"
log "tmpfs of $TMPFS_SIZE on $WORK; tool output goes to $LOG"
PWFILE=$WORK/password
printf 'rime-health-%s\n' "$SEED" >"$PWFILE"

# ----------------------------------------------------------------- source --
if [[ -n $SRC_TREE ]]; then
    [[ -d $SRC_TREE ]] || die "SRC_TREE $SRC_TREE is not a directory"
    BASE=$(cd "$SRC_TREE" && pwd)
    DATASET="directory $BASE"
elif BASE=$(find_kernel_cache); then
    DATASET="$(basename "$BASE") (cached unpacked copy in $SRC_CACHE)"
else
    tarball=$(kernel_tarball)
    [[ -n $tarball ]] || die "no /usr/src/linux-source-*.tar.xz"
    log "unpacking $tarball into the tmpfs"
    mkdir -p "$WORK/pristine"
    tar -xJf "$tarball" -C "$WORK/pristine"
    BASE=$(ls -d "$WORK"/pristine/*/ | head -n1)
    BASE=${BASE%/}
    DATASET="$(basename "$BASE") (from $(basename "$tarball"))"
fi
PRISTINE=$BASE${SCALE:+/$SCALE}
[[ -n $SCALE ]] && DATASET+=", subset $SCALE/"
[[ -d $PRISTINE ]] || die "source directory $PRISTINE does not exist"
SRC=$WORK/src
cp -a "$PRISTINE" "$SRC"
N_FILES=$(find "$SRC" -type f | wc -l)
SRC_BYTES=$(find "$SRC" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')

# One day of changes: CHANGE_PCT % of the files; 80 % of them appended to, 10 % deleted,
# 10 % added. Deterministic for (SEED, day).
N_CHANGE=$(awk -v n="$N_FILES" -v p="$CHANGE_PCT" 'BEGIN { c = int(n * p / 100 + 0.5); print (c < 10 ? 10 : c) }')
N_DEL=$((N_CHANGE / 10)) N_ADD=$((N_CHANGE / 10))
N_MOD=$((N_CHANGE - N_DEL - N_ADD))
change_day() { # DAY
    local day=$1 i=0 f d
    (cd "$SRC" && find . -type f -printf '%P\n' | sort) |
        awk -v seed="$((SEED * 1000 + day))" 'BEGIN { srand(seed) } { printf "%.12f\t%s\n", rand(), $0 }' |
        sort -k1,1 | cut -f2- >"$WORK/tmp/shuffled"
    head -n "$N_CHANGE" "$WORK/tmp/shuffled" >"$WORK/tmp/chosen"
    while IFS= read -r f; do
        i=$((i + 1))
        printf '/* rime-health day %d edit %d */\n' "$day" "$i" >>"$SRC/$f"
    done < <(head -n "$N_MOD" "$WORK/tmp/chosen")
    i=0
    while IFS= read -r f; do
        i=$((i + 1))
        d=$(dirname "$SRC/$f")
        {
            printf '/* rime-health day %d new file %d, from %s */\n' "$day" "$i" "$f"
            cat "$SRC/$f"
            awk -v seed="$((SEED * 100000 + day * 100 + i))" 'BEGIN { srand(seed)
                for (l = 0; l < 64; l++) { s = "//"
                    for (w = 0; w < 8; w++) s = s sprintf(" %08x", int(rand() * 4294967295))
                    print s } }'
        } >"$d/rime_health_${day}_$i.c"
    done < <(tail -n "+$((N_MOD + 1))" "$WORK/tmp/chosen" | head -n "$N_ADD")
    while IFS= read -r f; do rm -f -- "$SRC/$f"; done < <(tail -n "+$((N_MOD + N_ADD + 1))" "$WORK/tmp/chosen")
}

# ------------------------------------------------------------------ tools --
R_RIME=$WORK/repo/rime R_RESTIC=$WORK/repo/restic
# Each tool's home and cache on the tmpfs; the commands as arrays, so GNU time can run them.
mkdir -p "$WORK/home/rime" "$WORK/home/restic"
RIME_CMD=(env HOME="$WORK/home/rime" XDG_CACHE_HOME="$WORK/home/rime/.cache"
          XDG_CONFIG_HOME="$WORK/home/rime/.config"
          "$RIME" --repo "$R_RIME" --password-file "$PWFILE")
RESTIC_CMD=(env HOME="$WORK/home/restic" RESTIC_CACHE_DIR="$WORK/home/restic/cache"
            restic --repo "$R_RESTIC" --password-file "$PWFILE")
rime() { "${RIME_CMD[@]}" "$@"; }
restic_() { "${RESTIC_CMD[@]}" "$@"; }

# Run a command under GNU time, output to the log; adds to T_WALL, maxes T_RSS (MiB).
T_WALL=0 T_RSS=0 PHASE=build DETAIL=()
timed() { # LABEL COMMAND...
    local tf=$WORK/tmp/time.out e m label=$1
    shift
    printf '\n### %s\n' "$*" >>"$LOG"
    local t0=$EPOCHREALTIME t1
    /usr/bin/time -o "$tf" -f '%e %M' "$@" >>"$LOG" 2>&1 </dev/null ||
        die "failed: $* (see $LOG)"
    t1=$EPOCHREALTIME
    read -r e m < <(tail -n1 "$tf")
    # Wall from the shell's clock (microseconds; GNU time rounds to 10 ms).
    e=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    DETAIL+=("| $PHASE | $label | $e | $(awk -v m="$m" 'BEGIN { printf "%.1f", m / 1024 }') |")
    T_WALL=$(awk -v a="$T_WALL" -v b="$e" 'BEGIN { printf "%.2f", a + b }')
    T_RSS=$(awk -v a="$T_RSS" -v b="$m" 'BEGIN { b /= 1024; printf "%.1f", (b > a ? b : a) }')
}
reset_t() { T_WALL=0 T_RSS=0; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
dir_bytes() { du -sb "$1" | cut -f1; }

log "dataset: $DATASET: $N_FILES files, $(mib "$SRC_BYTES") MiB"
log "rime: $("$RIME" --version | head -n1); $(restic version | head -n1)"

# ------------------------------------------------------------------ build --
rime init >>"$LOG" 2>&1 || die "rime init failed"
restic_ init --repository-version 2 >>"$LOG" 2>&1 || die "restic init failed"
BUILD_RIME=0 BUILD_RESTIC=0
for ((day = 1; day <= SNAPSHOTS; day++)); do
    ((day == 1)) || change_day "$day"
    when=$(date -d "2026-01-01 12:00:00 $((day - 1)) days" '+%Y-%m-%d %H:%M:%S')
    log "day $day/$SNAPSHOTS ($when)"
    reset_t; timed "rime backup" "${RIME_CMD[@]}" backup --quiet --host bench --name kernel --time "${when/ /T}" "$SRC"
    BUILD_RIME=$(awk -v a="$BUILD_RIME" -v b="$T_WALL" 'BEGIN { print a + b }')
    reset_t; timed "restic backup" "${RESTIC_CMD[@]}" backup --quiet --host bench --time "$when" "$SRC"
    BUILD_RESTIC=$(awk -v a="$BUILD_RESTIC" -v b="$T_WALL" 'BEGIN { print a + b }')
done
REPO_RIME_BEFORE=$(dir_bytes "$R_RIME") REPO_RESTIC_BEFORE=$(dir_bytes "$R_RESTIC")
cp -a "$R_RIME" "$WORK/built/rime"
cp -a "$R_RESTIC" "$WORK/built/restic"

# ----------------------------------------------------------- forget+prune --
declare -A S # "tool|metric" -> values over reps
add() { S["$1|$2"]+="${S["$1|$2"]:+ }$3"; }
median() { tr ' ' '\n' <<<"$1" | { grep . || true; } | sort -g |
    awk '{ a[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2];
                              else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
med() { median "${S["$1|$2"]:-}"; }
count_snapshots() { # TOOL
    case $1 in
        rime) rime snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' ;;
        restic) restic_ snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' ;;
    esac
}
prune_rime() {
    reset_t
    timed "rime forget --keep-daily $KEEP_DAILY" "${RIME_CMD[@]}" forget --keep-daily "$KEEP_DAILY"
    timed "rime prune (marks, repacks)" "${RIME_CMD[@]}" prune --grace-minutes 0
    timed "rime prune (deletes)" "${RIME_CMD[@]}" prune --grace-minutes 0
    add rime prune_wall "$T_WALL"; add rime prune_rss "$T_RSS"
}
prune_restic() {
    reset_t
    timed "restic forget --keep-daily $KEEP_DAILY --prune" "${RESTIC_CMD[@]}" forget --keep-daily "$KEEP_DAILY" --prune
    add restic prune_wall "$T_WALL"; add restic prune_rss "$T_RSS"
}
for ((rep = 1; rep <= REPS; rep++)); do
    PHASE="rep $rep"
    rm -rf -- "$R_RIME" "$R_RESTIC"
    find "$WORK/home" -mindepth 2 -delete
    cp -a "$WORK/built/rime" "$R_RIME"
    cp -a "$WORK/built/restic" "$R_RESTIC"
    # Both tools' caches start cold for the prune (restic builds one on first use).
    if ((rep % 2)); then order=(rime restic); else order=(restic rime); fi
    for t in "${order[@]}"; do
        log "rep $rep/$REPS: $t forget --keep-daily $KEEP_DAILY + prune"
        "prune_$t"
        log "  $t: wall $(tail -n1 <<<"${S["$t|prune_wall"]// /$'\n'}")s"
    done
    for t in rime restic; do
        n=$(count_snapshots "$t")
        [[ $n == "$KEEP_DAILY" ]] || die "$t kept $n snapshots, expected $KEEP_DAILY"
    done
    rime check >>"$LOG" 2>&1 || die "rime check failed after prune (see $LOG)"
    restic_ check >>"$LOG" 2>&1 || die "restic check failed after prune (see $LOG)"

    # -------------------------------------------------------------- read-data --
    log "rep $rep/$REPS: page-cache read of the rime repository, then check --read-data"
    read_all() { find "$1" -type f -print0 | xargs -0 -r cat >/dev/null; }
    read_all "$R_RIME"
    reset_t; timed "cat every file of rime's repository" bash -c "find '$R_RIME' -type f -print0 | xargs -0 -r cat >/dev/null"
    add cat rime_read_wall "$T_WALL"
    read_all "$R_RESTIC"
    reset_t; timed "cat every file of restic's repository" bash -c "find '$R_RESTIC' -type f -print0 | xargs -0 -r cat >/dev/null"
    add cat restic_read_wall "$T_WALL"
    reset_t; timed "rime check --read-data" "${RIME_CMD[@]}" check --read-data
    add rime read_wall "$T_WALL"; add rime read_rss "$T_RSS"
    reset_t; timed "restic check --read-data" "${RESTIC_CMD[@]}" check --read-data
    add restic read_wall "$T_WALL"; add restic read_rss "$T_RSS"
done
REPO_RIME_AFTER=$(dir_bytes "$R_RIME") REPO_RESTIC_AFTER=$(dir_bytes "$R_RESTIC")

# ----------------------------------------------------------------- report --
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
rate() { awk -v by="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", by / 1048576 / s; else printf "n/a" }'; }
pw_rime=$(med rime prune_wall) pw_restic=$(med restic prune_wall)
pr_rime=$(med rime prune_rss) pr_restic=$(med restic prune_rss)
rw_rime=$(med rime read_wall) rw_restic=$(med restic read_wall)
cw_rime=$(med cat rime_read_wall) cw_restic=$(med cat restic_read_wall)
speedup=$(ratio "$pw_restic" "$pw_rime")
rss_share=$(ratio "$pr_rime" "$pr_restic")
read_share=$(awk -v c="$cw_rime" -v r="$rw_rime" 'BEGIN { if (r > 0 && c > 0) printf "%.0f", 100 * c / r; else print "n/a" }')
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { if (v == "n/a") print "n/a";
    else if ((op == ">=" && v + 0 >= t) || (op == "<=" && v + 0 <= t)) print "met"; else print "NOT met" }'; }
{
    echo "# Repository upkeep: rime vs restic — $(date '+%Y-%m-%d %H:%M')"
    echo
    echo "- dataset: $DATASET: $N_FILES files, $(mib "$SRC_BYTES") MiB"
    echo "- history: $SNAPSHOTS daily snapshots (fake dates one day apart); before each, $N_CHANGE files"
    echo "  ($CHANGE_PCT %) changed: $N_MOD appended to, $N_DEL deleted, $N_ADD added (seed $SEED)"
    echo "- building it took rime ${BUILD_RIME} s, restic ${BUILD_RESTIC} s (all backups)"
    echo "- repository before / after: rime $(mib "$REPO_RIME_BEFORE") / $(mib "$REPO_RIME_AFTER") MiB,"
    echo "  restic $(mib "$REPO_RESTIC_BEFORE") / $(mib "$REPO_RESTIC_AFTER") MiB"
    echo "- machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo); everything on a tmpfs"
    echo "- $("$RIME" --version | head -n1) (git $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)); $(restic version | head -n1), repository v2"
    echo "- repetitions: $REPS (medians; each from a copy of the built repositories)"
    echo
    echo "| Operation | Tool | Wall s | Peak RSS MiB | Repo MiB/s |"
    echo "|---|---|---:|---:|---:|"
    echo "| forget --keep-daily $KEEP_DAILY + prune (two runs) | rime | $pw_rime | $pr_rime | |"
    echo "| forget --keep-daily $KEEP_DAILY --prune | restic | $pw_restic | $pr_restic | |"
    echo "| read every repository file (cat, page cache) | rime's repo | $cw_rime | | $(rate "$REPO_RIME_AFTER" "$cw_rime") |"
    echo "| check --read-data | rime | $rw_rime | $(med rime read_rss) | $(rate "$REPO_RIME_AFTER" "$rw_rime") |"
    echo "| read every repository file (cat, page cache) | restic's repo | $cw_restic | | $(rate "$REPO_RESTIC_AFTER" "$cw_restic") |"
    echo "| check --read-data | restic | $rw_restic | $(med restic read_rss) | $(rate "$REPO_RESTIC_AFTER" "$rw_restic") |"
    echo
    echo "| Target (issue 6) | Measured | |"
    echo "|---|---:|---|"
    echo "| forget+prune: restic wall ÷ rime wall >= 3 | $speedup | $(verdict "$speedup" 3 ">=") |"
    echo "| forget+prune: rime peak RSS ÷ restic's <= 0.5 | $rss_share | $(verdict "$rss_share" 0.5 "<=") |"
    echo "| check --read-data: rate as % of the page-cache read >= 80 | $read_share | $(verdict "$read_share" 80 ">=") |"
    echo
    echo "<details><summary>All runs</summary>"
    echo
    for k in "${!S[@]}"; do echo "- $k: ${S[$k]}"; done | sort
    echo
    echo "Every timed command after the build:"
    echo
    echo "| Repetition | Command | Wall s | Peak RSS MiB |"
    echo "|---|---|---:|---:|"
    printf '%s\n' "${DETAIL[@]}" | grep -v '^| build '
    echo
    echo "</details>"
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
log "report written to $OUT (tool output in $LOG)"
