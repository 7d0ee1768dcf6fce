/* SPDX-License-Identifier: MIT */
/*
 * Vulkan backend against the CPU reference (kernels/cpu/ref.c), op by op and
 * dtype by dtype on small shapes, through the backend's segment interface,
 * plus its buffers, its failure paths and a whole tiny model (greedy tokens
 * CPU == Vulkan). Exits 77 (skipped) when no Vulkan device answers.
 *
 * Tolerances (NMSE = sum (y - ref)^2 / sum ref^2):
 *   - every op with f32 data, and matmul / get_rows with f16 and bf16
 *     weights (converted exactly): <= 1e-7 (only the summation order
 *     differs);
 *   - matmul with q8_0 / q4_0 weights: the shader quantizes the activations
 *     to q8_0 exactly as the CPU does (quantize_q8.comp) and computes the
 *     same integer block dot products, so against the CPU reference
 *     (aik_ref_matmul) and the CPU kernel path (aik_matmul): <= 1e-7.
 *     Against an f32 reference over the dequantized weights with f32
 *     activations: <= 1e-3 (the activation rounding, ~1/254 of each block's
 *     max, dominates; measured ~1e-5..1e-4).
 *   - get_rows of every dtype is a conversion: bitwise equal.
 *   - whole tiny model (f32, f16, q8_0, q4_0): prompt logits <= 1e-6 and
 *     the greedy tokens identical.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>

#include "kernels/cpu/cpu_internal.h"
#include "kernels/cpu/cpu_kernels.h"
#include "runtime/model.h"
#include "scheduler/cpu_exec.h"
#include "scheduler/vulkan_backend.h"
#include "testutil.h"
#include "../engine/tiny_model.h"

#define TOL_F32 1e-7
#define TOL_QACT 1e-3

static aik_vk *vk;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static float *rand_floats(size_t n)
{
    float *p = malloc(n * sizeof(float));
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static double nmse(const float *y, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

/* ---- a tiny hand-made segment ---- */

typedef struct tg {
    aik_backend_node nodes[32];
    aik_vk_buffer *bufs[64];
    int n_bufs;
    uint32_t n;
    uint32_t first; /* first compute node */
    aik_backend_tensor k[2], v[2];
} tg;

static aik_vk_buffer *tg_buf(tg *t, uint64_t bytes, const void *data)
{
    aik_vk_buffer *b;
    aik_error err;
    ck_assert_int_lt(t->n_bufs, 64);
    ck_assert_int_eq(aik_vk_buffer_alloc(vk, bytes, &b, &err), 0);
    if (data)
        ck_assert_int_eq(aik_vk_buffer_upload(vk, b, 0, data, bytes, &err), 0);
    t->bufs[t->n_bufs++] = b;
    return b;
}

static void tg_free(tg *t)
{
    for (int i = 0; i < t->n_bufs; i++)
        aik_vk_buffer_free(vk, t->bufs[i]);
    t->n_bufs = 0;
}

static int32_t tg_node(tg *t, aik_backend_node n)
{
    ck_assert_uint_lt(t->n, 32);
    for (int s = 0; s < 3; s++)
        if (n.src[s] == 0 && s > 0)
            n.src[s] = -1;
    t->nodes[t->n] = n;
    return (int32_t)t->n++;
}

/* An f32 input activation of n_cols per row (rows follow n_batch). */
static int32_t tg_input(tg *t, uint32_t n_cols, uint32_t rows, const float *data)
{
    aik_vk_buffer *b = tg_buf(t, (uint64_t)n_cols * rows * sizeof(float), data);
    return tg_node(t, (aik_backend_node){ .op = AIK_OP_NONE, .src = { -1, -1, -1 },
                                          .data = { (aik_backend_buffer *)b, 0 }, .n_cols = n_cols,
                                          .width = n_cols });
}

static int32_t tg_weight(tg *t, aik_dtype dt, uint64_t s0, uint64_t s1, const void *data)
{
    uint64_t bytes;
    ck_assert_int_eq(aik_dtype_bytes(dt, s0 * s1, &bytes), 0);
    aik_vk_buffer *b = tg_buf(t, bytes, data);
    return tg_node(t, (aik_backend_node){ .op = AIK_OP_WEIGHT, .src = { -1, -1, -1 },
                                          .data = { (aik_backend_buffer *)b, 0 }, .dtype = dt,
                                          .n_dims = s1 > 1 ? 2 : 1, .shape = { s0, s1, 1, 1 } });
}

/* A compute node with an output of rows × n_cols f32. */
static int32_t tg_op(tg *t, aik_backend_node n, uint32_t rows)
{
    aik_vk_buffer *b = tg_buf(t, (uint64_t)n.n_cols * rows * sizeof(float), NULL);
    n.data = (aik_backend_tensor){ (aik_backend_buffer *)b, 0 };
    if (!n.width)
        n.width = n.n_cols;
    if (!t->first)
        t->first = t->n;
    return tg_node(t, n);
}

