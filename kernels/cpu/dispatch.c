/* SPDX-License-Identifier: MIT */
/*
 * kernels/cpu/dispatch.c — ISA detection and the public kernel entry points.
 *
 * Each entry point forwards to the ops table of the active ISA level. What
 * does not depend on the ISA lives here: matmul tiling, rope (its cost is
 * the sin/cos, computed once per pair for all heads) and attention, which is
 * built from the dispatched dot / softmax / axpy.
 */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "kernels/cpu/cpu_internal.h"

/* -1 = not detected yet. Detection is idempotent, so a race only repeats it. */
static atomic_int detected_isa = -1;
static atomic_int detected_vnni = -1;
static atomic_int active_isa = -1;

static aik_cpu_isa detect_now(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    /* __builtin_cpu_supports also checks that the OS saves the AVX/AVX-512
     * register state (XGETBV), not just CPUID. */
    /* F16C from CPUID leaf 1 ECX bit 29: clang 14 does not know "f16c" in
     * __builtin_cpu_supports (and AVX2 implies the OS saves YMM state). */
    unsigned int a = 0, b = 0, c = 0, d = 0;
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    atomic_store(&detected_vnni, avx512 && __builtin_cpu_supports("avx512vnni"));
    return avx512 ? AIK_CPU_AVX512 : avx2 ? AIK_CPU_AVX2 : AIK_CPU_SCALAR;
#else
    atomic_store(&detected_vnni, 0);
    return AIK_CPU_SCALAR;
#endif
}

aik_cpu_isa aik_cpu_detect(void)
{
    int v = atomic_load_explicit(&detected_isa, memory_order_acquire);
    if (v < 0) {
        v = (int)detect_now();
        atomic_store_explicit(&detected_isa, v, memory_order_release);
    }
    return (aik_cpu_isa)v;
}

aik_cpu_isa aik_cpu_set_isa(aik_cpu_isa level)
{
    aik_cpu_isa max = aik_cpu_detect();
    if ((int)level < (int)AIK_CPU_SCALAR)
        level = AIK_CPU_SCALAR;
    if ((int)level > (int)max)
        level = max;
    atomic_store_explicit(&active_isa, (int)level, memory_order_relaxed);
    return level;
}

aik_cpu_isa aik_cpu_active_isa(void)
{
    int v = atomic_load_explicit(&active_isa, memory_order_relaxed);
    if (v < 0) {
        /* AIK_CPU_ISA lets a person compare levels without rebuilding */
        aik_cpu_isa want = aik_cpu_detect();
        const char *env = getenv("AIK_CPU_ISA");
        if (env && strcmp(env, "scalar") == 0)
            want = AIK_CPU_SCALAR;
        else if (env && strcmp(env, "avx2") == 0)
            want = AIK_CPU_AVX2;
        return aik_cpu_set_isa(want);
    }
    return (aik_cpu_isa)v;
}

const char *aik_cpu_isa_name(aik_cpu_isa level)
{
    switch (level) {
    case AIK_CPU_SCALAR: return "scalar";
    case AIK_CPU_AVX2: return "avx2";
    case AIK_CPU_AVX512: return "avx512";
    default: return "?";
    }
}

const aik_cpu_ops *aik_cpu_ops_active(void)
{
    switch (aik_cpu_active_isa()) {
#if defined(__x86_64__)
    case AIK_CPU_AVX512:
        return atomic_load_explicit(&detected_vnni, memory_order_relaxed) > 0
                   ? &aik_cpu_ops_avx512vnni
                   : &aik_cpu_ops_avx512;
    case AIK_CPU_AVX2:
        return &aik_cpu_ops_avx2;
#endif
    default:
        return &aik_cpu_ops_scalar;
    }
}

/* ------------------------------------------------------- conversions --- */

void aik_fp16_to_f32_row(const uint16_t *src, float *dst, int64_t n)
{
    aik_cpu_ops_active()->fp16_to_f32(src, dst, n);
}

void aik_f32_to_fp16_row(const float *src, uint16_t *dst, int64_t n)
{
    aik_cpu_ops_active()->f32_to_fp16(src, dst, n);
}

