/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for ADP1 / ASP1 / ALR1 (loader/adapter.c), the model
 * compatibility check and merging (runtime/adapter_merge.c).
 *
 * Parser tests start from one good adapter and break exactly one field (byte
 * offsets spelled out here, independently of adapter.c, so they pin the
 * layout of docs/adapters.md), re-sealing the payload checksum where the
 * broken field lies after the header so the check under test is reached.
 *
 * `test_adapter --write-corpus DIR` writes the fuzz seed corpus.
 */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

#include "common/digest.h"
#include "kernels/cpu/cpu_kernels.h"
#include "loader/adapter.h"
#include "loader/slm.h"
#include "runtime/adapter_merge.h"
#include "runtime/model.h"
#include "train/adapter_lora.h"
#include "train/trainer.h"
#include "../engine/tiny_model.h"
#include "testutil.h"

enum { H_MAGIC = 0, H_VMAJ = 4, H_VMIN = 6, H_HSIZE = 8, H_KIND = 12, H_TCOUNT = 16, H_FLAGS = 20, H_PARAMS = 24,
       H_LAYOUT = 32, H_TOK = 64, H_PCOUNT = 96, H_RES = 100, H_PSIZE = 104, H_PSHA = 112, H_END = 144 };

static char *g_dir;
static char g_f32[512], g_q8[512], g_q4[512];