static int tg_run(tg *t, uint32_t n_batch, uint32_t n_out, uint32_t n_past, uint32_t ctx, aik_error *err)
{
    aik_backend_segment seg = {
        .struct_size = sizeof(seg),
        .nodes = t->nodes,
        .n_nodes = t->n,
        .first = t->first,
        .end = t->n,
        .n_batch = n_batch,
        .n_out = n_out,
        .n_past = n_past,
        .ctx_len = ctx,
        .n_kv = 2,
        .k_cache = t->k,
        .v_cache = t->v,
    };
    return aik_vk_execute(vk, &seg, err);
}

static void tg_get(tg *t, int32_t node, float *out, size_t n)
{
    aik_error err;
    ck_assert_int_eq(aik_vk_buffer_download(vk, (aik_vk_buffer *)t->nodes[node].data.buffer, 0, out,
                                            n * sizeof(float), &err), 0);
}

static void run_ok(tg *t, uint32_t n_batch, uint32_t n_out, uint32_t n_past, uint32_t ctx)
{
    aik_error err = { 0 };
    int r = tg_run(t, n_batch, n_out, n_past, ctx, &err);
    ck_assert_msg(r == 0, "execute: %d %s: %s", r, err.where, err.message);
}

/* ------------------------------------------------------------- tests --- */

START_TEST(test_info_and_vtable)
{
    const aik_backend_ops *ops = aik_vk_backend_ops();
    aik_backend_info info = { .struct_size = sizeof(info) };
    aik_error err;

    ck_assert_uint_eq(ops->struct_size, sizeof(aik_backend_ops));
    ck_assert_uint_eq(ops->abi_major, AIK_BACKEND_ABI_MAJOR);
    ck_assert_str_eq(ops->name, "vulkan");
    ck_assert(ops->execute != NULL && ops->buffer_alloc != NULL && ops->synchronize == NULL);
    ck_assert_int_ge(ops->device_count(&err), 1);
    ck_assert_int_eq(aik_vk_get_info(vk, &info), 0);
    ck_assert_uint_eq(info.kind, AIK_BACKEND_GPU);
    ck_assert(strlen(info.name) > 0);
    ck_assert_uint_gt(info.memory_bytes, 0);
    for (uint32_t d = 0; d < AIK_DTYPE_COUNT; d++)
        ck_assert(info.op_dtypes[AIK_OP_MATMUL] & (1u << d));
    ck_assert_uint_eq(info.op_dtypes[AIK_OP_ADD], 1u << AIK_DTYPE_F32);
    ck_assert_uint_eq(info.op_dtypes[AIK_OP_NONE], 0);
    /* a caller with a shorter struct gets only its prefix */
    aik_backend_info small = { .struct_size = 8 };
    ck_assert_int_eq(aik_vk_get_info(vk, &small), 0);
    ck_assert_uint_eq(small.kind, AIK_BACKEND_GPU);
    ck_assert_str_eq(small.name, "");
    ck_assert(info.measured_gflops == 0.0);
    ck_assert_int_eq(ops->benchmark((aik_backend *)vk, &err), 0);
    ck_assert_int_eq(aik_vk_get_info(vk, &info), 0);
    ck_assert(info.measured_gflops > 0.0 && info.measured_gbps > 0.0);
    aik_backend_info bad = { 0 };
    ck_assert_int_eq(aik_vk_get_info(vk, &bad), -EINVAL);

    /* open through the vtable, index out of range */
    aik_backend *b = NULL;
    ck_assert_int_eq(ops->open(999, &b, &err), -ENODEV);
    ck_assert_ptr_null(b);
    ck_assert(strstr(err.message, "999") != NULL);
    ops->close(NULL);
}
END_TEST

START_TEST(test_buffers)
{
    aik_error err;
    aik_vk_buffer *a, *b, *c;
    uint8_t in[1000], out[1000];
    uint64_t base = aik_vk_bytes_used(vk);

    for (int i = 0; i < 1000; i++)
        in[i] = (uint8_t)(i * 7);
    ck_assert_int_eq(aik_vk_buffer_alloc(vk, 1000, &a, &err), 0);
    ck_assert_int_eq(aik_vk_buffer_alloc(vk, 3, &b, &err), 0);
    ck_assert_int_eq(aik_vk_buffer_upload(vk, a, 0, in, 1000, &err), 0);
    ck_assert_int_eq(aik_vk_buffer_upload(vk, b, 0, in, 3, &err), 0);
    memset(out, 0, sizeof(out));
    ck_assert_int_eq(aik_vk_buffer_download(vk, a, 0, out, 1000, &err), 0);
    ck_assert_mem_eq(in, out, 1000);
    ck_assert_int_eq(aik_vk_buffer_download(vk, a, 10, out, 20, &err), 0);
    ck_assert_mem_eq(in + 10, out, 20);
    /* b must not overlap a */
    ck_assert_int_eq(aik_vk_buffer_download(vk, a, 0, out, 1000, &err), 0);
    ck_assert_mem_eq(in, out, 1000);

    /* failure paths */
    ck_assert_int_eq(aik_vk_buffer_upload(vk, a, 999, in, 2, &err), -ERANGE);
    ck_assert(strstr(err.message, "outside") != NULL);
    ck_assert_int_eq(aik_vk_buffer_download(vk, a, UINT64_MAX, out, 2, &err), -ERANGE);
    ck_assert_int_eq(aik_vk_buffer_alloc(vk, 0, &c, &err), -EINVAL);
    c = NULL;
    ck_assert_int_eq(aik_vk_buffer_alloc(vk, UINT64_MAX, &c, &err), -E2BIG);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(aik_vk_buffer_upload(vk, a, 0, NULL, 4, &err), -EINVAL);

    /* freed space is reused; accounting returns to where it was */
    aik_vk_buffer_free(vk, a);
    ck_assert_int_eq(aik_vk_buffer_alloc(vk, 512, &c, &err), 0);
    aik_vk_buffer_free(vk, c);
    aik_vk_buffer_free(vk, b);
    aik_vk_buffer_free(vk, NULL);
    ck_assert_uint_eq(aik_vk_bytes_used(vk), base);
    ck_assert_uint_ge(aik_vk_bytes_reserved(vk), base);
}
END_TEST

