/* SPDX-License-Identifier: MIT */
/*
 * kernels/cpu/cpu_kernels.h — CPU compute kernels (internal to libaik).
 *
 * Every op has a plain scalar reference that reads like the math
 * (kernels/cpu/ref.c) and, where it pays, AVX2 (+FMA+F16C) and AVX-512
 * (F/BW/VL) versions picked at run time by CPUID. The SIMD versions are
 * tested against the reference (tests/kernels).
 *
 * Conventions for every function here:
 *   - no allocation, no I/O, no locks; safe to call from any thread;
 *   - row-major storage; a "row" is the contiguous dimension (ne0);
 *   - quantized rows are whole blocks: element counts of q8_0 / q4_0 data
 *     (n, K, n_cols) must be multiples of 32;
 *   - preconditions (non-NULL pointers, block-multiple sizes, index ranges)
 *     are the caller's job and are checked with assert() only: the graph
 *     validates shapes once, kernels run millions of times;
 *   - in-place use (y == x) is allowed wherever noted.
 * f16 / bf16 values are passed as raw uint16_t bit patterns, as in files.
 */
#ifndef AIK_KERNELS_CPU_KERNELS_H
#define AIK_KERNELS_CPU_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- ISA --- */

/* Instruction-set levels, ordered: a higher level implies the lower ones.
 *   AIK_CPU_AVX2:   AVX2 + FMA + F16C.
 *   AIK_CPU_AVX512: AVX-512 F + BW + VL (+ AVX2 level); VNNI is used when
 *                   present as a detail inside this level. */
typedef enum aik_cpu_isa {
    AIK_CPU_SCALAR = 0,
    AIK_CPU_AVX2 = 1,
    AIK_CPU_AVX512 = 2,
} aik_cpu_isa;

/* Highest level this CPU (and OS, via XSAVE state) supports. Cached. */
aik_cpu_isa aik_cpu_detect(void);

/* Force the level used by every dispatched kernel (tests, benchmarks).
 * Clamped to aik_cpu_detect(); returns the level actually set. Meant to be
 * called while no other thread runs kernels (it is an atomic store: a race
 * only means a kernel call runs at the old level). Without a call, the
 * level is aik_cpu_detect(), lowered by the environment variable
 * AIK_CPU_ISA=scalar|avx2 if set when the first kernel runs. */
aik_cpu_isa aik_cpu_set_isa(aik_cpu_isa level);

/* Level in use now (aik_cpu_detect() unless overridden). */
aik_cpu_isa aik_cpu_active_isa(void);

/* "scalar", "avx2", "avx512" ("?" for an unknown value). */
const char *aik_cpu_isa_name(aik_cpu_isa level);

/* -------------------------------------------------------- conversions --- */

/* IEEE binary16 <-> f32. f32 -> f16 rounds to nearest even, overflows to
 * +-inf, keeps NaN a NaN (quiet bit set, top payload bits kept), produces
 * f16 subnormals; f16 -> f32 is exact (subnormals, inf included; a NaN keeps
 * its payload and is made quiet, as the F16C instruction does). */
float aik_fp16_to_f32(uint16_t h);
uint16_t aik_f32_to_fp16(float f);

/* bfloat16 <-> f32. f32 -> bf16 rounds to nearest even; NaN stays NaN
 * (quiet bit forced so rounding cannot turn it into inf). */
float aik_bf16_to_f32(uint16_t b);
uint16_t aik_f32_to_bf16(float f);

/* Row converters (n elements, dispatched). */
void aik_fp16_to_f32_row(const uint16_t *src, float *dst, int64_t n);
void aik_f32_to_fp16_row(const float *src, uint16_t *dst, int64_t n);
void aik_bf16_to_f32_row(const uint16_t *src, float *dst, int64_t n);
void aik_f32_to_bf16_row(const float *src, uint16_t *dst, int64_t n);

/* ------------------------------------------------------- quantization --- */

/* Quantize n floats (n % 32 == 0) into n/32 blocks. Bit-identical to ggml's
 * quantize_row_q8_0_ref / quantize_row_q4_0_ref (d = amax/127, resp.
 * d = max/-8 with the signed max-magnitude value) at every ISA level. q8_0
 * is SIMD (it quantizes activations on the hot path); q4_0 is the scalar
 * reference (weights are quantized offline). Inputs must be finite. */
void aik_quantize_row_q8_0(const float *x, void *blocks, int64_t n);
void aik_quantize_row_q4_0(const float *x, void *blocks, int64_t n);

/* Store n floats as type t (any of the 5 dtypes; for q8_0/q4_0 the above).
 * dst must hold aik_dtype_bytes(t, n) bytes. */
void aik_quantize_row(aik_dtype t, const float *x, void *dst, int64_t n);

