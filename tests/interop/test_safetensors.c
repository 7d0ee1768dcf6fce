/* SPDX-License-Identifier: MIT */
/* safetensors reader tests: a valid file and one crafted bad file per field. */
#include <errno.h>

#include "bytebuf.h"
#include "interop/safetensors.h"
#include "testutil.h"

/* u64 header length + JSON + data_len bytes of data (0, 1, 2, ...). */
static void make(bb *b, const char *json, size_t data_len)
{
    bb_u64(b, strlen(json));
    bb_put(b, json, strlen(json));
    for (size_t i = 0; i < data_len; i++)
        bb_u8(b, (uint8_t)i);
}

static void expect_bad_at(const char *json, size_t data_len, int code, const char *where, int line)
{
    bb b = { 0 };
    aik_safetensors *st = NULL;
    aik_error e;
    int r;

    make(&b, json, data_len);
    aik_error_clear(&e);
    r = aik_safetensors_open_buffer(b.p, b.n, &st, &e);
    ck_assert_msg(r == code, "line %d: expected %d, got %d (%s: %s)", line, code, r, e.where, e.message);
    ck_assert_msg(strcmp(e.where, where) == 0, "line %d: expected where '%s', got '%s' (%s)", line, where, e.where,
                  e.message);
    ck_assert_ptr_null(st);
    bb_free(&b);
}
#define expect_bad(json, n, code, where) expect_bad_at(json, n, code, where, __LINE__)

START_TEST(test_good)
{
    bb b = { 0 };
    aik_safetensors *st = NULL;
    aik_error e;
    const aik_st_tensor *t;

    make(&b,
         "{\"__metadata__\":{\"format\":\"pt\"},"
         "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[16,28]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
         "\"empty\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[28,28]}}   ",
         28);
    ck_assert_int_eq(aik_safetensors_open_buffer(b.p, b.n, &st, &e), 0);
    ck_assert_uint_eq(aik_safetensors_count(st), 3);
    ck_assert_str_eq(aik_safetensors_at(st, 0)->name, "a");
    t = aik_safetensors_find(st, "b");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, AIK_ST_BF16);
    ck_assert_uint_eq(t->n_dims, 2);
    ck_assert_uint_eq(t->shape[0], 2);
    ck_assert_uint_eq(t->shape[1], 3);
    ck_assert_uint_eq(t->nelems, 6);
    ck_assert_uint_eq(t->size, 12);
    ck_assert_uint_eq(((const uint8_t *)t->data)[0], 16);
    ck_assert_uint_eq(aik_safetensors_find(st, "empty")->size, 0);
    ck_assert_ptr_null(aik_safetensors_find(st, "zzz"));
    ck_assert_str_eq(aik_safetensors_metadata(st, "format"), "pt");
    ck_assert_ptr_null(aik_safetensors_metadata(st, "nope"));
    ck_assert_str_eq(aik_st_dtype_name(AIK_ST_F16), "F16");
    ck_assert_uint_eq(aik_st_dtype_size(AIK_ST_F64), 8);
    aik_safetensors_close(st);
    aik_safetensors_close(NULL);

    /* every strict prefix fails without crashing */
    for (size_t n = 0; n < b.n; n++) {
        st = NULL;
        ck_assert_int_lt(aik_safetensors_open_buffer(b.p, n, &st, &e), 0);
        ck_assert_ptr_null(st);
    }
    bb_free(&b);
}
END_TEST