static const aik_dtype all_dtypes[] = { AIK_DTYPE_F32, AIK_DTYPE_F16, AIK_DTYPE_BF16, AIK_DTYPE_Q8_0,
                                        AIK_DTYPE_Q4_0 };

/* W as stored (rows of K in dtype) and its exact f32 dequantization. */
static void make_weight(aik_dtype dt, uint32_t M, uint32_t K, void **ret_raw, float **ret_deq)
{
    uint64_t rowb;
    float *w = rand_floats((size_t)M * K), *deq = malloc((size_t)M * K * sizeof(float));
    ck_assert_int_eq(aik_dtype_bytes(dt, K, &rowb), 0);
    uint8_t *raw = malloc(rowb * M);
    ck_assert_ptr_nonnull(raw);
    ck_assert_ptr_nonnull(deq);
    for (uint32_t m = 0; m < M; m++) {
        aik_quantize_row(dt, w + (size_t)m * K, raw + rowb * m, K);
        aik_ref_dequantize_row(dt, raw + rowb * m, deq + (size_t)m * K, K);
    }
    free(w);
    *ret_raw = raw;
    *ret_deq = deq;
}

START_TEST(test_matmul)
{
    static const uint32_t shapes[][3] = { { 1, 32, 1 }, { 37, 64, 3 }, { 64, 96, 2 }, { 5, 7, 2 }, { 258, 64, 5 }, { 96, 64, 8 } };
    for (size_t d = 0; d < sizeof(all_dtypes) / sizeof(all_dtypes[0]); d++) {
        aik_dtype dt = all_dtypes[d];
        for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
            uint32_t M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
            if (aik_dtype_block_elems(dt) > 1 && K % 32)
                continue;
            tg t = { 0 };
            void *raw;
            float *deq, *x = rand_floats((size_t)N * K);
            /* Rows of multiples of c/2 with max |x| = c: x / (amax/127)
             * lands on (or one ULP beside) 63.5, where one ULP in the
             * shader's d or 1/d changes the quantized activation. Real rows
             * look like this after a quantized embedding lookup. */
            float *xt = malloc((size_t)N * K * sizeof(float));
            for (uint32_t r = 0; r < N; r++) {
                float c = 0.1f + 3.0f * fabsf(frand());
                for (uint32_t k = 0; k < K; k++)
                    xt[(size_t)r * K + k] = c * (float)((int)(k % 5) - 2) * 0.5f;
            }
            if (aik_dtype_block_elems(dt) > 1 && s % 2)
                memcpy(x, xt, (size_t)N * K * sizeof(float));
            free(xt);
            float *ref = malloc((size_t)N * M * sizeof(float)), *y = malloc((size_t)N * M * sizeof(float));
            make_weight(dt, M, K, &raw, &deq);
            int32_t in = tg_input(&t, K, N, x), w = tg_weight(&t, dt, K, M, raw);
            int32_t o = tg_op(&t, (aik_backend_node){ .op = AIK_OP_MATMUL, .src = { in, w, -1 }, .n_cols = M }, N);
            run_ok(&t, N, N, 0, 0);
            tg_get(&t, o, y, (size_t)N * M);
            bool quant = aik_dtype_block_elems(dt) > 1;
            aik_ref_matmul(AIK_DTYPE_F32, deq, x, NULL, ref, M, K, N);
            double e = nmse(y, ref, (size_t)N * M);
            ck_assert_msg(e <= (quant ? TOL_QACT : TOL_F32), "matmul %s M%u K%u N%u: NMSE %g vs dequantized f32",
                          aik_dtype_name(dt), M, K, N, e);
            /* against the CPU reference and the CPU's own (SIMD) path, both
             * quantizing activations for q* weights */
            void *scratch = malloc(aik_matmul_scratch_size(dt, K, N) + 1);
            aik_ref_matmul(dt, raw, x, scratch, ref, M, K, N);
            e = nmse(y, ref, (size_t)N * M);
            ck_assert_msg(e <= TOL_F32, "matmul %s M%u K%u N%u: NMSE %g vs CPU reference", aik_dtype_name(dt), M, K,
                          N, e);
            aik_matmul(dt, raw, x, scratch, ref, M, K, N);
            e = nmse(y, ref, (size_t)N * M);
            ck_assert_msg(e <= TOL_F32, "matmul %s M%u K%u N%u: NMSE %g vs CPU kernel", aik_dtype_name(dt), M, K, N, e);
            free(scratch);
            free(raw);
            free(deq);
            free(x);
            free(ref);
            free(y);
            tg_free(&t);
        }
    }
}
END_TEST

