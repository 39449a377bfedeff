#!/usr/bin/env bash
# Build rime, then run its main job on an embedded default: back up a directory into a local,
# encrypted repository, back it up again (incremental), restore it and verify every byte.
#
#   SRC=/some/dir REPO=/some/repo bash scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p rime-cli
RIME="$PWD/target/release/rime"
# Freezer's command names: the same binary acts as `rime agent` when run under them.
for name in freezer-agent freezerc; do ln -sf rime "$PWD/target/release/$name"; done
SRC=${SRC:-$PWD}                          # default source: this source tree
WORK=${WORK:-$(mktemp -d /tmp/rime-quickstart.XXXXXX)}
REPO=${REPO:-$WORK/repo}
export RIME_REPO="$REPO"
export RIME_PASSWORD_FILE="$WORK/password"
[ -f "$RIME_PASSWORD_FILE" ] || head -c 24 /dev/urandom | base64 > "$RIME_PASSWORD_FILE"

[ -f "$REPO/config" ] || "$RIME" init
"$RIME" backup --name quickstart --exclude target --exclude .git "$SRC"
"$RIME" backup --name quickstart --exclude target --exclude .git "$SRC"   # nothing changed: fast
"$RIME" snapshots
"$RIME" restore latest --target "$WORK/restored"
"$RIME" check --read-data
# Compare what was restored with the source (the same excludes).
if diff -r --no-dereference -x target -x .git "$SRC" "$WORK/restored" >/dev/null; then
  echo "quickstart: restored tree is identical to $SRC (repository $REPO, password in $RIME_PASSWORD_FILE)"
else
  echo "quickstart: restored tree differs from $SRC" >&2
  exit 1
fi
