/* SPDX-License-Identifier: MIT */
/*
 * GGUF reader/writer tests: writer -> reader round trip, typed access, and
 * one crafted bad file per header field, each rejected with its own
 * aik_error.where (llama.cpp test-gguf style).
 */
#include <errno.h>
#include <math.h>

#include "aik/common.h"
#include "bytebuf.h"
#include "interop/ggml_quant.h"
#include "interop/gguf.h"
#include "testutil.h"

/* ---- helpers for crafted files ------------------------------------------ */

static void hdr(bb *b, uint64_t n_tensors, uint64_t n_kv)
{
    bb_u32(b, AIK_GGUF_MAGIC);
    bb_u32(b, 3);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}

static void kv_u32(bb *b, const char *key, uint32_t v)
{
    bb_gstr(b, key);
    bb_u32(b, AIK_GGUF_UINT32);
    bb_u32(b, v);
}

static void kv_str(bb *b, const char *key, const char *v)
{
    bb_gstr(b, key);
    bb_u32(b, AIK_GGUF_STRING);
    bb_gstr(b, v);
}

static void tinfo(bb *b, const char *name, uint32_t n_dims, uint64_t ne0, uint64_t ne1, uint32_t type, uint64_t off)
{
    bb_gstr(b, name);
    bb_u32(b, n_dims);
    bb_u64(b, ne0);
    if (n_dims > 1)
        bb_u64(b, ne1);
    bb_u32(b, type);
    bb_u64(b, off);
}

/* Open, expect failure code at where; frees the buffer. */
static void expect_bad_at(bb *b, int code, const char *where, int line)
{
    aik_gguf *g = NULL;
    aik_error e;
    int r;

    aik_error_clear(&e);
    r = aik_gguf_open_buffer(b->p, b->n, &g, &e);
    ck_assert_msg(r == code, "line %d: expected %d, got %d (%s: %s)", line, code, r, e.where, e.message);
    ck_assert_msg(strcmp(e.where, where) == 0, "line %d: expected where '%s', got '%s' (%s)", line, where, e.where,
                  e.message);
    ck_assert_msg(e.message[0] != '\0', "line %d: empty message", line);
    ck_assert_ptr_null(g);
    bb_free(b);
}
#define expect_bad(b, code, where) expect_bad_at(b, code, where, __LINE__)

/* The valid file the bad ones are variations of: one kv, two f32 tensors. */
static void good_file(bb *b)
{
    hdr(b, 2, 1);
    kv_str(b, "general.architecture", "llama");
    tinfo(b, "a", 1, 4, 0, AIK_GGML_F32, 0);
    tinfo(b, "b", 2, 4, 2, AIK_GGML_F32, 32);
    bb_pad(b, 32);
    for (int i = 0; i < 4; i++)
        bb_f32(b, (float)i);
    bb_zero(b, 16);
    for (int i = 0; i < 8; i++)
        bb_f32(b, 10.0f + (float)i);
}

START_TEST(test_good_crafted)
{
    bb b = { 0 };
    aik_gguf *g = NULL;
    aik_error e;
    const aik_gguf_tensor *t;
    const char *s;
    size_t len;
    float f;

    good_file(&b);
    ck_assert_int_eq(aik_gguf_open_buffer(b.p, b.n, &g, &e), 0);
    ck_assert_uint_eq(aik_gguf_version(g), 3);
    ck_assert_uint_eq(aik_gguf_kv_count(g), 1);
    ck_assert_uint_eq(aik_gguf_tensor_count(g), 2);
    ck_assert_int_eq(aik_gguf_get_str(g, "general.architecture", &s, &len, &e), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert(memcmp(s, "llama", 5) == 0);
    t = aik_gguf_find_tensor(g, "b");
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->ne[0], 4);
    ck_assert_uint_eq(t->ne[1], 2);
    ck_assert_uint_eq(t->ne[2], 1);
    ck_assert_uint_eq(t->size, 32);
    memcpy(&f, (const uint8_t *)t->data + 4, 4);
    ck_assert(f == 11.0f);
    ck_assert_ptr_null(aik_gguf_find_tensor(g, "c"));
    aik_gguf_close(g);
    aik_gguf_close(NULL);
    bb_free(&b);
}
END_TEST

