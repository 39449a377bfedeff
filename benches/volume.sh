#!/usr/bin/env bash
# benches/volume.sh — volume benchmark: rime vs restic vs borg on file system images.
#
# Usage (as root: it mounts a tmpfs and attaches a loop device):
#   benches/volume.sh              # everything once
#   REPS=3 benches/volume.sh       # medians of 3 interleaved repetitions
#   PARTS="sweep" benches/volume.sh  # only the chunk-size sweep
#
# Images (made once by benches/volume-images.sh, kept in IMAGES):
#   day0.img   3 GiB sparse raw ext4 with a Debian bookworm root (debootstrap --variant=minbase)
#   day1.img   day0 after `apt-get install python3 perl` in a chroot (scattered 4 KiB changes)
#   dense.img  day0 with the Linux 6.1 source tree copied in (~1.4 GB more data)
#
# Parts (PARTS, default all of them):
#   images   per tool: full backup of day0, backup of day1, day1 again unchanged, restore of day1
#            to a file (rime: `backup --volume`; restic and borg: the image file itself)
#   dense    per tool: full backup of dense.img and its restore
#   device   rime only: dense.img on a loop device, backed up twice (the second is the
#            unchanged-device re-read rate)
#   sweep    rime only: day1's new bytes for each --chunk-size (how the default was chosen)
#   big      rime only: peak RSS of backup and restore of a 64 GiB sparse image with 2 GiB data
# Figures: wall seconds, user+sys CPU, peak RSS (GNU time), bytes added to the repository.
# Everything runs on a tmpfs (WORK); tools are interleaved within each phase.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RIME=${RIME:-$ROOT/target/release/rime}
IMAGES=${IMAGES:-/var/tmp/rime-volbench}
WORK=${WORK:-/tmp/rime-volbench}
TMPFS_SIZE=${TMPFS_SIZE:-16G}
REPS=${REPS:-1}
PARTS=${PARTS:-images dense device sweep big}
TOOLS=${TOOLS:-rime restic borg}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$ROOT/benches/results/volume-$STAMP.md}
LOG=${OUT%.md}.log
unset RIME_REPO RIME_PASSWORD RESTIC_REPOSITORY RESTIC_PASSWORD BORG_REPO BORG_PASSPHRASE

[ -x "$RIME" ] || (cd "$ROOT" && cargo build --release -p rime-cli)
for i in day0 day1 dense; do
  [ -f "$IMAGES/$i.img" ] || { echo "missing $IMAGES/$i.img: run benches/volume-images.sh" >&2; exit 1; }
done
mkdir -p "$WORK" "$(dirname "$OUT")"
mountpoint -q "$WORK" || mount -t tmpfs -o size="$TMPFS_SIZE" tmpfs "$WORK"
trap 'cd /; [ -n "${LOOPDEV:-}" ] && losetup -d "$LOOPDEV"; umount "$WORK" 2>/dev/null || true' EXIT
# Touch the tmpfs's memory once: in a VM, the first write to never-used guest memory costs
# several times a later one, and would be charged to whichever tool happens to run first.
dd if=/dev/zero of="$WORK/warm" bs=16M count=$((${WARM_MB:-10240} / 16)) status=none && rm -f "$WORK/warm"
echo secret-bench >"$WORK/pw"
export RESTIC_PASSWORD_FILE=$WORK/pw BORG_PASSPHRASE=secret-bench BORG_RELOCATED_REPO_ACCESS_IS_OK=yes \
  BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes RESTIC_CACHE_DIR=$WORK/restic-cache BORG_BASE_DIR=$WORK/borg-base
: >"$LOG"
RESULTS=$WORK/results.tsv
: >"$RESULTS"

