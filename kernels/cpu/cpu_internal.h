/* SPDX-License-Identifier: MIT */
/*
 * kernels/cpu/cpu_internal.h — what the ISA-specific files provide.
 *
 * Each ISA level fills one aik_cpu_ops table; dispatch.c picks the table of
 * the active level and keeps the parts that are the same for every level
 * (matmul tiling, rope, attention). The scalar reference functions are also
 * declared here so tests can compare every level against them.
 */
#ifndef AIK_KERNELS_CPU_INTERNAL_H
#define AIK_KERNELS_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu/cpu_kernels.h"

/* Dot products of 4 weight rows (row i at w + i * stride bytes) with one
 * activation row x (f32, or q8_0 blocks for quantized weights); n elements
 * per row; writes out[0..3]. This is the matmul inner kernel: x is loaded
 * once for the 4 rows. */
typedef void (*aik_dot4_fn)(const void *w, size_t stride, const void *x,
                            int64_t n, float out[4]);
typedef float (*aik_dot_fn)(const void *w, const void *x, int64_t n);
/* 4 weight rows x 2 activation rows (batched matmul): out0 for x0, out1 for
 * x1. Must give exactly the dot4 results (same operations, same order). */
typedef void (*aik_dot4x2_fn)(const void *w, size_t stride, const void *x0,
                              const void *x1, int64_t n, float out0[4],
                              float out1[4]);

/* One 32-value block of an activation row prepared for the integer matmul
 * kernels below (aik_matmul_prepare writes them when the active table has
 * those kernels). The weights enter vpdpbusd as unsigned bytes u (q8_0:
 * w + 128; q4_0: the low nibbles in bytes 0..15 and the high nibbles left
 * in place, 16 q, in bytes 16..31), so the int32 lane l of dpbusd(u, qs)
 * sums 4 products u * x. The true block sum is then
 *   sum_l (lane_l * dv[l] - cv[l]),
 *   q8_0: dv = d_x,                        cv[l] = 128 d_x S_l
 *   q4_0: dv = d_x (l < 4), d_x / 16 (l >= 4), cv[l] = 8 d_x S_l
 * with S_l the sum of x's 4 int8 values of lane l. dv and cv depend only
 * on x, so they are computed once per matmul instead of once per weight
 * row. */
typedef struct aik_xblock {
    int8_t qs[32];
    float dv[8];
    float cv[8];
    /* for the packed kernels (packed.c): the block's d_x and
     * c = d_x * (bias * S), S the sum of all 32 qs, bias 128 (q8_0) or 8
     * (q4_0): the block sum is then (sum u * x) * d - c */
    float d, c;
} aik_xblock;
_Static_assert(sizeof(aik_xblock) == 104, "aik_xblock must be 104 bytes");

/* The integer matmul kernels (optional members of the table below): 1, 4
 * and 4 x 2 rows, as aik_dot_fn / aik_dot4_fn / aik_dot4x2_fn but with x as
 * n / 32 prepared blocks. The three must give bitwise equal results for a
 * row (the same operations in the same order). */
typedef float (*aik_qdot_fn)(const void *w, const aik_xblock *x, int64_t n);
typedef void (*aik_qdot4_fn)(const void *w, size_t stride, const aik_xblock *x,
                             int64_t n, float out[4]);
typedef void (*aik_qdot4x2_fn)(const void *w, size_t stride, const aik_xblock *x0,
                               const aik_xblock *x1, int64_t n, float out0[4],
                               float out1[4]);

/* The packed-layout kernel (packed.c describes the layout): the 16 rows of
 * one packed group against n_x (1..4) prepared activation rows, x row j at
 * x + j * x_stride blocks; y row j at y + j * y_stride, 16 values. Must
 * compute exactly what aik_packed_group_scalar computes (same operations,
 * same order), so results do not depend on the ISA level that ran them. */
typedef void (*aik_qdot16_fn)(const void *group, int64_t nb, const aik_xblock *x,
                              int64_t x_stride, int n_x, float *y, int64_t y_stride);

typedef struct aik_cpu_ops {
    aik_dot_fn dot[AIK_DTYPE_COUNT];   /* w of dtype t, x f32 or q8_0 */
    aik_dot4_fn dot4[AIK_DTYPE_COUNT];
    aik_dot4x2_fn dot4x2[AIK_DTYPE_COUNT]; /* optional (NULL: use dot4) */
    /* optional, q8_0 / q4_0 only: when qdot4[t] is set, matmuls with
     * weights of type t prepare x as aik_xblock rows and use qdot* (all
     * three set) instead of dot* */
    aik_qdot_fn qdot[AIK_DTYPE_COUNT];
    aik_qdot4_fn qdot4[AIK_DTYPE_COUNT];
    aik_qdot4x2_fn qdot4x2[AIK_DTYPE_COUNT];
    /* optional, q8_0 / q4_0: the packed-layout kernel; weights are packed
     * (aik_matmul_pack_size > 0) only where the active level has it */
    aik_qdot16_fn qdot16[AIK_DTYPE_COUNT];
    void (*quantize_q8_0)(const float *x, void *blocks, int64_t n);
    /* optional: nb activation blocks of x as aik_xblock qs, d and c for
     * the packed kernels (bias 128 for q8_0 weights, 8 for q4_0), in one
     * pass; must give bitwise what dispatch.c's prepare_xblocks computes
     * from quantize_q8_0 (dv and cv are not written) */
    void (*quantize_xblocks)(const float *x, aik_xblock *xb, int64_t nb, int32_t bias);
    void (*fp16_to_f32)(const uint16_t *src, float *dst, int64_t n);
    void (*f32_to_fp16)(const float *src, uint16_t *dst, int64_t n);
    void (*bf16_to_f32)(const uint16_t *src, float *dst, int64_t n);
    void (*f32_to_bf16)(const float *src, uint16_t *dst, int64_t n);
    void (*rms_norm)(const float *x, const float *w, float *y, int64_t n, float eps);
    void (*add)(const float *a, const float *b, float *y, int64_t n);
    void (*mul)(const float *a, const float *b, float *y, int64_t n);
    void (*scale)(const float *x, float s, float *y, int64_t n);
    void (*silu)(const float *x, float *y, int64_t n);
    void (*swiglu)(const float *gate, const float *up, float *y, int64_t n);
    void (*softmax)(float *x, int64_t n);
    /* y += a * x */
    void (*axpy)(float a, const float *x, float *y, int64_t n);
    /* out[d] = sum_p a[p] * v[p * stride + d], d < dim (overwrites out):
     * attention's weighted sum of value rows, out kept in registers */
    void (*wsum)(const float *a, const float *v, int64_t stride, int64_t n_pos,
                 int64_t dim, float *out);
    /* optional: aik_attention_group for head_dim a multiple of 16 and at
     * most AIK_ATT_MAX_DIM; must give bitwise what the per-head path
     * (dot4 / dot, scale, softmax, wsum of this level) gives */
    void (*attention_group)(const float *q, int n_q, const float *k, const float *v, int64_t n_pos,
                            int head_dim, int64_t kv_stride, float scale, float *scores, float *out);
} aik_cpu_ops;
#define AIK_ATT_MAX_DIM 256

