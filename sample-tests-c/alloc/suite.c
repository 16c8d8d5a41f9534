/* The C SDK's counting and reporting, checked from inside the guest. Every test passes unless noted:
 *
 * | test | outcome | what it shows |
 * |---|---|---|
 * | test_malloc_free, test_calloc, test_realloc, test_aligned_alloc, test_posix_memalign, test_usable_size | pass | each allocation function counts blocks, requested bytes and allocations |
 * | test_libc_allocations_are_counted | pass | strdup, asprintf and open_memstream allocate inside libc, and are counted |
 * | test_output_is_flushed | pass | prints "flushed without a newline" with no newline; --show-output shows it |
 * | test_abort | Error: "abort() called" | abort() |
 * | test_assert | Failure: "assertion failed: 1 + 1 == 3" | assert() |
 * | test_message_made_utf8 | Failure: "bytes ? ??? \u00e9" | a message with a stray byte and an overlong form |
 * | test_after_traps | pass | the run went on in a fresh instance |
 */
#include <leakhost.h>

#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The change in the counts since `before`. */
#define DELTA(field) ((long long)(lh_alloc_counts_now().field - before.field))

/* The optimiser may drop an allocation it can prove unused; storing the pointer here keeps it real. */
static void *volatile keep;

static lh_result test_malloc_free(void) {
    lh_alloc_counts before = lh_alloc_counts_now();
    char *p = malloc(100);
    keep = p;
    LH_CHECK(p != NULL);
    LH_CHECK_EQ_INT(DELTA(live_blocks), 1);
    LH_CHECK_EQ_INT(DELTA(live_bytes), 100);
    LH_CHECK_EQ_INT(DELTA(total_allocs), 1);
    free(p);
    free(NULL);
    LH_CHECK_EQ_INT(DELTA(live_blocks), 0);
    LH_CHECK_EQ_INT(DELTA(live_bytes), 0);
    return LH_PASS;
}

static lh_result test_calloc(void) {
    lh_alloc_counts before = lh_alloc_counts_now();
    unsigned long long *p = calloc(10, sizeof *p);
    keep = p;
    LH_CHECK(p != NULL);
    for (int i = 0; i < 10; i++)
        LH_CHECK_EQ_INT(p[i], 0);
    LH_CHECK_EQ_INT(DELTA(live_bytes), 80);
    /* An overflowing size fails (stored first: clang folds a comparison of an unused block to false). */
    keep = calloc((size_t)-1 / 2, 4);
    LH_CHECK(keep == NULL);
    free(p);
    LH_CHECK_EQ_INT(DELTA(live_blocks), 0);
    return LH_PASS;
}

static lh_result test_realloc(void) {
    lh_alloc_counts before = lh_alloc_counts_now();
    char *p = realloc(NULL, 10);
    LH_CHECK(p != NULL);
    memcpy(p, "leakhost!", 10);
    p = realloc(p, 5000);
    keep = p;
    LH_CHECK(p != NULL);
    LH_CHECK_STR_EQ(p, "leakhost!");
    LH_CHECK_EQ_INT(DELTA(live_blocks), 1);
    LH_CHECK_EQ_INT(DELTA(live_bytes), 5000);
    LH_CHECK_EQ_INT(DELTA(total_allocs), 2);
    free(p);
    LH_CHECK_EQ_INT(DELTA(live_bytes), 0);
    return LH_PASS;
}

static lh_result test_aligned_alloc(void) {
    lh_alloc_counts before = lh_alloc_counts_now();
    char *p = aligned_alloc(64, 128);
    keep = p;
    LH_CHECK(p != NULL);
    LH_CHECK_EQ_INT((uintptr_t)p % 64, 0);
    LH_CHECK_EQ_INT(DELTA(live_bytes), 128);
    /* realloc of an over-aligned block moves it and keeps its bytes. */
    memset(p, 7, 128);
    p = realloc(p, 256);
    keep = p;
    LH_CHECK(p != NULL);
    LH_CHECK_EQ_INT(p[127], 7);
    LH_CHECK_EQ_INT(DELTA(live_bytes), 256);
    free(p);
    LH_CHECK_EQ_INT(DELTA(live_blocks), 0);
    return LH_PASS;
}

static lh_result test_posix_memalign(void) {
    lh_alloc_counts before = lh_alloc_counts_now();
    void *p = NULL;
    LH_CHECK_EQ_INT(posix_memalign(&p, 256, 40), 0);
    keep = p;
    LH_CHECK_EQ_INT((uintptr_t)p % 256, 0);
    LH_CHECK_EQ_INT(DELTA(live_bytes), 40);
    LH_CHECK_EQ_INT(posix_memalign(&p, 3, 40), EINVAL);
    free(keep);
    LH_CHECK_EQ_INT(DELTA(live_blocks), 0);
    return LH_PASS;
}

static lh_result test_usable_size(void) {
    char *p = malloc(30);
    keep = p;
    LH_CHECK(p != NULL);
    size_t usable = malloc_usable_size(p);
    LH_CHECK_GE_INT(usable, 30);
    memset(p, 1, usable); /* all of it is ours, header excluded */
    free(p);
    LH_CHECK_EQ_INT(malloc_usable_size(NULL), 0);
    return LH_PASS;
}

static lh_result test_libc_allocations_are_counted(void) {
    lh_alloc_counts before = lh_alloc_counts_now();
    char *copy = strdup("hello");
    keep = copy;
    LH_CHECK_EQ_INT(DELTA(live_blocks), 1);
    LH_CHECK_EQ_INT(DELTA(live_bytes), 6);
    char *text = NULL;
    LH_CHECK_EQ_INT(asprintf(&text, "%d-%s", 42, copy), 8);
    LH_CHECK_STR_EQ(text, "42-hello");
    LH_CHECK_EQ_INT(DELTA(live_blocks), 2);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    LH_CHECK(f != NULL);
    fprintf(f, "%s", text);
    fclose(f);
    LH_CHECK_STR_EQ(buf, "42-hello");
    free(buf);
    free(text);
    free(copy);
    LH_CHECK_EQ_INT(DELTA(live_blocks), 0);
    LH_CHECK_EQ_INT(DELTA(live_bytes), 0);
    return LH_PASS;
}

static lh_result test_output_is_flushed(void) {
    printf("flushed without a newline");
    return LH_PASS;
}

static lh_result test_abort(void) { abort(); }

static lh_result test_assert(void) {
    assert(1 + 1 == 3);
    return LH_PASS;
}

static lh_result test_message_made_utf8(void) {
    return lh_report(LH_FAILURE, "bytes \xff \xe0\x80\x80 \xc3\xa9");
}

static lh_result test_after_traps(void) { return LH_PASS; }

void lh_declare(void) {
    lh_test("test_malloc_free", test_malloc_free);
    lh_test("test_calloc", test_calloc);
    lh_test("test_realloc", test_realloc);
    lh_test("test_aligned_alloc", test_aligned_alloc);
    lh_test("test_posix_memalign", test_posix_memalign);
    lh_test("test_usable_size", test_usable_size);
    lh_test("test_libc_allocations_are_counted", test_libc_allocations_are_counted);
    lh_test("test_output_is_flushed", test_output_is_flushed);
    lh_test("test_abort", test_abort);
    lh_test("test_assert", test_assert);
    lh_test("test_message_made_utf8", test_message_made_utf8);
    lh_test("test_after_traps", test_after_traps);
}