# timed TOOL PART PHASE REP CMD...: run, record wall/cpu/rss; stdout of CMD goes to $WORK/last.out
timed() {
  local tool=$1 part=$2 phase=$3 rep=$4; shift 4
  sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" "$@" >"$WORK/last.out" 2>>"$LOG" || {
    echo "FAILED: $tool $part $phase: $*" | tee -a "$LOG" >&2; tail -5 "$LOG" >&2; exit 1; }
  read -r wall user sys rss <"$WORK/time"
  echo -e "$tool\t$part\t$phase\t$rep\t$wall\t$(echo "$user + $sys" | bc)\t$rss\t${ADDED:-}" >>"$RESULTS"
  echo "$tool $part $phase rep$rep: ${wall}s rss=${rss}KiB" | tee -a "$LOG"
}

# Growth of the repository directory (what the backup stored: data, index, metadata), appended
# to the last result line.
added() { local now; now=$(du -sb "$1" | cut -f1); sed -i '$ s/$/'"$(( now - $2 ))"'/' "$RESULTS"; }

rime_json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stats"]["bytes_added"])' "$WORK/last.out"; }
restic_added() { python3 -c '
import json,sys
for l in open(sys.argv[1]):
    try: d=json.loads(l)
    except Exception: continue
    if d.get("message_type")=="summary": print(d["data_added"])' "$WORK/last.out"; }
borg_added() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["archive"]["stats"]["deduplicated_size"])' "$WORK/last.out"; }

# One phase for one tool. Image to back up is $WORK/src/disk.img.
phase() {
  local tool=$1 part=$2 ph=$3 rep=$4
  local repo=$WORK/repo-$tool-$part
  ADDED=""
  case "$tool:$ph" in
    rime:init) "$RIME" init --repo "$repo" --password-file "$WORK/pw" -q ;;
    restic:init) restic init -q --repository-version 2 --repo "$repo" >/dev/null ;;
    borg:init) borg init -e repokey-blake2 "$repo" ;;
    rime:restore) rm -f "$WORK/out.img"; timed rime "$part" restore "$rep" "$RIME" --repo "$repo" --password-file "$WORK/pw" restore latest --target "$WORK/out.img" -q
                  cmp "$WORK/out.img" "$WORK/src/disk.img" || { echo "rime restore differs" >&2; exit 1; } ;;
    restic:restore) rm -rf "$WORK/out"; timed restic "$part" restore "$rep" restic --repo "$repo" -q restore latest --target "$WORK/out"
                  cmp "$WORK/out$WORK/src/disk.img" "$WORK/src/disk.img" || { echo "restic restore differs" >&2; exit 1; } ;;
    borg:restore) rm -rf "$WORK/out"; mkdir -p "$WORK/out"; (cd "$WORK/out" && timed borg "$part" restore "$rep" borg extract --sparse "$repo::$(borg list --short --last 1 "$repo")")
                  cmp "$WORK/out$WORK/src/disk.img" "$WORK/src/disk.img" || { echo "borg restore differs" >&2; exit 1; } ;;
    rime:*) local before; before=$(du -sb "$repo" | cut -f1)
            timed rime "$part" "$ph" "$rep" "$RIME" --repo "$repo" --password-file "$WORK/pw" backup --json --volume "$WORK/src/disk.img" --name disk ${RIME_EXTRA:-}
            added "$repo" "$before" ;;
    restic:*) local before; before=$(du -sb "$repo" | cut -f1)
            timed restic "$part" "$ph" "$rep" restic --repo "$repo" backup --json "$WORK/src/disk.img"
            added "$repo" "$before" ;;
    borg:*) local before; before=$(du -sb "$repo" | cut -f1)
            timed borg "$part" "$ph" "$rep" borg create --json "$repo::$ph-$rep-$RANDOM" "$WORK/src/disk.img"
            added "$repo" "$before" ;;
  esac
}

put() { mkdir -p "$WORK/src"; cp --sparse=always "$IMAGES/$1.img" "$WORK/src/disk.img"; }

