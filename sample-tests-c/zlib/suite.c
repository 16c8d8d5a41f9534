/* zlib under leakhost: round trips and streaming that must leave nothing behind, and the classic
 * mistakes that leak, each in a layer with clean neighbours so that per-test attribution must single it
 * out. tests/e2e/c_sdk.rs asserts on the names below.
 *
 * | layer | test | leaks per run |
 * |---|---|---|
 * | UnitTests | test_compress_round_trip, test_checksums, test_compress_bound | nothing |
 * | zlib.Streams | test_streaming_round_trip, test_gzip_round_trip, test_corrupt_stream_is_rejected | nothing |
 * | zlib.ForgottenEnd | test_forgets_deflate_end | deflate's state and buffers; "open streams" +1 |
 * | | test_forgets_inflate_end | inflate's state and window; "open streams" +1 |
 * | | test_deflate_end_called, test_inflate_end_called | nothing |
 * | zlib.ErrorPaths | test_error_path_leaks_buffer | the output buffer (one block of 4096 bytes) |
 * | | test_error_path_frees_buffer, test_truncated_input_is_an_error | nothing |
 */
#include <leakhost.h>

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define INPUT_LEN 65536

static unsigned char input[INPUT_LEN];

/* Text-like, compressible, deterministic input (an LCG over a small alphabet). */
static const unsigned char *sample_input(void) {
    static const char words[] = "leak hunting in zlib with leakhost ";
    uint32_t x = 12345;
    for (size_t i = 0; i < INPUT_LEN; i++) {
        x = x * 1103515245u + 12345u;
        input[i] = (x >> 16) % 7 == 0 ? (unsigned char)('a' + (x >> 8) % 26) : (unsigned char)words[i % 35];
    }
    return input;
}

