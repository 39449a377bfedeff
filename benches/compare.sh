#!/usr/bin/env bash
# benches/compare.sh — end-to-end benchmark: rime vs restic vs borgbackup.
#
# Usage (as root; it mounts a tmpfs):
#   benches/compare.sh                 # full Linux kernel tree, 1 repetition
#   REPS=3 benches/compare.sh          # repeat everything 3 times, report medians
#   SUBSET=1 benches/compare.sh        # smoke run on linux-*/fs only (~2,000 files)
#   SUBSET=drivers/net benches/compare.sh   # any sub-directory of the kernel tree
#   TOOLS="restic borg" benches/compare.sh  # leave a tool out (ratios need rime)
#
# Environment (defaults in brackets):
#   RIME        rime binary [target/release/rime, relative to the repo root];
#               built with `cargo build --release -p rime-cli` if missing
#   TOOLS       tools to compare, in this order [rime restic borg]
#   REPS        repetitions of the whole set of phases; medians reported [1]
#   ROTATE      1 = rotate the tool order each repetition [1]
#   SUBSET      "", 0: whole tree; 1: fs/; other: that relative sub-directory [""]
#   SRC_TREE    benchmark this directory instead of the kernel tree [""]
#   SRC_CACHE   unpacked kernel source to reuse if present [/var/tmp/linux-src-cache]
#   SAVE_CACHE  1 = if SRC_CACHE is absent, unpack the kernel there (on disk)
#               instead of into the tmpfs, for later runs [0]
#   WORK        tmpfs mount point for sources, repositories, caches [/tmp/rime-bench]
#   TMPFS_SIZE  size of that tmpfs [12G]
#   DISK_DIR    directory on the real disk for the phase-5 restores
#               [/var/tmp/rime-bench-restore]
#   OUT         Markdown report [benches/results/compare-<date>.md]; the
#               tools' own output goes to ${OUT%.md}.log
#   SEED        seed for choosing the edited / deleted / added files [42]
#   EDIT_MODIFY, EDIT_DELETE, EDIT_ADD   number of files appended to / deleted /
#               added for phase 2 [scaled to 700 / 50 / 50 for the 78,579-file tree]
#   VERIFY      "all" or a list of tools whose restores are verified [all]
#
# Phases, each timed for every tool (tools interleaved within a phase):
#   1 full           first backup of the tree
#   2 edits          backup after "a day of edits" (~1% of files appended to,
#                    ~50 deleted, ~50 added), applied once to the shared source
#                    with `rsync -a --delete edited/ src/` before the phase
#   3 unchanged      backup again, nothing changed
#   4 restore-tmpfs  restore of the latest snapshot into an empty dir on the tmpfs
#   5 restore-disk   the same onto the real disk (DISK_DIR); wall time includes
#                    a final `sync` (CPU and RSS are the restore's alone)
# Figures: wall, user+sys CPU and peak RSS from GNU time; repository size and
# the tool's cache size (du -sb) after the phase. Every restore is checked
# against the source: content, types and symlink targets (mismatch = FAIL,
# exit status 1), and mode/owner/file mtime (mismatch = WARN).
#
# Encryption on for all three (password file), default compression for each:
# rime default (zstd-2; zstd-3 before 2026-11-22), restic repository v2 with its default (auto),
# borg `init --encryption=repokey-blake2` with its default (lz4).
# Everything stays local; no network use besides apt-get for missing packages.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
    exit 0
fi

