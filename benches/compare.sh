#!/usr/bin/env bash
# Side-by-side comparison of this checkout's leakhost with another revision's, run by hand:
#
#     bash benches/compare.sh REV        # e.g. the commit before a restructuring
#
# Builds REV in a git worktree under $BENCH_DIR (its own target dir, seeded from this checkout's so
# that only leakhost itself recompiles), then measures both binaries on the same suites in one run:
#   - instructions executed (valgrind --tool=callgrind): exact and repeatable on a busy machine;
#   - wall time (hyperfine, alternating both binaries in each block, so load drifts hit both alike).
# Prints a Markdown table of both and their ratio (this checkout / REV).
#
# Environment: BENCH_DIR (default /tmp/leakhost-bench), RUNS (hyperfine runs per block, default 20).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REV=${1:?usage: bash benches/compare.sh REV}
B=${BENCH_DIR:-/tmp/leakhost-bench}
RUNS=${RUNS:-20}
R=$B/compare
mkdir -p "$B" "$R"
export LEAKHOST_CACHE_DIR=$B/cache NO_COLOR=1 CARGO_TERM_COLOR=never
say() { printf '\n==> %s\n' "$*" >&2; }

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; } >/dev/null 2>&1
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; } >/dev/null 2>&1

say "building this checkout and $REV"
(cd "$ROOT" && cargo build --release -q -p leakhost)
BASE=$B/base-$REV
if [ ! -d "$BASE" ]; then
    git -C "$ROOT" worktree add -q --detach "$BASE" "$REV"
    [ -d "$ROOT/target" ] && cp -a "$ROOT/target" "$BASE/target"
fi
(cd "$BASE" && cargo build --release -q -p leakhost)
mkdir -p "$B/bin"
cp "$ROOT/target/release/leakhost" "$B/bin/leakhost-new"
cp "$BASE/target/release/leakhost" "$B/bin/leakhost-base"
NEW=$B/bin/leakhost-new OLD=$B/bin/leakhost-base

# Both binaries run the same modules, built with REV's SDK and profile: a newer SDK may speak an
# ABI that REV's host does not, and the host's cost is what is compared.
say "building the suites with $REV's SDK"
(cd "$BASE" && cargo build --release -q --target wasm32-wasip1 --manifest-path sample-tests/Cargo.toml)
SAMPLE=$BASE/sample-tests/target/wasm32-wasip1/release/samplelayers.wasm
python3 "$ROOT/benches/gen.py" bigsuite "$B/bigsuite-$REV" --tests 10000 --layers 50 --sdk "$BASE/guest-sdk"
CARGO_TARGET_DIR=$B/target-wasm-$REV cargo build --release -q --target wasm32-wasip1 \
    --manifest-path "$B/bigsuite-$REV/Cargo.toml"
BIG=$B/target-wasm-$REV/wasm32-wasip1/release/bench_bigsuite.wasm
# Warm the module cache for both binaries, natively and under valgrind: valgrind's emulated CPU has
# other features, so its compiled modules are other cache entries. No measurement includes compiling.
for bin in "$NEW" "$OLD"; do
    for wasm in "$SAMPLE" "$BIG"; do
        "$bin" run "$wasm" >/dev/null
        valgrind --tool=none "$bin" run "$wasm" >/dev/null 2>&1
    done
done

CASES=(
    "samplelayers -N4|$SAMPLE -N4"
    "samplelayers -N4 -r|$SAMPLE -N4 -r"
    "bigsuite -N1|$BIG -N1"
    "bigsuite -N20 -r|$BIG -N20 -r"
    "bigsuite -N20 -r -j2|$BIG -N20 -r -j2"
)

instructions() {
    local out=$R/callgrind.out
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>"$R/valgrind.log"
    grep -m1 '^summary:' "$out" | awk '{print $2}'
}

printf '| command | instructions %s | instructions this | ratio | wall %s (ms) | wall this (ms) | ratio |\n' "$REV" "$REV"
printf '|---|---|---|---|---|---|---|\n'
for case in "${CASES[@]}"; do
    name=${case%%|*}
    read -r -a args <<<"${case#*|}"
    i_old=$(instructions "$OLD" run "${args[@]}")
    i_new=$(instructions "$NEW" run "${args[@]}")
    hyperfine -N --style none --warmup 3 --runs "$RUNS" --export-json "$R/wall.json" \
        "$OLD run ${args[*]}" "$NEW run ${args[*]}" >/dev/null 2>&1
    read -r w_old w_new < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"]
print(" ".join("%.2f" % (x["median"] * 1000) for x in r))' "$R/wall.json")
    python3 -c '
import sys
name, io, inew, wo, wn = sys.argv[1:]
print(f"| `{name}` | {int(io):,} | {int(inew):,} | {int(inew) / int(io):.3f} | {wo} | {wn} | {float(wn) / float(wo):.3f} |")' \
        "$name" "$i_old" "$i_new" "$w_old" "$w_new"
done