void aik_bf16_to_f32_row(const uint16_t *src, float *dst, int64_t n)
{
    aik_cpu_ops_active()->bf16_to_f32(src, dst, n);
}

void aik_f32_to_bf16_row(const float *src, uint16_t *dst, int64_t n)
{
    aik_cpu_ops_active()->f32_to_bf16(src, dst, n);
}

/* ------------------------------------------------------ quantization --- */

void aik_quantize_row_q8_0(const float *x, void *blocks, int64_t n)
{
    assert(n % AIK_QK8_0 == 0);
    aik_cpu_ops_active()->quantize_q8_0(x, blocks, n);
}

/* Weights are quantized offline (import, evolution), so q4_0 has only the
 * reference version. */
void aik_quantize_row_q4_0(const float *x, void *blocks, int64_t n)
{
    assert(n % AIK_QK4_0 == 0);
    aik_ref_quantize_row_q4_0(x, blocks, n);
}

void aik_quantize_row(aik_dtype t, const float *x, void *dst, int64_t n)
{
    switch (t) {
    case AIK_DTYPE_F32: memmove(dst, x, (size_t)n * sizeof(float)); break;
    case AIK_DTYPE_F16: aik_f32_to_fp16_row(x, dst, n); break;
    case AIK_DTYPE_BF16: aik_f32_to_bf16_row(x, dst, n); break;
    case AIK_DTYPE_Q8_0: aik_quantize_row_q8_0(x, dst, n); break;
    case AIK_DTYPE_Q4_0: aik_quantize_row_q4_0(x, dst, n); break;
    default: assert(!"unknown dtype");
    }
}

void aik_dequantize_row(aik_dtype t, const void *src, float *dst, int64_t n)
{
    switch (t) {
    case AIK_DTYPE_F16: aik_fp16_to_f32_row(src, dst, n); break;
    case AIK_DTYPE_BF16: aik_bf16_to_f32_row(src, dst, n); break;
    default: aik_ref_dequantize_row(t, src, dst, n); break;
    }
}

void aik_get_row(aik_dtype t, const void *table, int64_t row, int64_t n_cols,
                 float *out)
{
    const size_t rb = aik_cpu_row_bytes(t, n_cols);
    aik_dequantize_row(t, (const char *)table + (size_t)row * rb, out, n_cols);
}

/* ------------------------------------------------------ dot products --- */

float aik_vec_dot_f32(const float *a, const float *b, int64_t n)
{
    return aik_cpu_ops_active()->dot[AIK_DTYPE_F32](a, b, n);
}

float aik_vec_dot_f16_f32(const uint16_t *a, const float *b, int64_t n)
{
    return aik_cpu_ops_active()->dot[AIK_DTYPE_F16](a, b, n);
}

float aik_vec_dot_bf16_f32(const uint16_t *a, const float *b, int64_t n)
{
    return aik_cpu_ops_active()->dot[AIK_DTYPE_BF16](a, b, n);
}

float aik_vec_dot_q8_0_q8_0(const void *w, const void *x, int64_t n)
{
    assert(n % AIK_QK8_0 == 0);
    return aik_cpu_ops_active()->dot[AIK_DTYPE_Q8_0](w, x, n);
}

float aik_vec_dot_q4_0_q8_0(const void *w, const void *x, int64_t n)
{
    assert(n % AIK_QK4_0 == 0);
    return aik_cpu_ops_active()->dot[AIK_DTYPE_Q4_0](w, x, n);
}

/* ------------------------------------------------------------ matmul --- */

#ifndef PF_GROUPS
#define PF_GROUPS 2
#endif

static bool is_quantized(aik_dtype t)
{
    return t == AIK_DTYPE_Q8_0 || t == AIK_DTYPE_Q4_0;
}

float aik_cpu_fp16_table[65536];
static pthread_once_t fp16_table_once = PTHREAD_ONCE_INIT;

static void fp16_table_fill(void)
{
    for (uint32_t h = 0; h < 65536; h++)
        aik_cpu_fp16_table[h] = aik_fp16_to_f32((uint16_t)h);
}

void aik_cpu_fp16_table_init(void)
{
    pthread_once(&fp16_table_once, fp16_table_fill);
}