RIME=${RIME:-target/release/rime}
[[ $RIME == /* ]] || RIME=$ROOT/$RIME
TOOLS=${TOOLS:-rime restic borg}
REPS=${REPS:-1}
ROTATE=${ROTATE:-1}
SUBSET=${SUBSET:-}
SRC_TREE=${SRC_TREE:-}
SRC_CACHE=${SRC_CACHE:-/var/tmp/linux-src-cache}
SAVE_CACHE=${SAVE_CACHE:-0}
WORK=${WORK:-/tmp/rime-bench}
TMPFS_SIZE=${TMPFS_SIZE:-12G}
DISK_DIR=${DISK_DIR:-/var/tmp/rime-bench-restore}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$ROOT/benches/results/compare-$STAMP.md}
LOG=${LOG:-${OUT%.md}.log}
SEED=${SEED:-42}
VERIFY=${VERIFY:-all}
PHASES=(full edits unchanged restore-tmpfs restore-disk)

# Nothing from the caller's environment may point the tools elsewhere.
unset RESTIC_REPOSITORY RESTIC_REPOSITORY_FILE RESTIC_PASSWORD RESTIC_PASSWORD_FILE \
      RESTIC_PASSWORD_COMMAND RESTIC_CACHE_DIR RESTIC_COMPRESSION \
      BORG_REPO BORG_PASSPHRASE BORG_PASSCOMMAND BORG_PASSPHRASE_FD BORG_BASE_DIR \
      BORG_CACHE_DIR BORG_CONFIG_DIR BORG_SECURITY_DIR BORG_KEYS_DIR BORG_RSH \
      RIME_REPO RIME_PASSWORD RIME_PASSWORD_FILE RIME_PASSWORD_COMMAND
export LC_ALL=C

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
loud() {
    printf '%s\n' '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' >&2
    printf '%s\n' "$@" | sed 's/^/!!! /' >&2
    printf '%s\n' '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' >&2
}

[[ $EUID -eq 0 ]] || die "run as root (mounts a tmpfs, may apt-get install)"
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer"
[[ $WORK == /?* && $WORK != *[[:space:]]* ]] || die "WORK must be an absolute path other than / (no spaces)"
[[ $DISK_DIR == /?* ]] || die "DISK_DIR must be an absolute path other than /"
WORK=${WORK%/} DISK_DIR=${DISK_DIR%/}
[[ $DISK_DIR/ != "$WORK"/* ]] || die "DISK_DIR must be on the real disk, not inside WORK"
for t in $TOOLS; do
    case $t in rime|restic|borg) ;; *) die "unknown tool '$t' in TOOLS" ;; esac
done
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

# ---------------------------------------------------------------- packages --
find_kernel_cache() {
    local d
    for d in "$SRC_CACHE"/linux-source-* "$SRC_CACHE"/linux-*; do
        [[ -f $d/Makefile && -d $d/fs ]] && { printf '%s\n' "$d"; return 0; }
    done
    return 1
}
kernel_tarball() { ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n1; }

install_missing() {
    local pkgs=()
    has_tool restic && ! command -v restic >/dev/null && pkgs+=(restic)
    has_tool borg && ! command -v borg >/dev/null && pkgs+=(borgbackup)
    [[ -x /usr/bin/time ]] || pkgs+=(time)
    command -v rsync >/dev/null || pkgs+=(rsync)
    command -v xz >/dev/null || pkgs+=(xz-utils)
    if [[ -z $SRC_TREE ]] && ! find_kernel_cache >/dev/null && [[ -z $(kernel_tarball) ]]; then
        pkgs+=(linux-source)
    fi
    ((${#pkgs[@]})) || return 0
    log "installing from Debian: ${pkgs[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2
}
install_missing

if has_tool rime && [[ ! -x $RIME ]]; then
    log "rime binary $RIME missing: cargo build --release -p rime-cli"
    (cd "$ROOT" && cargo build --release -p rime-cli) >&2
    [[ -x $RIME ]] || die "no rime binary at $RIME after the build"
fi

# ------------------------------------------------------------------ tmpfs --
MOUNTED=0
DISK_CREATED=()
cleanup() {
    local rc=$?
    set +e
    cd /
    local d
    for d in "${DISK_CREATED[@]}"; do rm -rf -- "$d"; done
    [[ -d $DISK_DIR ]] && rmdir -- "$DISK_DIR" 2>/dev/null
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
mount -t tmpfs -o "size=$TMPFS_SIZE,mode=0755" rime-bench "$WORK"
MOUNTED=1
mkdir -p "$WORK"/{tmp,home,repo,restore} "$DISK_DIR" "$(dirname "$OUT")"
: >"$LOG"
log "tmpfs of $TMPFS_SIZE on $WORK; tool output goes to $LOG"

PWFILE=$WORK/password
printf 'rime-bench-%s\n' "$SEED" >"$PWFILE"
chmod 600 "$PWFILE"

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
    if [[ $SAVE_CACHE == 1 ]]; then
        log "unpacking $tarball into $SRC_CACHE (SAVE_CACHE=1)"
        partial=$SRC_CACHE.partial.$$
        rm -rf -- "$partial"; mkdir -p "$partial"
        tar -xJf "$tarball" -C "$partial"
        mkdir -p "$SRC_CACHE"
        mv "$partial"/* "$SRC_CACHE"/ && rmdir "$partial"
        BASE=$(find_kernel_cache) || die "unpacked tree not found in $SRC_CACHE"
    else
        log "unpacking $tarball into the tmpfs (no cache at $SRC_CACHE)"
        mkdir -p "$WORK/pristine"
        tar -xJf "$tarball" -C "$WORK/pristine"
        BASE=$(ls -d "$WORK"/pristine/*/ | head -n1)
        BASE=${BASE%/}
    fi
    DATASET="$(basename "$BASE") (from $(basename "$tarball"))"
fi
case $SUBSET in
    ""|0) PRISTINE=$BASE ;;
    1)    PRISTINE=$BASE/fs; DATASET+=", subset fs/" ;;
    *)    PRISTINE=$BASE/$SUBSET; DATASET+=", subset $SUBSET/" ;;