/* Convert n elements of type t at src into floats (all 5 dtypes). */
void aik_dequantize_row(aik_dtype t, const void *src, float *dst, int64_t n);

/* Embedding lookup: row `row` of a table with n_cols elements per row,
 * stored as type t, converted to floats in out[n_cols]. */
void aik_get_row(aik_dtype t, const void *table, int64_t row, int64_t n_cols,
                 float *out);

/* ------------------------------------------------------- dot products --- */

/* Dot products of n elements (dispatched). The quantized ones follow ggml's
 * ggml_vec_dot_q8_0_q8_0 / ggml_vec_dot_q4_0_q8_0: per block an exact int32
 * sum of products, times d_w * d_x (as f32), summed in f32. */
float aik_vec_dot_f32(const float *a, const float *b, int64_t n);
float aik_vec_dot_f16_f32(const uint16_t *a, const float *b, int64_t n);
float aik_vec_dot_bf16_f32(const uint16_t *a, const float *b, int64_t n);
float aik_vec_dot_q8_0_q8_0(const void *w, const void *x, int64_t n);
float aik_vec_dot_q4_0_q8_0(const void *w, const void *x, int64_t n);

/* ------------------------------------------------------------- matmul --- */

/*
 * Y[n][m] = sum_k W[m][k] * X[n][k]
 *   W: M rows x K columns of type wt (a weight matrix as stored in files),
 *   X: N x K f32 activations, Y: N x M f32.
 * Split in two steps so the caller can thread the second one:
 *   1. aik_matmul_prepare quantizes X once into scratch (q8_0 for q8_0 and
 *      q4_0 weights, plus per-block scales and offsets where the level has
 *      the VNNI kernels; nothing for float weights, scratch may then be
 *      NULL);
 *   2. aik_matmul_rows computes the output columns m in [m_begin, m_end) for
 *      all N rows; disjoint ranges may run concurrently on the same scratch.
 * N > 1 (prompt processing) is tiled so each weight tile is read once per
 * group of activation rows, not once per token.
 * f16 / bf16 weights are converted on the fly, accumulated in f32.
 * Every Y element is computed by the same operations whatever the row range
 * split and whatever N: threaded, batched and one-token results are bitwise
 * equal (at a given ISA level).
 * W must be aligned to its element (4 bytes for f32, 2 for the others).
 */

/* Bytes of scratch needed for (wt, K, N): 0 for float weights, else
 * N * K/32 * 104 (the layout depends on the ISA level: q8_0 blocks, or the
 * blocks the VNNI kernels read). Returns SIZE_MAX if the size overflows. */
size_t aik_matmul_scratch_size(aik_dtype wt, int64_t K, int64_t N);

/* Step 1 (see above). scratch must hold aik_matmul_scratch_size() bytes and
 * be suitably aligned for float (any malloc'd buffer is). */
void aik_matmul_prepare(aik_dtype wt, const float *X, int64_t K, int64_t N,
                        void *scratch);

/* Step 1 for activation row n only (0 <= n < N), so the rows can be
 * prepared in parallel; scratch as for aik_matmul_prepare. */
void aik_matmul_prepare_row(aik_dtype wt, const float *X, int64_t K, int64_t n,
                            void *scratch);

/* Step 2 (see above). 0 <= m_begin <= m_end <= M. */
void aik_matmul_rows(aik_dtype wt, const void *W, const float *X,
                     const void *scratch, float *Y, int64_t M, int64_t K,
                     int64_t N, int64_t m_begin, int64_t m_end);

/*
 * Packed weights (kernels/cpu/packed.c has the layout and why): q8_0 and
 * q4_0 matrices repacked once, 16 rows interleaved, for a kernel that
 * serves 16 rows per operation. Same Y as aik_matmul up to rounding;
 * bitwise equal across ISA levels, row splits and N.
 */

/* Bytes of the packed copy of an M x K matrix of type wt, or 0 when it is
 * not worth packing here: not q8_0/q4_0, K not whole blocks, M < 16, or the
 * active ISA level has no packed kernel (then keep the file layout). */
size_t aik_matmul_pack_size(aik_dtype wt, int64_t M, int64_t K);

/* Bytes per row of a matrix of K columns: in the file layout, and (on
 * average, rows come 16 at a time) in the packed one. */
size_t aik_matmul_row_bytes(aik_dtype wt, int64_t K);
size_t aik_matmul_packed_row_bytes(aik_dtype wt, int64_t K);

/* Pack W (file layout) into dst (aik_matmul_pack_size bytes; 64-byte
 * alignment is best). aik_matmul_pack_groups packs the groups of 16 rows
 * [g_begin, g_end) only (the tail rows come with the last group), so the
 * work can be split over threads. */