/* Whether matmuls with weights of type wt use the integer kernels (and the
 * aik_xblock layout of scratch) at the active level. */
static bool uses_qdot(const aik_cpu_ops *ops, aik_dtype wt)
{
    return is_quantized(wt) && ops->qdot4[wt] != NULL;
}

/* Scratch holds per activation row either K/32 q8_0 blocks or K/32
 * aik_xblocks, depending on the level; the size is that of the larger so
 * callers need not know which. */
size_t aik_matmul_scratch_size(aik_dtype wt, int64_t K, int64_t N)
{
    if (!is_quantized(wt))
        return 0;
    if (K < 0 || N < 0)
        return SIZE_MAX;
    size_t row, total;
    if (__builtin_mul_overflow((size_t)(K / AIK_QK8_0), sizeof(aik_xblock), &row) ||
        __builtin_mul_overflow(row, (size_t)N, &total))
        return SIZE_MAX;
    return total;
}

/* One row of x as aik_xblocks: quantized exactly as the reference does
 * (same q8_0 blocks), then the per-lane scales and offsets of the weight
 * type (see aik_xblock). */
static void prepare_xblocks(const aik_cpu_ops *ops, aik_dtype wt, const float *x,
                            aik_xblock *xb, int64_t K, bool lanes)
{
    const int32_t bias = wt == AIK_DTYPE_Q8_0 ? 128 : 8;
    if (!lanes && ops->quantize_xblocks) {
        ops->quantize_xblocks(x, xb, K / AIK_QK8_0, bias);
        return;
    }
    for (int64_t i = 0; i < K / AIK_QK8_0; i++) {
        aik_block_q8_0 q;
        ops->quantize_q8_0(x + i * AIK_QK8_0, &q, AIK_QK8_0);
        const float d = aik_fp16_to_f32(q.d);
        memcpy(xb[i].qs, q.qs, sizeof(q.qs));
        int32_t sum = 0;
        for (int l = 0; l < 8; l++) {
            const int32_t s = q.qs[4 * l] + q.qs[4 * l + 1] + q.qs[4 * l + 2] + q.qs[4 * l + 3];
            sum += s;
            /* per-lane scales and offsets: only the file-layout kernels
             * read them (the packed ones take d and c) */
            if (!lanes)
                continue;
            /* the high q4_0 nibbles enter as 16 q: dividing d by 16 is exact */
            xb[i].dv[l] = wt == AIK_DTYPE_Q4_0 && l >= 4 ? d / 16.0f : d;
            xb[i].cv[l] = d * (float)(bias * s);
        }
        xb[i].d = d;
        xb[i].c = d * (float)(bias * sum); /* |bias * sum| <= 128 * 4064: exact in float */
    }
}

void aik_matmul_prepare_row(aik_dtype wt, const float *X, int64_t K, int64_t n,
                            void *scratch)
{
    if (!is_quantized(wt))
        return;
    assert(K % AIK_QK8_0 == 0);
    const aik_cpu_ops *ops = aik_cpu_ops_active();
    if (uses_qdot(ops, wt)) {
        aik_cpu_fp16_table_init();
        prepare_xblocks(ops, wt, X + n * K, (aik_xblock *)scratch + n * (K / AIK_QK8_0), K, true);
    } else {
        const size_t xrow = aik_cpu_row_bytes(AIK_DTYPE_Q8_0, K);
        ops->quantize_q8_0(X + n * K, (char *)scratch + (size_t)n * xrow, K);
    }
}

void aik_matmul_prepare_row_packed(aik_dtype wt, const float *X, int64_t K, int64_t n,
                                   void *scratch)
{
    assert(is_quantized(wt) && K % AIK_QK8_0 == 0);
    prepare_xblocks(aik_cpu_ops_active(), wt, X + n * K, (aik_xblock *)scratch + n * (K / AIK_QK8_0), K, false);
}

void aik_matmul_prepare(aik_dtype wt, const float *X, int64_t K, int64_t N,
                        void *scratch)
{
    for (int64_t n = 0; n < N; n++)
        aik_matmul_prepare_row(wt, X, K, n, scratch);
}

/* The rows of a matmul whose weights go through the integer kernels: the
 * same tiling as below, with aik_xblock activations. */