START_TEST(test_bad_header)
{
    bb b = { 0 };

    expect_bad(&b, -EBADMSG, "header.magic"); /* empty */
    bb_u32(&b, 0x46554746);
    bb_u32(&b, 3);
    bb_u64(&b, 0);
    bb_u64(&b, 0);
    expect_bad(&b, -EBADMSG, "header.magic");
    bb_u32(&b, AIK_GGUF_MAGIC);
    bb_put(&b, "\3", 1);
    expect_bad(&b, -EBADMSG, "header.version"); /* truncated */
    bb_u32(&b, AIK_GGUF_MAGIC);
    bb_u32(&b, 1);
    bb_u64(&b, 0);
    bb_u64(&b, 0);
    expect_bad(&b, -ENOTSUP, "header.version");
    bb_u32(&b, AIK_GGUF_MAGIC);
    bb_u32(&b, 4);
    bb_u64(&b, 0);
    bb_u64(&b, 0);
    expect_bad(&b, -ENOTSUP, "header.version");
    bb_u32(&b, AIK_GGUF_MAGIC);
    bb_u32(&b, 3);
    bb_u32(&b, 0);
    expect_bad(&b, -EBADMSG, "header.tensor_count");
    bb_u32(&b, AIK_GGUF_MAGIC);
    bb_u32(&b, 3);
    bb_u64(&b, 0);
    expect_bad(&b, -EBADMSG, "header.kv_count");
    hdr(&b, AIK_GGUF_MAX_TENSORS + 1ull, 0);
    expect_bad(&b, -E2BIG, "header.tensor_count");
    hdr(&b, UINT64_MAX, 0);
    expect_bad(&b, -E2BIG, "header.tensor_count");
    hdr(&b, 0, AIK_GGUF_MAX_KV + 1ull);
    expect_bad(&b, -E2BIG, "header.kv_count");
    hdr(&b, 0, 1000); /* within the limit but cannot fit in the file */
    expect_bad(&b, -EBADMSG, "header.kv_count");
    hdr(&b, 1000, 0);
    expect_bad(&b, -EBADMSG, "header.tensor_count");

    /* version 2 is accepted, and an empty model is valid */
    bb_u32(&b, AIK_GGUF_MAGIC);
    bb_u32(&b, 2);
    bb_u64(&b, 0);
    bb_u64(&b, 0);
    {
        aik_gguf *g = NULL;
        ck_assert_int_eq(aik_gguf_open_buffer(b.p, b.n, &g, NULL), 0);
        ck_assert_uint_eq(aik_gguf_version(g), 2);
        aik_gguf_close(g);
    }
    bb_free(&b);
}
END_TEST

