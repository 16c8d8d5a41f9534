#!/usr/bin/env bash
# Where `leakhost run samplelayers.wasm -N4 -r` spends its instructions (issue 26, item 2), beside the
# physical floor; run by hand (never in CI), benches/run.sh calls it after headline.sh.
#
#     LEAKHOST=/path/to/leakhost bash benches/startup.sh
#
# 1. callgrind of the command with a warm cache. Under valgrind the engine sees other CPU features,
#    so the cache key differs from a normal run's: the cache is warmed under `valgrind --tool=none`
#    first (its own directory), and the measured run must not write a new entry (checked).
# 2. `callgrind_annotate --inclusive=yes`, and benches/startup_report.py attributes the instructions
#    to phases (process start, clap, engine, cache lookup + authentication, deserialize, instrument,
#    instantiate, snapshot, manifest, the tests, reporting) by the inclusive cost of named functions.
# 3. The floor: instructions of `/bin/true` and of an empty Rust `main` (process start), and of one
#    empty export call through wasmtime's TypedFunc (benches/floor, under callgrind with
#    --toggle-collect), times 1,284 (321 tests x 4); plus benches/floor's own ns per call.
#
# Instruction counts do not move with the machine's load. Environment: LEAKHOST (required),
# BENCH_DIR (default /tmp/leakhost-bench). Writes only under $BENCH_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${BENCH_DIR:-/tmp/leakhost-bench}
S=$B/startup
R=$B/results-startup
say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'benches/startup.sh: %s\n' "$*" >&2; exit 1; }
[ -n "${LEAKHOST:-}" ] || die "set LEAKHOST=/path/to/leakhost (this script never builds the host)"
command -v valgrind >/dev/null || die "valgrind is needed (apt-get install valgrind)"
mkdir -p "$S/bin" "$R"
rm -f "$R"/*
export NO_COLOR=1 CARGO_TERM_COLOR=never
cp "$LEAKHOST" "$S/bin/leakhost"
L=$S/bin/leakhost
export LEAKHOST_CACHE_DIR=$S/cache-valgrind LEAKHOST_CACHE_KEY=$S/cache-valgrind.key

say "building samplelayers.wasm (sample-tests/Cargo.toml's release profile) and the floor"
cargo build --release -q --target wasm32-wasip1 --manifest-path "$ROOT/sample-tests/Cargo.toml" --target-dir "$B/suites-target"
cp "$B/suites-target/wasm32-wasip1/release/samplelayers.wasm" "$S/samplelayers.wasm"
SAMPLE=$S/samplelayers.wasm
cargo build --release -q --manifest-path "$ROOT/benches/floor/Cargo.toml" --target-dir "$B/target-floor"
FLOOR=$B/target-floor/release/leakhost-bench-floor
printf 'fn main() {}\n' >"$S/empty.rs"
rustc -O -o "$S/bin/empty-rust" "$S/empty.rs"

say "warming the cache under valgrind --tool=none"
rm -rf "$LEAKHOST_CACHE_DIR"
valgrind --tool=none "$L" run "$SAMPLE" -N4 -r >"$R/warm.out" 2>&1 || die "warm-up failed: $R/warm.out"
grep -q 'Total: 321 tests, 0 failures, 0 errors' "$R/warm.out" || die "warm-up: unexpected output, $R/warm.out"
before=$(ls "$LEAKHOST_CACHE_DIR"/*.cwasm | sort)

say "callgrind: leakhost run samplelayers.wasm -N4 -r"
valgrind --tool=callgrind --callgrind-out-file="$R/run.callgrind" "$L" run "$SAMPLE" -N4 -r >"$R/run.out" 2>"$R/run.vg" \
    || die "callgrind run failed: $R/run.vg"
grep -q 'Total: 321 tests, 0 failures, 0 errors' "$R/run.out" || die "callgrind run: unexpected output, $R/run.out"
[ "$(ls "$LEAKHOST_CACHE_DIR"/*.cwasm | sort)" = "$before" ] || die "the measured run wrote a cache entry: the cache was not warm"
callgrind_annotate --inclusive=yes --threshold=100 "$R/run.callgrind" >"$R/inclusive.txt"
callgrind_annotate --threshold=100 "$R/run.callgrind" >"$R/self.txt"

say "the floor: process start and empty export calls"
valgrind --tool=callgrind --callgrind-out-file=/dev/null /bin/true 2>"$R/true.vg"
valgrind --tool=callgrind --callgrind-out-file=/dev/null "$S/bin/empty-rust" 2>"$R/empty-rust.vg"
# The floor binary makes calls/10 warm-up calls and `calls` timed ones, for each of its two variants
# (TypedFunc::call is inlined into its loops): the whole program at two call counts, and the difference
# per call (the call, set_epoch_deadline and the loop).
for n in 1000 11000; do
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$FLOOR" "$n" >"$R/floor-cg-$n.out" 2>"$R/floor-cg-$n.vg"
done
for i in 1 2 3; do "$FLOOR" 10000000 >>"$R/floor-wall.out"; done
# Wall clock of process start (it does move with the load: medians of alternating runs).
python3 "$ROOT/benches/alternate.py" --rounds 5 --warmup 3 --json "$R/process-start.json" \
    --cmd true 20 /bin/true --cmd empty_rust 20 "$S/bin/empty-rust" >&2

python3 "$ROOT/benches/startup_report.py" "$R" | tee "$R/results.md"
