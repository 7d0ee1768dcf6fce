/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for ASG1 segment fragments: the reader and writer
 * (loader/adapter.c), their compatibility check, and extract / apply
 * (runtime/segment_apply.c).
 *
 * Byte offsets of the header and records are spelled out here, independently
 * of adapter.c, so they pin the layout of docs/adapters.md.
 *
 * `test_segment --write-corpus DIR` writes the fuzz seed corpus.
 */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

#include "common/atomic_file.h"
#include "common/digest.h"
#include "loader/adapter.h"
#include "loader/slm.h"
#include "runtime/generate.h"
#include "runtime/model.h"
#include "runtime/segment_apply.h"
#include "../engine/tiny_model.h"
#include "testutil.h"

enum { H_MAGIC = 0, H_HSIZE = 8, H_KIND = 12, H_PCOUNT = 96, H_PSIZE = 104, H_PSHA = 112, H_FIRST = 144,
       H_END = 148, H_SIZE = 152 };
/* Record: u16 name_len, u16 n_dims, u32 reserved, u64 shape[n_dims], name,
 * then u32 dtype, u32 reserved2, u64 data_size, data. */

static char *g_dir;
/* 4-layer tiny models, seed 1, one per weight dtype */
static char g_f32[512], g_q8[512], g_q4[512];