START_TEST(test_get_rows)
{
    const int32_t toks[4] = { 3, 0, 4, 3 };
    for (size_t d = 0; d < sizeof(all_dtypes) / sizeof(all_dtypes[0]); d++) {
        aik_dtype dt = all_dtypes[d];
        const uint32_t cols = 64, vocab = 5;
        tg t = { 0 };
        void *raw;
        float *deq, y[4 * 64];
        make_weight(dt, vocab, cols, &raw, &deq);
        int32_t w = tg_weight(&t, dt, cols, vocab, raw);
        aik_vk_buffer *tb = tg_buf(&t, sizeof(toks), toks);
        int32_t tk = tg_node(&t, (aik_backend_node){ .op = AIK_OP_TOKENS, .src = { -1, -1, -1 },
                                                     .data = { (aik_backend_buffer *)tb, 0 }, .n_cols = 1,
                                                     .width = 1 });
        int32_t o = tg_op(&t, (aik_backend_node){ .op = AIK_OP_GET_ROWS, .src = { w, tk, -1 }, .n_cols = cols }, 4);
        run_ok(&t, 4, 4, 0, 0);
        tg_get(&t, o, y, 4 * cols);
        for (int r = 0; r < 4; r++) {
            float ref[64];
            aik_get_row(dt, raw, toks[r], cols, ref);
            ck_assert_mem_eq(ref, deq + (size_t)toks[r] * cols, sizeof(ref));
            ck_assert_msg(nmse(y + r * cols, ref, cols) <= TOL_F32, "get_rows %s row %d", aik_dtype_name(dt), r);
            /* a lookup is a conversion: exact */
            ck_assert_mem_eq(y + r * cols, ref, sizeof(ref));
        }
        free(raw);
        free(deq);
        tg_free(&t);
    }
}
END_TEST