/* Streams that were initialised and not yet ended, as a user counter in leak reports. */
static int init_deflate(z_stream *s, int window_bits) {
    memset(s, 0, sizeof *s);
    int rc = deflateInit2(s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
    if (rc == Z_OK)
        lh_counter_add("open streams", 1);
    return rc;
}

static int init_inflate(z_stream *s, int window_bits) {
    memset(s, 0, sizeof *s);
    int rc = inflateInit2(s, window_bits);
    if (rc == Z_OK)
        lh_counter_add("open streams", 1);
    return rc;
}

static int end_deflate(z_stream *s) {
    lh_counter_add("open streams", -1);
    return deflateEnd(s);
}

static int end_inflate(z_stream *s) {
    lh_counter_add("open streams", -1);
    return inflateEnd(s);
}

/* ---- UnitTests ---- */

static lh_result test_compress_round_trip(void) {
    const unsigned char *in = sample_input();
    uLongf packed_len = compressBound(INPUT_LEN);
    unsigned char *packed = malloc(packed_len);
    unsigned char *unpacked = malloc(INPUT_LEN);
    LH_CHECK(packed != NULL && unpacked != NULL);
    LH_CHECK_EQ_INT(compress2(packed, &packed_len, in, INPUT_LEN, 9), Z_OK);
    LH_CHECK_LT_INT(packed_len, INPUT_LEN / 2);
    uLongf unpacked_len = INPUT_LEN;
    int rc = uncompress(unpacked, &unpacked_len, packed, packed_len);
    int same = unpacked_len == INPUT_LEN && memcmp(unpacked, in, INPUT_LEN) == 0;
    free(packed);
    free(unpacked);
    LH_CHECK_EQ_INT(rc, Z_OK);
    LH_CHECK(same);
    return LH_PASS;
}

static lh_result test_checksums(void) {
    const unsigned char abc[] = "abc";
    LH_CHECK_EQ_INT(crc32(0, abc, 3), 0x352441C2);
    LH_CHECK_EQ_INT(adler32(1, abc, 3), 0x024D0127);
    LH_CHECK_STR_EQ(zlibVersion(), ZLIB_VERSION);
    return LH_PASS;
}

static lh_result test_compress_bound(void) {
    LH_CHECK_GE_INT(compressBound(INPUT_LEN), INPUT_LEN);
    return LH_PASS;
}

/* ---- zlib.Streams ---- */

/* Deflates `in` through a small output window, then inflates it back through another: both streams
 * are ended. Returns a zlib code; *ok tells whether the bytes came back unchanged. */
static int stream_round_trip(int deflate_bits, int inflate_bits, int *ok) {
    const unsigned char *in = sample_input();
    size_t cap = compressBound(INPUT_LEN) + 64, packed_len = 0, out_len = 0;
    unsigned char *packed = malloc(cap), *out = malloc(INPUT_LEN), chunk[1024];
    z_stream d, i;
    int rc = init_deflate(&d, deflate_bits);
    if (rc != Z_OK)
        goto done;
    d.next_in = (unsigned char *)in;
    d.avail_in = INPUT_LEN;
    do {
        d.next_out = chunk;
        d.avail_out = sizeof chunk;
        rc = deflate(&d, Z_FINISH);
        memcpy(packed + packed_len, chunk, sizeof chunk - d.avail_out);
        packed_len += sizeof chunk - d.avail_out;
    } while (rc == Z_OK);
    end_deflate(&d);
    if (rc != Z_STREAM_END)
        goto done;
    if ((rc = init_inflate(&i, inflate_bits)) != Z_OK)
        goto done;
    i.next_in = packed;
    i.avail_in = (uInt)packed_len;
    do {
        i.next_out = chunk;
        i.avail_out = sizeof chunk;
        rc = inflate(&i, Z_NO_FLUSH);
        size_t got = sizeof chunk - i.avail_out;
        if (out_len + got > INPUT_LEN)
            break;
        memcpy(out + out_len, chunk, got);
        out_len += got;
    } while (rc == Z_OK);
    end_inflate(&i);
    *ok = rc == Z_STREAM_END && out_len == INPUT_LEN && memcmp(out, in, INPUT_LEN) == 0;
    rc = rc == Z_STREAM_END ? Z_OK : rc;
done:
    free(packed);
    free(out);
    return rc;
}

static lh_result test_streaming_round_trip(void) {
    int ok = 0;
    LH_CHECK_EQ_INT(stream_round_trip(MAX_WBITS, MAX_WBITS, &ok), Z_OK);
    LH_CHECK(ok);
    return LH_PASS;
}

static lh_result test_gzip_round_trip(void) {
    int ok = 0;
    /* 16 + bits writes a gzip wrapper; 32 + bits detects zlib or gzip when reading. */
    LH_CHECK_EQ_INT(stream_round_trip(16 + MAX_WBITS, 32 + MAX_WBITS, &ok), Z_OK);
    LH_CHECK(ok);
    return LH_PASS;
}

static lh_result test_corrupt_stream_is_rejected(void) {
    unsigned char garbage[64], out[256];
    memset(garbage, 0xA5, sizeof garbage);
    z_stream s;
    LH_CHECK_EQ_INT(init_inflate(&s, MAX_WBITS), Z_OK);
    s.next_in = garbage;
    s.avail_in = sizeof garbage;
    s.next_out = out;
    s.avail_out = sizeof out;
    int rc = inflate(&s, Z_NO_FLUSH);
    end_inflate(&s);
    LH_CHECK_EQ_INT(rc, Z_DATA_ERROR);
    return LH_PASS;
}

/* ---- zlib.ForgottenEnd ---- */

/* Starts a stream and pushes some data through it; `end` says whether it is ended afterwards. */
static lh_result deflate_some(int end) {
    static unsigned char out[8192];
    z_stream s;
    LH_CHECK_EQ_INT(init_deflate(&s, MAX_WBITS), Z_OK);
    s.next_in = (unsigned char *)sample_input();
    s.avail_in = 4096;
    s.next_out = out;
    s.avail_out = sizeof out;
    LH_CHECK_EQ_INT(deflate(&s, Z_FINISH), Z_STREAM_END);
    if (end)
        LH_CHECK_EQ_INT(end_deflate(&s), Z_OK);
    return LH_PASS;
}

static lh_result inflate_some(int end) {
    static unsigned char packed[8192], out[8192];
    uLongf packed_len = sizeof packed;
    LH_CHECK_EQ_INT(compress(packed, &packed_len, sample_input(), 4096), Z_OK);
    z_stream s;
    LH_CHECK_EQ_INT(init_inflate(&s, MAX_WBITS), Z_OK);
    s.next_in = packed;
    s.avail_in = (uInt)packed_len;
    s.next_out = out;
    s.avail_out = sizeof out;
    LH_CHECK_EQ_INT(inflate(&s, Z_NO_FLUSH), Z_STREAM_END);
    LH_CHECK_EQ_INT(s.total_out, 4096);
    if (end)
        LH_CHECK_EQ_INT(end_inflate(&s), Z_OK);
    return LH_PASS;
}

static lh_result test_forgets_deflate_end(void) { return deflate_some(0); }
static lh_result test_deflate_end_called(void) { return deflate_some(1); }
static lh_result test_forgets_inflate_end(void) { return inflate_some(0); }
static lh_result test_inflate_end_called(void) { return inflate_some(1); }

/* ---- zlib.ErrorPaths ---- */

#define OUT_CAP 4096

/* Decompresses into a fresh buffer that the caller frees; NULL and the zlib code on failure.
 * `free_on_error` = 0 is the bug: the early return forgets the buffer. */
static unsigned char *unpack(const unsigned char *in, size_t len, int free_on_error, int *rc) {
    unsigned char *out = malloc(OUT_CAP);
    if (out == NULL) {
        *rc = Z_MEM_ERROR;
        return NULL;
    }
    uLongf out_len = OUT_CAP;
    *rc = uncompress(out, &out_len, in, len);
    if (*rc != Z_OK) {
        if (free_on_error)
            free(out);
        return NULL;
    }
    return out;
}

static lh_result error_path(int free_on_error, size_t keep) {
    static unsigned char packed[4096];
    uLongf packed_len = sizeof packed;
    LH_CHECK_EQ_INT(compress(packed, &packed_len, sample_input(), 2048), Z_OK);
    LH_CHECK_LT_INT(keep, packed_len);
    if (keep == 0)
        memset(packed + 2, 0xFF, 16); /* corrupt the deflate blocks, keep the header */
    int rc;
    unsigned char *out = unpack(packed, keep ? keep : packed_len, free_on_error, &rc);
    LH_CHECK(out == NULL);
    LH_CHECK_NE_INT(rc, Z_OK);
    return LH_PASS;
}

static lh_result test_error_path_leaks_buffer(void) { return error_path(0, 0); }
static lh_result test_error_path_frees_buffer(void) { return error_path(1, 0); }
static lh_result test_truncated_input_is_an_error(void) { return error_path(1, 20); }

void lh_declare(void) {
    lh_test("test_compress_round_trip", test_compress_round_trip);
    lh_test("test_checksums", test_checksums);
    lh_test("test_compress_bound", test_compress_bound);

    lh_layer_id streams = lh_layer("zlib.Streams", NULL);
    lh_test_in(streams, "test_streaming_round_trip", test_streaming_round_trip);
    lh_test_in(streams, "test_gzip_round_trip", test_gzip_round_trip);
    lh_test_in(streams, "test_corrupt_stream_is_rejected", test_corrupt_stream_is_rejected);

    lh_layer_id forgotten = lh_layer("zlib.ForgottenEnd", NULL);
    lh_test_in(forgotten, "test_deflate_end_called", test_deflate_end_called);
    lh_test_in(forgotten, "test_forgets_deflate_end", test_forgets_deflate_end);
    lh_test_in(forgotten, "test_inflate_end_called", test_inflate_end_called);
    lh_test_in(forgotten, "test_forgets_inflate_end", test_forgets_inflate_end);

    lh_layer_id errors = lh_layer("zlib.ErrorPaths", NULL);
    lh_test_in(errors, "test_error_path_frees_buffer", test_error_path_frees_buffer);
    lh_test_in(errors, "test_error_path_leaks_buffer", test_error_path_leaks_buffer);
    lh_test_in(errors, "test_truncated_input_is_an_error", test_truncated_input_is_an_error);
}