esac
[[ -d $PRISTINE ]] || die "source directory $PRISTINE does not exist"

SRC=$WORK/src          # the shared source every tool backs up
EDITED=$WORK/edited    # the "day of edits" state, prepared once

# Files of the source, sorted, relative.
list_files() { (cd "$1" && find . -type f -printf '%P\n' | sort); }

prepare_edited() {
    log "preparing the edited tree (seed $SEED)"
    cp -a "$PRISTINE" "$EDITED"
    local files n
    files=$WORK/tmp/files
    list_files "$EDITED" >"$files"
    n=$(wc -l <"$files")
    N_FILES=$n
    N_MOD=${EDIT_MODIFY:-$(( (n * 700 + 39289) / 78579 ))}
    N_DEL=${EDIT_DELETE:-$(( (n * 50 + 39289) / 78579 ))}
    N_ADD=${EDIT_ADD:-$(( (n * 50 + 39289) / 78579 ))}
    ((N_MOD >= 5)) || N_MOD=5
    ((N_DEL >= 2)) || N_DEL=2
    ((N_ADD >= 2)) || N_ADD=2
    ((N_MOD + N_DEL + N_ADD <= n)) || die "tree too small for the edits ($n files)"
    # Deterministic shuffle of the sorted list.
    awk -v seed="$SEED" 'BEGIN { srand(seed) } { printf "%.12f\t%s\n", rand(), $0 }' "$files" |
        sort -k1,1 | cut -f2- >"$WORK/tmp/shuffled"
    local i=0 f d
    # Appended to: one line at the end, like a small edit.
    while IFS= read -r f; do
        i=$((i + 1))
        printf '/* rime-bench edit %d (seed %s) */\n' "$i" "$SEED" >>"$EDITED/$f"
    done < <(head -n "$N_MOD" "$WORK/tmp/shuffled")
    # Added: a new file next to an existing one, made of that file's text
    # (copy-and-modify, as people do) plus some lines of fresh text.
    i=0
    while IFS= read -r f; do
        i=$((i + 1))
        d=$(dirname "$EDITED/$f")
        {
            printf '/* rime-bench new file %d (seed %s), derived from %s */\n' "$i" "$SEED" "$f"
            cat "$EDITED/$f"
            awk -v seed="$((SEED * 1000 + i))" 'BEGIN { srand(seed)
                for (l = 0; l < 64; l++) { s = "//"
                    for (w = 0; w < 8; w++) s = s sprintf(" %08x", int(rand() * 4294967295))
                    print s } }'
        } >"$d/rime_bench_new_$i.c"
    done < <(tail -n "+$((N_MOD + N_DEL + 1))" "$WORK/tmp/shuffled" | head -n "$N_ADD")
    # Deleted.
    while IFS= read -r f; do
        rm -f -- "$EDITED/$f"
    done < <(tail -n "+$((N_MOD + 1))" "$WORK/tmp/shuffled" | head -n "$N_DEL")
    log "edits: $N_MOD files appended to, $N_DEL deleted, $N_ADD added (of $n files)"
}