for rep in $(seq 1 "$REPS"); do
  order=$TOOLS
  [ "$rep" -gt 1 ] && order=$(echo "$TOOLS" | awk -v r="$rep" '{n=NF; for(i=0;i<n;i++) printf "%s ", $(((i+r-1)%n)+1)}')
  if [[ " $PARTS " == *" images "* ]]; then
    for t in $order; do rm -rf "$WORK/repo-$t-images"; phase "$t" images init "$rep"; done
    put day0; for t in $order; do phase "$t" images full "$rep"; done
    put day1; for t in $order; do phase "$t" images day1 "$rep"; done
    for t in $order; do phase "$t" images unchanged "$rep"; done
    for t in $order; do phase "$t" images restore "$rep"; done
    for t in $order; do rm -rf "$WORK/repo-$t-images" "$WORK/out" "$WORK/out.img"; done
  fi
  if [[ " $PARTS " == *" dense "* ]]; then
    put dense
    for t in $order; do rm -rf "$WORK/repo-$t-dense"; phase "$t" dense init "$rep"; phase "$t" dense full "$rep"; done
    for t in $order; do phase "$t" dense restore "$rep"; rm -rf "$WORK/out" "$WORK/out.img"; done
    for t in $order; do rm -rf "$WORK/repo-$t-dense"; done
  fi
done

if [[ " $PARTS " == *" device "* ]]; then
  put dense
  LOOPDEV=$(losetup -f --show -r "$WORK/src/disk.img")
  repo=$WORK/repo-device; rm -rf "$repo"
  "$RIME" init --repo "$repo" --password-file "$WORK/pw" -q
  for ph in first reread; do
    before=$(du -sb "$repo" | cut -f1)
    timed rime device "$ph" 1 "$RIME" --repo "$repo" --password-file "$WORK/pw" backup --json --volume "$LOOPDEV" --name dev
    added "$repo" "$before"
  done
  losetup -d "$LOOPDEV"; LOOPDEV=""
  rm -rf "$repo"
fi

if [[ " $PARTS " == *" sweep "* ]]; then
  for cs in 64K 128K 256K 512K 1M 4M; do
    rm -rf "$WORK/repo-rime-sweep-$cs"
    phase rime "sweep-$cs" init 1
    put day0; RIME_EXTRA="--chunk-size $cs" phase rime "sweep-$cs" full 1
    put day1; RIME_EXTRA="--chunk-size $cs" phase rime "sweep-$cs" day1 1
    rm -rf "$WORK/repo-rime-sweep-$cs"
  done
fi

if [[ " $PARTS " == *" big "* ]]; then
  rm -rf "$WORK/src"; mkdir -p "$WORK/src"
  truncate -s 64G "$WORK/src/disk.img"
  for i in $(seq 0 63); do
    dd if=/dev/urandom of="$WORK/src/disk.img" bs=1M count=32 seek=$((i * 1024)) conv=notrunc status=none
  done
  rm -rf "$WORK/repo-rime-big"
  phase rime big init 1
  phase rime big full 1
  rm -f "$WORK/out.img"
  phase rime big restore 1
  rm -rf "$WORK/repo-rime-big" "$WORK/out.img" "$WORK/src"
fi

# Report: medians per tool/part/phase.
python3 - "$RESULTS" "$OUT" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if len(f) < 7: continue
    tool, part, phase, rep, wall, cpu, rss = f[:7]
    added = f[7] if len(f) > 7 and f[7] else ""
    rows[(part, phase, tool)].append((float(wall), float(cpu), int(rss), added))
med = lambda xs: statistics.median(xs)
out = ["# Volume benchmark", "", "| part | phase | tool | wall s | cpu s | peak RSS MiB | repository growth (bytes) | vs restic (wall) |", "|---|---|---|---|---|---|---|---|"]
for (part, phase, tool), v in sorted(rows.items()):
    w = med([x[0] for x in v]); c = med([x[1] for x in v]); r = med([x[2] for x in v]) / 1024
    added = v[-1][3]
    ref = rows.get((part, phase, "restic"))
    ratio = f"{med([x[0] for x in ref]) / w:.2f}x" if ref and tool != "restic" and w > 0 else ""
    out.append(f"| {part} | {phase} | {tool} | {w:.2f} | {c:.2f} | {r:.0f} | {added} | {ratio} |")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