static void matmul_rows_q(const aik_cpu_ops *ops, aik_dtype wt, const void *W,
                          const aik_xblock *xs, float *Y, int64_t M, int64_t K,
                          int64_t N, int64_t m_begin, int64_t m_end)
{
    const aik_qdot4_fn dot4 = ops->qdot4[wt];
    const aik_qdot_fn dot = ops->qdot[wt];
    const aik_qdot4x2_fn dot4x2 = ops->qdot4x2[wt];
    const size_t wrow = aik_cpu_row_bytes(wt, K);
    const int64_t nb = K / AIK_QK8_0;
    const char *w = W;

    int64_t tile = m_end - m_begin;
    if (N > 1) {
        tile = (int64_t)(24576 / wrow) & ~(int64_t)3;
        tile = tile < 4 ? 4 : tile > 64 ? 64 : tile;
    }
    for (int64_t m0 = m_begin; m0 < m_end; m0 += tile) {
        const int64_t m1 = m0 + tile < m_end ? m0 + tile : m_end;
        int64_t n = 0;
        for (; n + 2 <= N; n += 2) {
            const aik_xblock *x0 = xs + n * nb, *x1 = x0 + nb;
            float *y0 = Y + n * M, *y1 = y0 + M;
            int64_t m = m0;
            for (; m + 4 <= m1; m += 4)
                dot4x2(w + (size_t)m * wrow, wrow, x0, x1, K, y0 + m, y1 + m);
            for (; m < m1; m++) {
                y0[m] = dot(w + (size_t)m * wrow, x0, K);
                y1[m] = dot(w + (size_t)m * wrow, x1, K);
            }
        }
        for (; n < N; n++) {
            const aik_xblock *x = xs + n * nb;
            float *y = Y + n * M;
            int64_t m = m0;
            /* decode: the group PF_GROUPS ahead, as below (without it
             * these kernels run at half speed from L3 or memory; a
             * prefetch inside the kernel, per row, was slower) */
            const size_t pf_bytes = N == 1 ? 4 * wrow : 0;
            for (; m + 4 <= m1; m += 4) {
                if (pf_bytes && m + 4 * (PF_GROUPS + 1) <= m_end) {
                    const char *pf = w + (size_t)(m + 4 * PF_GROUPS) * wrow;
                    for (size_t off = 0; off < pf_bytes; off += 64)
                        __builtin_prefetch(pf + off, 0, 3);
                }
                dot4(w + (size_t)m * wrow, wrow, x, K, y + m);
            }
            for (; m < m1; m++)
                y[m] = dot(w + (size_t)m * wrow, x, K);
        }
    }
}