START_TEST(test_bad_kv)
{
    bb b = { 0 };

    hdr(&b, 0, 1); /* key length beyond the limit */
    bb_u64(&b, AIK_GGUF_MAX_KEY_LEN + 1ull);
    bb_zero(&b, 16);
    expect_bad(&b, -E2BIG, "kv[0].key");
    hdr(&b, 0, 1); /* key length runs past end of file */
    bb_u64(&b, 100);
    bb_put(&b, "general.x", 9);
    bb_zero(&b, 8);
    expect_bad(&b, -EBADMSG, "kv[0].key");
    hdr(&b, 0, 1); /* empty key */
    bb_gstr(&b, "");
    bb_u32(&b, AIK_GGUF_UINT32);
    bb_u32(&b, 1);
    expect_bad(&b, -EBADMSG, "kv[0].key");
    hdr(&b, 0, 1); /* NUL inside the key */
    bb_u64(&b, 3);
    bb_put(&b, "a\0b", 3);
    bb_u32(&b, AIK_GGUF_UINT32);
    bb_u32(&b, 1);
    expect_bad(&b, -EBADMSG, "kv[0].key");
    hdr(&b, 0, 3); /* duplicate key (reported at the later one) */
    kv_u32(&b, "x.a", 1);
    kv_u32(&b, "x.b", 2);
    kv_u32(&b, "x.a", 3);
    expect_bad(&b, -EBADMSG, "kv[2].key");
    hdr(&b, 0, 1); /* unknown value type */
    bb_gstr(&b, "k");
    bb_u32(&b, 13);
    bb_u64(&b, 0);
    expect_bad(&b, -EBADMSG, "kv[0].type");
    hdr(&b, 0, 1); /* type truncated */
    bb_gstr(&b, "k.key.with.some.length");
    bb_put(&b, "\4", 1);
    bb_zero(&b, 10);
    {
        /* make the file end right inside the type field */
        b.n = 24 + 8 + 22 + 2;
        expect_bad(&b, -EBADMSG, "kv[0].type");
    }
    hdr(&b, 0, 2); /* value truncated (u64 needs 8 bytes) */
    kv_u32(&b, "a", 1);
    bb_gstr(&b, "b");
    bb_u32(&b, AIK_GGUF_UINT64);
    bb_u32(&b, 7);
    expect_bad(&b, -EBADMSG, "kv[1].value");
    hdr(&b, 0, 1); /* string value longer than the file */
    bb_gstr(&b, "s");
    bb_u32(&b, AIK_GGUF_STRING);
    bb_u64(&b, 1000);
    bb_put(&b, "abc", 3);
    expect_bad(&b, -EBADMSG, "kv[0].value");
    hdr(&b, 0, 1); /* string value over the length limit */
    bb_gstr(&b, "s");
    bb_u32(&b, AIK_GGUF_STRING);
    bb_u64(&b, UINT64_MAX);
    expect_bad(&b, -E2BIG, "kv[0].value");
    hdr(&b, 0, 1); /* array of arrays */
    bb_gstr(&b, "arr");
    bb_u32(&b, AIK_GGUF_ARRAY);
    bb_u32(&b, AIK_GGUF_ARRAY);
    bb_u64(&b, 0);
    expect_bad(&b, -EBADMSG, "kv[0].array.type");
    hdr(&b, 0, 1); /* unknown element type */
    bb_gstr(&b, "arr");
    bb_u32(&b, AIK_GGUF_ARRAY);
    bb_u32(&b, 99);
    bb_u64(&b, 0);
    expect_bad(&b, -EBADMSG, "kv[0].array.type");
    hdr(&b, 0, 1); /* element count missing */
    bb_gstr(&b, "arr");
    bb_u32(&b, AIK_GGUF_ARRAY);
    bb_u32(&b, AIK_GGUF_UINT32);
    bb_u32(&b, 0);
    expect_bad(&b, -EBADMSG, "kv[0].array.count");
    hdr(&b, 0, 1); /* count * element size overflows */
    bb_gstr(&b, "arr");
    bb_u32(&b, AIK_GGUF_ARRAY);
    bb_u32(&b, AIK_GGUF_UINT64);
    bb_u64(&b, UINT64_MAX / 4);
    expect_bad(&b, -EOVERFLOW, "kv[0].array.count");
    hdr(&b, 0, 1); /* elements truncated */
    bb_gstr(&b, "arr");
    bb_u32(&b, AIK_GGUF_ARRAY);
    bb_u32(&b, AIK_GGUF_INT32);
    bb_u64(&b, 3);
    bb_u32(&b, 1);
    bb_u32(&b, 2);
    expect_bad(&b, -EBADMSG, "kv[0].value");
    hdr(&b, 0, 1); /* more strings than could fit */
    bb_gstr(&b, "arr");
    bb_u32(&b, AIK_GGUF_ARRAY);
    bb_u32(&b, AIK_GGUF_STRING);
    bb_u64(&b, 1ull << 40);
    bb_gstr(&b, "x");
    expect_bad(&b, -EBADMSG, "kv[0].array.count");
    hdr(&b, 0, 1); /* second string runs past end of file */
    bb_gstr(&b, "arr");
    bb_u32(&b, AIK_GGUF_ARRAY);
    bb_u32(&b, AIK_GGUF_STRING);
    bb_u64(&b, 2);
    bb_gstr(&b, "first");
    bb_u64(&b, 50);
    bb_put(&b, "second", 6);
    bb_zero(&b, 8);
    expect_bad(&b, -EBADMSG, "kv[0].value[1]");
}
END_TEST

START_TEST(test_bad_alignment)
{
    bb b = { 0 };

    hdr(&b, 0, 1);
    bb_gstr(&b, "general.alignment");
    bb_u32(&b, AIK_GGUF_UINT64);
    bb_u64(&b, 64);
    expect_bad(&b, -EBADMSG, "general.alignment");
    hdr(&b, 0, 1);
    kv_u32(&b, "general.alignment", 48);
    expect_bad(&b, -EBADMSG, "general.alignment");
    hdr(&b, 0, 1);
    kv_u32(&b, "general.alignment", 0);
    expect_bad(&b, -EBADMSG, "general.alignment");
    hdr(&b, 0, 1);
    kv_u32(&b, "general.alignment", 1u << 31);
    expect_bad(&b, -EBADMSG, "general.alignment");

    /* a tensor aligned to 32 but not to the declared 64 */
    hdr(&b, 2, 1);
    kv_u32(&b, "general.alignment", 64);
    tinfo(&b, "a", 1, 8, 0, AIK_GGML_F32, 0);
    tinfo(&b, "b", 1, 8, 0, AIK_GGML_F32, 32);
    bb_pad(&b, 64);
    bb_zero(&b, 128);
    expect_bad(&b, -EBADMSG, "tensor[1].offset");
}
END_TEST

