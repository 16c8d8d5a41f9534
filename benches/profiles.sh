#!/usr/bin/env bash
# What a suite's debug profile costs and gives (issue 23): the leakstacks and inventory-leaks
# samples built with debug = false, "line-tables-only" and "limited", their module sizes, the
# instructions of `leakhost run SUITE -N4 -r` (callgrind: the same count on a loaded machine), and
# how many of the printed stack frames carry their full path.
#
#     bash benches/profiles.sh            # prints a Markdown table
#
# Builds into $BENCH_DIR/profiles (default /tmp/leakhost-bench/profiles); uses target/release/leakhost.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${BENCH_DIR:-/tmp/leakhost-bench}/profiles
LEAKHOST=$ROOT/target/release/leakhost
mkdir -p "$B"
export LEAKHOST_CACHE_DIR=$B/cache NO_COLOR=1
[ -x "$LEAKHOST" ] || (cd "$ROOT" && cargo build --release -q -p leakhost)
command -v valgrind >/dev/null || { echo "benches/profiles.sh: needs valgrind" >&2; exit 1; }

printf '| suite | debug | module bytes | instructions of run -N4 -r | frames printed | with a path (`::`) |\n'
printf '|---|---|---|---|---|---|\n'
for profile in false line-tables-only limited; do
    target=$B/target-$profile
    (cd "$ROOT/sample-tests" && CARGO_PROFILE_RELEASE_DEBUG=$profile \
        cargo build -q --release --target wasm32-wasip1 -p leakstacks -p inventory-leaks --target-dir "$target")
    for suite in leakstacks inventory_leaks; do
        wasm=$target/wasm32-wasip1/release/$suite.wasm
        "$LEAKHOST" run "$wasm" -N4 -r >"$B/$suite-$profile.out" 2>&1 || true
        # Warm the cache as valgrind's CPU sees it (its CPU flags are part of the cache key).
        valgrind --tool=none "$LEAKHOST" run "$wasm" -N4 -r >/dev/null 2>&1 || true
        valgrind --tool=callgrind --callgrind-out-file="$B/cg.$suite.$profile" "$LEAKHOST" run "$wasm" -N4 -r \
            >/dev/null 2>"$B/cg.$suite.$profile.log" || true
        instructions=$(grep -E '^summary:' "$B/cg.$suite.$profile" | awk '{print $2}')
        frames=$(grep -E '^      [^ ]' "$B/$suite-$profile.out" | wc -l)
        qualified=$(grep -E '^      [^ ]' "$B/$suite-$profile.out" | awk '{print $1}' | grep -c '::' || true)
        printf '| %s | %s | %s | %s | %s | %s |\n' "$suite" "$profile" "$(stat -c %s "$wasm")" "$instructions" \
            "$frames" "$qualified"
    done
done