void aik_matmul_rows(aik_dtype wt, const void *W, const float *X,
                     const void *scratch, float *Y, int64_t M, int64_t K,
                     int64_t N, int64_t m_begin, int64_t m_end)
{
    assert(0 <= m_begin && m_begin <= m_end && m_end <= M);
    assert(!is_quantized(wt) || K % AIK_QK8_0 == 0);
    const aik_cpu_ops *ops = aik_cpu_ops_active();
    if (uses_qdot(ops, wt)) {
        aik_cpu_fp16_table_init(); /* done by prepare; a no-op check here */
        matmul_rows_q(ops, wt, W, scratch, Y, M, K, N, m_begin, m_end);
        return;
    }
    const aik_dot4_fn dot4 = ops->dot4[wt];
    const aik_dot_fn dot = ops->dot[wt];
    const aik_dot4x2_fn dot4x2 = ops->dot4x2[wt];
    const size_t wrow = aik_cpu_row_bytes(wt, K);
    const char *xs = is_quantized(wt) ? (const char *)scratch : (const char *)X;
    const size_t xrow = is_quantized(wt) ? aik_cpu_row_bytes(AIK_DTYPE_Q8_0, K)
                                         : (size_t)K * sizeof(float);

    /* With several activation rows, walk the weights in tiles small enough
     * to stay in L1/L2 while all N rows pass over them: the weights come
     * from memory once per matmul, not once per token. */
    int64_t tile = m_end - m_begin;
    if (N > 1 && wrow > 0) {
        tile = (int64_t)(24576 / wrow) & ~(int64_t)3;
        if (tile < 4)
            tile = 4;
        if (tile > 64)
            tile = 64;
    }
    /* Decode streams the weights once. A 4-row group of a small-K matrix
     * is a few short rows (576 q8_0 values = 612 bytes): too short for the
     * hardware prefetcher to lock on to each row, so ask for the group
     * PF_GROUPS ahead explicitly; it is contiguous, rows being adjacent. */
    const size_t pf_bytes = N == 1 ? 4 * wrow : 0;
    for (int64_t m0 = m_begin; m0 < m_end; m0 += tile) {
        const int64_t m1 = m0 + tile < m_end ? m0 + tile : m_end;
        int64_t n = 0;
        /* two activation rows at a time where the ISA has a kernel for it:
         * the weight tile is then unpacked once per pair */
        for (; dot4x2 && n + 2 <= N; n += 2) {
            const char *x0 = xs + (size_t)n * xrow, *x1 = x0 + xrow;
            float *y0 = Y + n * M, *y1 = y0 + M;
            int64_t m = m0;
            for (; m + 4 <= m1; m += 4)
                dot4x2((const char *)W + (size_t)m * wrow, wrow, x0, x1, K, y0 + m, y1 + m);
            for (; m < m1; m++) {
                y0[m] = dot((const char *)W + (size_t)m * wrow, x0, K);
                y1[m] = dot((const char *)W + (size_t)m * wrow, x1, K);
            }
        }
        for (; n < N; n++) {
            const char *x = xs + (size_t)n * xrow;
            float *y = Y + n * M;
            int64_t m = m0;
            for (; m + 4 <= m1; m += 4) {
                if (pf_bytes && m + 4 * (PF_GROUPS + 1) <= m_end) {
                    const char *pf = (const char *)W + (size_t)(m + 4 * PF_GROUPS) * wrow;
                    for (size_t off = 0; off < pf_bytes; off += 64)
                        __builtin_prefetch(pf + off, 0, 3);
                }
                dot4((const char *)W + (size_t)m * wrow, wrow, x, K, y + m);
            }
            for (; m < m1; m++)
                y[m] = dot((const char *)W + (size_t)m * wrow, x, K);
        }
    }
}

void aik_matmul(aik_dtype wt, const void *W, const float *X, void *scratch,
                float *Y, int64_t M, int64_t K, int64_t N)
{
    aik_matmul_prepare(wt, X, K, N, scratch);
    aik_matmul_rows(wt, W, X, scratch, Y, M, K, N, 0, M);
}

/* ------------------------------------------------ element-wise / rows --- */

void aik_rms_norm(const float *x, const float *w, float *y, int64_t n, float eps)
{
    aik_cpu_ops_active()->rms_norm(x, w, y, n, eps);
}

void aik_add(const float *a, const float *b, float *y, int64_t n)
{
    aik_cpu_ops_active()->add(a, b, y, n);
}

void aik_mul(const float *a, const float *b, float *y, int64_t n)
{
    aik_cpu_ops_active()->mul(a, b, y, n);
}

void aik_scale(const float *x, float s, float *y, int64_t n)
{
    aik_cpu_ops_active()->scale(x, s, y, n);
}

void aik_silu(const float *x, float *y, int64_t n)
{
    aik_cpu_ops_active()->silu(x, y, n);
}

void aik_swiglu(const float *gate, const float *up, float *y, int64_t n)
{
    aik_cpu_ops_active()->swiglu(gate, up, y, n);
}

void aik_softmax(float *x, int64_t n)
{
    assert(n >= 1);
    aik_cpu_ops_active()->softmax(x, n);
}

void aik_rope_table(int head_dim, int64_t pos, float theta, float *cs)
{
    assert(head_dim % 2 == 0);
    /* The reference's formula, evaluated faster: sin/cos once per pair,
     * not per head; the frequencies theta^(-2i/head_dim) as successive
     * powers of theta^(-2/head_dim) in double (relative error ~1e-15, far
     * below float). */
    const double step = pow((double)theta, -2.0 / head_dim);
    double freq = 1.0;
    for (int i = 0; i < head_dim / 2; i++, freq *= step) {
        double sn, cs_;
        sincos((double)pos * freq, &sn, &cs_);
        cs[2 * i] = (float)cs_;
        cs[2 * i + 1] = (float)sn;
    }
}