# Manifests for verification: content (strict) and metadata (warning only).
content_manifest() { # DIR -> "type path [hash|-> target]" lines, sorted
    (
        cd "$1"
        find . -mindepth 1 \( -type d -printf 'd %P\n' \) -o \( -type l -printf 'l %P -> %l\n' \) \
            -o \( ! -type f -printf '%y %P\n' \)
        find . -type f -print0 | xargs -0 -r -n 512 -P "$(nproc)" md5sum |
            sed -E 's|^(\\?)([0-9a-f]{32})  \./(.*)$|f \3 \1\2|'
    ) | sort
}
meta_manifest() { # DIR -> "path type mode owner [mtime to the second]" lines, sorted
    (cd "$1" && find . -mindepth 1 \( -type f -printf '%P f %m %u:%g %TY-%Tm-%Td_%TH:%TM:%.2TS\n' \) \
        -o \( -type d -printf '%P d %m %u:%g\n' \) -o \( -type l -printf '%P l %u:%g\n' \)) | sort
}

prepare_manifests() {
    log "computing the reference manifests of the edited tree"
    content_manifest "$EDITED" >"$WORK/manifest.content"
    meta_manifest "$EDITED" >"$WORK/manifest.meta"
}

# ------------------------------------------------------------------ tools --
tool_version() {
    case $1 in
        rime) { "$RIME" --version 2>/dev/null || echo "rime (version unknown)"; } | head -n1
              local rev
              rev=$(git -C "$ROOT" describe --always --dirty 2>/dev/null) && echo "(git $rev)" || true ;;
        restic) restic version | head -n1 ;;
        borg) borg --version | head -n1 ;;
    esac
}

# Does `rime SUBCOMMAND --help` list FLAG?
rime_has_flag() { "$RIME" "$1" --help 2>/dev/null | grep -q -- "$2"; }
RIME_BACKUP_QUIET=() RIME_RESTORE_QUIET=()
if has_tool rime; then
    rime_has_flag backup --quiet && RIME_BACKUP_QUIET=(--quiet)
    rime_has_flag restore --quiet && RIME_RESTORE_QUIET=(--quiet)
fi

# ENVV: the environment each tool runs in; its cache and config live in its own
# home on the tmpfs, so "cache MiB" is what it keeps besides the repository.
set_env() {
    local h=$WORK/home/$1
    mkdir -p "$h"
    case $1 in
        rime) ENVV=(env HOME="$h" XDG_CACHE_HOME="$h/.cache" XDG_CONFIG_HOME="$h/.config") ;;
        restic) ENVV=(env HOME="$h" RESTIC_CACHE_DIR="$h/cache") ;;
        borg) ENVV=(env HOME="$h" BORG_BASE_DIR="$h" BORG_PASSCOMMAND="cat $PWFILE"
                    BORG_DISPLAY_PASSPHRASE=no BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
                    BORG_RELOCATED_REPO_ACCESS_IS_OK=yes) ;;
    esac
}
repo_of() { printf '%s\n' "$WORK/repo/$1"; }