START_TEST(test_elementwise)
{
    const uint32_t rows = 3, cols = 70;
    const size_t n = (size_t)rows * cols;
    float *a = rand_floats(n), *b = rand_floats(n), *w = rand_floats(cols);
    float *y = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
    tg t = { 0 };
    int32_t ia = tg_input(&t, cols, rows, a), ib = tg_input(&t, cols, rows, b);
    int32_t iw = tg_weight(&t, AIK_DTYPE_F32, cols, 1, w);
    int32_t o_add = tg_op(&t, (aik_backend_node){ .op = AIK_OP_ADD, .src = { ia, ib, -1 }, .n_cols = cols }, rows);
    int32_t o_addw = tg_op(&t, (aik_backend_node){ .op = AIK_OP_ADD, .src = { ia, iw, -1 }, .n_cols = cols }, rows);
    int32_t o_mul = tg_op(&t, (aik_backend_node){ .op = AIK_OP_MUL, .src = { ia, ib, -1 }, .n_cols = cols }, rows);
    int32_t o_mulw = tg_op(&t, (aik_backend_node){ .op = AIK_OP_MUL, .src = { ia, iw, -1 }, .n_cols = cols }, rows);
    int32_t o_silu = tg_op(&t, (aik_backend_node){ .op = AIK_OP_SILU, .src = { ia, -1, -1 }, .n_cols = cols }, rows);
    int32_t o_swi = tg_op(&t, (aik_backend_node){ .op = AIK_OP_SWIGLU, .src = { ia, ib, -1 }, .n_cols = cols }, rows);
    int32_t o_rms = tg_op(&t, (aik_backend_node){ .op = AIK_OP_RMS_NORM, .src = { ia, iw, -1 }, .n_cols = cols,
                                                  .eps = 1e-5f }, rows);
    int32_t o_sm = tg_op(&t, (aik_backend_node){ .op = AIK_OP_SOFTMAX, .src = { o_add, -1, -1 }, .n_cols = cols },
                         rows);
    /* chained: a view (RESHAPE to 2*cols... rows halve is not integral for 3; use same width) */
    int32_t o_out = tg_op(&t, (aik_backend_node){ .op = AIK_OP_OUTPUT_ROWS, .src = { o_mul, -1, -1 }, .n_cols = cols,
                                                  .row_base = 1 }, 2);
    run_ok(&t, rows, 2, 0, 0);

    aik_ref_add(a, b, ref, n);
    tg_get(&t, o_add, y, n);
    ck_assert_msg(nmse(y, ref, n) <= TOL_F32, "add");
    for (uint32_t r = 0; r < rows; r++)
        aik_ref_add(a + r * cols, w, ref + r * cols, cols);
    tg_get(&t, o_addw, y, n);
    ck_assert_msg(nmse(y, ref, n) <= TOL_F32, "add broadcast");
    aik_ref_mul(a, b, ref, n);
    tg_get(&t, o_mul, y, n);
    ck_assert_msg(nmse(y, ref, n) <= TOL_F32, "mul");
    tg_get(&t, o_out, y, 2 * cols);
    ck_assert_mem_eq(y, ref + cols, 2 * cols * sizeof(float)); /* last two rows, copied */
    for (uint32_t r = 0; r < rows; r++)
        aik_ref_mul(a + r * cols, w, ref + r * cols, cols);
    tg_get(&t, o_mulw, y, n);
    ck_assert_msg(nmse(y, ref, n) <= TOL_F32, "mul broadcast");
    aik_ref_silu(a, ref, n);
    tg_get(&t, o_silu, y, n);
    ck_assert_msg(nmse(y, ref, n) <= TOL_F32, "silu %g", nmse(y, ref, n));
    aik_ref_swiglu(a, b, ref, n);
    tg_get(&t, o_swi, y, n);
    ck_assert_msg(nmse(y, ref, n) <= TOL_F32, "swiglu");
    for (uint32_t r = 0; r < rows; r++)
        aik_ref_rms_norm(a + r * cols, w, ref + r * cols, cols, 1e-5f);
    tg_get(&t, o_rms, y, n);
    ck_assert_msg(nmse(y, ref, n) <= TOL_F32, "rms_norm %g", nmse(y, ref, n));
    aik_ref_add(a, b, ref, n);
    for (uint32_t r = 0; r < rows; r++)
        aik_ref_softmax(ref + r * cols, cols);
    tg_get(&t, o_sm, y, n);
    ck_assert_msg(nmse(y, ref, n) <= TOL_F32, "softmax %g", nmse(y, ref, n));
    /* a wrong answer must be caught: the reference of mul is not add */
    aik_ref_mul(a, b, ref, n);
    tg_get(&t, o_add, y, n);
    ck_assert(nmse(y, ref, n) > 1e-2);
    free(a);
    free(b);
    free(w);
    free(y);
    free(ref);
    tg_free(&t);
}
END_TEST

START_TEST(test_rope)
{
    static const uint32_t cfg[][3] = { { 4, 16, 0 }, { 2, 64, 5 }, { 1, 8, 31 } }; /* heads, head_dim, n_past */
    for (int mode = 0; mode < 2; mode++)
        for (int c = 0; c < 3; c++) {
            const uint32_t H = cfg[c][0], D = cfg[c][1], past = cfg[c][2], rows = 3, cols = H * D;
            float *x = rand_floats((size_t)rows * cols), *ref = malloc((size_t)rows * cols * sizeof(float));
            float *y = malloc((size_t)rows * cols * sizeof(float));
            tg t = { 0 };
            int32_t in = tg_input(&t, cols, rows, x);
            int32_t o = tg_op(&t, (aik_backend_node){ .op = AIK_OP_ROPE, .src = { in, -1, -1 }, .n_cols = cols,
                                                      .n_heads = H, .head_dim = D, .theta = 10000.0f,
                                                      .rope_mode = (uint32_t)mode }, rows);
            run_ok(&t, rows, rows, past, 64);
            tg_get(&t, o, y, (size_t)rows * cols);
            memcpy(ref, x, (size_t)rows * cols * sizeof(float));
            for (uint32_t r = 0; r < rows; r++)
                aik_ref_rope(ref + (size_t)r * cols, (int)H, (int)D, past + r, 10000.0f, mode == AIK_ROPE_NEOX);
            double e = nmse(y, ref, (size_t)rows * cols);
            ck_assert_msg(e <= TOL_F32, "rope mode %d H%u D%u past %u: NMSE %g", mode, H, D, past, e);
            free(x);
            free(ref);
            free(y);
            tg_free(&t);
        }
}
END_TEST

/* Attention over a device KV cache, two calls (prompt then decode) so the
 * second one reads what the first appended. GQA: 4 query heads on 2 kv. */