START_TEST(test_bad_tensor_info)
{
    bb b = { 0 };

    hdr(&b, 1, 0); /* name longer than ggml's 63 */
    tinfo(&b, "0123456789012345678901234567890123456789012345678901234567890123", 1, 8, 0, 0, 0);
    bb_zero(&b, 64);
    expect_bad(&b, -EBADMSG, "tensor[0].name");
    hdr(&b, 1, 0); /* empty name */
    tinfo(&b, "", 1, 8, 0, 0, 0);
    bb_zero(&b, 64);
    expect_bad(&b, -EBADMSG, "tensor[0].name");
    hdr(&b, 1, 0); /* name length past end */
    bb_u64(&b, 1ull << 62);
    bb_zero(&b, 40);
    expect_bad(&b, -EBADMSG, "tensor[0].name");
    hdr(&b, 2, 0); /* duplicate names */
    tinfo(&b, "w", 1, 8, 0, 0, 0);
    tinfo(&b, "w", 1, 8, 0, 0, 32);
    bb_pad(&b, 32);
    bb_zero(&b, 64);
    expect_bad(&b, -EBADMSG, "tensor[1].name");
    hdr(&b, 1, 0); /* n_dims 0 */
    bb_gstr(&b, "w");
    bb_u32(&b, 0);
    bb_zero(&b, 40);
    expect_bad(&b, -EBADMSG, "tensor[0].n_dims");
    hdr(&b, 1, 0); /* n_dims 5 */
    bb_gstr(&b, "w");
    bb_u32(&b, 5);
    bb_zero(&b, 60);
    expect_bad(&b, -EBADMSG, "tensor[0].n_dims");
    hdr(&b, 1, 0); /* a zero dimension */
    tinfo(&b, "w", 2, 8, 0, 0, 0);
    bb_zero(&b, 64);
    expect_bad(&b, -EBADMSG, "tensor[0].ne");
    hdr(&b, 1, 0); /* dimension above INT64_MAX */
    tinfo(&b, "w", 1, 1ull << 63, 0, 0, 0);
    bb_zero(&b, 64);
    expect_bad(&b, -EBADMSG, "tensor[0].ne");
    hdr(&b, 1, 0); /* element count overflows */
    tinfo(&b, "w", 2, 1ull << 40, 1ull << 40, 0, 0);
    bb_zero(&b, 64);
    expect_bad(&b, -EOVERFLOW, "tensor[0].ne");
    hdr(&b, 1, 0); /* ne truncated */
    bb_gstr(&b, "w");
    bb_u32(&b, 4);
    bb_u64(&b, 8);
    bb_u64(&b, 8);
    bb_zero(&b, 3); /* enough bytes for the count bound, not for 4 dims */
    expect_bad(&b, -EBADMSG, "tensor[0].ne");
    hdr(&b, 1, 0); /* removed ggml type 4 (Q4_2) */
    tinfo(&b, "w", 1, 32, 0, 4, 0);
    bb_zero(&b, 64);
    expect_bad(&b, -EBADMSG, "tensor[0].type");
    hdr(&b, 1, 0); /* unknown ggml type */
    tinfo(&b, "w", 1, 32, 0, 1000, 0);
    bb_zero(&b, 64);
    expect_bad(&b, -EBADMSG, "tensor[0].type");
    hdr(&b, 1, 0); /* row not a whole number of q8_0 blocks */
    tinfo(&b, "w", 1, 33, 0, AIK_GGML_Q8_0, 0);
    bb_zero(&b, 128);
    expect_bad(&b, -EBADMSG, "tensor[0].type");
    hdr(&b, 1, 0); /* offset missing */
    bb_gstr(&b, "w");
    bb_u32(&b, 1);
    bb_u64(&b, 8);
    bb_u32(&b, 0);
    bb_u32(&b, 0);
    bb_zero(&b, 3);
    expect_bad(&b, -EBADMSG, "tensor[0].offset");
}
END_TEST

