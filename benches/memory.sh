#!/usr/bin/env bash
# Peak memory of issue 10's two weak spots, run by hand (never in CI):
#
#     bash benches/memory.sh [OLD_BINARY]
#
#   - 131,072 tests with 4 KB names (and with 8-byte names, the same suite otherwise): a hand-written
#     module from host/tests/names_memory.rs, its names overlapping windows of one buffer;
#   - 1,000,000 trivial tests in 50 layers (benches/gen.py bigsuite) at -N3 -r, with and without --json.
# Prints the peak resident set (/usr/bin/time %M, KB) of this checkout's release build and, when given,
# of OLD_BINARY (an ABI v1 binary such as 98b675a's cannot run the million-test suite, built with this
# SDK: its rows then say so).
#
# Environment: BENCH_DIR (default /tmp/leakhost-bench).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OLD=${1:-}
B=${BENCH_DIR:-/tmp/leakhost-bench}
mkdir -p "$B"
export LEAKHOST_CACHE_DIR=$B/cache NO_COLOR=1 CARGO_TERM_COLOR=never
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; } >/dev/null 2>&1

(cd "$ROOT" && cargo build --release -q -p leakhost)
NEW=$ROOT/target/release/leakhost
(cd "$ROOT" && LEAKHOST_NAMES_DIR=$B/names cargo test --release -q --test names_memory -- --ignored \
    write_issue_scale_suites >/dev/null)
python3 "$ROOT/benches/gen.py" bigsuite "$B/million" --tests 1000000 --layers 50 --sdk "$ROOT/guest-sdk"
CARGO_TARGET_DIR=$B/target-wasm-million cargo build --release -q --target wasm32-wasip1 \
    --manifest-path "$B/million/Cargo.toml"
MILLION=$B/target-wasm-million/wasm32-wasip1/release/bench_bigsuite.wasm

peak() {
    local bin=$1
    shift
    if /usr/bin/time -f %M -o "$B/peak" "$bin" run -q "$@" >/dev/null 2>&1; then cat "$B/peak"; else echo "fails"; fi
}

if [ -n "$OLD" ]; then
    printf '| run | old (KB) | now (KB) |\n|---|---|---|\n'
else
    printf '| run | now (KB) |\n|---|---|\n'
fi
row() {
    local name=$1
    shift
    if [ -n "$OLD" ]; then
        printf '| %s | %s | %s |\n' "$name" "$(peak "$OLD" "$@")" "$(peak "$NEW" "$@")"
    else
        printf '| %s | %s |\n' "$name" "$(peak "$NEW" "$@")"
    fi
}
row "131,072 tests, 4 KB names" "$B/names/names-4k.wasm"
row "131,072 tests, 8-byte names" "$B/names/names-8.wasm"
row "1,000,000 tests -N3 -r --json" "$MILLION" -N3 -r --json "$B/million.json"
row "1,000,000 tests -N3 -r" "$MILLION" -N3 -r