static void put(uint8_t *p, int width, uint64_t v)
{
    for (int i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void reseal(uint8_t *buf, size_t len)
{
    ck_assert_int_eq(aik_sha256_buf(buf + H_END, len - H_END, buf + H_PSHA), 0);
}

static void setup(void)
{
    aik_slm_header hdr;

    g_dir = aik_test_tmpdir();
    ck_assert_ptr_nonnull(g_dir);
    snprintf(g_f32, sizeof(g_f32), "%s/f32.slm", g_dir);
    snprintf(g_q8, sizeof(g_q8), "%s/q8.slm", g_dir);
    snprintf(g_q4, sizeof(g_q4), "%s/q4.slm", g_dir);
    tiny_header(&hdr);
    ck_assert_int_eq(tiny_model_write(g_f32, &hdr, NULL, AIK_DTYPE_F32, 7), 0);
    ck_assert_int_eq(tiny_model_write(g_q8, &hdr, NULL, AIK_DTYPE_Q8_0, 7), 0);
    ck_assert_int_eq(tiny_model_write(g_q4, &hdr, NULL, AIK_DTYPE_Q4_0, 7), 0);
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

/* First 2-D tensor of the package (a matmul weight). */
static const aik_slm_tensor *first_2d(const aik_slm *pkg)
{
    for (uint32_t i = 0; i < pkg->hdr.tensor_count; i++)
        if (pkg->tensors[i].n_dims == 2 && strstr(pkg->tensors[i].name, "blk.0."))
            return &pkg->tensors[i];
    ck_abort_msg("no 2-D tensor");
    return NULL;
}

static const aik_slm_tensor *first_1d(const aik_slm *pkg)
{
    for (uint32_t i = 0; i < pkg->hdr.tensor_count; i++)
        if (pkg->tensors[i].n_dims == 1)
            return &pkg->tensors[i];
    ck_abort_msg("no 1-D tensor");
    return NULL;
}

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return ((float)(*s >> 40) / (float)(1u << 24) - 0.5f) * 0.1f;
}

/* Adapters against pkg, one per kind, touching a 2-D and (dense/sparse) a
 * 1-D tensor. */
static aik_adapter *make(const aik_slm *pkg, aik_adapter_kind kind, uint64_t seed)
{
    const aik_slm_tensor *t2 = first_2d(pkg), *t1 = first_1d(pkg);
    aik_adapter_identity id;
    aik_adapter *a = NULL;
    aik_error err;
    uint64_t s = seed;

    aik_adapter_identity_from_slm(pkg, &id);
    ck_assert_int_eq(aik_adapter_new(kind, &id, &a), 0);
    if (kind == AIK_ADAPTER_DENSE) {
        uint64_t n = aik_slm_tensor_nelems(t2);
        float *d = malloc(n * sizeof(float));
        for (uint64_t i = 0; i < n; i++)
            d[i] = frand(&s);
        ck_assert_int_eq(aik_adapter_add_dense(a, t2->name, t2->n_dims, t2->shape, d, &err), 0);
        free(d);
        n = aik_slm_tensor_nelems(t1);
        d = malloc(n * sizeof(float));
        for (uint64_t i = 0; i < n; i++)
            d[i] = frand(&s);
        ck_assert_int_eq(aik_adapter_add_dense(a, t1->name, t1->n_dims, t1->shape, d, &err), 0);
        free(d);
    } else if (kind == AIK_ADAPTER_SPARSE) {
        uint64_t idx[5] = { 0, 3, 17, 100, aik_slm_tensor_nelems(t2) - 1 };
        float dl[5];
        for (int i = 0; i < 5; i++)
            dl[i] = frand(&s);
        ck_assert_int_eq(aik_adapter_add_sparse(a, t2->name, t2->n_dims, t2->shape, 5, idx, dl, &err), 0);
        ck_assert_int_eq(aik_adapter_add_sparse(a, t1->name, t1->n_dims, t1->shape, 2, idx, dl, &err), 0);
    } else {
        uint32_t rank = 4;
        uint64_t in = t2->shape[0], out = t2->shape[1];
        float *A = malloc(rank * in * sizeof(float)), *B = malloc(rank * out * sizeof(float));
        for (uint64_t i = 0; i < rank * in; i++)
            A[i] = frand(&s);
        for (uint64_t i = 0; i < rank * out; i++)
            B[i] = frand(&s);
        ck_assert_int_eq(aik_adapter_add_lowrank(a, t2->name, in, out, rank, 8.0f, A, B, &err), 0);
        free(A);
        free(B);
    }
    return a;
}

static void serialize(aik_adapter *a, uint8_t **buf, size_t *len)
{
    aik_error err;
    ck_assert_int_eq(aik_adapter_serialize(a, buf, len, &err), 0);
}

/* Parse must fail with code and a where containing want. */
static void expect_parse_fail(const uint8_t *buf, size_t len, int code, const char *want)
{
    aik_adapter *a = NULL;
    aik_error err;
    int r = aik_adapter_parse(buf, len, &a, &err);
    ck_assert_msg(r == code, "expected %d, got %d (%s: %s)", code, r, err.where, err.message);
    ck_assert_ptr_null(a);
    ck_assert_msg(strstr(err.where, want) != NULL, "where '%s' lacks '%s' (%s)", err.where, want, err.message);
}

START_TEST(test_roundtrip_all_kinds)
{
    aik_slm *pkg = open_pkg(g_f32);

    for (int k = AIK_ADAPTER_DENSE; k <= AIK_ADAPTER_LOWRANK; k++) {
        aik_adapter *a = make(pkg, (aik_adapter_kind)k, 42), *b = NULL;
        char path[600];
        uint8_t digest[32], want[32], *buf;
        size_t len;
        aik_error err;

        snprintf(path, sizeof(path), "%s/a%d.adp", g_dir, k);
        ck_assert_int_eq(aik_adapter_write(a, path, &err), 0);
        ck_assert_int_eq(aik_adapter_load(path, &b, digest, &err), 0);
        serialize(a, &buf, &len);
        ck_assert_int_eq(aik_sha256_buf(buf, len, want), 0);
        ck_assert_mem_eq(digest, want, 32);
        ck_assert_mem_eq(buf, aik_adapter_kind_magic((aik_adapter_kind)k), 4);
        ck_assert_int_eq(b->kind, k);
        ck_assert_uint_eq(b->n_tensors, a->n_tensors);
        ck_assert_mem_eq(&b->id, &a->id, sizeof(a->id));
        for (uint32_t i = 0; i < a->n_tensors; i++) {
            const aik_adapter_tensor *x = &a->tensors[i], *y = &b->tensors[i];
            ck_assert_str_eq(x->name, y->name);
            ck_assert_mem_eq(x->shape, y->shape, sizeof(x->shape));
            if (k == AIK_ADAPTER_DENSE)
                ck_assert_mem_eq(x->dense, y->dense, x->nelems * 4);
            if (k == AIK_ADAPTER_SPARSE) {
                ck_assert_uint_eq(x->count, y->count);
                ck_assert_mem_eq(x->indices, y->indices, x->count * 8);
                ck_assert_mem_eq(x->deltas, y->deltas, x->count * 4);
            }
            if (k == AIK_ADAPTER_LOWRANK) {
                ck_assert_uint_eq(x->rank, y->rank);
                ck_assert_float_eq(x->alpha, y->alpha);
                ck_assert_mem_eq(x->A, y->A, x->rank * x->in * 4);
                ck_assert_mem_eq(x->B, y->B, x->rank * x->out * 4);
            }
        }
        ck_assert_int_eq(aik_adapter_check(b, pkg, &err), AIK_ADAPTER_COMPATIBLE);
        free(buf);
        aik_adapter_free(a);
        aik_adapter_free(b);
    }
    aik_slm_close(pkg);
}
END_TEST

START_TEST(test_truncation_every_length)
{
    aik_slm *pkg = open_pkg(g_f32);

    for (int k = AIK_ADAPTER_DENSE; k <= AIK_ADAPTER_LOWRANK; k++) {
        aik_adapter *a = make(pkg, (aik_adapter_kind)k, 1), *b = NULL;
        uint8_t *buf;
        size_t len;
        aik_error err;

        serialize(a, &buf, &len);
        for (size_t n = 0; n < len; n++) {
            /* A copy of exactly n bytes, so ASan catches any read past it. */
            uint8_t *t = malloc(n ? n : 1);
            memcpy(t, buf, n);
            ck_assert_msg(aik_adapter_parse(t, n, &b, &err) < 0, "kind %d accepted at %zu of %zu", k, n, len);
            ck_assert(err.where[0] != '\0');
            /* Same with the length and checksum fixed up: the record walk
             * itself must find the truncation. */
            if (n >= H_END) {
                put(t + H_PSIZE, 8, n - H_END);
                reseal(t, n);
                ck_assert_msg(aik_adapter_parse(t, n, &b, &err) < 0, "resealed kind %d accepted at %zu", k, n);
            }
            free(t);
        }
        ck_assert_int_eq(aik_adapter_parse(buf, len, &b, &err), 0);
        aik_adapter_free(b);
        free(buf);
        aik_adapter_free(a);
    }
    aik_slm_close(pkg);
}
END_TEST

/* Mutate one field of a serialized adapter and expect a named rejection. */
typedef struct field_case {
    int kind;
    size_t off;    /* absolute, or relative to the first record when rec */
    bool rec;
    int width;
    uint64_t value;
    bool reseal;
    int code;
    const char *where;
} field_case;

START_TEST(test_bad_field)
{
    /* first record: u16 name_len @0, u16 n_dims @2, u32 reserved @4,
     * shape @8 (2-D: 16 bytes), name @24 */
    static const field_case cases[] = {
        { AIK_ADAPTER_DENSE, H_MAGIC, false, 4, 0x31504458, false, -EINVAL, "header.magic" },
        { AIK_ADAPTER_DENSE, H_VMAJ, false, 2, 2, false, -EPROTONOSUPPORT, "header.version_major" },
        { AIK_ADAPTER_DENSE, H_HSIZE, false, 4, 100, false, -EINVAL, "header.header_size" },
        { AIK_ADAPTER_DENSE, H_HSIZE, false, 4, 0xffffffff, false, -EINVAL, "header.header_size" },
        { AIK_ADAPTER_DENSE, H_KIND, false, 4, 3, false, -EINVAL, "header.kind" },
        { AIK_ADAPTER_DENSE, H_PCOUNT, false, 4, 0x7fffffff, false, -EINVAL, "header.payload_count" },
        { AIK_ADAPTER_DENSE, H_PCOUNT, false, 4, 1000, false, -EINVAL, "header.payload_count" },
        { AIK_ADAPTER_DENSE, H_PCOUNT, false, 4, 1, false, -EINVAL, "payload" },
        { AIK_ADAPTER_DENSE, H_RES, false, 4, 1, false, -EINVAL, "header.reserved" },
        { AIK_ADAPTER_DENSE, H_PSIZE, false, 8, 1, false, -EINVAL, "header.payload_size" },
        { AIK_ADAPTER_DENSE, H_PSIZE, false, 8, UINT64_MAX, false, -EINVAL, "header.payload_size" },
        { AIK_ADAPTER_DENSE, H_PSHA, false, 1, 0x5a, false, -EBADMSG, "header.payload_sha256" },
        { AIK_ADAPTER_DENSE, 0, true, 2, 0, true, -EINVAL, "tensor[0].name_len" },
        { AIK_ADAPTER_DENSE, 0, true, 2, 65, true, -EINVAL, "tensor[0].name_len" },
        { AIK_ADAPTER_DENSE, 0, true, 2, 0xffff, true, -EINVAL, "tensor[0].name_len" },
        { AIK_ADAPTER_DENSE, 2, true, 2, 0, true, -EINVAL, "tensor[0].n_dims" },
        { AIK_ADAPTER_DENSE, 2, true, 2, 5, true, -EINVAL, "tensor[0].n_dims" },
        { AIK_ADAPTER_DENSE, 4, true, 4, 1, true, -EINVAL, "tensor[0].reserved" },
        { AIK_ADAPTER_DENSE, 8, true, 8, 0, true, -EINVAL, "tensor[0].shape[0]" },
        { AIK_ADAPTER_DENSE, 8, true, 8, UINT64_MAX, true, -EINVAL, "tensor[0].shape[1]" },
        { AIK_ADAPTER_DENSE, 16, true, 8, 1ull << 40, true, -EINVAL, "tensor[0].delta" },
        { AIK_ADAPTER_DENSE, 24, true, 1, '/', true, -EINVAL, "tensor[0].name" },
        { AIK_ADAPTER_DENSE, 24, true, 1, 0, true, -EINVAL, "tensor[0].name" },
        { AIK_ADAPTER_SPARSE, 24 + 19, true, 8, UINT64_MAX, true, -EINVAL, "tensor[0].count" },
        { AIK_ADAPTER_SPARSE, 24 + 19, true, 8, 4096, true, -EINVAL, "tensor[0].indices" },
        { AIK_ADAPTER_LOWRANK, 24 + 19, true, 4, 0, true, -EINVAL, "tensor[0].rank" },
        { AIK_ADAPTER_LOWRANK, 24 + 19, true, 4, AIK_ADAPTER_MAX_RANK + 1, true, -EINVAL, "tensor[0].rank" },
        { AIK_ADAPTER_LOWRANK, 24 + 19, true, 4, 64, true, -EINVAL, "tensor[0].A" },
        { AIK_ADAPTER_LOWRANK, 2, true, 2, 1, true, -EINVAL, "tensor[0]" },
    };
    aik_slm *pkg = open_pkg(g_f32);
    const aik_slm_tensor *t2 = first_2d(pkg);

    /* The record offsets above assume a 2-D first tensor with a 19-byte
     * name ("blk.0.attn_q.weight" or another of that length). */
    ck_assert_msg(strlen(t2->name) == 19, "first 2-D tensor is '%s'", t2->name);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const field_case *c = &cases[i];
        aik_adapter *a = make(pkg, (aik_adapter_kind)c->kind, 3);
        uint8_t *buf;
        size_t len, off = c->rec ? H_END + c->off : c->off;

        serialize(a, &buf, &len);
        if (c->width == 1 && c->off == H_PSHA && !c->rec)
            buf[off] ^= (uint8_t)c->value;
        else
            put(buf + off, c->width, c->value);
        if (c->reseal)
            reseal(buf, len);
        expect_parse_fail(buf, len, c->code, c->where);
        free(buf);
        aik_adapter_free(a);
    }
    aik_slm_close(pkg);
}
END_TEST

START_TEST(test_duplicate_and_trailing)
{
    aik_slm *pkg = open_pkg(g_f32);
    aik_adapter *a = make(pkg, AIK_ADAPTER_DENSE, 5);
    aik_error err;
    uint8_t *buf, *big;
    size_t len;

    /* The builder refuses a repeat ... */
    ck_assert_int_eq(aik_adapter_add_dense(a, a->tensors[0].name, a->tensors[0].n_dims, a->tensors[0].shape,
                                           a->tensors[0].dense, &err), -EEXIST);
    /* ... and so does the reader: rename record 1 to record 0's name by
     * writing a file with the same tensor twice. */
    snprintf(a->tensors[1].name, sizeof(a->tensors[1].name), "%s", a->tensors[0].name);
    a->tensors[1].n_dims = a->tensors[0].n_dims;
    memcpy(a->tensors[1].shape, a->tensors[0].shape, sizeof(a->tensors[0].shape));
    free(a->tensors[1].dense);
    a->tensors[1].nelems = a->tensors[0].nelems;
    a->tensors[1].dense = calloc(a->tensors[1].nelems, sizeof(float));
    serialize(a, &buf, &len);
    expect_parse_fail(buf, len, -EINVAL, "tensor[1].name");
    free(buf);
    aik_adapter_free(a);

    a = make(pkg, AIK_ADAPTER_SPARSE, 5);
    serialize(a, &buf, &len);
    big = calloc(1, len + 3);
    memcpy(big, buf, len);
    put(big + H_PSIZE, 8, len + 3 - H_END);
    reseal(big, len + 3);
    expect_parse_fail(big, len + 3, -EINVAL, "payload");
    free(big);
    /* A newer minor version is readable (same major: compatible layout). */
    put(buf + H_VMIN, 2, 7);
    {
        aik_adapter *b = NULL;
        ck_assert_int_eq(aik_adapter_parse(buf, len, &b, &err), 0);
        ck_assert_uint_eq(b->version_minor, 7);
        aik_adapter_free(b);
    }
    free(buf);
    aik_adapter_free(a);
    aik_slm_close(pkg);
}
END_TEST

/* ----------------------------------------------------------- validation --- */

static void expect_check(aik_adapter *a, const aik_slm *pkg, aik_adapter_check_result want)
{
    aik_error err;
    aik_adapter_check_result got = aik_adapter_check(a, pkg, &err);
    ck_assert_msg(got == want, "expected %s, got %s (%s: %s)", aik_adapter_check_name(want),
                  aik_adapter_check_name(got), err.where, err.message);
    ck_assert_int_eq(err.code, -EINVAL);
    ck_assert(strstr(err.message, aik_adapter_check_name(want)) != NULL);
    ck_assert_int_eq(aik_adapter_validate(a, pkg, &err), -EINVAL);
}

START_TEST(test_validate_identity)
{
    aik_slm *pkg = open_pkg(g_f32), *q8 = open_pkg(g_q8);
    aik_adapter *a = make(pkg, AIK_ADAPTER_DENSE, 9);

    a->id.tensor_count++;
    expect_check(a, pkg, AIK_ADAPTER_ERR_TENSOR_COUNT);
    a->id.tensor_count--;
    a->id.flags ^= AIK_SLM_FLAG_QKV_BIAS;
    expect_check(a, pkg, AIK_ADAPTER_ERR_FLAGS);
    a->id.flags ^= AIK_SLM_FLAG_QKV_BIAS;
    a->id.parameter_count--;
    expect_check(a, pkg, AIK_ADAPTER_ERR_PARAMETER_COUNT);
    a->id.parameter_count++;
    a->id.layout_checksum[31] ^= 1;
    expect_check(a, pkg, AIK_ADAPTER_ERR_LAYOUT_CHECKSUM);
    a->id.layout_checksum[31] ^= 1;
    a->id.tokenizer_checksum[0] ^= 1;
    expect_check(a, pkg, AIK_ADAPTER_ERR_TOKENIZER_CHECKSUM);
    a->id.tokenizer_checksum[0] ^= 1;
    ck_assert_int_eq(aik_adapter_check(a, pkg, NULL), AIK_ADAPTER_COMPATIBLE);
    /* A q8_0 package has another layout (the dtype is part of it). */
    expect_check(a, q8, AIK_ADAPTER_ERR_LAYOUT_CHECKSUM);
    aik_adapter_free(a);
    aik_slm_close(pkg);
    aik_slm_close(q8);
}
END_TEST

START_TEST(test_validate_payloads)
{
    aik_slm *pkg = open_pkg(g_f32);
    aik_adapter *a;

    a = make(pkg, AIK_ADAPTER_DENSE, 9);
    snprintf(a->tensors[0].name, sizeof(a->tensors[0].name), "blk.9.nope.weight");
    expect_check(a, pkg, AIK_ADAPTER_ERR_UNKNOWN_TENSOR);
    aik_adapter_free(a);

    a = make(pkg, AIK_ADAPTER_DENSE, 9);
    a->tensors[0].shape[0] = a->tensors[0].shape[0] / 2; /* values array stays large enough */
    expect_check(a, pkg, AIK_ADAPTER_ERR_SHAPE_MISMATCH);
    a->tensors[0].shape[0] *= 2;
    a->tensors[0].n_dims = 3;
    expect_check(a, pkg, AIK_ADAPTER_ERR_SHAPE_MISMATCH);
    aik_adapter_free(a);

    a = make(pkg, AIK_ADAPTER_DENSE, 9);
    a->tensors[1].dense[3] = NAN;
    expect_check(a, pkg, AIK_ADAPTER_ERR_NON_FINITE);
    aik_adapter_free(a);

    a = make(pkg, AIK_ADAPTER_SPARSE, 9);
    a->tensors[0].deltas[4] = INFINITY;
    expect_check(a, pkg, AIK_ADAPTER_ERR_NON_FINITE);
    aik_adapter_free(a);

    a = make(pkg, AIK_ADAPTER_SPARSE, 9);
    a->tensors[0].indices[4] = a->tensors[0].nelems;
    expect_check(a, pkg, AIK_ADAPTER_ERR_INDEX_RANGE);
    aik_adapter_free(a);

    a = make(pkg, AIK_ADAPTER_SPARSE, 9);
    a->tensors[0].indices[2] = 2; /* 0 3 2 100 ... */
    expect_check(a, pkg, AIK_ADAPTER_ERR_INDEX_ORDER);
    aik_adapter_free(a);

    a = make(pkg, AIK_ADAPTER_SPARSE, 9);
    a->tensors[0].indices[2] = 3; /* 0 3 3 100 ... */
    expect_check(a, pkg, AIK_ADAPTER_ERR_INDEX_DUPLICATE);
    aik_adapter_free(a);

    a = make(pkg, AIK_ADAPTER_LOWRANK, 9);
    a->tensors[0].alpha = NAN;
    expect_check(a, pkg, AIK_ADAPTER_ERR_NON_FINITE);
    a->tensors[0].alpha = 8.0f;
    a->tensors[0].B[7] = -INFINITY;
    expect_check(a, pkg, AIK_ADAPTER_ERR_NON_FINITE);
    aik_adapter_free(a);

    a = make(pkg, AIK_ADAPTER_LOWRANK, 9);
    a->tensors[0].rank = 65; /* > min(in, out) = 64 (arrays are not read: rank is checked first) */
    expect_check(a, pkg, AIK_ADAPTER_ERR_RANK);
    aik_adapter_free(a);

    {
        /* Low-rank delta on a 1-D tensor: rejected by name. */
        const aik_slm_tensor *t1 = first_1d(pkg);
        aik_adapter_identity id;
        float A[4] = { 0 }, B[4] = { 0 };
        aik_error err;
        aik_adapter_identity_from_slm(pkg, &id);
        ck_assert_int_eq(aik_adapter_new(AIK_ADAPTER_LOWRANK, &id, &a), 0);
        ck_assert_int_eq(aik_adapter_add_lowrank(a, t1->name, 1, 1, 1, 1.0f, A, B, &err), 0);
        expect_check(a, pkg, AIK_ADAPTER_ERR_RANK);
        aik_adapter_free(a);
    }
    aik_slm_close(pkg);
}
END_TEST

START_TEST(test_check_names_distinct)
{
    ck_assert_int_eq(aik_adapter_check(NULL, NULL, NULL), AIK_ADAPTER_ERR_ARGUMENT);
    for (int i = 0; i <= AIK_ADAPTER_ERR_ARGUMENT; i++) {
        ck_assert_str_ne(aik_adapter_check_name((aik_adapter_check_result)i), "?");
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(aik_adapter_check_name((aik_adapter_check_result)i),
                             aik_adapter_check_name((aik_adapter_check_result)j));
    }
    ck_assert_str_eq(aik_adapter_check_name((aik_adapter_check_result)99), "?");
}
END_TEST

/* --------------------------------------------------------------- merge --- */

static float *tensor_f32(const aik_slm_tensor *t)
{
    uint64_t n = aik_slm_tensor_nelems(t);
    float *v = malloc(n * sizeof(float));
    aik_dequantize_row(t->dtype, t->data, v, (int64_t)n);
    return v;
}

/* Merge a into the package at base_path; compare every tensor of the result
 * with base + delta (exact when tol is 0, else within tol · block amax). */
static void merge_and_compare(const char *base_path, aik_adapter_kind kind, float tol)
{
    aik_slm *base = open_pkg(base_path), *f32 = open_pkg(g_f32), *out;
    aik_adapter *a;
    const aik_adapter *list[1];
    char path[600];
    aik_error err;
    aik_adapter_identity id;

    a = make(f32, kind, 11);
    aik_adapter_identity_from_slm(base, &id);
    a->id = id; /* same tensors and shapes, this base's layout */
    list[0] = a;
    snprintf(path, sizeof(path), "%s/merged-%d.slm", g_dir, kind);
    ck_assert_msg(aik_adapter_merge(base, list, 1, path, &err) == 0, "%s: %s", err.where, err.message);
    out = open_pkg(path); /* checksums verified */
    ck_assert_mem_ne(out->hdr.model_checksum, base->hdr.model_checksum, 32);
    ck_assert_mem_eq(out->hdr.layout_checksum, base->hdr.layout_checksum, 32);
    ck_assert_uint_eq(out->hdr.tensor_count, base->hdr.tensor_count);
    for (uint32_t i = 0; i < base->hdr.tensor_count; i++) {
        const aik_slm_tensor *bt = &base->tensors[i], *mt = &out->tensors[i];
        const aik_adapter_tensor *at = aik_adapter_find(a, bt->name);
        uint64_t n = aik_slm_tensor_nelems(bt);
        float *bv, *mv, *want;

        ck_assert_str_eq(bt->name, mt->name);
        ck_assert_int_eq(bt->dtype, mt->dtype);
        if (!at) {
            ck_assert_mem_eq(bt->data, mt->data, bt->size);
            continue;
        }
        bv = tensor_f32(bt);
        mv = tensor_f32(mt);
        want = malloc(n * sizeof(float));
        memcpy(want, bv, n * sizeof(float));
        /* base + delta, written out here rather than through the library */
        if (kind == AIK_ADAPTER_DENSE)
            for (uint64_t j = 0; j < n; j++)
                want[j] = bv[j] + at->dense[j];
        else if (kind == AIK_ADAPTER_SPARSE)
            for (uint64_t k = 0; k < at->count; k++)
                want[at->indices[k]] = bv[at->indices[k]] + at->deltas[k];
        else
            for (uint64_t o = 0; o < at->out; o++)
                for (uint64_t j = 0; j < at->in; j++) {
                    double acc = 0;
                    for (uint32_t r = 0; r < at->rank; r++)
                        acc += (double)at->B[o * at->rank + r] * at->A[r * at->in + j];
                    want[o * at->in + j] = (float)(bv[o * at->in + j] + at->alpha / at->rank * acc);
                }
        if (tol == 0 && kind != AIK_ADAPTER_LOWRANK) {
            ck_assert_mem_eq(mv, want, n * sizeof(float)); /* bit-exact */
        } else {
            for (uint64_t b0 = 0; b0 < n; b0 += 32) {
                float amax = 0;
                for (uint64_t j = b0; j < b0 + 32 && j < n; j++)
                    amax = fmaxf(amax, fabsf(want[j]));
                for (uint64_t j = b0; j < b0 + 32 && j < n; j++)
                    ck_assert_msg(fabsf(mv[j] - want[j]) <= (tol ? tol * amax : 1e-5f) + 1e-6f,
                                  "%s[%llu]: merged %g want %g", bt->name, (unsigned long long)j, mv[j], want[j]);
            }
        }
        free(bv);
        free(mv);
        free(want);
    }
    aik_slm_close(out);
    aik_adapter_free(a);
    aik_slm_close(base);
    aik_slm_close(f32);
}

START_TEST(test_merge_f32_exact)
{
    merge_and_compare(g_f32, AIK_ADAPTER_DENSE, 0);
    merge_and_compare(g_f32, AIK_ADAPTER_SPARSE, 0);
    merge_and_compare(g_f32, AIK_ADAPTER_LOWRANK, 0);
}
END_TEST

START_TEST(test_merge_quantized)
{
    /* q8_0: |error| <= d/2 = amax/254 per block; q4_0: d = amax/8, error <= d/2
     * except the clamped extreme; allow one step. */
    merge_and_compare(g_q8, AIK_ADAPTER_DENSE, 1.0f / 127.0f);
    merge_and_compare(g_q8, AIK_ADAPTER_SPARSE, 1.0f / 127.0f);
    merge_and_compare(g_q8, AIK_ADAPTER_LOWRANK, 1.0f / 127.0f);
    merge_and_compare(g_q4, AIK_ADAPTER_DENSE, 1.0f / 7.0f);
    merge_and_compare(g_q4, AIK_ADAPTER_LOWRANK, 1.0f / 7.0f);
}
END_TEST

START_TEST(test_merge_two_adapters_in_order)
{
    aik_slm *base = open_pkg(g_f32), *out;
    aik_adapter *a = make(base, AIK_ADAPTER_DENSE, 1), *b = make(base, AIK_ADAPTER_SPARSE, 2);
    const aik_adapter *list[2] = { a, b };
    const aik_slm_tensor *t2 = first_2d(base);
    const aik_adapter_tensor *da = aik_adapter_find(a, t2->name), *sb = aik_adapter_find(b, t2->name);
    char path[600];
    aik_error err;
    float *bv, *mv;

    snprintf(path, sizeof(path), "%s/two.slm", g_dir);
    ck_assert_int_eq(aik_adapter_merge(base, list, 2, path, &err), 0);
    out = open_pkg(path);
    bv = tensor_f32(t2);
    mv = tensor_f32(aik_slm_find(out, t2->name));
    for (uint64_t j = 0; j < da->nelems; j++) {
        float want = bv[j] + da->dense[j];
        for (uint64_t k = 0; k < sb->count; k++)
            if (sb->indices[k] == j)
                want += sb->deltas[k];
        ck_assert_msg(mv[j] == want, "[%llu] %g != %g", (unsigned long long)j, mv[j], want);
    }
    free(bv);
    free(mv);
    aik_slm_close(out);
    aik_adapter_free(a);
    aik_adapter_free(b);
    aik_slm_close(base);
}
END_TEST

START_TEST(test_merge_rejects_incompatible)
{
    aik_slm *base = open_pkg(g_f32);
    aik_adapter *good = make(base, AIK_ADAPTER_DENSE, 1), *bad = make(base, AIK_ADAPTER_SPARSE, 2);
    const aik_adapter *list[2] = { good, bad };
    char path[600];
    struct stat st;
    aik_error err;

    bad->tensors[0].indices[2] = 1; /* 0 3 1 ... */
    snprintf(path, sizeof(path), "%s/never.slm", g_dir);
    ck_assert_int_eq(aik_adapter_merge(base, list, 2, path, &err), -EINVAL);
    ck_assert(strstr(err.where, "adapter[1]") != NULL);
    ck_assert(strstr(err.message, "index_not_sorted") != NULL);
    ck_assert_int_eq(stat(path, &st), -1);
    /* A delta that overflows to infinity is refused too. */
    bad->tensors[0].indices[2] = 17;
    good->tensors[0].dense[0] = 3e38f;
    bad->tensors[0].deltas[0] = 3e38f;
    ck_assert_int_eq(aik_adapter_merge(base, list, 2, path, &err), -ERANGE);
    ck_assert_int_eq(stat(path, &st), -1);
    /* A segment fragment is not a delta: merging one is refused, not a no-op. */
    good->tensors[0].dense[0] = 0.0f;
    bad->kind = AIK_ADAPTER_SEGMENT;
    ck_assert_int_eq(aik_adapter_merge(base, list, 2, path, &err), -EINVAL);
    ck_assert(strstr(err.message, "segment fragment") != NULL);
    ck_assert_int_eq(stat(path, &st), -1);
    bad->kind = AIK_ADAPTER_SPARSE;
    aik_adapter_free(good);
    aik_adapter_free(bad);
    aik_slm_close(base);
}
END_TEST


/* The distillation pipeline's path: train LoRA pairs, save ALR1, load it,
 * validate against the base, merge: W' = W + alpha/rank · B·A for every pair. */
START_TEST(test_trainer_lora_to_alr1)
{
    static const char *const targets[] = { "attn_q.weight", "attn_v.weight" };
    aik_model *m = NULL;
    aik_trainer *tr = NULL;
    aik_train_config cfg;
    aik_train_stats st;
    aik_adapter *a = NULL;
    const aik_adapter *list[1];
    aik_slm *out;
    char apath[600], mpath[600];
    aik_error err;
    int32_t seqs[2 * 17];
    uint64_t s = 5;

    ck_assert_int_eq(aik_model_open(g_f32, AIK_SLM_VERIFY_CHECKSUMS, NULL, &m, &err), 0);
    aik_train_config_default(&cfg);
    cfg.mode = AIK_TRAIN_LORA;
    cfg.seq_len = 16;
    cfg.micro_batches = 2;
    cfg.steps = 3;
    cfg.warmup_steps = 0;
    cfg.lr = 1e-2f;
    cfg.n_threads = 1;
    cfg.lora_rank = 4;
    cfg.lora_alpha = 8.0f;
    cfg.lora_targets = targets;
    cfg.n_lora_targets = 2;
    ck_assert_msg(aik_trainer_new(m, &cfg, &tr, &err) == 0, "%s: %s", err.where, err.message);
    for (int step = 0; step < 3; step++) {
        for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++)
            seqs[i] = (int32_t)(frand(&s) * 1000.0f + 128.0f) & 0xff;
        ck_assert_msg(aik_trainer_step(tr, seqs, &st, &err) == 0, "%s: %s", err.where, err.message);
    }
    snprintf(apath, sizeof(apath), "%s/lora.alr", g_dir);
    ck_assert_msg(aik_trainer_write_alr1(tr, m->pkg, apath, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_int_eq(aik_adapter_load(apath, &a, NULL, &err), 0);
    ck_assert_int_eq(a->kind, AIK_ADAPTER_LOWRANK);
    ck_assert_uint_eq(a->n_tensors, aik_trainer_lora_count(tr));
    ck_assert_uint_eq(a->n_tensors, 2 * m->pkg->hdr.n_layers);
    ck_assert_int_eq(aik_adapter_check(a, m->pkg, &err), AIK_ADAPTER_COMPATIBLE);
    list[0] = a;
    snprintf(mpath, sizeof(mpath), "%s/lora-merged.slm", g_dir);
    ck_assert_int_eq(aik_adapter_merge(m->pkg, list, 1, mpath, &err), 0);
    out = open_pkg(mpath);
    for (size_t i = 0; i < aik_trainer_lora_count(tr); i++) {
        const char *name;
        uint32_t rank;
        float alpha;
        const float *A, *B;
        uint64_t in, outd;
        float *bv, *mv;
        double maxd = 0;

        ck_assert_int_eq(aik_trainer_lora_get(tr, i, &name, &rank, &alpha, &A, &B, &in, &outd), 0);
        bv = tensor_f32(aik_slm_find(m->pkg, name));
        mv = tensor_f32(aik_slm_find(out, name));
        for (uint64_t o = 0; o < outd; o++)
            for (uint64_t j = 0; j < in; j++) {
                double acc = 0;
                for (uint32_t r = 0; r < rank; r++)
                    acc += (double)B[o * rank + r] * A[r * in + j];
                acc = bv[o * in + j] + alpha / rank * acc;
                ck_assert_msg(fabs(mv[o * in + j] - acc) < 1e-5, "%s[%llu][%llu]", name, (unsigned long long)o,
                              (unsigned long long)j);
                maxd = fmax(maxd, fabs((double)mv[o * in + j] - bv[o * in + j]));
            }
        /* after three steps B is no longer zero: the merge changed something */
        ck_assert_msg(maxd > 0, "%s unchanged", name);
        free(bv);
        free(mv);
    }
    aik_slm_close(out);

    /* End to end: the merged package computes what the trainer's base +
     * LoRA computes (same loss on the same tokens), which pins the ALR1
     * convention (A rank×in, B out×rank, alpha/rank) to the trainer's. */
    {
        aik_model *mm = NULL;
        aik_trainer *full = NULL;
        aik_train_config fc;
        double l_lora, l_merged, l_base;
        aik_trainer *base_tr = NULL;

        ck_assert_int_eq(aik_trainer_eval(tr, seqs, 2, &l_lora, &err), 0);
        ck_assert_int_eq(aik_model_open(mpath, AIK_SLM_VERIFY_CHECKSUMS, NULL, &mm, &err), 0);
        fc = cfg;
        fc.mode = AIK_TRAIN_FULL;
        ck_assert_msg(aik_trainer_new(mm, &fc, &full, &err) == 0, "%s: %s", err.where, err.message);
        ck_assert_int_eq(aik_trainer_eval(full, seqs, 2, &l_merged, &err), 0);
        ck_assert_msg(fabs(l_lora - l_merged) < 1e-4 * fabs(l_lora), "lora %g merged %g", l_lora, l_merged);
        /* and it is not the base's loss (the comparison can fail) */
        ck_assert_msg(aik_trainer_new(m, &fc, &base_tr, &err) == 0, "%s: %s", err.where, err.message);
        ck_assert_int_eq(aik_trainer_eval(base_tr, seqs, 2, &l_base, &err), 0);
        ck_assert_msg(fabs(l_base - l_merged) > 10 * fabs(l_lora - l_merged), "base %g merged %g lora %g", l_base,
                      l_merged, l_lora);
        aik_trainer_free(base_tr);
        aik_trainer_free(full);
        aik_model_free(mm);
    }
    aik_adapter_free(a);
    aik_trainer_free(tr);
    aik_model_free(m);
}
END_TEST

/* ------------------------------------------------------------- corpus --- */

static int write_corpus(const char *dir)
{
    aik_slm_header hdr;
    char path[600], model[600];
    aik_slm *pkg = NULL;
    aik_error err;
    int rc = 0;

    snprintf(model, sizeof(model), "%s/.base.slm", dir);
    tiny_header(&hdr);
    hdr.dim = 32;
    hdr.n_heads = 2;
    hdr.n_kv_heads = 1;
    hdr.ffn_dim = 32;
    hdr.n_layers = 1;
    if (tiny_model_write(model, &hdr, NULL, AIK_DTYPE_F32, 1) < 0 ||
        aik_slm_open(model, 0, &pkg, &err) < 0)
        return 1;
    for (int k = AIK_ADAPTER_DENSE; k <= AIK_ADAPTER_LOWRANK; k++) {
        aik_adapter_identity id;
        aik_adapter *a = NULL;
        const aik_slm_tensor *t1 = first_1d(pkg);
        uint64_t idx[3] = { 1, 5, 9 };
        float v[64], A[64], B[64];

        for (int i = 0; i < 64; i++)
            v[i] = A[i] = B[i] = 0.01f * (float)(i - 32);
        aik_adapter_identity_from_slm(pkg, &id);
        aik_adapter_new((aik_adapter_kind)k, &id, &a);
        if (k == AIK_ADAPTER_DENSE)
            rc |= aik_adapter_add_dense(a, t1->name, 1, t1->shape, v, &err);
        else if (k == AIK_ADAPTER_SPARSE)
            rc |= aik_adapter_add_sparse(a, t1->name, 1, t1->shape, 3, idx, v, &err);
        else
            rc |= aik_adapter_add_lowrank(a, "blk.0.attn_q.weight", 8, 4, 2, 4.0f, A, B, &err);
        snprintf(path, sizeof(path), "%s/%s.bin", dir, aik_adapter_kind_name((aik_adapter_kind)k));
        rc |= aik_adapter_write(a, path, &err);
        aik_adapter_free(a);
    }
    aik_slm_close(pkg);
    unlink(model);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    Suite *s;
    TCase *tc;

    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
        return write_corpus(argv[2]);
    s = suite_create("adapter");
    tc = tcase_create("formats");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_roundtrip_all_kinds);
    tcase_add_test(tc, test_truncation_every_length);
    tcase_add_test(tc, test_bad_field);
    tcase_add_test(tc, test_duplicate_and_trailing);
    tcase_add_test(tc, test_validate_identity);
    tcase_add_test(tc, test_validate_payloads);
    tcase_add_test(tc, test_check_names_distinct);
    tcase_add_test(tc, test_merge_f32_exact);
    tcase_add_test(tc, test_merge_quantized);
    tcase_add_test(tc, test_merge_two_adapters_in_order);
    tcase_add_test(tc, test_merge_rejects_incompatible);
    tcase_add_test(tc, test_trainer_lora_to_alr1);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
