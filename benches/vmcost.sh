#!/usr/bin/env bash
# What this machine charges for the things leakhost's start-up avoids (issue 26): one `cpuid`
# instruction, a process that loads libgcc_s, and a process that starts one thread. Run by hand:
#
#     bash benches/vmcost.sh
#
# Needs cc and rustc. Environment: BENCH_DIR (default /tmp/leakhost-bench); writes only under it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
V=${BENCH_DIR:-/tmp/leakhost-bench}/vmcost
mkdir -p "$V"

cat >"$V/cpuid.c" <<'C'
#include <cpuid.h>
#include <stdio.h>
#include <time.h>
int main(void) {
    unsigned a, b, c, d;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 1000; i++) __cpuid_count(7, 0, a, b, c, d);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("cpuid (leaf 7): %.2f us each\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e6);
    return 0;
}
C
printf 'int main(void) { return 0; }\n' >"$V/empty.c"
cat >"$V/spawn.rs" <<'RS'
fn main() {
    if std::env::args().nth(1).as_deref() == Some("thread") {
        std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(|| loop { std::thread::park_timeout(std::time::Duration::from_millis(10)) })
            .unwrap();
    }
    let mut x = 0u64;
    for i in 0..200_000u64 { x = x.wrapping_mul(31).wrapping_add(i); }
    std::hint::black_box(x);
}
RS
cc -O2 -o "$V/cpuid" "$V/cpuid.c"
cc -O2 -o "$V/empty" "$V/empty.c"
cc -O2 -o "$V/empty-gcc_s" "$V/empty.c" -Wl,--no-as-needed -lgcc_s
rustc -O -o "$V/spawn" "$V/spawn.rs"

for _ in 1 2 3; do "$V/cpuid"; done
python3 "$ROOT/benches/alternate.py" --rounds 6 --warmup 2 --json "$V/gcc_s.json" \
    --cmd plain 40 "$V/empty" --cmd gcc_s 40 "$V/empty-gcc_s" --ratio gcc_s/plain
python3 "$ROOT/benches/alternate.py" --rounds 6 --warmup 2 --json "$V/thread.json" \
    --cmd none 30 "$V/spawn none" --cmd thread 30 "$V/spawn thread" --ratio thread/none