# Path inside a restore target where the source's contents land.
restored_root() { # TOOL TARGET
    case $1 in
        rime) printf '%s\n' "$2" ;;
        restic|borg) printf '%s\n' "$2/${SRC#/}" ;;
    esac
}

# Command for TOOL and ACTION (init|backup|restore TARGET) into CMD; CMD_CWD is its cwd.
build_cmd() {
    local tool=$1 action=$2 target=${3:-} repo
    repo=$(repo_of "$tool")
    CMD_CWD=$WORK
    case $tool:$action in
        rime:init) CMD=("$RIME" init --repo "$repo" --password-file "$PWFILE") ;;
        rime:backup) CMD=("$RIME" backup --repo "$repo" --password-file "$PWFILE" --host bench
                         --name kernel "${RIME_BACKUP_QUIET[@]}" "$SRC") ;;
        rime:restore) CMD=("$RIME" restore latest --repo "$repo" --password-file "$PWFILE"
                          --target "$target" "${RIME_RESTORE_QUIET[@]}") ;;
        rime:list) CMD=("$RIME" snapshots --repo "$repo" --password-file "$PWFILE") ;;
        restic:init) CMD=(restic init --repo "$repo" --password-file "$PWFILE" --repository-version 2) ;;
        restic:backup) CMD=(restic backup --repo "$repo" --password-file "$PWFILE" --quiet --host bench "$SRC") ;;
        restic:restore) CMD=(restic restore latest --repo "$repo" --password-file "$PWFILE" --quiet
                            --target "$target") ;;
        restic:list) CMD=(restic snapshots --repo "$repo" --password-file "$PWFILE") ;;
        borg:init) CMD=(borg init --encryption=repokey-blake2 "$repo") ;;
        borg:backup) BORG_SEQ=$((BORG_SEQ + 1)); BORG_LAST=kernel-$BORG_SEQ
                     CMD=(borg create "$repo::$BORG_LAST" "$SRC") ;;
        borg:restore) CMD=(borg extract "$repo::$BORG_LAST"); CMD_CWD=$target ;;
        borg:list) CMD=(borg list "$repo") ;;
        *) die "build_cmd: $tool:$action" ;;
    esac
}

# Run TOOL ACTION untimed, output to the log.
run_plain() { # TOOL ACTION
    set_env "$1"; build_cmd "$1" "$2"
    printf '\n### %s %s: %s\n' "$1" "$2" "${CMD[*]}" >>"$LOG"
    (cd "$CMD_CWD" && "${ENVV[@]}" "${CMD[@]}") >>"$LOG" 2>&1
}

# Run CMD under GNU time; sets T_RC T_WALL T_CPU T_RSS (MiB).
timed() {
    local tf=$WORK/tmp/time.out
    printf '\n### %s\n' "${CMD[*]}" >>"$LOG"
    T_LOGPOS=$(stat -c %s "$LOG")
    T_RC=0
    (cd "$CMD_CWD" && exec /usr/bin/time -o "$tf" -f '%e %U %S %M' "${ENVV[@]}" "${CMD[@]}") \
        >>"$LOG" 2>&1 </dev/null || T_RC=$?
    local e u s m
    read -r e u s m < <(tail -n1 "$tf")
    T_WALL=$e
    T_CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
    T_RSS=$(awk -v m="$m" 'BEGIN { printf "%.1f", m / 1024 }')
}

declare -A SAMPLE   # "tool|phase|metric" -> space-separated values over reps
declare -A VERDICT  # "tool|phase" -> OK / WARN(...) / FAIL(...) / ERR(...)
declare -A BROKEN   # tool -> 1 when it failed in this repetition
RAW=()              # per-repetition rows for the appendix
FAILED=0