START_TEST(test_bad_header)
{
    bb b = { 0 };
    aik_safetensors *st = NULL;
    aik_error e;

    ck_assert_int_eq(aik_safetensors_open_buffer("abc", 3, &st, &e), -EBADMSG);
    ck_assert_str_eq(e.where, "header.length");
    bb_u64(&b, (uint64_t)AIK_ST_MAX_HEADER + 1);
    bb_put(&b, "{}", 2);
    ck_assert_int_eq(aik_safetensors_open_buffer(b.p, b.n, &st, &e), -E2BIG);
    ck_assert_str_eq(e.where, "header.length");
    bb_free(&b);
    bb_u64(&b, 100);
    bb_put(&b, "{}", 2);
    ck_assert_int_eq(aik_safetensors_open_buffer(b.p, b.n, &st, &e), -EBADMSG);
    ck_assert_str_eq(e.where, "header.length");
    bb_free(&b);
    bb_u64(&b, UINT64_MAX);
    ck_assert_int_eq(aik_safetensors_open_buffer(b.p, b.n, &st, &e), -E2BIG);
    bb_free(&b);

    expect_bad("[1,2]", 0, -EBADMSG, "header");               /* not an object */
    expect_bad("{\"a\":", 0, -EBADMSG, "header");             /* syntax */
    expect_bad("{\"a\":{}}x", 0, -EBADMSG, "header");         /* trailing garbage */
    expect_bad("{} ", 4, -EBADMSG, "header.length");          /* data nobody owns */
    expect_bad("{\"__metadata__\":[]}", 0, -EBADMSG, "__metadata__");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, -EBADMSG, "__metadata__");
    expect_bad("{\"\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, -EBADMSG, "tensors['']");
    /* duplicate keys are rejected by the JSON parser */
    expect_bad("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
               "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, -EBADMSG, "header");
}
END_TEST

START_TEST(test_bad_entries)
{
    expect_bad("{\"a\":3}", 0, -EBADMSG, "tensors['a']");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, -EBADMSG, "tensors['a']");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, -EBADMSG,
               "tensors['a']");
    expect_bad("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -EBADMSG, "tensors['a'].dtype");
    expect_bad("{\"a\":{\"dtype\":\"F31\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -EBADMSG, "tensors['a'].dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, -EBADMSG, "tensors['a'].shape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, -EBADMSG, "tensors['a'].shape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, -EBADMSG, "tensors['a'].shape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, -EBADMSG,
               "tensors['a'].shape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, -EOVERFLOW,
               "tensors['a'].shape");
    expect_bad("{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 4, -EOVERFLOW,
               "tensors['a'].shape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, -EBADMSG,
               "tensors['a'].data_offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", 4, -EBADMSG,
               "tensors['a'].data_offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, -EBADMSG,
               "tensors['a'].data_offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, -EBADMSG,
               "tensors['a'].data_offsets"); /* span vs shape */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 4, -EBADMSG,
               "tensors['a'].data_offsets"); /* past the buffer */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[2,6]}}", 6, -EBADMSG,
               "tensors['b'].data_offsets"); /* overlap */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[6,8]}}", 8, -EBADMSG,
               "tensors['b'].data_offsets"); /* gap */
}
END_TEST

START_TEST(test_file)
{
    char *dir = aik_test_tmpdir(), path[512];
    bb b = { 0 };
    FILE *f;
    aik_safetensors *st = NULL;
    aik_error e;

    snprintf(path, sizeof(path), "%s/m.safetensors", dir);
    make(&b, "{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]}}", 6);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b.p, 1, b.n, f), b.n);
    fclose(f);
    ck_assert_int_eq(aik_safetensors_open(path, &st, &e), 0);
    ck_assert_uint_eq(aik_safetensors_find(st, "w")->size, 6);
    aik_safetensors_close(st);
    ck_assert_int_eq(aik_safetensors_open("/nonexistent.safetensors", &st, &e), -ENOENT);
    f = fopen(path, "wb");
    fclose(f);
    ck_assert_int_eq(aik_safetensors_open(path, &st, &e), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(e.where, "header.length"));
    bb_free(&b);
    aik_test_rmtree(dir);
    free(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_good);
    tcase_add_test(tc, test_bad_header);
    tcase_add_test(tc, test_bad_entries);
    tcase_add_test(tc, test_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return aik_test_run(suite());
}
