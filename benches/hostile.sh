#!/usr/bin/env bash
# Issue 22's probes, run by hand (never in CI): the review's hostile modules at the sizes it measured,
# each run by this checkout's release build and, when given, by OLD_BINARY:
#
#     bash benches/hostile.sh [OLD_BINARY]
#
# Prints one table row per probe and binary: exit status (124 = killed at PROBE_TIMEOUT, 134 =
# SIGABRT, 137 = killed at 3 GB), peak resident set (/usr/bin/time %M), stdout bytes (or the report
# file's, where the probe writes one), wall seconds. A run whose resident set passes 3 GB is killed (exit 137), so a probe
# that would take the machine down fails instead. The modules are written by the ignored test
# `hardening::write_the_review_probes` (tests/e2e/hardening.rs); C probes need clang (tests/setup.sh).
#
# Environment: BENCH_DIR (default /tmp/leakhost-hostile), PROBE_TIMEOUT (seconds, default 120).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OLD=${1:-}
B=${BENCH_DIR:-/tmp/leakhost-hostile}
P=$B/probes
mkdir -p "$P"
export LEAKHOST_CACHE_DIR=$B/cache NO_COLOR=1

(cd "$ROOT" && cargo build --release -q -p leakhost) || exit 1
NEW=$ROOT/target/release/leakhost
(cd "$ROOT" && LEAKHOST_PROBES=$P cargo test --release -q -p leakhost --test e2e -- --ignored \
    hardening::write_the_review_probes >/dev/null) || exit 1

# Item 7: allowance files beside a suite and given with --allow.
mkdir -p "$P/planted" "$P/fifo" "$P/many"
cp "$P/p7-suite.wasm" "$P/planted/suite.wasm"
cp "$P/p7-suite.wasm" "$P/fifo/suite.wasm"
cp "$P/p7-suite.wasm" "$P/many/suite.wasm"
ln -sf /proc/self/pagemap "$P/planted/leakhost.toml"
[ -p "$P/fifo/allow.toml" ] || mkfifo "$P/fifo/allow.toml"
python3 - "$P" <<'EOF'
import sys
p = sys.argv[1]
entry = lambda layer: f'[[allow]]\nlayer = "{layer}"\nreason = "known"\n'
open(f"{p}/many/plain.toml", "w").write("".join(entry(f"L{i}") for i in range(20000)))
open(f"{p}/many/unicode.toml", "w").write("".join(entry(f"\\\\w{{5}}{i}") for i in range(20000)))
open(f"{p}/many/huge-pattern.toml", "w").write(entry("a" * (10 << 20)))
EOF
# Item 8: a C suite whose link flags make clang run the suite's own wasm-ld.
C=$P/native-flag
mkdir -p "$C"
cp "$ROOT/host/templates/c/suite.c" "$C/suite.c"
printf 'sources = ["suite.c"]\nlink_flags = ["-B%s"]\n' "$C" >"$C/leakhost-c.toml"
for name in wasm-ld wasm-ld-14; do
    printf '#!/bin/sh\ntouch %s/ran-natively\nexit 1\n' "$C" >"$C/$name"
    chmod +x "$C/$name"
done

# guard PID: kills the leakhost under PID (time, then timeout, then leakhost) once its resident set
# passes 3 GB. An address-space limit (ulimit -v) cannot do it: wasmtime reserves 4 GiB of address
# space per instance.
guard() {
    local pid=$1
    (
        while kill -0 "$pid" 2>/dev/null; do
            for child in $(pgrep -P "$pid") $(pgrep -P "$(pgrep -P "$pid" | head -1)" 2>/dev/null); do
                local rss
                rss=$(awk '/^VmRSS/ {print $2}' "/proc/$child/status" 2>/dev/null || echo 0)
                [ "${rss:-0}" -gt 3000000 ] && kill -9 "$child"
            done
            sleep 0.2
        done
    ) &
}

