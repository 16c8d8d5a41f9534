#!/usr/bin/env bash
# Fresh-instance and -j benchmarks of issue 17, run by hand (never in CI):
#
#     bash benches/snapshots.sh OLD_BINARY [NEW_BINARY]
#
# Measures two leakhost binaries side by side in one run (NEW defaults to this checkout's release
# build): instructions executed (valgrind --tool=callgrind, exact and repeatable on a busy machine)
# and wall time (hyperfine, both binaries alternating in BLOCKS blocks, medians over all blocks).
# Under valgrind a trap cannot be caught (wasmtime's signal handler does not recognise valgrind's
# SIGILL), so the instructions of the trap suites are counted with --engine pulley, whose traps are
# not signals; their wall times use the default engine. Pulley interprets the guest, so the old
# binary's repeated start-ups weigh more there than natively: read those ratios with that in mind.
# Suites (benches/gen.py): trapsuite with 10,000 tests of which 100 panic, and without panics (the
# difference is what 100 traps cost, each followed by a fresh instance); the same with 10 tests
# at -N10 (100 traps); bigsuite (10,000 tests in 50 layers) at -j1 and -j2; samplelayers at -j1/-j2.
#
# Environment: BENCH_DIR (default /tmp/leakhost-bench-snapshots), RUNS (per block, default 10),
# BLOCKS (default 3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OLD=${1:?usage: bash benches/snapshots.sh OLD_BINARY [NEW_BINARY]}
NEW=${2:-$ROOT/target/release/leakhost}
B=${BENCH_DIR:-/tmp/leakhost-bench-snapshots}
RUNS=${RUNS:-10}
BLOCKS=${BLOCKS:-3}
R=$B/results
mkdir -p "$B" "$R"
export LEAKHOST_CACHE_DIR=$B/cache NO_COLOR=1 CARGO_TERM_COLOR=never
say() { printf '\n==> %s\n' "$*" >&2; }

say "building the suites"
(cd "$ROOT" && cargo build --release -q --target wasm32-wasip1 --manifest-path sample-tests/Cargo.toml)
SAMPLE=$ROOT/sample-tests/target/wasm32-wasip1/release/samplelayers.wasm
python3 "$ROOT/benches/gen.py" bigsuite "$B/bigsuite"
for spec in "10000 100" "10000 0" "10 10" "10 0"; do
    read -r tests panics <<<"$spec"
    python3 "$ROOT/benches/gen.py" trapsuite "$B/traps_${tests}_$panics" --tests "$tests" --panics "$panics"
done
W=$B/target-wasm/wasm32-wasip1/release
for crate in bigsuite traps_10000_100 traps_10000_0 traps_10_10 traps_10_0; do
    CARGO_TARGET_DIR=$B/target-wasm cargo build --release -q --target wasm32-wasip1 --manifest-path "$B/$crate/Cargo.toml"
done

CASES=(
    "traps 10000 tests, 100 panic|$W/bench_traps_10000_100.wasm|--engine pulley"
    "traps 10000 tests, none panic|$W/bench_traps_10000_0.wasm|--engine pulley"
    "traps 10 tests, 10 panic, -N10|$W/bench_traps_10_10.wasm -N10|--engine pulley"
    "traps 10 tests, none panic, -N10|$W/bench_traps_10_0.wasm -N10|--engine pulley"
    "bigsuite -N20 -r -j1|$W/bench_bigsuite.wasm -N20 -r -j1"
    "bigsuite -N20 -r -j2|$W/bench_bigsuite.wasm -N20 -r -j2"
    "bigsuite -N1 -j1|$W/bench_bigsuite.wasm -N1 -j1"
    "bigsuite -N1 -j2|$W/bench_bigsuite.wasm -N1 -j2"
    "samplelayers -N4 -j1|$SAMPLE -N4 -j1"
    "samplelayers -N4 -j2|$SAMPLE -N4 -j2"
)

# case "NAME|ARGS|EXTRA ARGS UNDER VALGRIND"
args_of() { local rest=${1#*|}; printf '%s' "${rest%%|*}"; }
valgrind_args_of() { local rest=${1#*|}; [[ $rest == *"|"* ]] && printf '%s' "${rest#*|}"; }

say "warming the module caches (natively and under valgrind, whose CPU has other features)"
for bin in "$OLD" "$NEW"; do
    for case in "${CASES[@]}"; do
        read -r -a args <<<"$(args_of "$case")"
        read -r -a vargs <<<"$(valgrind_args_of "$case")"
        "$bin" run "${args[0]}" >/dev/null || true
        valgrind --tool=none "$bin" run "${args[0]}" "${vargs[@]}" >/dev/null 2>&1 || true
    done
done

instructions() {
    local out=$R/callgrind.out
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>"$R/valgrind.log" || true
    grep -m1 '^summary:' "$out" | awk '{print $2}' | grep . || echo 0
}

say "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| command | instructions old | instructions new | ratio | wall old (ms) | wall new (ms) | ratio |\n'
printf '|---|---|---|---|---|---|---|\n'
for case in "${CASES[@]}"; do
    name=${case%%|*}
    read -r -a args <<<"$(args_of "$case")"
    read -r -a vargs <<<"$(valgrind_args_of "$case")"
    i_old=$(instructions "$OLD" run "${args[@]}" "${vargs[@]}")
    i_new=$(instructions "$NEW" run "${args[@]}" "${vargs[@]}")
    for block in $(seq "$BLOCKS"); do
        # Failing suites exit 1 on purpose; -i keeps hyperfine timing them.
        hyperfine -N -i --style none --warmup 2 --runs "$RUNS" --export-json "$R/wall-$block.json" \
            "$OLD run ${args[*]}" "$NEW run ${args[*]}" >/dev/null 2>&1
    done
    read -r w_old w_new < <(python3 - "$R" "$BLOCKS" <<'EOF'
import json, statistics, sys
r, blocks = sys.argv[1], int(sys.argv[2])
times = [[], []]
for b in range(1, blocks + 1):
    for i, res in enumerate(json.load(open(f"{r}/wall-{b}.json"))["results"]):
        times[i] += res["times"]
print(" ".join("%.1f" % (statistics.median(t) * 1000) for t in times))
EOF
    )
    python3 -c '
import sys
name, i_old, i_new, w_old, w_new = sys.argv[1:]
print("| %s | %s | %s | %.3f | %s | %s | %.3f |" % (name, f"{int(i_old):,}", f"{int(i_new):,}", int(i_new) / max(int(i_old), 1), w_old, w_new, float(w_new) / float(w_old)))
' "$name" "$i_old" "$i_new" "$w_old" "$w_new"
done
say "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