START_TEST(test_attention)
{
    const uint32_t H = 4, KVH = 2, D = 16, ctx = 96, qc = H * D, kc = KVH * D;
    const float scale = 0.25f;
    static float kcache[96 * 32], vcache[96 * 32];
    uint32_t past = 0;
    tg t = { 0 };
    aik_vk_buffer *kb = tg_buf(&t, sizeof(kcache), NULL), *vb = tg_buf(&t, sizeof(vcache), NULL);
    t.k[1] = (aik_backend_tensor){ (aik_backend_buffer *)kb, 0 };
    t.v[1] = (aik_backend_tensor){ (aik_backend_buffer *)vb, 0 };
    /* prompt of 5, one decode step, then 70 rows so positions exceed the
     * 64 invocations of a workgroup (several per invocation) */
    for (int call = 0; call < 3; call++) {
        const uint32_t rows = call == 0 ? 5 : call == 1 ? 1 : 70;
        float *q = rand_floats((size_t)rows * qc), *k = rand_floats((size_t)rows * kc), *v = rand_floats((size_t)rows * kc);
        static float y[70 * 64], ref[70 * 64], scores[96];
        int n0 = t.n_bufs;
        t.n = 0;
        t.first = 0;
        int32_t iq = tg_input(&t, qc, rows, q), ik = tg_input(&t, kc, rows, k), iv = tg_input(&t, kc, rows, v);
        int32_t o = tg_op(&t, (aik_backend_node){ .op = AIK_OP_ATTENTION, .src = { iq, ik, iv }, .n_cols = qc,
                                                  .n_heads = H, .n_kv_heads = KVH, .head_dim = D, .layer = 1,
                                                  .scale = scale }, rows);
        run_ok(&t, rows, rows, past, ctx);
        tg_get(&t, o, y, (size_t)rows * qc);
        memcpy(kcache + (size_t)past * kc, k, (size_t)rows * kc * sizeof(float));
        memcpy(vcache + (size_t)past * kc, v, (size_t)rows * kc * sizeof(float));
        for (uint32_t r = 0; r < rows; r++)
            for (uint32_t h = 0; h < H; h++)
                aik_ref_attention_head(q + (size_t)r * qc + h * D, kcache + (h / (H / KVH)) * D,
                                       vcache + (h / (H / KVH)) * D, past + r + 1, (int)D, kc, scale, scores,
                                       ref + (size_t)r * qc + h * D);
        double e = nmse(y, ref, (size_t)rows * qc);
        ck_assert_msg(e <= TOL_F32, "attention call %d: NMSE %g", call, e);
        past += rows;
        free(q);
        free(k);
        free(v);
        /* drop this call's activation buffers, keep the cache */
        for (int i = n0; i < t.n_bufs; i++)
            aik_vk_buffer_free(vk, t.bufs[i]);
        t.n_bufs = n0;
    }
    tg_free(&t);
}
END_TEST