START_TEST(test_bad_tensor_data)
{
    bb b = { 0 };

    hdr(&b, 1, 0); /* offset not aligned */
    tinfo(&b, "w", 1, 8, 0, 0, 4);
    bb_pad(&b, 32);
    bb_zero(&b, 64);
    expect_bad(&b, -EBADMSG, "tensor[0].offset");
    hdr(&b, 1, 0); /* offset past the data section */
    tinfo(&b, "w", 1, 8, 0, 0, 1ull << 40);
    bb_pad(&b, 32);
    bb_zero(&b, 64);
    expect_bad(&b, -EBADMSG, "tensor[0].offset");
    hdr(&b, 1, 0); /* offset + size overflows */
    tinfo(&b, "w", 1, 8, 0, 0, UINT64_MAX - 31);
    bb_pad(&b, 32);
    bb_zero(&b, 64);
    expect_bad(&b, -EBADMSG, "tensor[0].offset");
    hdr(&b, 1, 0); /* data truncated by one byte */
    tinfo(&b, "w", 1, 8, 0, 0, 0);
    bb_pad(&b, 32);
    bb_zero(&b, 31);
    expect_bad(&b, -EBADMSG, "tensor[0].offset");
    hdr(&b, 2, 0); /* overlap */
    tinfo(&b, "a", 1, 16, 0, 0, 0);
    tinfo(&b, "b", 1, 8, 0, 0, 32);
    bb_pad(&b, 32);
    bb_zero(&b, 128);
    expect_bad(&b, -EBADMSG, "tensor[1].offset");
    hdr(&b, 1, 0); /* file ends before the data section starts */
    tinfo(&b, "w", 1, 8, 0, 0, 0);
    bb_zero(&b, 1);
    if (b.n % 32 == 0)
        bb_zero(&b, 1);
    expect_bad(&b, -EBADMSG, "header.data_offset");

    /* every strict prefix of a good file fails, no prefix crashes */
    good_file(&b);
    for (size_t n = 0; n < b.n; n++) {
        aik_gguf *g = NULL;
        aik_error e;
        ck_assert_int_lt(aik_gguf_open_buffer(b.p, n, &g, &e), 0);
        ck_assert_ptr_null(g);
    }
    bb_free(&b);
}
END_TEST