extern const aik_cpu_ops aik_cpu_ops_scalar;
extern const aik_cpu_ops aik_cpu_ops_avx2;
extern const aik_cpu_ops aik_cpu_ops_avx512;
/* Same as aik_cpu_ops_avx512 but with AVX-512 VNNI integer dot products;
 * chosen inside the AVX512 level when the CPU has avx512vnni. */
extern const aik_cpu_ops aik_cpu_ops_avx512vnni;

/* fp16 bits -> f32 for every value, so a kernel turns a weight block's
 * scale into a broadcast operand with two loads and no vector ALU work.
 * Filled by aik_cpu_fp16_table_init() (idempotent, thread-safe), which
 * aik_matmul_prepare calls before any qdot kernel runs. */
extern float aik_cpu_fp16_table[65536];
void aik_cpu_fp16_table_init(void);

/* The packed-layout kernel in plain C: the definition the SIMD ones match
 * bit for bit, and what runs packed weights at a level without one. */
void aik_packed_group_scalar(aik_dtype wt, const void *group, int64_t nb, const aik_xblock *x,
                             int64_t x_stride, int n_x, float *y, int64_t y_stride);

/* Bytes of the packed layout of an M x K matrix of type wt whatever the
 * level (aik_matmul_pack_size also asks whether the level has a packed
 * kernel); 0 where the layout does not apply. */
size_t aik_packed_bytes(aik_dtype wt, int64_t M, int64_t K);

/* Table of the active level. */
const aik_cpu_ops *aik_cpu_ops_active(void);

/* ---- scalar reference (ref.c): plain loops that read like the math ---- */
float aik_ref_dot_f32(const float *a, const float *b, int64_t n);
float aik_ref_dot_f16_f32(const uint16_t *a, const float *b, int64_t n);
float aik_ref_dot_bf16_f32(const uint16_t *a, const float *b, int64_t n);
float aik_ref_dot_q8_0_q8_0(const void *w, const void *x, int64_t n);
float aik_ref_dot_q4_0_q8_0(const void *w, const void *x, int64_t n);
void aik_ref_quantize_row_q8_0(const float *x, void *blocks, int64_t n);
void aik_ref_quantize_row_q4_0(const float *x, void *blocks, int64_t n);
void aik_ref_dequantize_row(aik_dtype t, const void *src, float *dst, int64_t n);
/* xq: K/32 q8_0 blocks of scratch (unused for float weights). */
void aik_ref_matmul(aik_dtype wt, const void *W, const float *X, void *xq,
                    float *Y, int64_t M, int64_t K, int64_t N);
void aik_ref_rms_norm(const float *x, const float *w, float *y, int64_t n, float eps);
void aik_ref_add(const float *a, const float *b, float *y, int64_t n);
void aik_ref_mul(const float *a, const float *b, float *y, int64_t n);
void aik_ref_scale(const float *x, float s, float *y, int64_t n);
void aik_ref_silu(const float *x, float *y, int64_t n);
void aik_ref_swiglu(const float *gate, const float *up, float *y, int64_t n);
void aik_ref_softmax(float *x, int64_t n);
void aik_ref_axpy(float a, const float *x, float *y, int64_t n);
void aik_ref_wsum(const float *a, const float *v, int64_t stride, int64_t n_pos,
                  int64_t dim, float *out);
void aik_ref_rope(float *x, int n_heads, int head_dim, int64_t pos, float theta,
                  bool neox);
void aik_ref_attention_head(const float *q, const float *k_cache,
                            const float *v_cache, int64_t n_pos, int head_dim,
                            int64_t kv_stride, float scale, float *scores,
                            float *out);

/* Bytes of one row of n elements of type t (n a whole number of blocks). */
static inline size_t aik_cpu_row_bytes(aik_dtype t, int64_t n)
{
    switch (t) {
    case AIK_DTYPE_F32: return (size_t)n * 4;
    case AIK_DTYPE_F16:
    case AIK_DTYPE_BF16: return (size_t)n * 2;
    case AIK_DTYPE_Q8_0: return (size_t)(n / AIK_QK8_0) * sizeof(aik_block_q8_0);
    case AIK_DTYPE_Q4_0: return (size_t)(n / AIK_QK4_0) * sizeof(aik_block_q4_0);
    default: return 0;
    }
}

#endif