START_TEST(test_segment_errors)
{
    tg t = { 0 };
    aik_error err;
    float x[64] = { 0 };
    int32_t in = tg_input(&t, 64, 1, x);
    int32_t o = tg_op(&t, (aik_backend_node){ .op = AIK_OP_SILU, .src = { in, -1, -1 }, .n_cols = 64 }, 1);
    aik_backend_segment seg = { .struct_size = sizeof(seg), .nodes = t.nodes, .n_nodes = t.n, .first = 1,
                                .end = t.n, .n_batch = 1, .n_out = 1 };

    ck_assert_int_eq(aik_vk_execute(vk, &seg, &err), 0);
    ck_assert_int_eq(aik_vk_execute(vk, NULL, &err), -EINVAL);
    seg.end = t.n + 1;
    ck_assert_int_eq(aik_vk_execute(vk, &seg, &err), -EINVAL);
    seg.end = t.n;
    seg.n_out = 2;
    ck_assert_int_eq(aik_vk_execute(vk, &seg, &err), -EINVAL);
    seg.n_out = 1;
    t.nodes[o].op = 99;
    ck_assert_int_eq(aik_vk_execute(vk, &seg, &err), -ENOTSUP);
    ck_assert(strstr(err.message, "unknown op") != NULL);
    t.nodes[o].op = AIK_OP_SILU;
    t.nodes[o].src[0] = (int32_t)o; /* reads itself */
    ck_assert_int_eq(aik_vk_execute(vk, &seg, &err), -EINVAL);
    t.nodes[o].src[0] = in;
    t.nodes[in].data.buffer = NULL; /* input without storage */
    ck_assert_int_eq(aik_vk_execute(vk, &seg, &err), -EINVAL);
    ck_assert(strstr(err.message, "no buffer") != NULL);
    tg_free(&t);

    /* attention without a cache slot; rope beyond the context */
    tg u = { 0 };
    float q[64] = { 0 };
    int32_t iq = tg_input(&u, 64, 1, q), ik = tg_input(&u, 32, 1, q), iv = tg_input(&u, 32, 1, q);
    tg_op(&u, (aik_backend_node){ .op = AIK_OP_ATTENTION, .src = { iq, ik, iv }, .n_cols = 64, .n_heads = 4,
                                  .n_kv_heads = 2, .head_dim = 16, .layer = 0, .scale = 1 }, 1);
    ck_assert_int_eq(tg_run(&u, 1, 1, 0, 8, &err), -EINVAL); /* slot 0 has no buffers */
    ck_assert(strstr(err.message, "KV cache") != NULL);
    ck_assert_int_eq(tg_run(&u, 1, 1, 8, 8, &err), -ENOSPC);
    tg_free(&u);

    /* matmul whose "weight" is an activation, q8_0 rope is refused */
    tg v = { 0 };
    int32_t a = tg_input(&v, 32, 1, q), b = tg_input(&v, 32, 1, q);
    tg_op(&v, (aik_backend_node){ .op = AIK_OP_MATMUL, .src = { a, b, -1 }, .n_cols = 32 }, 1);
    ck_assert_int_eq(tg_run(&v, 1, 1, 0, 0, &err), -EINVAL);
    ck_assert(strstr(err.message, "without a weight") != NULL);
    tg_free(&v);

    /* shapes that do not match, buffers that are too small */
    tg m = { 0 };
    float wd[32 * 4] = { 0 };
    int32_t mx = tg_input(&m, 32, 2, wd);
    int32_t mw = tg_weight(&m, AIK_DTYPE_F32, 64, 4, NULL); /* K = 64, x has 32 columns */
    int32_t mo = tg_op(&m, (aik_backend_node){ .op = AIK_OP_MATMUL, .src = { mx, mw, -1 }, .n_cols = 4 }, 2);
    ck_assert_int_eq(tg_run(&m, 2, 2, 0, 0, &err), -EINVAL);
    ck_assert(strstr(err.message, "shape") != NULL);
    m.nodes[mw].shape[0] = 32;
    ck_assert_int_eq(tg_run(&m, 2, 2, 0, 0, &err), 0);
    ck_assert_int_eq(tg_run(&m, 3, 3, 0, 0, &err), -ERANGE); /* 3 rows do not fit buffers of 2 */
    m.nodes[mo].op = AIK_OP_ADD; /* 1-D operand of the wrong length */
    m.nodes[mo].n_cols = 32;
    m.nodes[mo].width = 32;
    ck_assert_int_eq(tg_run(&m, 2, 2, 0, 0, &err), -ERANGE); /* output holds 2 × 4 floats only */
    tg_free(&m);

    /* get_rows: an id outside the table reads zeros, never outside the buffer */
    tg gr = { 0 };
    float tab[2 * 32];
    for (int i = 0; i < 64; i++)
        tab[i] = (float)i + 1.0f;
    const int32_t ids[2] = { 1, 7 };
    int32_t tw = tg_weight(&gr, AIK_DTYPE_F32, 32, 2, tab);
    aik_vk_buffer *tb = tg_buf(&gr, sizeof(ids), ids);
    int32_t tk = tg_node(&gr, (aik_backend_node){ .op = AIK_OP_TOKENS, .src = { -1, -1, -1 },
                                                  .data = { (aik_backend_buffer *)tb, 0 }, .n_cols = 1, .width = 1 });
    int32_t go = tg_op(&gr, (aik_backend_node){ .op = AIK_OP_GET_ROWS, .src = { tw, tk, -1 }, .n_cols = 32 }, 2);
    run_ok(&gr, 2, 2, 0, 0);
    float got[64];
    tg_get(&gr, go, got, 64);
    ck_assert_mem_eq(got, tab + 32, 32 * sizeof(float));
    for (int i = 32; i < 64; i++)
        ck_assert(got[i] == 0.0f);
    tg_free(&gr);
}
END_TEST

/* ---- whole model: greedy tokens CPU == Vulkan ---- */

static int argmax(const float *x, uint32_t n)
{
    int best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = (int)i;
    return best;
}

