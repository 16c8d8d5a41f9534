/* leakhost.c: the C guest SDK's implementation (ABI v1, docs/abi.md). See leakhost.h for the build line.
 *
 * Every record the host reads lives in static storage, so its address is fixed for the instance's life
 * and the host may read it after a trap. The SDK's own bookkeeping (the declared layers and tests) is
 * allocated with the real allocator, so it never shows in the counts the host compares.
 */
#include "leakhost.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(name)))

/* ---- ABI v1 records (docs/abi.md §4) ---- */

enum { HOOK_SET_UP = 0, HOOK_TEAR_DOWN = 1, HOOK_TEST_SET_UP = 2, HOOK_TEST_TEAR_DOWN = 3 };
enum { HAS_SET_UP = 0x01, HAS_TEAR_DOWN = 0x02, HAS_TEST_SET_UP = 0x04, HAS_TEST_TEAR_DOWN = 0x08,
       NO_TEAR_DOWN = 0x10 };
#define STATUS_NONE 0xFFFFFFFFu
#define ADDR(p) ((uint32_t)(uintptr_t)(p))

typedef struct { uint32_t ptr, len; } str_rec;
typedef struct { uint32_t layers_ptr, layers_len, tests_ptr, tests_len; } manifest_rec;
typedef struct { str_rec name; uint32_t bases_ptr, bases_len, flags; } layer_rec;
typedef struct { str_rec name; uint32_t layer; } test_rec;
typedef struct { uint32_t kind; str_rec msg; } status_rec;
typedef struct {
    uint64_t live_blocks, live_bytes, total_allocs;
    uint32_t types_ptr, types_len, user_ptr, user_len;
} counters_rec;
typedef struct { str_rec name; int64_t instances, bytes; } type_counter_rec;
typedef struct { str_rec name; int64_t value; } user_counter_rec;

_Static_assert(sizeof(manifest_rec) == 16, "ABI v1: Manifest is 16 bytes");
_Static_assert(sizeof(layer_rec) == 20, "ABI v1: Layer is 20 bytes");
_Static_assert(sizeof(test_rec) == 12, "ABI v1: Test is 12 bytes");
_Static_assert(sizeof(status_rec) == 12, "ABI v1: Status is 12 bytes");
_Static_assert(sizeof(counters_rec) == 40, "ABI v1: Counters is 40 bytes");
_Static_assert(sizeof(type_counter_rec) == 24, "ABI v1: TypeCounter is 24 bytes");
_Static_assert(sizeof(user_counter_rec) == 16, "ABI v1: UserCounter is 16 bytes");

static str_rec str_of(const char *s) { return (str_rec){ADDR(s), (uint32_t)strlen(s)}; }

/* The real allocator, reached through wasm-ld's --wrap (see the allocation section). */
void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *ptr, size_t size);
void __real_free(void *ptr);
void *__real_aligned_alloc(size_t align, size_t size);
size_t __real_malloc_usable_size(void *ptr);

/* ---- Status and messages ---- */

/* Messages longer than this are cut; the buffer is static so that reporting never allocates. */
#define MESSAGE_CAPACITY 4096
static char message[MESSAGE_CAPACITY];
static uint32_t message_len;
static status_rec status = {STATUS_NONE, {0, 0}};

/* Replaces every byte that is not part of a well-formed UTF-8 sequence with '?', in place, so the host
 * never has to repair a message (a cut at the capacity can split a character). */
static void make_utf8(unsigned char *s, uint32_t len) {
    uint32_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        uint32_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        uint32_t k = 1;
        while (n > 1 && k < n && i + k < len && (s[i + k] & 0xC0) == 0x80)
            k++;
        /* The second byte's narrower ranges rule out overlong forms, surrogates and code points > U+10FFFF. */
        unsigned char c1 = n > 1 && k > 1 ? s[i + 1] : 0x80;
        int bad_second = (c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) ||
                         (c == 0xF4 && c1 > 0x8F);
        if (n == 0 || k < n || bad_second) {
            s[i++] = '?';
            continue;
        }
        i += n;
    }
}