void aik_matmul_pack(aik_dtype wt, const void *W, int64_t M, int64_t K, void *dst);
void aik_matmul_pack_groups(aik_dtype wt, const void *W, int64_t M, int64_t K, int64_t g_begin,
                            int64_t g_end, void *dst);

/* Step 1 for packed weights: activation row n in the layout the packed
 * kernels read (whatever the level); scratch as for aik_matmul_prepare. */
void aik_matmul_prepare_row_packed(aik_dtype wt, const float *X, int64_t K, int64_t n,
                                   void *scratch);

/* Step 2 for packed weights P. m_begin must be a multiple of 16, m_end a
 * multiple of 16 or M. Runs at any level (plain C where there is no packed
 * kernel). */
void aik_matmul_rows_packed(aik_dtype wt, const void *P, const void *scratch, float *Y,
                            int64_t M, int64_t K, int64_t N, int64_t m_begin, int64_t m_end);

/* Both steps, single-threaded (tests, small ops). For the threaded version
 * see aik_matmul_threaded in scheduler/threadpool.h. */
void aik_matmul(aik_dtype wt, const void *W, const float *X, void *scratch,
                float *Y, int64_t M, int64_t K, int64_t N);

/* ------------------------------------------------- element-wise / rows --- */

/* y = x / sqrt(mean(x^2) + eps) * w   (w may be NULL: no gain). y may be x. */
void aik_rms_norm(const float *x, const float *w, float *y, int64_t n, float eps);

/* y = a + b, y = a * b (element-wise), y = x * s. y may alias an input. */
void aik_add(const float *a, const float *b, float *y, int64_t n);
void aik_mul(const float *a, const float *b, float *y, int64_t n);
void aik_scale(const float *x, float s, float *y, int64_t n);

/* y = x * sigmoid(x). y may be x. */
void aik_silu(const float *x, float *y, int64_t n);

/* y = silu(gate) * up. y may alias gate or up. */
void aik_swiglu(const float *gate, const float *up, float *y, int64_t n);

/* In-place numerically stable softmax (max subtracted first). n >= 1. */
void aik_softmax(float *x, int64_t n);

/*
 * Rotary position embedding for one position, in place.
 * x: n_heads x head_dim floats (head_dim even). Pair i (0 <= i < head_dim/2)
 * is rotated by angle pos * theta^(-2i/head_dim):
 *   neox == false: pairs (2i, 2i+1)          (llama.cpp "normal" rope)
 *   neox == true:  pairs (i, i + head_dim/2) (GPT-NeoX / HF llama layout)
 */
void aik_rope(float *x, int n_heads, int head_dim, int64_t pos, float theta,
              bool neox);

/* aik_rope in two steps, so one table serves every layer of a token:
 * cs[2i], cs[2i+1] = cos, sin of pos * theta^(-2i/head_dim), i < head_dim/2
 * (head_dim floats), then the rotation. The same values as aik_rope. */
void aik_rope_table(int head_dim, int64_t pos, float theta, float *cs);
void aik_rope_apply(float *x, int n_heads, int head_dim, const float *cs, bool neox);

/*
 * Attention of one query head at one position over n_pos cached positions:
 *   s[p]  = scale * dot(q, K_p)          p in [0, n_pos)
 *   a     = softmax(s)
 *   out   = sum_p a[p] * V_p
 * k_cache / v_cache point at this head's slice in position 0: K_p is
 * k_cache + p * kv_stride (head_dim floats), likewise V_p. (So the caller
 * passes cache_base + kv_offset; GQA = several q heads on one kv slice.)
 * scores_scratch holds n_pos floats; out holds head_dim floats. n_pos >= 1.
 * The KV cache is f32 for now.
 */
void aik_attention_head(const float *q, const float *k_cache,
                        const float *v_cache, int64_t n_pos, int head_dim,
                        int64_t kv_stride, float scale, float *scores_scratch,
                        float *out);

/* aik_attention_head for the n_q q heads that share one kv head (grouped-
 * query attention): head h reads q + h * head_dim and writes out + h *
 * head_dim, with scores_scratch + h * n_pos (n_q * n_pos floats in all).
 * Bitwise the same results as n_q aik_attention_head calls; where the
 * level has a fused kernel (AVX-512, head_dim a multiple of 16 up to 256)
 * the keys and values are read once for the whole group and the scores
 * are reduced 16 at a time. */
void aik_attention_group(const float *q, int n_q, const float *k_cache, const float *v_cache, int64_t n_pos,
                         int head_dim, int64_t kv_stride, float scale, float *scores_scratch, float *out);

#ifdef __cplusplus
}
#endif
#endif /* AIK_KERNELS_CPU_KERNELS_H */
