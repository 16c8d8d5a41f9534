#!/usr/bin/env bash
# What this machine charges for the things leakhost's start-up avoids (issue 26): one `cpuid`
# instruction, a process that loads libgcc_s, and a process that starts one thread; and what
# `-j` meets: how long a new thread waits before it first runs against waking one that waits,
# and a clock reading (`clock_gettime` against `rdtsc`). Run by hand:
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
cat >"$V/threadstart.c" <<'C'
/* The spawner is busy, as leakhost's main thread is when it starts -j workers. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
static int go; static double started;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static void spin(double ms) { double t = now(); while (now() - t < ms) {} }
static void *fresh(void *a) { (void)a; started = now(); return 0; }
static void *waiter(void *a) {
    (void)a; pthread_mutex_lock(&m); while (!go) pthread_cond_wait(&c, &m); pthread_mutex_unlock(&m);
    started = now(); return 0;
}
int main(void) {
    for (int mode = 0; mode < 2; mode++) {
        double total = 0, worst = 0;
        for (int r = 0; r < 20; r++) {
            pthread_t t; go = 0;
            if (mode == 1) pthread_create(&t, 0, waiter, 0);
            spin(5);
            double s = now();
            if (mode == 0) pthread_create(&t, 0, fresh, 0);
            else { pthread_mutex_lock(&m); go = 1; pthread_cond_signal(&c); pthread_mutex_unlock(&m); }
            spin(6);
            pthread_join(t, 0);
            double d = started - s; total += d; if (d > worst) worst = d;
            usleep(20000);
        }
        printf("%s: first run after %.3f ms mean, %.3f ms worst (20 tries)\n",
               mode ? "waking a waiting thread" : "spawning a thread", total / 20, worst);
    }
    return 0;
}
C
cat >"$V/clock.c" <<'C'
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>
int main(void) {
    struct timespec t, a, b; unsigned long long s = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 1000000; i++) clock_gettime(CLOCK_MONOTONIC, &t);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("clock_gettime: %.1f ns each\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e6);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 1000000; i++) s += __rdtsc();
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("rdtsc: %.1f ns each (%llu)\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e6, s & 1);
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
cc -O2 -pthread -o "$V/threadstart" "$V/threadstart.c"
cc -O2 -o "$V/clock" "$V/clock.c"
cc -O2 -o "$V/empty-gcc_s" "$V/empty.c" -Wl,--no-as-needed -lgcc_s
rustc -O -o "$V/spawn" "$V/spawn.rs"

for _ in 1 2 3; do "$V/cpuid"; done
"$V/threadstart"
"$V/clock"
python3 "$ROOT/benches/alternate.py" --rounds 6 --warmup 2 --json "$V/gcc_s.json" \
    --cmd plain 40 "$V/empty" --cmd gcc_s 40 "$V/empty-gcc_s" --ratio gcc_s/plain
python3 "$ROOT/benches/alternate.py" --rounds 6 --warmup 2 --json "$V/thread.json" \
    --cmd none 30 "$V/spawn none" --cmd thread 30 "$V/spawn thread" --ratio thread/none
