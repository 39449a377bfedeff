#!/usr/bin/env bash
# fuzz/run.sh — build and run every cargo-fuzz target of rime for a fixed time each.
#
# Usage (from anywhere):
#   fuzz/run.sh                          # every target, 60 s each
#   FUZZ_SECONDS=300 fuzz/run.sh         # longer
#   fuzz/run.sh tree index               # only these targets
#
# Environment (defaults in brackets):
#   FUZZ_SECONDS   seconds per target [60]
#   FUZZ_TIMEOUT   seconds one input may take before it counts as a hang [30]
#   FUZZ_RSS_MB    memory limit of the fuzzer process (and of one allocation) [2048]
#   FUZZ_ARGS      extra libFuzzer arguments, e.g. "-jobs=2 -workers=2" [""]
#
# The toolchain is stable; RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly-only flags
# (-Zsanitizer=address and sanitizer coverage). Inputs the fuzzer discovers go to
# fuzz/work/corpus/<target>/ (not committed); the reviewed seeds in fuzz/corpus/<target>/ are
# only read. A crash, panic, hang or out-of-memory is saved under fuzz/artifacts/<target>/,
# shown as a hex dump, and makes this script exit 1 after all targets have run.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
seconds="${FUZZ_SECONDS:-60}"
timeout="${FUZZ_TIMEOUT:-30}"
rss="${FUZZ_RSS_MB:-2048}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked || { echo "cannot install cargo-fuzz" >&2; exit 2; }
fi

cd "$root"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${#targets[@]} targets"
cargo fuzz build || { echo "fuzz build failed" >&2; exit 2; }

mkdir -p "$here/work/logs"
failed=()
summary=()
for t in "${targets[@]}"; do
    work="$here/work/corpus/$t"
    seeds="$here/corpus/$t"
    mkdir -p "$work" "$seeds" "$here/artifacts/$t"
    log="$here/work/logs/$t.log"
    echo "== $t: ${seconds}s (log: ${log#"$root"/})"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of arguments
    cargo fuzz run "$t" "$work" "$seeds" -- \
        -max_total_time="$seconds" -rss_limit_mb="$rss" -timeout="$timeout" -print_final_stats=1 ${FUZZ_ARGS:-} \
        >"$log" 2>&1
    rc=$?
    runs="$(grep -oE 'Done [0-9]+ runs' "$log" | tail -1 | grep -oE '[0-9]+' || true)"
    cov="$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)"
    if [ "$rc" -ne 0 ]; then
        failed+=("$t")
        summary+=("$t: FAILED (exit $rc) after ${runs:-?} runs")
        echo "!! $t failed (exit $rc):"
        grep -E "panicked at|ERROR: |SUMMARY: |Test unit written to" "$log" | head -20
        artifact="$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -1 | awk '{print $5}')"
        if [ -n "$artifact" ] && [ -f "$artifact" ]; then
            echo "-- input ($(wc -c <"$artifact") bytes), reproduce with: cargo fuzz run $t $artifact"
            od -A x -t x1z -v "$artifact" | head -64
        fi
    else
        summary+=("$t: ok, ${runs:-?} runs, ${cov:-cov: ?}")
    fi
done

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failing targets: ${failed[*]}" >&2
    exit 1
fi