# probe LABEL OUTPUT_FILE ARGS...: one row for each binary.
probe() {
    local label=$1 file=$2
    shift 2
    for bin in $OLD $NEW; do
        local which=now shown=$label
        [ "$bin" = "$OLD" ] && which=old
        rm -f "$C/ran-natively"
        /usr/bin/time -f "%M %e" -o "$B/time" timeout "${PROBE_TIMEOUT:-120}" "$bin" "$@" >"$B/stdout" 2>"$B/stderr" &
        local run=$!
        guard $run
        wait $run
        echo $? >"$B/status"
        local status rss secs size
        status=$(cat "$B/status")
        read -r rss secs < <(tail -1 "$B/time")
        size=$(stat -c %s "${file:-$B/stdout}" 2>/dev/null || echo 0)
        for report in "$B"/s.json "$B"/s.xml "$B"/s.html; do
            [ -e "$report" ] && size=$((size + $(stat -c %s "$report"))) && rm -f "$report"
        done
        [ -e "$C/ran-natively" ] && shown="$label (ran the suite's wasm-ld)"
        printf '| %s | %s | %s | %s MB | %s | %s s |\n' "$shown" "$which" "$status" "$((rss / 1024))" "$size" "$secs"
        [ -n "$file" ] && rm -f "$file"
    done
}

printf '| probe | binary | exit | peak RSS | output bytes | time |\n|---|---|---|---|---|---|\n'
probe "2: 4 MiB names, 50 traps, -q --max-output 1K" "" run "$P/p2-long-names.wasm" -q --max-output 1K
probe "2: the same, --json" "$B/p2.json" run "$P/p2-long-names.wasm" -q --max-output 1K --json "$B/p2.json"
probe "7: leakhost.toml -> /proc/self/pagemap" "" run "$P/planted/suite.wasm" -N2 -r
probe "7: --allow /dev/zero" "" run "$P/planted/suite.wasm" -N2 -r --allow /dev/zero
probe "7: --allow FIFO" "" run "$P/fifo/suite.wasm" -N2 -r --allow "$P/fifo/allow.toml"
probe "7: a 10 MB pattern" "" run "$P/many/suite.wasm" -N2 -r --allow "$P/many/huge-pattern.toml"
probe "7: 20,000 entries (0.79 MB)" "" run "$P/many/suite.wasm" -N2 -r --allow "$P/many/plain.toml"
probe "7: 20,000 \\w{5} entries (0.89 MB)" "" run "$P/many/suite.wasm" -N2 -r --allow "$P/many/unicode.toml"
probe "8: C suite with -B DIR" "" run "$C"
probe "9: 20,000 functions x 50,000 locals" "" inspect --no-cache "$P/p9-locals-bomb.wasm"
probe "10: trace flood, --fuel 10000000 --timeout 0" "" run "$P/p10-trace-flood.wasm" -N4 -r --fuel 10000000 --timeout 0
probe "11: 1M-element table, reset, --max-memory 8300K" "" run "$P/p11-table-reset.wasm" --max-memory 8300K
probe "12: 10,000 tests x 64 KiB, --json" "$B/p12.json" run "$P/p12-output.wasm" --json "$B/p12.json"
probe "13: 100 tests trapping only in the replay" "" run "$P/p13-replay-traps.wasm" -N4 -r
# The allocation-stack probes, with every report written (as tests/e2e/hostile_stacks.rs runs them):
# their output bytes are stdout's and the three reports' together.
reports=(--json "$B/s.json" --junit "$B/s.xml" --html "$B/s.html")
probe "1: 30,000 nested inlined DWARF entries, -N4 -r" "" run "$P/p1-deep-dwarf.wasm" -N4 -r "${reports[@]}"
probe "3: 10 M traced blocks per call, -N4 -r" "" run "$P/p3-trace-flood.wasm" -N4 -r "${reports[@]}"
probe "4: 800 inlined entries naming 100 KB, -N4 -r" "" run "$P/p4-wide-dwarf.wasm" -N4 -r "${reports[@]}"
probe "5: 2 MB names, 25 deep, 20 calls, -N4 -r" "" run "$P/p5-long-names.wasm" -N4 -r "${reports[@]}"
probe "14: 4 GB per traced block, counters 16 bytes, -N4 -r" "" run "$P/p14-liar.wasm" -N4 -r "${reports[@]}"

# Item 9: what the compile limits allow. The worst modules within the defaults (50,000 functions,
# 1,000,000 locals, 16 MiB of code), compiled once each without the cache: wall and CPU seconds
# (user + sys; compilation runs on every core), peak resident set.
printf '\n| module within the defaults | wall | CPU | peak RSS |\n|---|---|---|---|\n'
for m in p9-worst-50000x20 p9-worst-1000x1000 p9-worst-100x10000; do
    /usr/bin/time -f "%e %U %S %M" -o "$B/time" "$NEW" inspect --no-cache "$P/$m.wasm" >/dev/null 2>&1
    read -r wall user sys rss < <(tail -1 "$B/time")
    printf '| %s | %s s | %s s | %s MB |\n' "$m" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))"
done
printf '\nload average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
