#!/usr/bin/env bash
# benches/tar-agent.sh — rime's tar engine (`rime agent`, GNU tar incremental levels stored in
# the dedup repository) against Freezer's own pipeline
# (`tar --listed-incremental | gzip | openssl enc -aes-256-cfb` into a local directory).
#
# Usage:
#   benches/tar-agent.sh                      # the Linux kernel tree
#   SUBSET=fs benches/tar-agent.sh            # a sub-directory of it (smoke run)
#   SRC_TREE=/some/dir benches/tar-agent.sh   # any tree
#
# Environment (defaults in brackets):
#   RIME        rime binary [target/release/rime]; built if missing
#   SRC_TREE    tree to back up instead of the kernel [""]
#   SRC_CACHE   unpacked kernel source, as benches/compare.sh keeps it [/var/tmp/linux-src-cache]
#   SUBSET      sub-directory of the kernel tree [""]
#   WORK        scratch directory (a tmpfs is best) [/tmp/rime-tar-bench]
#   CHANGE_PCT  percentage of files appended to between level 0 and level 1 [1]
#   L1_REPS     level-1 repetitions per tool, interleaved; the median is reported [7]
#   OUT         Markdown report [benches/results/tar-agent-<date>.md]
#
# Phases, each timed (wall seconds) for both:
#   L0        level 0 of the tree
#   L1        level 1 after CHANGE_PCT % of the files were appended to
#   L0-again  (rime only) a new level 0 after the level 1: the bytes it adds to the
#             repository, as a percentage of the first level 0's (target < 5 %)
# Both encrypt (rime: AES-256-GCM repository; Freezer: openssl enc -aes-256-cfb) and both are
# asked for gzip (Freezer compresses with gzip; rime records it and compresses its packs with
# zstd). Every run's restore is not timed here; tests/it/agent.rs checks correctness.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RIME=${RIME:-target/release/rime}
[[ $RIME == /* ]] || RIME=$ROOT/$RIME
SRC_TREE=${SRC_TREE:-}
SRC_CACHE=${SRC_CACHE:-/var/tmp/linux-src-cache}
SUBSET=${SUBSET:-}
WORK=${WORK:-/tmp/rime-tar-bench}
CHANGE_PCT=${CHANGE_PCT:-1}
L1_REPS=${L1_REPS:-7}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$ROOT/benches/results/tar-agent-$STAMP.md}
unset RIME_REPO RIME_PASSWORD RIME_PASSWORD_FILE
export LC_ALL=C

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ ! -x $RIME ]]; then
    log "building $RIME"
    (cd "$ROOT" && cargo build --release -p rime-cli) >&2
fi
for t in tar gzip openssl; do command -v $t >/dev/null || die "$t is needed"; done

if [[ -z $SRC_TREE ]]; then
    for d in "$SRC_CACHE"/linux-source-* "$SRC_CACHE"/linux-*; do
        [[ -f $d/Makefile && -d $d/fs ]] && { SRC_TREE=$d; break; }
    done
    if [[ -z $SRC_TREE ]]; then
        tb=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n1 || true)
        [[ -n $tb ]] || die "no kernel tree: set SRC_TREE, fill $SRC_CACHE (benches/compare.sh SAVE_CACHE=1) or install linux-source"
        mkdir -p "$SRC_CACHE"
        log "unpacking $tb into $SRC_CACHE"
        tar -xJf "$tb" -C "$SRC_CACHE"
        SRC_TREE=$(ls -d "$SRC_CACHE"/linux-source-* | head -n1)
    fi
    [[ -z $SUBSET ]] || SRC_TREE=$SRC_TREE/$SUBSET
fi
[[ -d $SRC_TREE ]] || die "$SRC_TREE is not a directory"

[[ $WORK == /?* ]] || die "WORK must be an absolute path"
rm -rf "$WORK"
mkdir -p "$WORK"
SRC=$WORK/src
log "copying $SRC_TREE to $SRC"
cp -a "$SRC_TREE" "$SRC"
head -c 24 /dev/urandom | base64 > "$WORK/pass"
FILES=$(find "$SRC" -type f | wc -l)
BYTES=$(du -sb "$SRC" | cut -f1)
# The copy just set every file's ctime. rime's snapshot time starts one second before its walk
# (file systems stamp with a coarse clock), so files copied in that last second would count as
# changed at level 1: wait, as a tree that was not just copied needs no wait.
sleep 2

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
size() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

rime_level() {
    "$RIME" agent --quiet --storage local --container "$WORK/rime" --backup-name bench \
        --hostname bench --path-to-backup "$SRC" --encrypt-pass-file "$WORK/pass" \
        --compression gzip --metadata-out "$WORK/meta.json" "$@" >&2
}
# The level the last rime run took, from its --metadata-out (read outside the timed region).
rime_took() { grep -o '"curr_backup_level":[0-9]*' "$WORK/meta.json" | cut -d: -f2; }

freezer_level() { # $1 = level
    mkdir -p "$WORK/freezer"
    [[ $1 == 0 ]] && rm -f "$WORK/freezer/snar"
    (cd "$SRC" && tar --create -z --warning=none --no-check-device --one-file-system \
        --preserve-permissions --same-owner --seek --ignore-failed-read \
        --listed-incremental="$WORK/freezer/snar" . |
        openssl enc -aes-256-cfb -pass file:"$WORK/pass" > "$WORK/freezer/level-$1" &&
        exit "${PIPESTATUS[0]}")
}

declare -A T
log "level 0: rime"
t0=$(now); rime_level; t1=$(now); T[rime_L0]=$(secs "$t0" "$t1"); L=$(rime_took)
[[ $L == 0 ]] || die "rime's first backup is level $L"
REPO_L0=$(size "$WORK/rime")
log "level 0: freezer pipeline"
t0=$(now); freezer_level 0; t1=$(now); T[fz_L0]=$(secs "$t0" "$t1")
FZ_L0=$(size "$WORK/freezer/level-0")

log "changing $CHANGE_PCT % of the files"
CHANGED=$(find "$SRC" -type f | awk -v p="$CHANGE_PCT" 'NR % int(100 / p) == 0' |
    while read -r f; do printf '\n/* changed */\n' >> "$f"; echo; done | wc -l)
sleep 1

# Level 1 is short (well under a second), so one run is noise: each tool runs it L1_REPS
# times, interleaved, from the same starting state (the repository and the SNAR after level
# 0), and the median counts.
cp -a "$WORK/rime" "$WORK/rime-after-L0"
cp "$WORK/freezer/snar" "$WORK/freezer/snar-after-L0"
RT=(); FT=()
# Both states are reset before either tool runs, each timed run follows a short pause (the
# reset copies a few hundred MB, whose after-effects would otherwise land on whichever tool runs
# next), and the order alternates between repetitions.
l1_rime() {
    log "level 1: rime ($i/$L1_REPS)"
    sleep 0.5
    t0=$(now); rime_level; t1=$(now); RT+=("$(secs "$t0" "$t1")"); L=$(rime_took)
    [[ $L == 1 ]] || die "rime's second backup is level $L"
}
l1_freezer() {
    log "level 1: freezer pipeline ($i/$L1_REPS)"
    sleep 0.5
    t0=$(now); freezer_level 1; t1=$(now); FT+=("$(secs "$t0" "$t1")")
}
for ((i = 1; i <= L1_REPS; i++)); do
    rm -rf "$WORK/rime"; cp -a "$WORK/rime-after-L0" "$WORK/rime"
    cp "$WORK/freezer/snar-after-L0" "$WORK/freezer/snar"
    if ((i % 2)); then l1_rime; l1_freezer; else l1_freezer; l1_rime; fi
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
T[rime_L1]=$(median "${RT[@]}"); T[fz_L1]=$(median "${FT[@]}")
REPO_L1=$(size "$WORK/rime")
FZ_L1=$(size "$WORK/freezer/level-1")

log "level 0 again: rime (--no-incremental)"
t0=$(now); rime_level --no-incremental; t1=$(now); T[rime_L0b]=$(secs "$t0" "$t1"); L=$(rime_took)
[[ $L == 0 ]] || die "rime's third backup is level $L"
REPO_L0B=$(size "$WORK/rime")
ADDED=$((REPO_L0B - REPO_L1))
PCT=$(awk -v a="$ADDED" -v b="$REPO_L0" 'BEGIN { printf "%.2f", 100 * a / b }')
ratio() { awk -v f="$1" -v r="$2" 'BEGIN { if (r > 0) printf "%.2fx", f / r; else print "-" }'; }

mkdir -p "$(dirname "$OUT")"
{
    echo "# rime tar engine vs Freezer's pipeline ($STAMP)"
    echo
    echo "Tree: \`$SRC_TREE\`, $FILES files, $BYTES bytes; level 1 after appending to $CHANGED files ($CHANGE_PCT %)."
    echo "rime: \`rime agent --compression gzip --encrypt-pass-file\` into a local repository;"
    echo "Freezer: \`tar --listed-incremental -z | openssl enc -aes-256-cfb\` to a local directory."
    echo
    echo "| Phase | rime (s) | Freezer pipeline (s) | rime speed-up | rime repository after (bytes) | Freezer archive (bytes) |"
    echo "|---|---:|---:|---:|---:|---:|"
    echo "| level 0 | ${T[rime_L0]} | ${T[fz_L0]} | $(ratio "${T[fz_L0]}" "${T[rime_L0]}") | $REPO_L0 | $FZ_L0 |"
    echo "| level 1 (median of $L1_REPS) | ${T[rime_L1]} | ${T[fz_L1]} | $(ratio "${T[fz_L1]}" "${T[rime_L1]}") | $REPO_L1 | $FZ_L1 |"
    echo "| level 0 again | ${T[rime_L0b]} | - | - | $REPO_L0B | - |"
    echo
    echo "Level 1 runs (s): rime ${RT[*]}; Freezer pipeline ${FT[*]}."
    echo
    echo "A level 0 taken after the level 1 added $ADDED bytes to the repository: $PCT % of the first level 0 (target < 5 %)."
} | tee "$OUT"