START_TEST(test_typed_access)
{
    aik_gguf_writer *w = NULL;
    aik_gguf *g = NULL;
    aik_error e;
    void *buf;
    size_t len;
    uint32_t u, per[3];
    int64_t i64;
    float f;
    bool bo;
    const char *s;
    aik_gguf_type et;
    uint64_t n;
    int k;
    const int32_t heads[3] = { 4, 2, 4 };
    const char *strs[3] = { "a", "", "ccc" };
    const size_t lens[3] = { 1, 0, 3 };
    const float fl[2] = { 0.5f, -2.0f };
    const int32_t neg[1] = { -1 };

    ck_assert_int_eq(aik_gguf_writer_new(0, &w), 0);
    ck_assert_int_eq(aik_gguf_writer_add_u32(w, "u", 7, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_i32(w, "neg", -5, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_f32(w, "f", 1.5f, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_bool(w, "b", true, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_str(w, "s", "hi\0there", 8, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_arr(w, "heads", AIK_GGUF_INT32, heads, 3, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_arr(w, "negarr", AIK_GGUF_INT32, neg, 1, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_arr(w, "fl", AIK_GGUF_FLOAT32, fl, 2, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_arr_str(w, "strs", strs, lens, 3, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_u32(w, "u", 8, &e), -EEXIST); /* duplicate */
    ck_assert_int_eq(aik_gguf_writer_add_u32(w, "", 8, &e), -EINVAL);
    ck_assert_int_eq(aik_gguf_writer_add_arr(w, "bad", AIK_GGUF_STRING, heads, 1, &e), -EINVAL);
    ck_assert_int_eq(aik_gguf_writer_write_buffer(w, &buf, &len, &e), 0);
    aik_gguf_writer_free(w);

    ck_assert_int_eq(aik_gguf_open_buffer(buf, len, &g, &e), 0);
    ck_assert_int_eq(aik_gguf_get_u32(g, "u", &u, &e), 0);
    ck_assert_uint_eq(u, 7);
    ck_assert_int_eq(aik_gguf_get_u32(g, "neg", &u, &e), -ERANGE);
    ck_assert_str_eq(e.where, "neg");
    ck_assert_int_eq(aik_gguf_get_i64(g, "neg", &i64, &e), 0);
    ck_assert_int_eq(i64, -5);
    ck_assert_int_eq(aik_gguf_get_u32(g, "f", &u, &e), -EBADMSG);
    ck_assert_int_eq(aik_gguf_get_u32(g, "b", &u, &e), -EBADMSG);
    ck_assert_int_eq(aik_gguf_get_u32(g, "missing", &u, &e), -ENOENT);
    ck_assert_str_eq(e.where, "missing");
    ck_assert_int_eq(aik_gguf_get_f32(g, "f", &f, &e), 0);
    ck_assert(f == 1.5f);
    ck_assert_int_eq(aik_gguf_get_f32(g, "u", &f, &e), -EBADMSG);
    ck_assert_int_eq(aik_gguf_get_bool(g, "b", &bo, &e), 0);
    ck_assert(bo);
    ck_assert_int_eq(aik_gguf_get_str(g, "s", &s, &len, &e), 0);
    ck_assert_uint_eq(len, 8);
    ck_assert(memcmp(s, "hi\0there", 8) == 0);
    ck_assert_int_eq(aik_gguf_get_str(g, "u", &s, &len, &e), -EBADMSG);
    k = aik_gguf_get_arr(g, "strs", &et, &n, &e);
    ck_assert_int_ge(k, 0);
    ck_assert_int_eq(et, AIK_GGUF_STRING);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(aik_gguf_arr_str(g, k, 2, &s, &len), 0);
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(s, "ccc", 3) == 0);
    ck_assert_int_eq(aik_gguf_arr_str(g, k, 1, &s, &len), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(aik_gguf_arr_str(g, k, 3, &s, &len), -EINVAL);
    ck_assert_int_eq(aik_gguf_arr_int(g, k, 0, &i64), -EINVAL);
    k = aik_gguf_get_arr(g, "fl", &et, &n, &e);
    ck_assert_int_ge(k, 0);
    {
        double d;
        ck_assert_int_eq(aik_gguf_arr_f64(g, k, 1, &d), 0);
        ck_assert(d == -2.0);
    }
    ck_assert_int_eq(aik_gguf_get_arr(g, "u", &et, &n, &e), -EBADMSG);
    ck_assert_int_eq(aik_gguf_get_u32_per_layer(g, "heads", 3, per, &e), 0);
    ck_assert_uint_eq(per[0], 4);
    ck_assert_uint_eq(per[1], 2);
    ck_assert_int_eq(aik_gguf_get_u32_per_layer(g, "heads", 2, per, &e), -EBADMSG);
    ck_assert_str_eq(e.where, "heads");
    ck_assert_int_eq(aik_gguf_get_u32_per_layer(g, "negarr", 1, per, &e), -ERANGE);
    ck_assert_int_eq(aik_gguf_get_u32_per_layer(g, "u", 3, per, &e), 0);
    ck_assert_uint_eq(per[2], 7);
    ck_assert_int_eq(aik_gguf_get_u32_per_layer(g, "fl", 2, per, &e), -EBADMSG);
    aik_gguf_close(g);
    free(buf);
}
END_TEST

START_TEST(test_writer_roundtrip_file)
{
    char *dir = aik_test_tmpdir(), path[512];
    aik_gguf_writer *w = NULL;
    aik_gguf *g = NULL;
    aik_error e;
    float a[64], bq[2 * 64];
    uint8_t q8[2 * 34 * 2];
    uint64_t ne_a[1] = { 64 }, ne_b[2] = { 64, 2 }, ne_q[2] = { 64, 2 };

    for (int i = 0; i < 64; i++)
        a[i] = (float)i * 0.25f - 3.0f;
    for (int i = 0; i < 128; i++)
        bq[i] = sinf((float)i);
    ck_assert_int_eq(aik_quantize_q8_0(bq, q8, 128), 0);
    snprintf(path, sizeof(path), "%s/m.gguf", dir);
    ck_assert_int_eq(aik_gguf_writer_new(64, &w), 0);
    ck_assert_int_eq(aik_gguf_writer_add_str(w, "general.architecture", "llama", 5, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_tensor(w, "a", AIK_GGML_F32, 1, ne_a, a, sizeof(a), &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_tensor(w, "b", AIK_GGML_F32, 2, ne_b, bq, sizeof(bq), &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_tensor(w, "q", AIK_GGML_Q8_0, 2, ne_q, q8, 136, &e), 0);
    ck_assert_int_eq(aik_gguf_writer_add_tensor(w, "q", AIK_GGML_Q8_0, 2, ne_q, q8, 136, &e), -EEXIST);
    ck_assert_int_eq(aik_gguf_writer_add_tensor(w, "bad", AIK_GGML_Q8_0, 2, ne_q, q8, 135, &e), -EINVAL);
    ck_assert_int_eq(aik_gguf_writer_add_tensor(w, "bad", 4, 1, ne_a, a, 40, &e), -EINVAL);
    ck_assert_int_eq(aik_gguf_writer_write_file(w, path, &e), 0);
    aik_gguf_writer_free(w);

    ck_assert_int_eq(aik_gguf_open(path, &g, &e), 0);
    ck_assert_uint_eq(aik_gguf_alignment(g), 64);
    ck_assert_uint_eq(aik_gguf_data_offset(g) % 64, 0);
    ck_assert_uint_eq(aik_gguf_tensor_count(g), 3);
    for (uint32_t i = 0; i < 3; i++)
        ck_assert_uint_eq(aik_gguf_tensor_at(g, i)->offset % 64, 0);
    ck_assert(memcmp(aik_gguf_find_tensor(g, "a")->data, a, sizeof(a)) == 0);
    ck_assert(memcmp(aik_gguf_find_tensor(g, "b")->data, bq, sizeof(bq)) == 0);
    ck_assert(memcmp(aik_gguf_find_tensor(g, "q")->data, q8, 136) == 0);
    ck_assert_uint_eq(aik_gguf_find_tensor(g, "q")->type, AIK_GGML_Q8_0);
    aik_gguf_close(g);

    ck_assert_int_eq(aik_gguf_open("/nonexistent/x.gguf", &g, &e), -ENOENT);
    ck_assert_int_eq(aik_gguf_open(dir, &g, &e), -EINVAL); /* a directory */
    aik_test_rmtree(dir);
    free(dir);
}
END_TEST

START_TEST(test_half)
{
    /* half -> float -> half is the identity for every non-NaN half */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = aik_half_to_float((uint16_t)h);
        if (isnan(f))
            continue;
        ck_assert_uint_eq(aik_float_to_half(f), h);
    }
    ck_assert(aik_half_to_float(0x3c00) == 1.0f);
    ck_assert(aik_half_to_float(0xc000) == -2.0f);
    ck_assert_uint_eq(aik_float_to_half(65520.0f), 0x7c00); /* rounds to inf */
    ck_assert_uint_eq(aik_float_to_half(1.0f + 0x1p-11f), 0x3c00); /* tie to even */
    ck_assert_uint_eq(aik_float_to_half(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
    ck_assert(aik_bf16_to_float(0x3f80) == 1.0f);
}
END_TEST

static void put_half(uint8_t *p, float f)
{
    uint16_t h = aik_float_to_half(f);
    memcpy(p, &h, 2);
}

START_TEST(test_dequant_legacy)
{
    uint8_t blk[36] = { 0 };
    float y[32];

    /* q4_1: w = nibble * d + m */
    put_half(blk, 2.0f);
    put_half(blk + 2, -1.0f);
    blk[4] = 0x51;
    ck_assert_int_eq(aik_ggml_dequantize(AIK_GGML_Q4_1, blk, y, 32), 0);
    ck_assert(y[0] == 1.0f && y[16] == 9.0f && y[1] == -1.0f);
    /* q5_0: 5th bit from qh; w = (q - 16) * d */
    memset(blk, 0, sizeof(blk));
    put_half(blk, 1.0f);
    blk[2] = 0x01;  /* qh bit 0: high bit of weight 0 */
    blk[4] = 0x01;  /* qh bit 16: high bit of weight 16 */
    blk[6] = 0x23;  /* qs[0]: weight 0 low nibble 3, weight 16 low nibble 2 */
    ck_assert_int_eq(aik_ggml_dequantize(AIK_GGML_Q5_0, blk, y, 32), 0);
    ck_assert(y[0] == 3.0f && y[16] == 2.0f && y[1] == -16.0f);
    /* q5_1: same bits, w = q * d + m */
    memset(blk, 0, sizeof(blk));
    put_half(blk, 0.5f);
    put_half(blk + 2, 1.0f);
    blk[4] = 0x02; /* qh bit 1: weight 1 */
    blk[9] = 0x0f; /* qs[1] low nibble 15 */
    ck_assert_int_eq(aik_ggml_dequantize(AIK_GGML_Q5_1, blk, y, 32), 0);
    ck_assert(y[1] == 16.5f && y[0] == 1.0f);
    /* q4_0 */
    memset(blk, 0, sizeof(blk));
    put_half(blk, 1.0f);
    blk[2] = 0xf0;
    ck_assert_int_eq(aik_ggml_dequantize(AIK_GGML_Q4_0, blk, y, 32), 0);
    ck_assert(y[0] == -8.0f && y[16] == 7.0f);
    /* unsupported */
    ck_assert_int_eq(aik_ggml_dequantize(AIK_GGML_Q2_K, blk, y, 256), -EINVAL);
    ck_assert_int_eq(aik_ggml_dequantize(AIK_GGML_Q8_0, blk, y, 31), -EINVAL);
}
END_TEST

START_TEST(test_dequant_k)
{
    uint8_t blk[292] = { 0 };
    float y[256];

    /* q4_K: sub-block 0 scale 2 / min 1, sub-block 1 scale 3 / min 0 */
    put_half(blk, 1.0f);
    put_half(blk + 2, 0.5f);
    blk[4 + 0] = 2;
    blk[4 + 4] = 1;
    blk[4 + 1] = 3;
    blk[16] = 0x37; /* weight 0 = 7, weight 32 = 3 */
    ck_assert_int_eq(aik_ggml_dequantize(AIK_GGML_Q4_K, blk, y, 256), 0);
    ck_assert(y[0] == 13.5f);
    ck_assert(y[32] == 9.0f);
    ck_assert(y[1] == -0.5f);
    /* sub-blocks 4..7 take their scales from the packed high bits */
    memset(blk, 0, sizeof(blk));
    put_half(blk, 1.0f);
    blk[4 + 8] = 0x05;      /* sub-block 4: low 4 bits of scale = 5 */
    blk[4 + 0] = 0x40;      /* high 2 bits of scale 4 = 1 -> scale 21 */
    blk[16 + 64] = 0x01;    /* weight 128 = 1 */
    ck_assert_int_eq(aik_ggml_dequantize(AIK_GGML_Q4_K, blk, y, 256), 0);
    ck_assert(y[128] == 21.0f);
    /* q6_K: ql, qh, int8 scales, d */
    memset(blk, 0, sizeof(blk));
    blk[0] = 0x21;        /* ql[0]: weight 0 low 4 = 1, weight 64 low 4 = 2 */
    blk[128] = 0x01;      /* qh[0]: weight 0 high 2 = 1 */
    blk[192] = 2;         /* scale of weights 0..15 */
    blk[192 + 4] = (uint8_t)-1; /* scale of weights 64..79 */
    put_half(blk + 208, 0.5f);
    ck_assert_int_eq(aik_ggml_dequantize(AIK_GGML_Q6_K, blk, y, 256), 0);
    ck_assert(y[0] == -15.0f);  /* 0.5 * 2 * (17 - 32) */
    ck_assert(y[64] == 15.0f);  /* 0.5 * -1 * (2 - 32) */
    /* q5_K: high bit from qh */
    memset(blk, 0, sizeof(blk));
    put_half(blk, 1.0f);
    blk[4] = 1;       /* scale of sub-block 0 */
    blk[16] = 0x01;   /* qh[0] bit 0: weight 0 gets +16 */
    blk[48] = 0x02;   /* ql[0] low nibble 2 */
    ck_assert_int_eq(aik_ggml_dequantize(AIK_GGML_Q5_K, blk, y, 256), 0);
    ck_assert(y[0] == 18.0f);
    /* q8_K: f32 d */
    memset(blk, 0, sizeof(blk));
    {
        float d = 0.25f;
        memcpy(blk, &d, 4);
        blk[4 + 255] = (uint8_t)-8;
    }
    ck_assert_int_eq(aik_ggml_dequantize(AIK_GGML_Q8_K, blk, y, 256), 0);
    ck_assert(y[255] == -2.0f);
}
END_TEST

START_TEST(test_q8_0_roundtrip)
{
    float x[64], y[64];
    uint8_t q[68], q2[68];

    for (int i = 0; i < 64; i++)
        x[i] = cosf((float)i * 0.3f) * (i < 32 ? 1.0f : 100.0f);
    ck_assert_int_eq(aik_quantize_q8_0(x, q, 64), 0);
    ck_assert_int_eq(aik_ggml_dequantize(AIK_GGML_Q8_0, q, y, 64), 0);
    for (int i = 0; i < 64; i++)
        ck_assert_msg(fabsf(x[i] - y[i]) <= (i < 32 ? 1.0f : 100.0f) / 127.0f, "i=%d", i);
    /* re-quantizing dequantized q8_0 reproduces the same bytes */
    ck_assert_int_eq(aik_quantize_q8_0(y, q2, 64), 0);
    ck_assert(memcmp(q, q2, sizeof(q)) == 0);
    ck_assert_int_eq(aik_quantize_q8_0(x, q, 33), -EINVAL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gguf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_good_crafted);
    tcase_add_test(tc, test_bad_header);
    tcase_add_test(tc, test_bad_kv);
    tcase_add_test(tc, test_bad_alignment);
    tcase_add_test(tc, test_bad_tensor_info);
    tcase_add_test(tc, test_bad_tensor_data);
    tcase_add_test(tc, test_typed_access);
    tcase_add_test(tc, test_writer_roundtrip_file);
    tcase_add_test(tc, test_half);
    tcase_add_test(tc, test_dequant_legacy);
    tcase_add_test(tc, test_dequant_k);
    tcase_add_test(tc, test_q8_0_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return aik_test_run(suite());
}