static void greedy_compare(aik_dtype dt)
{
    char *dir = aik_test_tmpdir(), *path;
    aik_slm_header hdr;
    aik_model *m;
    aik_error err;
    aik_cpu_exec *ce;
    aik_vk_exec *ve;
    const int32_t prompt[5] = { 256, 72, 101, 108, 108 };
    int32_t tc[12], tv[12];
    const uint32_t n_gen = 12;

    ck_assert_ptr_nonnull(dir);
    ck_assert_int_ge(asprintf(&path, "%s/tiny.slm", dir), 0);
    tiny_header(&hdr);
    ck_assert_int_eq(tiny_model_write(path, &hdr, NULL, dt, 42), 0);
    int r = aik_model_open(path, 0, NULL, &m, &err);
    ck_assert_msg(r == 0, "open: %s: %s", err.where, err.message);
    uint32_t V = m->hp.n_vocab;

    aik_cpu_exec_config cc = { .max_batch = 8, .ctx_len = 32 };
    aik_vk_exec_config vc = { .max_batch = 8, .ctx_len = 32 };
    ck_assert_int_eq(aik_cpu_exec_new(m->graph, &cc, NULL, &ce, &err), 0);
    r = aik_vk_exec_new(vk, m->graph, &vc, &ve, &err);
    ck_assert_msg(r == 0, "vk exec: %s: %s", err.where, err.message);

    /* prompt as one batch with all outputs: logits of every position */
    const float *lc, *lv;
    float *all = malloc((size_t)5 * V * sizeof(float));
    ck_assert_int_eq(aik_cpu_exec_run(ce, prompt, 5, 5, &lc, &err), 0);
    memcpy(all, lc, (size_t)5 * V * sizeof(float));
    r = aik_vk_exec_run(ve, prompt, 5, 5, &lv, &err);
    ck_assert_msg(r == 0, "vk run: %s: %s", err.where, err.message);
    double e = nmse(lv, all, (size_t)5 * V);
    ck_assert_msg(e <= 1e-6, "%s prompt logits NMSE %g", aik_dtype_name(dt), e);
    tc[0] = argmax(all + (size_t)4 * V, V);
    tv[0] = argmax(lv + (size_t)4 * V, V);
    for (uint32_t i = 1; i < n_gen; i++) {
        ck_assert_int_eq(aik_cpu_exec_run(ce, &tc[i - 1], 1, 1, &lc, &err), 0);
        tc[i] = argmax(lc, V);
        ck_assert_int_eq(aik_vk_exec_run(ve, &tv[i - 1], 1, 1, &lv, &err), 0);
        tv[i] = argmax(lv, V);
    }
    for (uint32_t i = 0; i < n_gen; i++)
            ck_assert_msg(tc[i] == tv[i], "%s: token %u differs: cpu %d vulkan %d", aik_dtype_name(dt), i, tc[i],
                          tv[i]);
    ck_assert_uint_eq(aik_vk_exec_n_past(ve), 5 + n_gen - 1);

    /* executor failure paths leave the cache as it was */
    int32_t bad = (int32_t)V;
    ck_assert_int_eq(aik_vk_exec_run(ve, &bad, 1, 1, &lv, &err), -EINVAL);
    ck_assert_int_eq(aik_vk_exec_run(ve, prompt, 9, 1, &lv, &err), -EINVAL); /* > max_batch */
    ck_assert_int_eq(aik_vk_exec_run(ve, prompt, 2, 3, &lv, &err), -EINVAL);
    int32_t many[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    while (aik_vk_exec_n_past(ve) + 8 <= 32)
        ck_assert_int_eq(aik_vk_exec_run(ve, many, 8, 1, &lv, &err), 0);
    uint32_t past = aik_vk_exec_n_past(ve);
    ck_assert_int_eq(aik_vk_exec_run(ve, many, 8, 1, &lv, &err), -ENOSPC);
    ck_assert_uint_eq(aik_vk_exec_n_past(ve), past);
    /* truncate and replay: same logits as the first decode step */
    aik_vk_exec_truncate(ve, 5);
    aik_cpu_exec_truncate(ce, 5);
    ck_assert_int_eq(aik_cpu_exec_run(ce, &tc[0], 1, 1, &lc, &err), 0);
    ck_assert_int_eq(aik_vk_exec_run(ve, &tv[0], 1, 1, &lv, &err), 0);
    ck_assert_int_eq(argmax(lv, V), tv[1]);
    ck_assert_int_eq(argmax(lc, V), argmax(lv, V));

    free(all);
    aik_vk_exec_free(ve);
    aik_vk_exec_free(NULL);
    aik_cpu_exec_free(ce);
    aik_model_free(m);
    aik_test_rmtree(dir);
    free(dir);
    free(path);
}

START_TEST(test_model_f32) { greedy_compare(AIK_DTYPE_F32); }
END_TEST
START_TEST(test_model_f16) { greedy_compare(AIK_DTYPE_F16); }
END_TEST
START_TEST(test_model_q8_0) { greedy_compare(AIK_DTYPE_Q8_0); }
END_TEST
START_TEST(test_model_q4_0) { greedy_compare(AIK_DTYPE_Q4_0); }
END_TEST

START_TEST(test_exec_args)
{
    aik_vk_exec *e = NULL;
    aik_error err;
    aik_vk_exec_config vc = { .max_batch = 0 };
    ck_assert_int_eq(aik_vk_exec_new(vk, NULL, &vc, &e, &err), -EINVAL);
    ck_assert_ptr_null(e);
}
END_TEST

int main(void)
{
    aik_error err = { 0 };
    int n = aik_vk_device_count(&err);

    if (n <= 0) {
        printf("SKIP: no Vulkan device: %s\n", n < 0 ? err.message : "loader lists none");
        return 77;
    }
    if (aik_vk_open(0, &vk, &err) < 0) {
        printf("SKIP: Vulkan device 0 cannot be opened: %s: %s\n", err.where, err.message);
        return 77;
    }
    Suite *s = suite_create("vulkan");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_info_and_vtable);
    tcase_add_test(tc, test_buffers);
    tcase_add_test(tc, test_matmul);
    tcase_add_test(tc, test_get_rows);
    tcase_add_test(tc, test_elementwise);
    tcase_add_test(tc, test_rope);
    tcase_add_test(tc, test_attention);
    tcase_add_test(tc, test_segment_errors);
    tcase_add_test(tc, test_exec_args);
    tcase_add_test(tc, test_model_f32);
    tcase_add_test(tc, test_model_f16);
    tcase_add_test(tc, test_model_q8_0);
    tcase_add_test(tc, test_model_q4_0);
    suite_add_tcase(s, tc);
    /* One device for all tests: no fork (Vulkan state does not survive it). */
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    aik_vk_close(vk);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