add_sample() { SAMPLE["$1|$2|$3"]+="${SAMPLE["$1|$2|$3"]:+ }$4"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
dir_bytes() { if [[ -e $1 ]]; then du -sb "$1" | cut -f1; else echo 0; fi; }

# Compare a restored tree with the reference; sets V.
verify_restore() { # TOOL PHASE DIR
    local tool=$1 phase=$2 dir=$3 tag=$WORK/tmp/verify.$1.$2 ndiff nmeta
    if [[ ! -d $dir ]]; then
        V="FAIL(nothing restored at $dir)"
        loud "VERIFY FAILED: $tool $phase: nothing restored at $dir"
        FAILED=1
        return
    fi
    log "  verifying $tool $phase"
    content_manifest "$dir" >"$tag.content"
    meta_manifest "$dir" >"$tag.meta"
    ndiff=$(diff "$WORK/manifest.content" "$tag.content" | grep -c '^[<>]' || true)
    nmeta=$(diff "$WORK/manifest.meta" "$tag.meta" | grep -c '^[<>]' || true)
    if ((ndiff)); then
        V="FAIL($ndiff)"
        FAILED=1
        loud "VERIFY FAILED: $tool $phase: $ndiff manifest lines differ (< source, > restored)" \
             "$(diff "$WORK/manifest.content" "$tag.content" | grep '^[<>]' | head -n 20)"
        { printf '\n### VERIFY FAILED %s %s\n' "$tool" "$phase"
          diff "$WORK/manifest.content" "$tag.content" | head -n 500; } >>"$LOG" || true
    elif ((nmeta)); then
        V="WARN(meta $nmeta)"
        log "  WARNING: $tool $phase: content identical, $nmeta metadata lines differ (see log)"
        { printf '\n### metadata differences %s %s\n' "$tool" "$phase"
          diff "$WORK/manifest.meta" "$tag.meta" | head -n 200; } >>"$LOG" || true
    else
        V=OK
    fi
    rm -f "$tag.content" "$tag.meta"
}

should_verify() { [[ $VERIFY == all || " $VERIFY " == *" $1 "* ]]; }

run_phase() { # REP TOOL PHASE
    local rep=$1 tool=$2 phase=$3 target=""
    local key="$tool|$phase"
    if [[ -n ${BROKEN[$tool]:-} ]]; then
        log "  $tool $phase: skipped ($tool failed earlier in this repetition)"
        return
    fi
    set_env "$tool"
    case $phase in
        full|edits|unchanged) build_cmd "$tool" backup ;;
        restore-tmpfs)
            target=$WORK/restore/$tool
            rm -rf -- "$target"; mkdir -p "$target"
            build_cmd "$tool" restore "$target" ;;
        restore-disk)
            target=$DISK_DIR/$tool
            rm -rf -- "$target"; mkdir -p "$target"
            DISK_CREATED+=("$target")
            sync
            build_cmd "$tool" restore "$target" ;;
    esac
    log "rep $rep/$REPS  phase $phase  $tool"
    timed
    if [[ $phase == restore-disk ]]; then
        local s0 s1
        s0=$(date +%s.%N); sync; s1=$(date +%s.%N)
        T_WALL=$(awk -v w="$T_WALL" -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", w + b - a }')
    fi
    local ok=1 V=""
    if [[ $T_RC -ne 0 ]]; then
        if [[ $tool == borg && $T_RC -eq 1 ]]; then
            log "  borg exited with 1 (warning); see $LOG"
        else
            ok=0
            FAILED=1
            BROKEN[$tool]=1
            V="ERR(exit $T_RC)"
            loud "$tool $phase FAILED with exit status $T_RC; its remaining phases in this repetition are skipped" \
                 "its last output lines:" "$(tail -c +"$((T_LOGPOS + 1))" "$LOG" | tail -n 20)"
        fi
    fi
    local repo_b cache_b
    repo_b=$(dir_bytes "$(repo_of "$tool")")
    cache_b=$(dir_bytes "$WORK/home/$tool")
    if ((ok)) && [[ -n $target ]]; then
        if should_verify "$tool"; then
            verify_restore "$tool" "$phase" "$(restored_root "$tool" "$target")"
        else
            V="not checked"
        fi
        rm -rf -- "$target"
    fi
    if ((ok)); then
        add_sample "$tool" "$phase" wall "$T_WALL"
        add_sample "$tool" "$phase" cpu "$T_CPU"
        add_sample "$tool" "$phase" rss "$T_RSS"
        add_sample "$tool" "$phase" repo "$repo_b"
        add_sample "$tool" "$phase" cache "$cache_b"
    fi
    if [[ -n $V ]]; then
        # Keep the worst verdict over the repetitions.
        case ${VERDICT[$key]:-} in
            FAIL*|ERR*) ;;
            WARN*) [[ $V == OK ]] || VERDICT[$key]=$V ;;
            *) VERDICT[$key]=$V ;;
        esac
    fi
    RAW+=("| $rep | $phase | $tool | $T_WALL | $T_CPU | $T_RSS | $(mib "$repo_b") | $(mib "$cache_b") | ${V:--} |")
    log "  $tool $phase: wall ${T_WALL}s cpu ${T_CPU}s rss ${T_RSS}MiB repo $(mib "$repo_b")MiB${V:+ [$V]}"
}

