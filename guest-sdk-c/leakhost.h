/* leakhost.h: the C guest SDK of leakhost (ABI v1, see docs/abi.md).
 *
 * A suite is one or more C (or C++) files linked with leakhost.c into a WASI reactor:
 *
 *   clang --target=wasm32-wasi -mexec-model=reactor -O2 -I guest-sdk-c \
 *         suite.c guest-sdk-c/leakhost.c -o suite.wasm \
 *         -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free \
 *         -Wl,--wrap=aligned_alloc,--wrap=posix_memalign,--wrap=malloc_usable_size \
 *         -Wl,--wrap=abort,--wrap=__assert_fail \
 *         -Wl,-u,malloc,-u,calloc,-u,realloc,-u,free,-u,aligned_alloc,-u,malloc_usable_size
 *
 * or, simpler, a leakhost-c.toml beside the sources and `leakhost run DIR` (guest-sdk-c/README.md says why
 * each flag is there). clang 14 does not know wasm32-wasip1 and silently falls back to the host's headers,
 * hence wasm32-wasi, which every clang accepts. The suite defines one function, lh_declare(), which declares layers and tests;
 * the SDK calls it once per instance and generates every leakhost_* export from what it declared.
 *
 *   #include "leakhost.h"
 *   static lh_result adds(void) { LH_CHECK_EQ_INT(1 + 1, 2); return LH_PASS; }
 *   void lh_declare(void) { lh_test("adds", adds); }
 *
 * Counting: every malloc, calloc, realloc, free, aligned_alloc and posix_memalign of the program, and
 * those libc makes on its behalf (strdup, fopen, ...), are counted through the linker's --wrap. The
 * counts describe the optimised program: clang -O2 removes a malloc/free pair whose block is never used.
 */
#ifndef LEAKHOST_H
#define LEAKHOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Outcome of a test or hook (ABI outcome codes). */
typedef int lh_result;
#define LH_PASS 0
#define LH_FAILURE 1
#define LH_ERROR 2
#define LH_SKIP 3

/* A layer as returned by lh_layer; LH_UNIT_LAYER is the default unit-test layer. */
typedef uint32_t lh_layer_id;
#define LH_UNIT_LAYER 0xFFFFFFFFu

/* A test body or a layer hook. */
typedef lh_result (*lh_fn)(void);
/* A test body that receives the argument it was declared with. */
typedef lh_result (*lh_fn_arg)(void *arg);

/* What a layer has besides its name; zero-initialise and set what is needed. */
typedef struct lh_layer_spec {
    const lh_layer_id *bases; /* direct bases, in declared order; declared before this layer */
    size_t bases_len;
    lh_fn set_up;             /* once, before the first test that needs the layer */
    lh_fn tear_down;          /* once, when the layer is no longer needed */
    lh_fn test_set_up;        /* before every test of this layer and of layers built on it */
    lh_fn test_tear_down;     /* after every test of this layer and of layers built on it */
    int no_tear_down;         /* non-zero: the host continues in a fresh instance instead */
} lh_layer_spec;

/* Defined by the suite: declares its layers and tests. Called once per instance. */
void lh_declare(void);

/* Declares a layer (the name is copied; spec may be NULL). */
lh_layer_id lh_layer(const char *name, const lh_layer_spec *spec);
/* Declares a test in the default unit-test layer (the name is copied). */
void lh_test(const char *name, lh_fn body);
/* Declares a test in `layer`. */
void lh_test_in(lh_layer_id layer, const char *name, lh_fn body);
/* Declares a test in `layer` whose body is called with `arg`. */
void lh_test_arg(lh_layer_id layer, const char *name, lh_fn_arg body, void *arg);

