#!/usr/bin/env bash
# leakhost benchmarks, run by hand (never in CI):
#
#     bash benches/run.sh
#
# Builds everything it needs, measures, prints a results table (Markdown) and keeps the raw data
# (hyperfine JSON exports, RSS samples, floor runs, command outputs) in $BENCH_DIR/results.
# See BENCHMARKS.md for what each measurement means and the latest results.
#
# Environment:
#   BENCH_DIR   where generated suites, builds, the virtualenv and results go (default /tmp/leakhost-bench)
#   RUNS        timed runs of fast commands (default 30); slower ones use fewer, see below
#   SKIP_NATIVE=1  skip (c), the native libtest baseline (its first compile takes a minute or two)
#   LEAKHOST    time this leakhost binary instead of building one (cargo build --release -p leakhost)
#   LEAKHOST_BASE  passed on to benches/headline.sh: a second binary timed beside it
#
# Nothing here writes outside $BENCH_DIR and the workspace's target/ directories. The compiled-module
# cache is $BENCH_DIR/cache (LEAKHOST_CACHE_DIR), so the user's own cache is neither used nor touched.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${BENCH_DIR:-/tmp/leakhost-bench}
RUNS=${RUNS:-30}
R=$B/results
mkdir -p "$B" "$R"
rm -f "$R"/*.json "$R"/*.txt "$R"/*.out
export LEAKHOST_CACHE_DIR=$B/cache
export CARGO_TERM_COLOR=never
export NO_COLOR=1

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'benches/run.sh: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------------
if ! command -v hyperfine >/dev/null && command -v apt-get >/dev/null; then
    say "installing hyperfine"
    (apt-get update -qq && apt-get install -y -qq hyperfine) >/dev/null 2>&1 || true
fi
if [ ! -x /usr/bin/time ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq time) >/dev/null 2>&1 || true
fi
# bench NAME WARMUP RUNS [--prepare CMD] CMD: times CMD (no shell, output discarded) into $R/NAME.json.
if command -v hyperfine >/dev/null; then
    TIMER=hyperfine
    bench() {
        local name=$1 warmup=$2 runs=$3; shift 3
        hyperfine -N --style basic --warmup "$warmup" --runs "$runs" --export-json "$R/$name.json" "$@" \
            | grep -E 'Time \(|Range' >&2 || true
    }
else
    TIMER="benches/timeit.py (hyperfine not available)"
    bench() {
        local name=$1 warmup=$2 runs=$3; shift 3
        python3 "$ROOT/benches/timeit.py" --warmup "$warmup" --runs "$runs" --export-json "$R/$name.json" "$@" >&2
    }
fi
say "timer: $TIMER"

# bench_pair NAME_A NAME_B BLOCKS RUNS CMD_A CMD_B: times A and B alternately, in BLOCKS blocks of RUNS
# runs each, and merges the blocks into $R/NAME_A.json and $R/NAME_B.json, so that a drift in the
# machine's load hits both sides alike (used where the difference is a few percent).
bench_pair() {
    local a=$1 b=$2 blocks=$3 runs=$4 cmd_a=$5 cmd_b=$6 i
    for i in $(seq "$blocks"); do
        bench "$a.block$i" 3 "$runs" "$cmd_a"
        bench "$b.block$i" 3 "$runs" "$cmd_b"
    done
    python3 "$ROOT/benches/merge.py" "$R" "$a" "$b"
}

# --- builds ------------------------------------------------------------------------------------
# Time a private copy: other cargo invocations in the workspace may rebuild target/release meanwhile.
mkdir -p "$B/bin"
if [ -n "${LEAKHOST:-}" ]; then
    say "timing LEAKHOST=$LEAKHOST (not building the host)"
    cp "$LEAKHOST" "$B/bin/leakhost"
else
    say "building leakhost (release)"
    (cd "$ROOT" && cargo build --release -q -p leakhost)
    cp "$ROOT/target/release/leakhost" "$B/bin/leakhost"
fi
L=$B/bin/leakhost

say "building the sample suites (wasm32-wasip1, release)"
(cd "$ROOT" && cargo build --release -q --target wasm32-wasip1 --manifest-path sample-tests/Cargo.toml)
cp "$ROOT/sample-tests/target/wasm32-wasip1/release/samplelayers.wasm" "$B/bin/samplelayers.wasm"
SAMPLE=$B/bin/samplelayers.wasm

say "generating and building the benchmark suites in $B"
BIG_TESTS=10000
python3 "$ROOT/benches/gen.py" bigsuite "$B/bigsuite" --tests $BIG_TESTS --layers 50
python3 "$ROOT/benches/gen.py" onetest "$B/onetest"
python3 "$ROOT/benches/gen.py" bigwasm "$B/bigwasm"
for crate in onetest bigsuite bigwasm; do
    CARGO_TARGET_DIR=$B/target-wasm cargo build --release -q --target wasm32-wasip1 --manifest-path "$B/$crate/Cargo.toml"
done
W=$B/target-wasm/wasm32-wasip1/release
BIG=$W/bench_bigsuite.wasm ONE=$W/bench_onetest.wasm BIGWASM=$W/bench_bigwasm.wasm

say "building the wasmtime floor (benches/floor)"
CARGO_TARGET_DIR=$ROOT/target/bench-floor cargo build --release -q --manifest-path "$ROOT/benches/floor/Cargo.toml"
FLOOR=$ROOT/target/bench-floor/release/leakhost-bench-floor

NATIVE=
if [ "${SKIP_NATIVE:-0}" != 1 ]; then
    say "building the native libtest baseline ($BIG_TESTS #[test] fns; compile not timed)"
    python3 "$ROOT/benches/gen.py" native "$B/native" --tests $BIG_TESTS
    NATIVE=$(cd "$B/native" && CARGO_TARGET_DIR=$B/target-native cargo test --release -q --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "bench_native":
        print(m["executable"])')
    [ -x "$NATIVE" ] || die "native test binary not found"
fi

say "zope.testrunner 8.3 virtualenv"
if [ ! -x "$B/venv/bin/zope-testrunner" ]; then
    python3 -m venv "$B/venv"
    "$B/venv/bin/pip" install -q 'zope.testrunner==8.3'
fi
ZOPE=$B/venv/bin/zope-testrunner
EX=$("$B/venv/bin/python" -c 'import os, zope.testrunner.tests as t; print(os.path.join(os.path.dirname(t.__file__), "testrunner-ex"))')
[ -d "$EX" ] || die "zope's testrunner-ex not found"

# --- sanity: every measured command does what it claims, once, with output kept --------------------
say "checking the commands (outputs in $R/*.out)"
expect() { # expect NAME PATTERN CMD...: runs CMD, keeps its output, requires exit 0 and PATTERN
    local name=$1 pattern=$2; shift 2
    "$@" >"$R/$name.out" 2>&1 || die "$name: exit $? ($*); see $R/$name.out"
    grep -Eq "$pattern" "$R/$name.out" || die "$name: no '$pattern' in the output of: $*"
}
rm -rf "$LEAKHOST_CACHE_DIR"
expect lh_sample_N1 'Total: 321 tests, 0 failures, 0 errors' "$L" run "$SAMPLE" -N1
expect lh_sample_N4 'Total: 321 tests, 0 failures, 0 errors' "$L" run "$SAMPLE" -N4
expect lh_sample_N4_r 'live blocks=' "$L" run "$SAMPLE" -N4 -r
expect zope_N1 'Total: 321 tests, 0 failures, 0 errors' "$ZOPE" --path "$EX" --tests-pattern '^sampletestsf?$'
expect zope_N4 'Total: 321 tests, 0 failures, 0 errors' "$ZOPE" --path "$EX" --tests-pattern '^sampletestsf?$' -N4
[ "$(grep -c '^Iteration 4' "$R/zope_N4.out")" = 8 ] || die "zope -N4 did not run 4 iterations of 8 layers"
expect lh_big_N4 "Total: $BIG_TESTS tests, 0 failures, 0 errors" "$L" run "$BIG" -N4
expect lh_big_N4_r 'live blocks=' "$L" run "$BIG" -N4 -r
expect lh_big_sel1_N4 'Ran 1 tests' "$L" run "$BIG" -N4 -t '^test_0000 .bench.layer00.$'
expect lh_one_N4 'Ran 1 tests' "$L" run "$ONE" -N4
expect lh_one_N4_r 'live blocks=' "$L" run "$ONE" -N4 -r
expect lh_bigwasm_warm 'Ran 1 tests' "$L" run "$BIGWASM" -t '^test_0000 '
expect lh_bigwasm_inspect 'test' "$L" inspect "$BIGWASM"
[ -n "$NATIVE" ] && expect native_t1 "$BIG_TESTS passed" "$NATIVE" --test-threads=1
BIGWASM_BYTES=$(stat -c %s "$BIGWASM")

{
    echo "nproc=$(nproc)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "kernel=$(uname -sr)"
    echo "leakhost_rev=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown) ($(sha256sum "$L" | cut -c1-12))"
    echo "rustc=$(rustc --version)"
    echo "python=$("$B/venv/bin/python" --version)"
    echo "zope=$("$B/venv/bin/python" -c 'from importlib.metadata import version; print(version("zope.testrunner"))')"
    echo "timer=$TIMER"
    echo "big_tests=$BIG_TESTS"
    echo "native_tests=$BIG_TESTS"
    echo "bigwasm_bytes=$BIGWASM_BYTES"
    echo "floor_calls=10000000"
    echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$R/meta.txt"

# --- measurements ----------------------------------------------------------------------------------
load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
    say "warning: load average $load1 on $(nproc) CPUs: other work is running, wall-clock numbers will be noisy"
fi
say "a. leakhost vs zope.testrunner on samplelayers (warm cache)"
bench lh_sample_N1 3 "$RUNS" "$L run $SAMPLE -N1"
bench zope_N1 3 20 "$ZOPE --path $EX --tests-pattern ^sampletestsf?\$"
bench zope_N4 3 20 "$ZOPE --path $EX --tests-pattern ^sampletestsf?\$ -N4"
say "a./f. samplelayers -N4 without and with -r (alternating blocks, 120 runs each: the difference is small)"
bench_pair lh_sample_N4 lh_sample_N4_r 6 20 "$L run $SAMPLE -N4" "$L run $SAMPLE -N4 -r"

say "b. per-test overhead: bigsuite ($BIG_TESTS tests, 50 layers), startup, floor"
bench lh_one_N4 3 "$RUNS" "$L run $ONE -N4"
bench lh_one_N4_r 3 "$RUNS" "$L run $ONE -N4 -r"
bench lh_big_sel1_N4 3 "$RUNS" "$L run $BIG -N4 -t '^test_0000 .bench.layer00.\$'"
bench_pair lh_big_N4 lh_big_N4_r 3 20 "$L run $BIG -N4" "$L run $BIG -N4 -r"
for i in 1 2 3 4 5; do
    "$FLOOR" 10000000 >"$R/floor-$i.out"
    awk '$1 == "plain" { print $2 }' "$R/floor-$i.out" >>"$R/floor-plain.txt"
    awk '$1 == "leakhost_like" { print $2 }' "$R/floor-$i.out" >>"$R/floor-like.txt"
done
echo "  floor plain ns/call: $(tr '\n' ' ' <"$R/floor-plain.txt"); leakhost-like: $(tr '\n' ' ' <"$R/floor-like.txt")" >&2

if [ -n "$NATIVE" ]; then
    say "c. native libtest baseline (the built test binary, not the compile)"
    bench native_t1 1 10 "$NATIVE --test-threads=1"
    bench native_default 1 10 "$NATIVE"
fi

say "d. cold vs warm start on bigwasm ($BIGWASM_BYTES bytes of wasm)"
bench lh_bigwasm_nocache 1 10 "$L --no-cache run $BIGWASM -t '^test_0000 '"
bench lh_bigwasm_emptycache 0 10 --prepare "rm -rf $B/cache-empty" \
    "env LEAKHOST_CACHE_DIR=$B/cache-empty $L run $BIGWASM -t '^test_0000 '"
bench lh_bigwasm_warm 3 "$RUNS" "$L run $BIGWASM -t '^test_0000 '"
bench lh_bigwasm_inspect 3 "$RUNS" "$L inspect $BIGWASM"
bench lh_bigwasm_inspect_nocache 1 10 "$L --no-cache inspect $BIGWASM"

say "e. peak memory (/usr/bin/time -v)"
rss() { # rss NAME CMD...: 5 runs, Maximum resident set size in KiB, one a line
    local name=$1; shift
    for _ in 1 2 3 4 5; do
        /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ { print $2 }' >>"$R/$name.txt"
    done
}
if [ -x /usr/bin/time ]; then
    rss rss-big-r "$L" run "$BIG" -N4 -r
    rss rss-big "$L" run "$BIG" -N4
    rss rss-sample-r "$L" run "$SAMPLE" -N4 -r
    rss rss-bigwasm-warm "$L" run "$BIGWASM" -t '^test_0000 '
    rss rss-bigwasm-nocache "$L" --no-cache run "$BIGWASM" -t '^test_0000 '
else
    echo "  /usr/bin/time is not available: peak memory not measured" >&2
fi

echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$R/meta.txt"
say "results (raw data in $R)"
python3 "$ROOT/benches/report.py" "$R" | tee "$R/results.md"

# libtest binaries and instrumentation (issue 25): their own script and table.
LEAKHOST=$L BENCH_DIR=$B bash "$ROOT/benches/libtest.sh"

# Issue 26: the headline ratios from alternating runs (zope, line tables vs stripped, the wasmtime CLI,
# -j, peak memory; LEAKHOST_BASE, if set, is timed beside this binary) and the start-up breakdown.
LEAKHOST=$L BENCH_DIR=$B bash "$ROOT/benches/headline.sh"
LEAKHOST=$L BENCH_DIR=$B bash "$ROOT/benches/startup.sh"