# ------------------------------------------------------------------- main --
log "dataset: $DATASET -> $PRISTINE"
prepare_edited
prepare_manifests
SRC_BYTES=$(find "$PRISTINE" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')
EDITED_FILES=$(find "$EDITED" -type f | wc -l)

VERSIONS=()
for t in $TOOLS; do VERSIONS+=("$t: $(tool_version "$t" | paste -sd ' ')"); done
for v in "${VERSIONS[@]}"; do log "version $v"; done

read -r -a TOOL_LIST <<<"$TOOLS"
NT=${#TOOL_LIST[@]}
RESTIC_REPO_VERSION=""

for ((rep = 1; rep <= REPS; rep++)); do
    log "=== repetition $rep/$REPS"
    # Fresh state: source = pristine tree, empty repositories and caches.
    rm -rf -- "$SRC" "${WORK:?}"/repo/* "${WORK:?}"/home/* "${WORK:?}"/restore/*
    cp -a "$PRISTINE" "$SRC"
    BROKEN=()
    BORG_SEQ=0 BORG_LAST=""
    ORDER=()
    off=0
    [[ $ROTATE == 1 ]] && off=$(((rep - 1) % NT))
    for ((i = 0; i < NT; i++)); do ORDER+=("${TOOL_LIST[$(((i + off) % NT))]}"); done
    log "tool order: ${ORDER[*]}"
    for t in "${ORDER[@]}"; do
        if ! run_plain "$t" init; then
            loud "$t init failed; see $LOG" "$(tail -n 15 "$LOG")"
            BROKEN[$t]=1; FAILED=1
        fi
    done
    if has_tool restic && [[ -z ${BROKEN[restic]:-} && -z $RESTIC_REPO_VERSION ]]; then
        set_env restic
        RESTIC_REPO_VERSION=$("${ENVV[@]}" restic cat config --repo "$(repo_of restic)" \
            --password-file "$PWFILE" 2>>"$LOG" | sed -n 's/.*"version": *\([0-9]*\).*/\1/p') || true
    fi
    for phase in "${PHASES[@]}"; do
        if [[ $phase == edits ]]; then
            log "applying the day of edits: rsync -a --delete edited/ src/"
            rsync -a --delete "$EDITED/" "$SRC/"
        fi
        for t in "${ORDER[@]}"; do run_phase "$rep" "$t" "$phase"; done
    done
    for t in "${ORDER[@]}"; do
        [[ -n ${BROKEN[$t]:-} ]] || run_plain "$t" list || true
    done
done

# ----------------------------------------------------------------- report --
median() { tr ' ' '\n' <<<"$1" | { grep . || true; } | sort -g |
    awk '{ a[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2];
                              else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
med() { median "${SAMPLE["$1|$2|$3"]:-}"; }
fmt() { [[ -n $2 ]] && awk -v v="$2" -v f="$1" 'BEGIN { printf f, v }' || printf 'n/a'; }
ratio() { # A B -> A/B
    if [[ -n $1 && -n $2 ]] && awk -v b="$2" 'BEGIN { exit !(b > 0) }'; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'
    else printf 'n/a'; fi
}

{
    echo "# rime vs restic vs borg — $(date '+%Y-%m-%d %H:%M')"
    echo
    echo "- dataset: $DATASET"
    echo "  - $N_FILES files, $(mib "$SRC_BYTES") MiB of file data; after the edits $EDITED_FILES files"
    echo "  - day of edits: $N_MOD files appended to, $N_DEL deleted, $N_ADD added (seed $SEED)"
    echo "- machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
    echo "- work area: tmpfs ($TMPFS_SIZE) at $WORK; disk restores to $DISK_DIR ($(df -T "$DISK_DIR" | awk 'NR == 2 { print $2 }'))"
    echo "- repetitions: $REPS (figures are medians; tool order rotated: $ROTATE)"
    for v in "${VERSIONS[@]}"; do echo "- $v"; done
    has_tool restic && echo "- restic repository format version: ${RESTIC_REPO_VERSION:-unknown} (compression auto)"
    has_tool borg && echo "- borg: repokey-blake2, default compression (lz4)"
    has_tool rime && echo "- rime: default compression (zstd-2)"
    echo
    echo "Wall and CPU (user+sys) in seconds, peak RSS in MiB (GNU time), repository and"
    echo "cache size in MiB after the phase (du -sb). restore-disk wall includes a final sync."
    echo
    echo "| Phase | Tool | Wall s | CPU s | Peak RSS MiB | Repo MiB | Cache MiB | Wall ÷ rime | Verify |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
    for phase in "${PHASES[@]}"; do
        rw=$(med rime "$phase" wall)
        for t in "${TOOL_LIST[@]}"; do
            w=$(med "$t" "$phase" wall)
            repo=$(med "$t" "$phase" repo); cache=$(med "$t" "$phase" cache)
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$phase" "$t" \
                "$(fmt %.2f "$w")" "$(fmt %.2f "$(med "$t" "$phase" cpu)")" \
                "$(fmt %.0f "$(med "$t" "$phase" rss)")" \
                "$( [[ -n $repo ]] && mib "$repo" || echo n/a)" \
                "$( [[ -n $cache ]] && mib "$cache" || echo n/a)" \
                "$(ratio "$w" "$rw")" \
                "${VERDICT["$t|$phase"]:--}"
        done
    done
    others=()
    for t in "${TOOL_LIST[@]}"; do [[ $t == rime ]] || others+=("$t"); done
    if has_tool rime && ((${#others[@]})); then
        echo
        echo "Ratios to rime (above 1.00× means rime is faster / smaller):"
        echo
        hdr="| Phase |"; sep="|---|"
        for m in wall CPU RSS repo; do
            for t in "${others[@]}"; do hdr+=" $t/rime $m |"; sep+="---:|"; done
        done
        echo "$hdr"; echo "$sep"
        for phase in "${PHASES[@]}"; do
            row="| $phase |"
            for m in wall cpu rss repo; do
                for t in "${others[@]}"; do
                    row+=" $(ratio "$(med "$t" "$phase" "$m")" "$(med rime "$phase" "$m")") |"
                done
            done
            echo "$row"
        done
    fi
    echo
    echo "<details><summary>All runs</summary>"
    echo
    echo "| Rep | Phase | Tool | Wall s | CPU s | Peak RSS MiB | Repo MiB | Cache MiB | Verify |"
    echo "|---:|---|---|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${RAW[@]}"
    echo
    echo "</details>"
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
log "report written to $OUT (tool output in $LOG)"
if ((FAILED)); then
    loud "SOME RUNS FAILED OR A RESTORE DID NOT MATCH THE SOURCE — see the Verify column and $LOG"
    exit 1
fi