/* Records the message of a non-passing outcome (printf-style) and returns `kind`. */
lh_result lh_report(lh_result kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Records a Failure or Error message, then traps; the host reports it with the message. */
__attribute__((noreturn)) void lh_trap(lh_result kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Per-type instance counter: `delta` instances (+1 or -1) of `size` bytes each of type `type_name`.
 * The name must stay valid for the instance's life (a string literal). */
void lh_track(const char *type_name, int64_t delta, int64_t size);
#define LH_TRACK(type, delta) lh_track(#type, (delta), (int64_t)sizeof(type))

/* User counter: adds `delta` to the counter named `name` (a string literal); it is reported once changed. */
void lh_counter_add(const char *name, int64_t delta);
/* The counter's current value (0 if never changed). */
int64_t lh_counter_get(const char *name);

/* The allocation counts the host compares (live blocks and bytes, allocations ever made). */
typedef struct lh_alloc_counts {
    uint64_t live_blocks, live_bytes, total_allocs;
} lh_alloc_counts;
lh_alloc_counts lh_alloc_counts_now(void);

/* Helpers of the macros below; not for direct use. */
lh_result lh__fail_int(const char *file, int line, const char *l, const char *op, const char *r, long long a,
                       long long b);
lh_result lh__fail_str(const char *file, int line, const char *l, const char *op, const char *r, const char *a,
                       const char *b);
__attribute__((noreturn)) void lh__trap_int(const char *file, int line, long long a, long long b);
__attribute__((noreturn)) void lh__trap_str(const char *file, int line, const char *a, const char *b);
int lh__str_eq(const char *a, const char *b);

/* ---- Checks: fail the test without trapping (they `return` from the body) ---- */

/* Fails unless `cond` holds: "check failed: COND at FILE:LINE". */
#define LH_CHECK(cond)                                                                                    \
    do {                                                                                                  \
        if (!(cond))                                                                                      \
            return lh_report(LH_FAILURE, "check failed: %s at %s:%d", #cond, __FILE__, __LINE__);      \
    } while (0)
/* Fails unless `cond` holds, with a printf-style message: "MESSAGE at FILE:LINE". */
#define LH_CHECK_MSG(cond, fmt, ...)                                                                      \
    do {                                                                                                  \
        if (!(cond))                                                                                      \
            return lh_report(LH_FAILURE, fmt " at %s:%d", ##__VA_ARGS__, __FILE__, __LINE__);          \
    } while (0)
#define LH__CHECK_INT(a, op, b)                                                                           \
    do {                                                                                                  \
        long long lh__a = (long long)(a), lh__b = (long long)(b);                                        \
        if (!(lh__a op lh__b))                                                                            \
            return lh__fail_int(__FILE__, __LINE__, #a, #op, #b, lh__a, lh__b);                          \
    } while (0)
/* Integer comparisons, naming both expressions and both values. */
#define LH_CHECK_EQ_INT(a, b) LH__CHECK_INT(a, ==, b)
#define LH_CHECK_NE_INT(a, b) LH__CHECK_INT(a, !=, b)
#define LH_CHECK_LT_INT(a, b) LH__CHECK_INT(a, <, b)
#define LH_CHECK_LE_INT(a, b) LH__CHECK_INT(a, <=, b)
#define LH_CHECK_GT_INT(a, b) LH__CHECK_INT(a, >, b)
#define LH_CHECK_GE_INT(a, b) LH__CHECK_INT(a, >=, b)
/* NUL-terminated string equality (NULL equals only NULL). */
#define LH_CHECK_STR_EQ(a, b)                                                                             \
    do {                                                                                                  \
        const char *lh__a = (a), *lh__b = (b);                                                            \
        if (!lh__str_eq(lh__a, lh__b))                                                                    \
            return lh__fail_str(__FILE__, __LINE__, #a, "==", #b, lh__a, lh__b);                         \
    } while (0)
#define LH_CHECK_STR_NE(a, b)                                                                             \
    do {                                                                                                  \
        const char *lh__a = (a), *lh__b = (b);                                                            \
        if (lh__str_eq(lh__a, lh__b))                                                                     \
            return lh__fail_str(__FILE__, __LINE__, #a, "!=", #b, lh__a, lh__b);                         \
    } while (0)

/* ---- Assertions: record a Failure and trap (usable in helpers that return anything) ---- */

#define LH_ASSERT(cond)                                                                                   \
    do {                                                                                                  \
        if (!(cond))                                                                                      \
            lh_trap(LH_FAILURE, "panicked at %s:%d:\nassertion failed: %s", __FILE__, __LINE__, #cond);  \
    } while (0)
#define LH_ASSERT_EQ_INT(a, b)                                                                            \
    do {                                                                                                  \
        long long lh__a = (long long)(a), lh__b = (long long)(b);                                        \
        if (lh__a != lh__b)                                                                               \
            lh__trap_int(__FILE__, __LINE__, lh__a, lh__b);                                               \
    } while (0)
#define LH_ASSERT_STR_EQ(a, b)                                                                            \
    do {                                                                                                  \
        const char *lh__a = (a), *lh__b = (b);                                                            \
        if (!lh__str_eq(lh__a, lh__b))                                                                    \
            lh__trap_str(__FILE__, __LINE__, lh__a, lh__b);                                               \
    } while (0)
/* An Error with a message, then a trap: "panicked at FILE:LINE:\nMESSAGE". */
#define LH_PANIC(fmt, ...) lh_trap(LH_ERROR, "panicked at %s:%d:\n" fmt, __FILE__, __LINE__, ##__VA_ARGS__)

/* ---- Other outcomes (they `return` from the body) ---- */

/* Ends the test as skipped, with a printf-style reason. */
#define LH_SKIP_TEST(fmt, ...) return lh_report(LH_SKIP, fmt, ##__VA_ARGS__)
/* Ends the test or hook with an Error and a printf-style message. */
#define LH_ERROR_OUT(fmt, ...) return lh_report(LH_ERROR, fmt, ##__VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif /* LEAKHOST_H */