void aik_rope_apply(float *x, int n_heads, int head_dim, const float *cs, bool neox)
{
    const int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const int i0 = neox ? i : 2 * i;
        const int i1 = neox ? i + half : 2 * i + 1;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)h * (size_t)head_dim;
            const float a = v[i0], b = v[i1];
            v[i0] = a * c - b * s;
            v[i1] = a * s + b * c;
        }
    }
}

void aik_rope(float *x, int n_heads, int head_dim, int64_t pos, float theta,
              bool neox)
{
    assert(head_dim % 2 == 0);
    /* aik_rope_table and aik_rope_apply pair by pair: no table to size */
    const double step = pow((double)theta, -2.0 / head_dim);
    double freq = 1.0;
    for (int i = 0; i < head_dim / 2; i++, freq *= step) {
        double sn, cs_;
        sincos((double)pos * freq, &sn, &cs_);
        const float c = (float)cs_, s = (float)sn;
        const int i0 = neox ? i : 2 * i;
        const int i1 = neox ? i + head_dim / 2 : 2 * i + 1;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)h * (size_t)head_dim;
            const float a = v[i0], b = v[i1];
            v[i0] = a * c - b * s;
            v[i1] = a * s + b * c;
        }
    }
}

void aik_attention_head(const float *q, const float *k_cache,
                        const float *v_cache, int64_t n_pos, int head_dim,
                        int64_t kv_stride, float scale, float *scores_scratch,
                        float *out)
{
    assert(n_pos >= 1);
    const aik_cpu_ops *ops = aik_cpu_ops_active();

    /* scores: the cached keys are the rows of a matrix with row stride
     * kv_stride, so the 4-row matmul kernel takes 4 positions per call
     * (q loaded once per 4 keys, no call per position) */
    /* In decode the cache is cold (a token's weights stream through the
     * caches between two layers): ask for the keys a few positions ahead
     * and for the values now, so the weighted sum below finds them in
     * cache instead of waiting on memory position by position. */
    const size_t row_bytes = (size_t)head_dim * sizeof(float);
    int64_t p = 0;
    for (; p + 4 <= n_pos; p += 4) {
        for (int64_t r = p; r < p + 4; r++)
            for (size_t off = 0; off < row_bytes; off += 64) {
                __builtin_prefetch((const char *)(k_cache + (r + 8) * kv_stride) + off, 0, 3);
                __builtin_prefetch((const char *)(v_cache + r * kv_stride) + off, 0, 3);
            }
        ops->dot4[AIK_DTYPE_F32](k_cache + p * kv_stride, (size_t)kv_stride * sizeof(float), q,
                                 head_dim, scores_scratch + p);
    }
    for (; p < n_pos; p++)
        scores_scratch[p] = ops->dot[AIK_DTYPE_F32](k_cache + p * kv_stride, q, head_dim);
    ops->scale(scores_scratch, scale, scores_scratch, n_pos);
    ops->softmax(scores_scratch, n_pos);
    ops->wsum(scores_scratch, v_cache, kv_stride, n_pos, head_dim, out);
}

void aik_attention_group(const float *q, int n_q, const float *k_cache, const float *v_cache, int64_t n_pos,
                         int head_dim, int64_t kv_stride, float scale, float *scores_scratch, float *out)
{
    assert(n_pos >= 1 && n_q >= 1);
    const aik_cpu_ops *ops = aik_cpu_ops_active();
    if (ops->attention_group && head_dim % 16 == 0 && head_dim <= AIK_ATT_MAX_DIM) {
        ops->attention_group(q, n_q, k_cache, v_cache, n_pos, head_dim, kv_stride, scale, scores_scratch, out);
        return;
    }
    for (int h = 0; h < n_q; h++)
        aik_attention_head(q + (size_t)h * head_dim, k_cache, v_cache, n_pos, head_dim, kv_stride, scale,
                           scores_scratch + (size_t)h * n_pos, out + (size_t)h * head_dim);
}