static void put(uint8_t *p, int width, uint64_t v)
{
    for (int i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *p, int width)
{
    uint64_t v = 0;
    for (int i = 0; i < width; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void reseal(uint8_t *buf, size_t len)
{
    uint32_t hs = (uint32_t)get(buf + H_HSIZE, 4);
    ck_assert_int_eq(aik_sha256_buf(buf + hs, len - hs, buf + H_PSHA), 0);
}

static void header4(aik_slm_header *hdr)
{
    tiny_header(hdr);
    hdr->n_layers = 4;
}

static void setup(void)
{
    aik_slm_header hdr;

    g_dir = aik_test_tmpdir();
    ck_assert_ptr_nonnull(g_dir);
    snprintf(g_f32, sizeof(g_f32), "%s/f32.slm", g_dir);
    snprintf(g_q8, sizeof(g_q8), "%s/q8.slm", g_dir);
    snprintf(g_q4, sizeof(g_q4), "%s/q4.slm", g_dir);
    header4(&hdr);
    ck_assert_int_eq(tiny_model_write(g_f32, &hdr, NULL, AIK_DTYPE_F32, 1), 0);
    ck_assert_int_eq(tiny_model_write(g_q8, &hdr, NULL, AIK_DTYPE_Q8_0, 1), 0);
    ck_assert_int_eq(tiny_model_write(g_q4, &hdr, NULL, AIK_DTYPE_Q4_0, 1), 0);
}

static void teardown(void)
{
    aik_test_rmtree(g_dir);
    free(g_dir);
}

static aik_slm *open_pkg(const char *path)
{
    aik_slm *pkg = NULL;
    aik_error err;
    int r = aik_slm_open(path, AIK_SLM_VERIFY_CHECKSUMS, &pkg, &err);
    ck_assert_msg(r == 0, "open %s: %s: %s", path, err.where, err.message);
    return pkg;
}

static aik_adapter *extract(const aik_slm *pkg, uint32_t first, uint32_t end)
{
    aik_adapter *f = NULL;
    aik_error err;
    int r = aik_segment_extract(pkg, first, end, &f, &err);
    ck_assert_msg(r == 0, "extract: %s: %s", err.where, err.message);
    return f;
}

static void serialize(aik_adapter *a, uint8_t **buf, size_t *len)
{
    aik_error err;
    ck_assert_int_eq(aik_adapter_serialize(a, buf, len, &err), 0);
}

static char *slurp(const char *path, size_t *ret_len)
{
    char *d = NULL;
    ck_assert_int_eq(aik_read_file(path, 64u << 20, &d, ret_len), 0);
    return d;
}

static void assert_same_file(const char *a, const char *b)
{
    size_t la, lb;
    char *da = slurp(a, &la), *db = slurp(b, &lb);
    ck_assert_msg(la == lb, "%s is %zu bytes, %s %zu", a, la, b, lb);
    ck_assert_msg(memcmp(da, db, la) == 0, "%s and %s differ", a, b);
    free(da);
    free(db);
}

static uint32_t count_in_range(const aik_slm *pkg, uint32_t first, uint32_t end)
{
    uint32_t n = 0, l;
    for (uint32_t i = 0; i < pkg->hdr.tensor_count; i++)
        if (aik_segment_layer_of(pkg->tensors[i].name, &l) == 0 && l >= first && l < end)
            n++;
    return n;
}

/* ------------------------------------------------------------- format --- */

START_TEST(test_layer_of)
{
    uint32_t l = 99;

    ck_assert_int_eq(aik_segment_layer_of("blk.0.attn_q.weight", &l), 0);
    ck_assert_uint_eq(l, 0);
    ck_assert_int_eq(aik_segment_layer_of("blk.17.x", &l), 0);
    ck_assert_uint_eq(l, 17);
    ck_assert_int_eq(aik_segment_layer_of("blk.01.x", &l), -EINVAL);
    ck_assert_int_eq(aik_segment_layer_of("blk..x", &l), -EINVAL);
    ck_assert_int_eq(aik_segment_layer_of("blk.3", &l), -EINVAL);
    ck_assert_int_eq(aik_segment_layer_of("blk.3x.y", &l), -EINVAL);
    ck_assert_int_eq(aik_segment_layer_of("blk.99999999999.y", &l), -EINVAL);
    ck_assert_int_eq(aik_segment_layer_of("output_norm.weight", &l), -EINVAL);
    ck_assert_int_eq(aik_segment_layer_of("xblk.1.y", &l), -EINVAL);
    ck_assert_int_eq(aik_segment_layer_of(NULL, &l), -EINVAL);
}
END_TEST

START_TEST(test_roundtrip)
{
    static const char *const paths[] = { g_f32, g_q8, g_q4 };

    for (int k = 0; k < 3; k++) {
        aik_slm *pkg = open_pkg(paths[k]);
        aik_adapter *f = extract(pkg, 1, 3), *g = NULL;
        char path[600];
        uint8_t digest[32], want[32], *buf;
        size_t len;
        aik_error err;

        ck_assert_uint_eq(f->n_tensors, count_in_range(pkg, 1, 3));
        ck_assert_uint_gt(f->n_tensors, 2);
        snprintf(path, sizeof(path), "%s/frag%d.asg", g_dir, k);
        ck_assert_int_eq(aik_adapter_write(f, path, &err), 0);
        ck_assert_int_eq(aik_segment_load(path, &g, digest, &err), 0);
        serialize(f, &buf, &len);
        ck_assert_int_eq(aik_sha256_buf(buf, len, want), 0);
        ck_assert_mem_eq(digest, want, 32);
        /* the layout of docs/adapters.md */
        ck_assert_mem_eq(buf + H_MAGIC, "ASG1", 4);
        ck_assert_uint_eq(get(buf + H_HSIZE, 4), H_SIZE);
        ck_assert_uint_eq(get(buf + H_KIND, 4), 4);
        ck_assert_uint_eq(get(buf + H_PCOUNT, 4), f->n_tensors);
        ck_assert_uint_eq(get(buf + H_PSIZE, 8), len - H_SIZE);
        ck_assert_uint_eq(get(buf + H_FIRST, 4), 1);
        ck_assert_uint_eq(get(buf + H_END, 4), 3);
        ck_assert_int_eq(g->kind, AIK_ADAPTER_SEGMENT);
        ck_assert_uint_eq(g->layer_first, 1);
        ck_assert_uint_eq(g->layer_end, 3);
        ck_assert_mem_eq(&g->id, &f->id, sizeof(f->id));
        ck_assert_uint_eq(g->n_tensors, f->n_tensors);
        for (uint32_t i = 0; i < f->n_tensors; i++) {
            const aik_adapter_tensor *x = &f->tensors[i], *y = &g->tensors[i];
            const aik_slm_tensor *mt = aik_slm_find(pkg, x->name);

            ck_assert_str_eq(x->name, y->name);
            ck_assert_int_eq(y->dtype, mt->dtype);
            ck_assert_mem_eq(y->shape, mt->shape, sizeof(y->shape));
            ck_assert_uint_eq(y->data_size, mt->size);
            /* stored in the tensor's own dtype: the .slm bytes */
            ck_assert_mem_eq(y->data, mt->data, mt->size);
        }
        ck_assert_int_eq(aik_adapter_check(g, pkg, &err), AIK_ADAPTER_COMPATIBLE);
        /* the delta entry points refuse a fragment, the segment ones a delta */
        {
            aik_adapter *x = NULL;
            ck_assert_int_eq(aik_adapter_parse(buf, len, &x, &err), -EINVAL);
            ck_assert_str_eq(err.where, "header.magic");
            ck_assert_int_eq(aik_adapter_load(path, &x, NULL, &err), -EINVAL);
            ck_assert_int_eq(aik_adapter_load_any(path, &x, NULL, &err), 0);
            ck_assert_int_eq(x->kind, AIK_ADAPTER_SEGMENT);
            aik_adapter_free(x);
        }
        free(buf);
        aik_adapter_free(f);
        aik_adapter_free(g);
        aik_slm_close(pkg);
    }
}
END_TEST

START_TEST(test_delta_refused_by_segment_parse)
{
    aik_slm *pkg = open_pkg(g_f32);
    aik_adapter_identity id;
    aik_adapter *a = NULL, *x = NULL;
    aik_error err;
    uint64_t shape[1] = { 64 }, idx[1] = { 3 };
    float d[1] = { 1.0f };
    uint8_t *buf;
    size_t len;

    aik_adapter_identity_from_slm(pkg, &id);
    ck_assert_int_eq(aik_adapter_new(AIK_ADAPTER_SPARSE, &id, &a), 0);
    ck_assert_int_eq(aik_adapter_add_sparse(a, "blk.0.attn_norm.weight", 1, shape, 1, idx, d, &err), 0);
    serialize(a, &buf, &len);
    ck_assert_int_eq(aik_segment_parse(buf, len, &x, &err), -EINVAL);
    ck_assert_str_eq(err.where, "header.magic");
    ck_assert_ptr_null(x);
    free(buf);
    aik_adapter_free(a);
    aik_slm_close(pkg);
}
END_TEST

/* A one-layer model small enough to truncate at every length. */
static aik_adapter *small_fragment(aik_dtype dt, const char *dir)
{
    aik_slm_header hdr;
    char path[600];
    aik_slm *pkg = NULL;
    aik_adapter *f = NULL;
    aik_error err;

    tiny_header(&hdr);
    hdr.dim = 32;
    hdr.n_heads = 2;
    hdr.n_kv_heads = 1;
    hdr.ffn_dim = 32;
    hdr.n_layers = 1;
    snprintf(path, sizeof(path), "%s/.small-%s.slm", dir, aik_dtype_name(dt));
    if (tiny_model_write(path, &hdr, NULL, dt, 3) < 0 || aik_slm_open(path, 0, &pkg, &err) < 0)
        return NULL;
    if (aik_segment_extract(pkg, 0, 1, &f, &err) < 0)
        f = NULL;
    aik_slm_close(pkg);
    unlink(path);
    return f;
}

START_TEST(test_truncation_every_length)
{
    static const aik_dtype dts[] = { AIK_DTYPE_Q8_0, AIK_DTYPE_F32 };

    for (int k = 0; k < 2; k++) {
        aik_adapter *f = small_fragment(dts[k], g_dir), *b = NULL;
        uint8_t *buf;
        size_t len;
        aik_error err;

        ck_assert_ptr_nonnull(f);
        serialize(f, &buf, &len);
        for (size_t n = 0; n < len; n++) {
            /* exactly n bytes, so ASan catches any read past them */
            uint8_t *t = malloc(n ? n : 1);
            memcpy(t, buf, n);
            ck_assert_msg(aik_segment_parse(t, n, &b, &err) < 0, "%s accepted at %zu of %zu",
                          aik_dtype_name(dts[k]), n, len);
            ck_assert(err.where[0] != '\0');
            /* with length and checksum fixed up, the record walk itself
             * must find the truncation */
            if (n >= H_SIZE) {
                put(t + H_PSIZE, 8, n - H_SIZE);
                reseal(t, n);
                ck_assert_msg(aik_segment_parse(t, n, &b, &err) < 0, "resealed %s accepted at %zu",
                              aik_dtype_name(dts[k]), n);
                ck_assert(err.where[0] != '\0');
            }
            free(t);
        }
        ck_assert_int_eq(aik_segment_parse(buf, len, &b, &err), 0);
        aik_adapter_free(b);
        free(buf);
        aik_adapter_free(f);
    }
}
END_TEST

/* Break one field; expect code and a where containing want. */
static void expect_field(const uint8_t *good, size_t len, size_t off, int width, uint64_t value, bool do_reseal,
                         int code, const char *want)
{
    uint8_t *t = malloc(len);
    aik_adapter *a = NULL;
    aik_error err;
    int r;

    memcpy(t, good, len);
    put(t + off, width, value);
    if (do_reseal)
        reseal(t, len);
    r = aik_segment_parse(t, len, &a, &err);
    ck_assert_msg(r == code, "off %zu: expected %d, got %d (%s: %s)", off, code, r, err.where, err.message);
    ck_assert_ptr_null(a);
    ck_assert_msg(strstr(err.where, want) != NULL, "off %zu: where '%s' lacks '%s' (%s)", off, err.where, want,
                  err.message);
    free(t);
}

START_TEST(test_bad_field)
{
    aik_adapter *f = small_fragment(AIK_DTYPE_Q8_0, g_dir);
    uint8_t *buf;
    size_t len, rec = H_SIZE, nd, nl, tail;

    ck_assert_ptr_nonnull(f);
    serialize(f, &buf, &len);
    /* the first record: find its dtype block; pick a 2-D q8_0 tensor later */
    nl = get(buf + rec, 2);
    nd = get(buf + rec + 2, 2);
    tail = rec + 8 + 8 * nd + nl; /* dtype, reserved2, data_size */

    expect_field(buf, len, H_MAGIC, 4, 0x31504441 /* "ADP1" */, false, -EINVAL, "header.magic");
    expect_field(buf, len, 4, 2, 2, false, -EPROTONOSUPPORT, "header.version_major");
    expect_field(buf, len, H_HSIZE, 4, 144, false, -EINVAL, "header.header_size");
    expect_field(buf, len, H_KIND, 4, 1, false, -EINVAL, "header.kind");
    expect_field(buf, len, H_FIRST, 4, 3, false, -EINVAL, "header.layer_first");
    expect_field(buf, len, H_FIRST, 4, 1, false, -EINVAL, "header.layer_first"); /* first == end */
    expect_field(buf, len, H_END, 4, 1025, false, -EINVAL, "header.layer_end");
    expect_field(buf, len, H_PSIZE, 8, len, false, -EINVAL, "header.payload_size");
    expect_field(buf, len, H_PSHA, 1, buf[H_PSHA] ^ 1, false, -EBADMSG, "header.payload_sha256");
    expect_field(buf, len, H_PCOUNT, 4, 0xffffffffu, false, -EINVAL, "header.payload_count");
    expect_field(buf, len, tail, 4, AIK_DTYPE_COUNT, true, -EINVAL, "tensor[0].dtype");
    expect_field(buf, len, tail + 4, 4, 1, true, -EINVAL, "tensor[0].reserved2");
    expect_field(buf, len, tail + 8, 8, get(buf + tail + 8, 8) + 1, true, -EINVAL, "tensor[0].data_size");
    expect_field(buf, len, tail + 8, 8, UINT64_MAX, true, -EINVAL, "tensor[0].data_size");
    /* q8_0 rows are whole blocks: shape[0] = 33 */
    {
        uint32_t i = 0;
        size_t r = H_SIZE;
        for (;; i++) {
            size_t l = get(buf + r, 2), d = get(buf + r + 2, 2), t = r + 8 + 8 * d + l;
            if (get(buf + t, 4) == AIK_DTYPE_Q8_0) {
                expect_field(buf, len, r + 8, 8, 33, true, -EINVAL, "shape[0]");
                break;
            }
            r = t + 16 + get(buf + t + 8, 8);
            ck_assert_uint_lt(r, len);
        }
    }
    /* a non-zero header extension */
    {
        uint8_t *t = calloc(1, len + 8);
        aik_adapter *a = NULL;
        aik_error err;

        memcpy(t, buf, H_SIZE);
        memcpy(t + H_SIZE + 8, buf + H_SIZE, len - H_SIZE);
        put(t + H_HSIZE, 4, H_SIZE + 8);
        ck_assert_int_eq(aik_segment_parse(t, len + 8, &a, &err), 0); /* zero extension: accepted */
        ck_assert_uint_eq(a->n_tensors, f->n_tensors);
        aik_adapter_free(a);
        t[H_SIZE + 3] = 1;
        ck_assert_int_eq(aik_segment_parse(t, len + 8, &a, &err), -EINVAL);
        ck_assert_str_eq(err.where, "header.reserved");
        free(t);
    }
    free(buf);
    aik_adapter_free(f);
}
END_TEST

/* --------------------------------------------------------- validation --- */

/* A fragment of layers [first, end) of pkg built tensor by tensor through the
 * public builder, serialized and parsed back (so the check sees what a
 * reader would). skip: a tensor left out; extra: added after. */
typedef struct extra_tensor {
    const char *name;
    aik_dtype dtype;
    uint32_t n_dims;
    uint64_t shape[4];
    const void *data;
    uint64_t size;
} extra_tensor;

static aik_adapter *craft(const aik_slm *pkg, uint32_t first, uint32_t end, const char *skip,
                          const extra_tensor *replace, const extra_tensor *extra, const aik_adapter_identity *id_in)
{
    aik_adapter_identity id;
    aik_adapter *f = NULL, *g = NULL;
    aik_error err;
    uint8_t *buf;
    size_t len;
    uint32_t l;

    aik_adapter_identity_from_slm(pkg, &id);
    if (id_in)
        id = *id_in;
    ck_assert_int_eq(aik_segment_new(&id, first, end, &f), 0);
    for (uint32_t i = 0; i < pkg->hdr.tensor_count; i++) {
        const aik_slm_tensor *t = &pkg->tensors[i];
        if (aik_segment_layer_of(t->name, &l) < 0 || l < first || l >= end || (skip && !strcmp(t->name, skip)))
            continue;
        if (replace && strcmp(t->name, replace->name) == 0)
            ck_assert_int_eq(aik_segment_add(f, t->name, replace->dtype, replace->n_dims, replace->shape,
                                             replace->data, replace->size, &err),
                             0);
        else
            ck_assert_int_eq(aik_segment_add(f, t->name, t->dtype, t->n_dims, t->shape, t->data, t->size, &err), 0);
    }
    if (extra)
        ck_assert_msg(aik_segment_add(f, extra->name, extra->dtype, extra->n_dims, extra->shape, extra->data,
                                      extra->size, &err) == 0,
                      "%s", err.message);
    serialize(f, &buf, &len);
    ck_assert_msg(aik_segment_parse(buf, len, &g, &err) == 0, "%s: %s", err.where, err.message);
    free(buf);
    aik_adapter_free(f);
    return g;
}

static void expect_check(aik_adapter *f, const aik_slm *pkg, aik_adapter_check_result want, const char *where)
{
    aik_error err;
    aik_adapter_check_result got = aik_adapter_check(f, pkg, &err);
    const char *name = aik_adapter_check_name(want);

    ck_assert_msg(got == want, "expected %s, got %s (%s: %s)", name, aik_adapter_check_name(got), err.where,
                  err.message);
    ck_assert_int_eq(err.code, -EINVAL);
    ck_assert_msg(strncmp(err.message, name, strlen(name)) == 0, "message '%s' does not start with %s",
                  err.message, name);
    ck_assert_msg(strstr(err.where, where) != NULL, "where '%s' lacks '%s'", err.where, where);
    ck_assert_int_eq(aik_adapter_validate(f, pkg, &err), -EINVAL);
    aik_adapter_free(f);
}

START_TEST(test_validate_identity)
{
    aik_slm *pkg = open_pkg(g_f32), *q8 = open_pkg(g_q8);
    aik_adapter_identity id, base;

    aik_adapter_identity_from_slm(pkg, &base);
    id = base;
    id.tensor_count++;
    expect_check(craft(pkg, 1, 3, NULL, NULL, NULL, &id), pkg, AIK_ADAPTER_ERR_TENSOR_COUNT, "header.tensor_count");
    id = base;
    id.flags ^= AIK_SLM_FLAG_QKV_BIAS;
    expect_check(craft(pkg, 1, 3, NULL, NULL, NULL, &id), pkg, AIK_ADAPTER_ERR_FLAGS, "header.flags");
    id = base;
    id.parameter_count++;
    expect_check(craft(pkg, 1, 3, NULL, NULL, NULL, &id), pkg, AIK_ADAPTER_ERR_PARAMETER_COUNT,
                 "header.parameter_count");
    id = base;
    id.layout_checksum[5] ^= 1;
    expect_check(craft(pkg, 1, 3, NULL, NULL, NULL, &id), pkg, AIK_ADAPTER_ERR_LAYOUT_CHECKSUM,
                 "header.layout_checksum");
    id = base;
    id.tokenizer_checksum[31] ^= 0x80;
    expect_check(craft(pkg, 1, 3, NULL, NULL, NULL, &id), pkg, AIK_ADAPTER_ERR_TOKENIZER_CHECKSUM,
                 "header.tokenizer_checksum");
    /* a fragment of the f32 model does not fit its q8_0 copy (the dtype is
     * part of the layout) */
    expect_check(craft(pkg, 1, 3, NULL, NULL, NULL, NULL), q8, AIK_ADAPTER_ERR_LAYOUT_CHECKSUM,
                 "header.layout_checksum");
    aik_slm_close(q8);
    aik_slm_close(pkg);
}
END_TEST

START_TEST(test_validate_payloads)
{
    aik_slm *pkg = open_pkg(g_f32), *q8 = open_pkg(g_q8), *q4 = open_pkg(g_q4);
    const aik_slm_tensor *k = aik_slm_find(pkg, "blk.1.attn_k.weight"), *norm = aik_slm_find(pkg, "blk.2.attn_norm.weight");
    const aik_slm_tensor *q8w = aik_slm_find(q8, "blk.1.ffn_up.weight"), *q4w = aik_slm_find(q4, "blk.2.attn_q.weight");
    uint8_t *bad = NULL;

    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_nonnull(norm);
    ck_assert_ptr_nonnull(q8w);
    ck_assert_ptr_nonnull(q4w);
    ck_assert_int_eq(k->n_dims, 2);
    ck_assert_uint_ne(k->shape[0], k->shape[1]);
    ck_assert_int_eq(q8w->dtype, AIK_DTYPE_Q8_0);
    ck_assert_int_eq(q4w->dtype, AIK_DTYPE_Q4_0);

    /* the good one, for each base */
    {
        aik_error err;
        aik_adapter *f = craft(pkg, 1, 3, NULL, NULL, NULL, NULL);
        ck_assert_int_eq(aik_adapter_check(f, pkg, &err), AIK_ADAPTER_COMPATIBLE);
        aik_adapter_free(f);
        f = craft(q8, 0, 4, NULL, NULL, NULL, NULL);
        ck_assert_int_eq(aik_adapter_check(f, q8, &err), AIK_ADAPTER_COMPATIBLE);
        aik_adapter_free(f);
        f = craft(q4, 3, 4, NULL, NULL, NULL, NULL);
        ck_assert_int_eq(aik_adapter_check(f, q4, &err), AIK_ADAPTER_COMPATIBLE);
        aik_adapter_free(f);
    }
    /* layer range beyond the model's 4 layers */
    expect_check(craft(pkg, 3, 5, NULL, NULL, NULL, NULL), pkg, AIK_ADAPTER_ERR_LAYER_RANGE, "header.layer_end");
    /* a tensor the model lacks */
    {
        extra_tensor x = { "blk.1.bogus.weight", AIK_DTYPE_F32, 1, { 64, 1, 1, 1 }, norm->data, norm->size };
        expect_check(craft(pkg, 1, 3, NULL, NULL, &x, NULL), pkg, AIK_ADAPTER_ERR_UNKNOWN_TENSOR,
                     "'blk.1.bogus.weight'");
    }
    /* a model tensor outside the range: another layer, or no layer at all */
    {
        const aik_slm_tensor *o = aik_slm_find(pkg, "blk.0.attn_norm.weight");
        extra_tensor x = { o->name, o->dtype, o->n_dims, { o->shape[0], o->shape[1], 1, 1 }, o->data, o->size };
        expect_check(craft(pkg, 1, 3, NULL, NULL, &x, NULL), pkg, AIK_ADAPTER_ERR_OUTSIDE_RANGE,
                     "'blk.0.attn_norm.weight'");
        o = aik_slm_find(pkg, "output_norm.weight");
        ck_assert_ptr_nonnull(o);
        x = (extra_tensor){ o->name, o->dtype, o->n_dims, { o->shape[0], 1, 1, 1 }, o->data, o->size };
        expect_check(craft(pkg, 1, 3, NULL, NULL, &x, NULL), pkg, AIK_ADAPTER_ERR_OUTSIDE_RANGE,
                     "'output_norm.weight'");
    }
    /* shape: the transposed shape (same element count and bytes), and 1-D */
    {
        extra_tensor x = { k->name, k->dtype, 2, { k->shape[1], k->shape[0], 1, 1 }, k->data, k->size };
        expect_check(craft(pkg, 1, 3, NULL, &x, NULL, NULL), pkg, AIK_ADAPTER_ERR_SHAPE_MISMATCH,
                     "'blk.1.attn_k.weight'");
        x = (extra_tensor){ k->name, k->dtype, 1, { k->shape[0] * k->shape[1], 1, 1, 1 }, k->data, k->size };
        expect_check(craft(pkg, 1, 3, NULL, &x, NULL, NULL), pkg, AIK_ADAPTER_ERR_SHAPE_MISMATCH,
                     "'blk.1.attn_k.weight'");
    }
    /* dtype: the f32 norm as f16 bits (half the bytes), and a q8_0 weight
     * in a q4_0 model */
    {
        extra_tensor x = { norm->name, AIK_DTYPE_F16, 1, { norm->shape[0], 1, 1, 1 }, norm->data, norm->size / 2 };
        expect_check(craft(pkg, 1, 3, NULL, &x, NULL, NULL), pkg, AIK_ADAPTER_ERR_DTYPE_MISMATCH,
                     "'blk.2.attn_norm.weight'");
    }
    {
        uint64_t n = aik_slm_tensor_nelems(q4w), sz;
        ck_assert_int_eq(aik_dtype_bytes(AIK_DTYPE_Q8_0, n, &sz), 0);
        bad = calloc(1, sz); /* zero scales: finite */
        extra_tensor x = { q4w->name, AIK_DTYPE_Q8_0, 2, { q4w->shape[0], q4w->shape[1], 1, 1 }, bad, sz };
        expect_check(craft(q4, 2, 3, NULL, &x, NULL, NULL), q4, AIK_ADAPTER_ERR_DTYPE_MISMATCH,
                     "'blk.2.attn_q.weight'");
        free(bad);
    }
    /* non-finite: NaN and -Inf in f32 data, NaN / Inf block scales in
     * q8_0 / q4_0 data */
    {
        static const uint32_t f32_bits[] = { 0x7fc00000u, 0xff800000u };
        for (int i = 0; i < 2; i++) {
            bad = malloc(k->size);
            memcpy(bad, k->data, k->size);
            put(bad + k->size - 4, 4, f32_bits[i]); /* the last value */
            extra_tensor x = { k->name, k->dtype, 2, { k->shape[0], k->shape[1], 1, 1 }, bad, k->size };
            expect_check(craft(pkg, 1, 3, NULL, &x, NULL, NULL), pkg, AIK_ADAPTER_ERR_NON_FINITE,
                         "'blk.1.attn_k.weight'");
            free(bad);
        }
        bad = malloc(q8w->size);
        memcpy(bad, q8w->data, q8w->size);
        put(bad + 34 * 3, 2, 0x7e00); /* f16 NaN as block 3's scale */
        {
            extra_tensor x = { q8w->name, q8w->dtype, 2, { q8w->shape[0], q8w->shape[1], 1, 1 }, bad, q8w->size };
            expect_check(craft(q8, 1, 2, NULL, &x, NULL, NULL), q8, AIK_ADAPTER_ERR_NON_FINITE,
                         "'blk.1.ffn_up.weight'");
        }
        free(bad);
        bad = malloc(q4w->size);
        memcpy(bad, q4w->data, q4w->size);
        put(bad + q4w->size - 18, 2, 0xfc00); /* f16 -Inf as the last block's scale */
        {
            extra_tensor x = { q4w->name, q4w->dtype, 2, { q4w->shape[0], q4w->shape[1], 1, 1 }, bad, q4w->size };
            expect_check(craft(q4, 2, 4, NULL, &x, NULL, NULL), q4, AIK_ADAPTER_ERR_NON_FINITE,
                         "'blk.2.attn_q.weight'");
        }
        free(bad);
    }
    /* coverage: a tensor of a replaced layer left out */
    expect_check(craft(pkg, 1, 3, "blk.2.ffn_down.weight", NULL, NULL, NULL), pkg, AIK_ADAPTER_ERR_MISSING_TENSOR,
                 "'blk.2.ffn_down.weight'");
    expect_check(craft(q8, 0, 1, "blk.0.attn_norm.weight", NULL, NULL, NULL), q8, AIK_ADAPTER_ERR_MISSING_TENSOR,
                 "'blk.0.attn_norm.weight'");
    aik_slm_close(q4);
    aik_slm_close(q8);
    aik_slm_close(pkg);
}
END_TEST

START_TEST(test_check_names_distinct)
{
    for (int i = 0; i <= AIK_ADAPTER_ERR_MISSING_TENSOR; i++) {
        ck_assert_str_ne(aik_adapter_check_name((aik_adapter_check_result)i), "?");
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(aik_adapter_check_name((aik_adapter_check_result)i),
                             aik_adapter_check_name((aik_adapter_check_result)j));
    }
    ck_assert_str_eq(aik_adapter_check_name(AIK_ADAPTER_ERR_LAYER_RANGE), "layer_range_invalid");
    ck_assert_str_eq(aik_adapter_check_name(AIK_ADAPTER_ERR_OUTSIDE_RANGE), "tensor_outside_range");
    ck_assert_str_eq(aik_adapter_check_name(AIK_ADAPTER_ERR_DTYPE_MISMATCH), "dtype_mismatch");
    ck_assert_str_eq(aik_adapter_check_name(AIK_ADAPTER_ERR_MISSING_TENSOR), "missing_tensor");
}
END_TEST

/* -------------------------------------------------------------- apply --- */

START_TEST(test_extract_apply_identity)
{
    static const char *const paths[] = { g_f32, g_q8, g_q4 };
    static const uint32_t ranges[][2] = { { 0, 1 }, { 1, 3 }, { 3, 4 }, { 0, 4 } };

    for (int k = 0; k < 3; k++) {
        aik_slm *pkg = open_pkg(paths[k]);
        for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
            aik_adapter *f = extract(pkg, ranges[r][0], ranges[r][1]);
            char out[600];
            aik_error err;

            snprintf(out, sizeof(out), "%s/same-%d-%zu.slm", g_dir, k, r);
            ck_assert_msg(aik_segment_apply(pkg, f, out, &err) == 0, "%s: %s", err.where, err.message);
            assert_same_file(paths[k], out);
            aik_adapter_free(f);
        }
        aik_slm_close(pkg);
    }
}
END_TEST

START_TEST(test_extract_rejects_bad_range)
{
    aik_slm *pkg = open_pkg(g_f32);
    aik_adapter *f = NULL;
    aik_error err;

    ck_assert_int_eq(aik_segment_extract(pkg, 2, 2, &f, &err), -EINVAL);
    ck_assert_int_eq(aik_segment_extract(pkg, 3, 5, &f, &err), -EINVAL);
    ck_assert_str_eq(err.where, "layers");
    ck_assert_ptr_null(f);
    aik_slm_close(pkg);
}
END_TEST

START_TEST(test_apply_refuses_incompatible)
{
    aik_slm *pkg = open_pkg(g_f32), *q8 = open_pkg(g_q8);
    aik_adapter *f = extract(pkg, 1, 3);
    char out[600];
    struct stat st;
    aik_error err;

    snprintf(out, sizeof(out), "%s/never.slm", g_dir);
    ck_assert_int_eq(aik_segment_apply(q8, f, out, &err), -EINVAL);
    ck_assert_msg(strncmp(err.message, "layout_checksum_mismatch", 24) == 0, "%s", err.message);
    ck_assert_int_eq(stat(out, &st), -1);
    aik_adapter_free(f);
    aik_slm_close(q8);
    aik_slm_close(pkg);
}
END_TEST

/* Copy of base with the tensors of layers [first, end) taken from donor,
 * written directly with the .slm writer (no segment code). */
static void splice_by_hand(const char *base_path, const char *donor_path, uint32_t first, uint32_t end,
                           const char *out)
{
    aik_slm *base = open_pkg(base_path), *donor = open_pkg(donor_path);
    aik_slm_writer *w = NULL;
    aik_error err;
    char prefix[32];
    bool take;

    ck_assert_int_eq(aik_slm_writer_begin(out, &base->hdr, base->layers, base->tokenizer, base->hdr.tokenizer_size,
                                          &w, &err),
                     0);
    for (uint32_t i = 0; i < base->hdr.tensor_count; i++) {
        const aik_slm_tensor *t = &base->tensors[i], *src = t;
        take = false;
        for (uint32_t l = first; l < end; l++) {
            snprintf(prefix, sizeof(prefix), "blk.%u.", l);
            take |= strncmp(t->name, prefix, strlen(prefix)) == 0;
        }
        if (take)
            src = aik_slm_find(donor, t->name);
        ck_assert_ptr_nonnull(src);
        ck_assert_int_eq(aik_slm_writer_add_tensor(w, t->name, t->dtype, t->n_dims, t->shape, src->data, &err), 0);
    }
    ck_assert_int_eq(aik_slm_writer_finish(w, &err), 0);
    aik_slm_close(donor);
    aik_slm_close(base);
}

static const int32_t prompt[] = { 256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100 };
#define N_PROMPT ((int)(sizeof(prompt) / sizeof(prompt[0])))

/* Logits of every prompt position; caller frees. */
static float *logits_of(const char *path, size_t *ret_n)
{
    aik_model *m = NULL;
    aik_session *s = NULL;
    aik_session_config sc = { .n_threads = 1, .batch = 16 };
    aik_error err;
    const float *lg;
    float *out;
    size_t n;

    ck_assert_msg(aik_model_open(path, AIK_SLM_VERIFY_CHECKSUMS, NULL, &m, &err) == 0, "%s: %s", err.where,
                  err.message);
    ck_assert_int_eq(aik_session_new(m, &sc, &s, &err), 0);
    ck_assert_int_eq(aik_session_eval(s, prompt, N_PROMPT, N_PROMPT, &lg, &err), 0);
    n = (size_t)N_PROMPT * m->hp.n_vocab;
    out = malloc(n * sizeof(float));
    memcpy(out, lg, n * sizeof(float));
    aik_session_free(s);
    aik_model_free(m);
    *ret_n = n;
    return out;
}

START_TEST(test_fragment_gives_donor_logits)
{
    static const aik_dtype dts[] = { AIK_DTYPE_F32, AIK_DTYPE_Q8_0, AIK_DTYPE_Q4_0 };
    static const char *const bases[] = { g_f32, g_q8, g_q4 };

    for (int k = 0; k < 3; k++) {
        aik_slm_header hdr;
        char donor[600], spliced[600], frag[600], out[600];
        aik_slm *sp, *base;
        aik_adapter *f = NULL;
        aik_error err;
        float *l_base, *l_spliced, *l_out;
        size_t n;
        double diff = 0;

        snprintf(donor, sizeof(donor), "%s/donor-%d.slm", g_dir, k);
        snprintf(spliced, sizeof(spliced), "%s/spliced-%d.slm", g_dir, k);
        snprintf(frag, sizeof(frag), "%s/layers12-%d.asg", g_dir, k);
        snprintf(out, sizeof(out), "%s/applied-%d.slm", g_dir, k);
        header4(&hdr);
        /* different weights everywhere; only layers 1-2 are spliced in */
        ck_assert_int_eq(tiny_model_write(donor, &hdr, NULL, dts[k], 99), 0);
        splice_by_hand(bases[k], donor, 1, 3, spliced);

        /* fragment of the spliced package, through a file */
        sp = open_pkg(spliced);
        f = extract(sp, 1, 3);
        ck_assert_int_eq(aik_adapter_write(f, frag, &err), 0);
        aik_adapter_free(f);
        aik_slm_close(sp);
        ck_assert_int_eq(aik_segment_load(frag, &f, NULL, &err), 0);
        base = open_pkg(bases[k]);
        ck_assert_msg(aik_segment_apply(base, f, out, &err) == 0, "%s: %s", err.where, err.message);
        aik_adapter_free(f);
        aik_slm_close(base);

        /* the applied package is the spliced one, byte for byte ... */
        assert_same_file(spliced, out);
        /* ... and computes its logits, which are not the base's */
        l_base = logits_of(bases[k], &n);
        l_spliced = logits_of(spliced, &n);
        l_out = logits_of(out, &n);
        ck_assert_mem_eq(l_out, l_spliced, n * sizeof(float));
        for (size_t i = 0; i < n; i++)
            diff = fmax(diff, fabs((double)l_out[i] - l_base[i]));
        ck_assert_msg(diff > 1e-3, "%s: layers 1-2 replaced but logits moved only %g", aik_dtype_name(dts[k]),
                      diff);
        free(l_base);
        free(l_spliced);
        free(l_out);
    }
}
END_TEST

/* ------------------------------------------------------------- corpus --- */

static int write_corpus(const char *dir)
{
    static const aik_dtype dts[] = { AIK_DTYPE_F32, AIK_DTYPE_Q8_0, AIK_DTYPE_Q4_0 };
    int rc = 0;

    for (int k = 0; k < 3; k++) {
        aik_adapter *f = small_fragment(dts[k], dir);
        char path[600];
        aik_error err;

        if (!f)
            return 1;
        snprintf(path, sizeof(path), "%s/%s.bin", dir, aik_dtype_name(dts[k]));
        rc |= aik_adapter_write(f, path, &err);
        aik_adapter_free(f);
    }
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    Suite *s;
    TCase *tc;

    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
        return write_corpus(argv[2]);
    s = suite_create("segment");
    tc = tcase_create("segment");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_layer_of);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_delta_refused_by_segment_parse);
    tcase_add_test(tc, test_truncation_every_length);
    tcase_add_test(tc, test_bad_field);
    tcase_add_test(tc, test_validate_identity);
    tcase_add_test(tc, test_validate_payloads);
    tcase_add_test(tc, test_check_names_distinct);
    tcase_add_test(tc, test_extract_apply_identity);
    tcase_add_test(tc, test_extract_rejects_bad_range);
    tcase_add_test(tc, test_apply_refuses_incompatible);
    tcase_add_test(tc, test_fragment_gives_donor_logits);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
