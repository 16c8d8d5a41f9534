/* The C port of sample-tests/leak (zope.testrunner's leak demo; see its lib.rs): the same tests, and per
 * run the same leaks, so that `-N4 -r -v` reports the same changes, types, counters and verdicts.
 *
 * Per run, `test_leak (leak.TestSomething)` leaves behind one `leak::ClassicLeakable` and one
 * `leak::Leakable` (8 bytes each), one heap block of 32 bytes for the entry, and +1 on "open handles".
 * In `leak.Mixed` only `test_13 (leak.Mixed)` leaks: one 40-byte cache entry and +1 on "cache entries".
 */
#include <leakhost.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The two tracked "classes" of the original, 8 bytes each as in the Rust port. */
typedef struct { uint64_t serial; } ClassicLeakable;
typedef struct { uint64_t serial; } Leakable;

/* One leaked entry: (ClassicLeakable(), Leakable(), time.time()); 32 bytes, like the Rust port's box. */
typedef struct {
    ClassicLeakable classic;
    Leakable new_style;
    int64_t seconds;
    uint32_t nanos;
} entry;
_Static_assert(sizeof(entry) == 32, "one 32-byte block per run, as in the Rust port");

/* A growable array of pointers that grows as Rust's Vec does (4, 8, 16, ... slots), so that the heap
 * changes of the first run match the Rust port's too. */
typedef struct { void **items; size_t len, cap; } ptr_vec;

static int push(ptr_vec *v, void *item) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        void **items = realloc(v->items, cap * sizeof *items);
        if (items == NULL)
            return 0;
        v->items = items;
        v->cap = cap;
    }
    v->items[v->len++] = item;
    return 1;
}

static ptr_vec leaked;

static lh_result test_leak(void) {
    uint64_t serial = leaked.len + 1;
    entry *e = malloc(sizeof *e);
    LH_CHECK(e != NULL);
    struct timespec now;
    LH_CHECK_MSG(clock_gettime(CLOCK_REALTIME, &now) == 0 && now.tv_sec >= 0, "the clock is before 1970");
    *e = (entry){{serial}, {serial}, now.tv_sec, (uint32_t)now.tv_nsec};
    lh_track("leak::ClassicLeakable", 1, sizeof(ClassicLeakable));
    lh_track("leak::Leakable", 1, sizeof(Leakable));
    LH_CHECK(push(&leaked, e));
    lh_counter_add("open handles", 1);
    const entry *last = leaked.items[leaked.len - 1];
    LH_CHECK_EQ_INT(last->classic.serial, leaked.len);
    LH_CHECK_EQ_INT(last->new_style.serial, leaked.len);
    return LH_PASS;
}

/* Keeps the optimiser from eliding the allocation, which would make the test vacuous. */
static uint64_t *volatile keep;

static lh_result test_no_leak(void) {
    uint64_t *squares = malloc(1000 * sizeof *squares);
    keep = squares;
    LH_CHECK(squares != NULL);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < 1000; i++)
        sum += squares[i] = i * i;
    free(squares);
    LH_CHECK_EQ_INT(sum, 332833500);
    return LH_PASS;
}

static ptr_vec cache; /* of 40-byte entries */

/* The one leaking test of leak.Mixed: a cache that only ever grows. */
#define LEAKING_MIXED_TEST 13

static lh_result mixed_test(void *arg) {
    size_t n = (size_t)(uintptr_t)arg;
    /* Every test allocates and frees, so the leaking one does not stand out by allocating at all. */
    size_t *scratch = malloc(n * 10 * sizeof *scratch);
    keep = (uint64_t *)scratch;
    LH_CHECK(scratch != NULL);
    for (size_t i = 0; i < n * 10; i++)
        scratch[i] = i;
    size_t last = scratch[n * 10 - 1];
    free(scratch);
    LH_CHECK_EQ_INT(last + 1, n * 10);
    if (n == LEAKING_MIXED_TEST) {
        unsigned char *c = malloc(40);
        LH_CHECK(c != NULL);
        memset(c, (int)n, 40);
        LH_CHECK(push(&cache, c));
        lh_counter_add("cache entries", 1);
    }
    return LH_PASS;
}

void lh_declare(void) {
    lh_test("test_leak (leak.TestSomething)", test_leak);
    lh_test("test_no_leak (leak.TestSomething)", test_no_leak);
    lh_layer_id mixed = lh_layer("leak.Mixed", NULL);
    for (uintptr_t n = 1; n <= 20; n++) {
        char name[32];
        snprintf(name, sizeof name, "test_%02u (leak.Mixed)", (unsigned)n);
        lh_test_arg(mixed, name, mixed_test, (void *)n);
    }
}