static void set_message(const char *fmt, va_list args) {
    int n = vsnprintf(message, sizeof message, fmt, args);
    message_len = n < 0 ? 0 : (uint32_t)n < sizeof message ? (uint32_t)n : sizeof message - 1;
    make_utf8((unsigned char *)message, message_len);
}

/* Publishes the pending message with `kind`; the host reads it after a non-PASS return or a trap. */
static void publish(lh_result kind) {
    status.msg = (str_rec){ADDR(message), message_len};
    status.kind = (uint32_t)kind;
}

lh_result lh_report(lh_result kind, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    set_message(fmt, args);
    va_end(args);
    return kind;
}

static __attribute__((noreturn)) void trap_now(lh_result kind) {
    publish(kind);
    /* Output written before the trap would otherwise stay in stdio's buffer and be lost. */
    fflush(NULL);
    __builtin_trap();
}

void lh_trap(lh_result kind, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    set_message(fmt, args);
    va_end(args);
    trap_now(kind == LH_FAILURE ? LH_FAILURE : LH_ERROR);
}

/* ---- Check helpers ---- */

int lh__str_eq(const char *a, const char *b) {
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Writes `s` quoted and escaped into `out` (Rust's {:?} of a string, for ASCII), or NULL. */
static const char *quoted(const char *s, char *out, size_t cap) {
    if (s == NULL)
        return "NULL";
    size_t o = 0;
    out[o++] = '"';
    for (; *s && o + 6 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c < 0x20 || c >= 0x7F) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    if (*s)
        o += (size_t)snprintf(out + o, cap - o, "...");
    out[o++] = '"';
    out[o] = 0;
    return out;
}

lh_result lh__fail_int(const char *file, int line, const char *l, const char *op, const char *r, long long a,
                       long long b) {
    return lh_report(LH_FAILURE, "check failed: %s %s %s\n  left: %lld\n right: %lld\nat %s:%d", l, op, r, a, b,
                     file, line);
}

lh_result lh__fail_str(const char *file, int line, const char *l, const char *op, const char *r, const char *a,
                       const char *b) {
    static char qa[1024], qb[1024];
    return lh_report(LH_FAILURE, "check failed: %s %s %s\n  left: %s\n right: %s\nat %s:%d", l, op, r,
                     quoted(a, qa, sizeof qa), quoted(b, qb, sizeof qb), file, line);
}

void lh__trap_int(const char *file, int line, long long a, long long b) {
    lh_trap(LH_FAILURE, "panicked at %s:%d:\nassertion `left == right` failed\n  left: %lld\n right: %lld", file,
            line, a, b);
}

void lh__trap_str(const char *file, int line, const char *a, const char *b) {
    static char qa[1024], qb[1024];
    lh_trap(LH_FAILURE, "panicked at %s:%d:\nassertion `left == right` failed\n  left: %s\n right: %s", file, line,
            quoted(a, qa, sizeof qa), quoted(b, qb, sizeof qb));
}

/* abort() and a failed assert() become an Error / a Failure with a message instead of a bare trap. */
void __wrap_abort(void) {
    if (status.kind == STATUS_NONE)
        (void)lh_report(LH_ERROR, "abort() called");
    trap_now(status.kind == STATUS_NONE ? LH_ERROR : (lh_result)status.kind);
}

void __wrap___assert_fail(const char *expr, const char *file, int line, const char *func) {
    (void)func;
    lh_trap(LH_FAILURE, "panicked at %s:%d:\nassertion failed: %s", file, line, expr);
}

/* ---- Declared layers and tests ---- */

typedef struct {
    char *name;
    lh_layer_id *bases;
    size_t bases_len;
    lh_layer_spec spec;
} layer_def;

typedef struct {
    char *name;
    lh_layer_id layer;
    lh_fn body;
    lh_fn_arg body_arg;
    void *arg;
} test_def;

static layer_def *layer_defs;
static size_t layers_len, layers_cap;
static test_def *test_defs;
static size_t tests_len, tests_cap;
static layer_rec *layer_recs;
static test_rec *test_recs;
static manifest_rec manifest;
static int declared;

/* Declaration runs before any test, so running out of memory here is an error of the whole module. */
static void *grow(void *array, size_t *cap, size_t elem) {
    size_t new_cap = *cap ? *cap * 2 : 16;
    void *bigger = __real_realloc(array, new_cap * elem);
    if (bigger == NULL)
        lh_trap(LH_ERROR, "leakhost: out of memory while declaring the suite");
    *cap = new_cap;
    return bigger;
}

static char *copy_name(const char *name) {
    size_t len = strlen(name ? name : "");
    char *copy = __real_malloc(len + 1);
    if (copy == NULL)
        lh_trap(LH_ERROR, "leakhost: out of memory while declaring the suite");
    memcpy(copy, name ? name : "", len + 1);
    return copy;
}

lh_layer_id lh_layer(const char *name, const lh_layer_spec *spec) {
    if (layers_len == layers_cap)
        layer_defs = grow(layer_defs, &layers_cap, sizeof *layer_defs);
    layer_def *def = &layer_defs[layers_len];
    memset(def, 0, sizeof *def);
    def->name = copy_name(name);
    if (spec != NULL) {
        def->spec = *spec;
        if (spec->bases_len > 0) {
            def->bases = __real_malloc(spec->bases_len * sizeof *def->bases);
            if (def->bases == NULL)
                lh_trap(LH_ERROR, "leakhost: out of memory while declaring the suite");
            memcpy(def->bases, spec->bases, spec->bases_len * sizeof *def->bases);
            def->bases_len = spec->bases_len;
        }
    }
    return (lh_layer_id)layers_len++;
}

void lh_test_arg(lh_layer_id layer, const char *name, lh_fn_arg body, void *arg) {
    if (tests_len == tests_cap)
        test_defs = grow(test_defs, &tests_cap, sizeof *test_defs);
    test_defs[tests_len++] = (test_def){copy_name(name), layer, NULL, body, arg};
}

void lh_test_in(lh_layer_id layer, const char *name, lh_fn body) {
    lh_test_arg(layer, name, NULL, NULL);
    test_defs[tests_len - 1].body = body;
}

void lh_test(const char *name, lh_fn body) { lh_test_in(LH_UNIT_LAYER, name, body); }

static uint32_t flags_of(const lh_layer_spec *s) {
    return (s->set_up ? HAS_SET_UP : 0) | (s->tear_down ? HAS_TEAR_DOWN : 0) |
           (s->test_set_up ? HAS_TEST_SET_UP : 0) | (s->test_tear_down ? HAS_TEST_TEAR_DOWN : 0) |
           (s->no_tear_down ? NO_TEAR_DOWN : 0);
}

/* Builds the manifest once; every export calls it, so a command-export module works too. */
static void declare_once(void) {
    if (declared)
        return;
    declared = 1;
    lh_declare();
    layer_recs = __real_calloc(layers_len ? layers_len : 1, sizeof *layer_recs);
    test_recs = __real_calloc(tests_len ? tests_len : 1, sizeof *test_recs);
    if (layer_recs == NULL || test_recs == NULL)
        lh_trap(LH_ERROR, "leakhost: out of memory while declaring the suite");
    for (size_t i = 0; i < layers_len; i++) {
        const layer_def *d = &layer_defs[i];
        layer_recs[i] = (layer_rec){str_of(d->name), ADDR(d->bases), (uint32_t)d->bases_len, flags_of(&d->spec)};
    }
    for (size_t i = 0; i < tests_len; i++)
        test_recs[i] = (test_rec){str_of(test_defs[i].name), test_defs[i].layer};
    manifest = (manifest_rec){ADDR(layer_recs), (uint32_t)layers_len, ADDR(test_recs), (uint32_t)tests_len};
}

/* Runs in _initialize (wasm-ld calls constructors there in a reactor): the suite is declared before the
 * host asks for anything. */
__attribute__((constructor)) static void declare_at_start(void) { declare_once(); }

/* ---- Exports ---- */

/* Turns a body's return value into the call's outcome and publishes its message. */
static uint32_t finish(lh_result result) {
    fflush(NULL);
    if (result == LH_PASS)
        return LH_PASS;
    if (result != LH_FAILURE && result != LH_ERROR && result != LH_SKIP) {
        (void)lh_report(LH_ERROR, "the body returned %d, which is not an lh_result", result);
        result = LH_ERROR;
    }
    publish(result);
    return (uint32_t)result;
}

/* Clears the status before any code that could trap runs (docs/abi.md §3). */
static void begin_call(void) {
    status.kind = STATUS_NONE;
    message_len = 0;
}

EXPORT("leakhost_abi_version") uint32_t leakhost_abi_version(void) { return 1; }

EXPORT("leakhost_manifest") uint32_t leakhost_manifest(void) {
    declare_once();
    return ADDR(&manifest);
}

EXPORT("leakhost_status") uint32_t leakhost_status(void) { return ADDR(&status); }

EXPORT("leakhost_run_test") uint32_t leakhost_run_test(uint32_t index) {
    begin_call();
    declare_once();
    if (index >= tests_len)
        return finish(lh_report(LH_ERROR, "no test with index %u", (unsigned)index));
    const test_def *t = &test_defs[index];
    if (t->body_arg == NULL && t->body == NULL)
        return finish(lh_report(LH_ERROR, "test %s was declared without a body", t->name));
    return finish(t->body_arg ? t->body_arg(t->arg) : t->body());
}

EXPORT("leakhost_layer_hook") uint32_t leakhost_layer_hook(uint32_t layer, uint32_t hook) {
    begin_call();
    declare_once();
    if (layer >= layers_len)
        return finish(lh_report(LH_ERROR, "no layer with index %u", (unsigned)layer));
    const lh_layer_spec *s = &layer_defs[layer].spec;
    lh_fn body;
    switch (hook) {
    case HOOK_SET_UP: body = s->set_up; break;
    case HOOK_TEAR_DOWN: body = s->tear_down; break;
    case HOOK_TEST_SET_UP: body = s->test_set_up; break;
    case HOOK_TEST_TEAR_DOWN: body = s->test_tear_down; break;
    default: return finish(lh_report(LH_ERROR, "no hook with code %u", (unsigned)hook));
    }
    return finish(body ? body() : LH_PASS);
}

/* ---- Tracked types and user counters ---- */

/* As in the Rust SDK: 256 rows each; types beyond that share one overflow row. */
#define MAX_ROWS 256
typedef struct { const char *name; int64_t a, b; } row;
static row type_rows[MAX_ROWS], user_rows[MAX_ROWS];
static size_t type_rows_len, user_rows_len;

static row *find_row(row *rows, size_t *len, const char *name, const char *overflow) {
    for (size_t i = 0; i < *len; i++)
        if (rows[i].name == name || strcmp(rows[i].name, name) == 0)
            return &rows[i];
    if (*len < MAX_ROWS - (overflow ? 1 : 0)) {
        rows[*len] = (row){name, 0, 0};
        return &rows[(*len)++];
    }
    if (overflow == NULL)
        return NULL;
    if (*len == MAX_ROWS - 1)
        rows[(*len)++] = (row){overflow, 0, 0};
    return &rows[MAX_ROWS - 1];
}

void lh_track(const char *type_name, int64_t delta, int64_t size) {
    row *r = find_row(type_rows, &type_rows_len, type_name, "(other tracked types)");
    r->a += delta;
    r->b += delta * size;
}

void lh_counter_add(const char *name, int64_t delta) {
    row *r = find_row(user_rows, &user_rows_len, name, NULL);
    if (r != NULL)
        r->a += delta;
}

int64_t lh_counter_get(const char *name) {
    for (size_t i = 0; i < user_rows_len; i++)
        if (strcmp(user_rows[i].name, name) == 0)
            return user_rows[i].a;
    return 0;
}

/* ---- Allocation counting ---- */

static lh_alloc_counts counts;

lh_alloc_counts lh_alloc_counts_now(void) { return counts; }

static type_counter_rec type_recs[MAX_ROWS];
static user_counter_rec user_recs[MAX_ROWS];
static counters_rec counters;

EXPORT("leakhost_counters") uint32_t leakhost_counters(void) {
    for (size_t i = 0; i < type_rows_len; i++)
        type_recs[i] = (type_counter_rec){str_of(type_rows[i].name), type_rows[i].a, type_rows[i].b};
    for (size_t i = 0; i < user_rows_len; i++)
        user_recs[i] = (user_counter_rec){str_of(user_rows[i].name), user_rows[i].a};
    counters = (counters_rec){counts.live_blocks, counts.live_bytes, counts.total_allocs, ADDR(type_recs),
                              (uint32_t)type_rows_len, ADDR(user_recs), (uint32_t)user_rows_len};
    return ADDR(&counters);
}

/* free() carries no size, so every block gets a header just before the pointer handed out: the
 * requested size and the distance back to the block the real allocator returned. HEADER keeps the
 * 16-byte alignment of max_align_t; over-aligned blocks use their alignment as the distance. */
#define HEADER 16u
typedef struct { uint32_t offset, size; } header;

static header *header_of(void *p) { return (header *)((char *)p - sizeof(header)); }

static void *publish_block(void *base, size_t offset, size_t size) {
    if (base == NULL)
        return NULL;
    char *p = (char *)base + offset;
    *header_of(p) = (header){(uint32_t)offset, (uint32_t)size};
    counts.live_blocks++;
    counts.live_bytes += size;
    counts.total_allocs++;
    return p;
}

void *__wrap_malloc(size_t size) {
    if (size > SIZE_MAX - HEADER) {
        errno = ENOMEM;
        return NULL;
    }
    return publish_block(__real_malloc(size + HEADER), HEADER, size);
}

void *__wrap_calloc(size_t count, size_t size) {
    if (size != 0 && count > (SIZE_MAX - HEADER) / size) {
        errno = ENOMEM;
        return NULL;
    }
    return publish_block(__real_calloc(1, count * size + HEADER), HEADER, count * size);
}

void __wrap_free(void *p) {
    if (p == NULL)
        return;
    header h = *header_of(p);
    counts.live_blocks--;
    counts.live_bytes -= h.size;
    __real_free((char *)p - h.offset);
}

void *__wrap_realloc(void *p, size_t size) {
    if (p == NULL)
        return __wrap_malloc(size);
    if (size > SIZE_MAX - HEADER) {
        errno = ENOMEM;
        return NULL;
    }
    header h = *header_of(p);
    char *base;
    if (h.offset == HEADER) {
        base = __real_realloc((char *)p - HEADER, size + HEADER);
        if (base == NULL)
            return NULL;
    } else {
        /* An over-aligned block: realloc need only keep malloc's alignment, so move it. */
        base = __real_malloc(size + HEADER);
        if (base == NULL)
            return NULL;
        memcpy(base + HEADER, p, h.size < size ? h.size : size);
        __real_free((char *)p - h.offset);
    }
    counts.live_blocks--;
    counts.live_bytes -= h.size;
    return publish_block(base, HEADER, size);
}

static int valid_alignment(size_t align) { return align != 0 && (align & (align - 1)) == 0; }

static void *aligned_block(size_t align, size_t size) {
    size_t offset = align > HEADER ? align : HEADER;
    if (size > SIZE_MAX - offset)
        return NULL;
    return publish_block(__real_aligned_alloc(offset, size + offset), offset, size);
}

void *__wrap_aligned_alloc(size_t align, size_t size) {
    if (!valid_alignment(align)) {
        errno = EINVAL;
        return NULL;
    }
    void *p = aligned_block(align, size);
    if (p == NULL)
        errno = ENOMEM;
    return p;
}

int __wrap_posix_memalign(void **out, size_t align, size_t size) {
    if (!valid_alignment(align) || align % sizeof(void *) != 0)
        return EINVAL;
    void *p = aligned_block(align, size);
    if (p == NULL)
        return ENOMEM;
    *out = p;
    return 0;
}

size_t __wrap_malloc_usable_size(void *p) {
    if (p == NULL)
        return 0;
    header h = *header_of(p);
    return __real_malloc_usable_size((char *)p - h.offset) - h.offset;
}
