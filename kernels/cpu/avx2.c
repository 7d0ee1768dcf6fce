/* SPDX-License-Identifier: MIT */
/*
 * kernels/cpu/avx2.c — AVX2 + FMA + F16C kernels.
 *
 * This file alone is compiled with -mavx2 -mfma -mf16c (kernels/meson.build);
 * its functions are reached only through aik_cpu_ops_avx2, which dispatch.c
 * hands out only when CPUID says the CPU has all three.
 *
 * Quantized dot products follow ggml's AVX2 scheme: the int8 products of a
 * 32-value block are summed exactly in int32 (maddubs + madd), converted to
 * float once and scaled by d_w * d_x with one FMA.
 */
#include <immintrin.h>

#include "kernels/cpu/simd_common.h"

static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax256(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float fp16(uint16_t h)
{
    return _cvtsh_ss(h);
}

static inline __m256 exp256(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(AIK_EXP_LO)), _mm256_set1_ps(AIK_EXP_HI));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(AIK_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(AIK_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(AIK_LN2_LO), r);
    __m256 p = _mm256_set1_ps(AIK_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(AIK_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(AIK_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(AIK_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(AIK_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(AIK_EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* ------------------------------------------------------ conversions --- */

static void avx2_fp16_to_f32(const uint16_t *src, float *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = aik_fp16_to_f32(src[i]);
}

static void avx2_f32_to_fp16(const float *src, uint16_t *dst, int64_t n)
{
    int64_t i = 0;
    /* vcvtps2ph with RNE matches aik_f32_to_fp16 bit for bit, NaN included */
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        dst[i] = aik_f32_to_fp16(src[i]);
}

static inline __m256 bf16x8_to_f32(const uint16_t *p)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

static void avx2_bf16_to_f32(const uint16_t *src, float *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, bf16x8_to_f32(src + i));
    for (; i < n; i++)
        dst[i] = aik_bf16_to_f32(src[i]);
}

/* Round-to-nearest-even to the top 16 bits; NaN gets its quiet bit. */
static inline __m256i f32x8_to_bf16_epi32(__m256 v)
{
    const __m256i x = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_srli_epi32(
        _mm256_add_epi32(x, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff)),
                                           _mm256_set1_epi32(0x7f800000));
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
    return _mm256_blendv_epi8(rounded, quiet, nan);
}

static void avx2_f32_to_bf16(const float *src, uint16_t *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i a = f32x8_to_bf16_epi32(_mm256_loadu_ps(src + i));
        const __m256i b = f32x8_to_bf16_epi32(_mm256_loadu_ps(src + i + 8));
        /* packus works per 128-bit lane; the permute restores the order */
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
        _mm256_storeu_si256((__m256i *)(dst + i), p);
    }
    for (; i < n; i++)
        dst[i] = aik_f32_to_bf16(src[i]);
}

/* ----------------------------------------------------- quantization --- */

/* roundf() semantics (half away from zero), exactly: t = trunc(v) is exact,
 * v - t is exact, so the comparison with 0.5 decides like roundf does. */
static inline __m256 round_away(__m256 v)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign));
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

/* Bit-identical to aik_ref_quantize_row_q8_0: same amax, same f32 d and
 * 1/d, same products, same rounding. */
static void avx2_quantize_q8_0(const float *x, void *blocks, int64_t n)
{
    aik_block_q8_0 *y = blocks;
    const __m256 sign = _mm256_set1_ps(-0.0f);

    for (int64_t i = 0; i < n / AIK_QK8_0; i++) {
        const float *xb = x + i * AIK_QK8_0;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        const float amax = hmax256(m);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = aik_f32_to_fp16(d);
        const __m256 vid = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v0, vid)));
        __m256i i1 = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v1, vid)));
        __m256i i2 = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v2, vid)));
        __m256i i3 = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(v3, vid)));
        i0 = _mm256_packs_epi32(i0, i1);
        i2 = _mm256_packs_epi32(i2, i3);
        i0 = _mm256_packs_epi16(i0, i2);
        i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[i].qs, i0);
    }
}

/* ----------------------------------------------------- dot products --- */

/* One template for the three float weight types: LOAD8(p, i) gives 8 f32. */
#define LOAD_F32(p, i) _mm256_loadu_ps((const float *)(p) + (i))
#define LOAD_F16(p, i) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)(p) + (i))))
#define LOAD_BF16(p, i) bf16x8_to_f32((const uint16_t *)(p) + (i))
#define SCALAR_F32(p, i) (((const float *)(p))[i])
#define SCALAR_F16(p, i) aik_fp16_to_f32(((const uint16_t *)(p))[i])
#define SCALAR_BF16(p, i) aik_bf16_to_f32(((const uint16_t *)(p))[i])

/* One accumulator per row: with 16 ymm registers, 4 rows x 2 accumulators
 * plus the loads would spill, and decode is bound by memory, not by FMA
 * latency. Each row of the 4-row kernel is summed exactly like the 1-row
 * kernel, so a matmul output does not depend on whether its row went
 * through dot4 or dot: results are the same for any split over threads. */
#define DEF_DOT_FLOAT(name, LOAD8, SCALAR)                                          \
    static float name(const void *w, const void *xv, int64_t n)                     \
    {                                                                               \
        const float *x = xv;                                                        \
        __m256 s0 = _mm256_setzero_ps();                                            \
        int64_t i = 0;                                                              \
        for (; i + 8 <= n; i += 8)                                                  \
            s0 = _mm256_fmadd_ps(LOAD8(w, i), _mm256_loadu_ps(x + i), s0);          \
        float sum = hsum256(s0);                                                    \
        for (; i < n; i++)                                                          \
            sum += SCALAR(w, i) * x[i];                                             \
        return sum;                                                                 \
    }

#define DEF_DOT4_FLOAT(name, LOAD8, SCALAR)                                         \
    static void name(const void *w, size_t stride, const void *xv, int64_t n,       \
                     float out[4])                                                  \
    {                                                                               \
        const float *x = xv;                                                        \
        const char *w0 = w, *w1 = w0 + stride, *w2 = w1 + stride, *w3 = w2 + stride; \
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();                  \
        __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();                  \
        int64_t i = 0;                                                              \
        for (; i + 8 <= n; i += 8) {                                                \
            const __m256 xv8 = _mm256_loadu_ps(x + i);                              \
            s0 = _mm256_fmadd_ps(LOAD8(w0, i), xv8, s0);                            \
            s1 = _mm256_fmadd_ps(LOAD8(w1, i), xv8, s1);                            \
            s2 = _mm256_fmadd_ps(LOAD8(w2, i), xv8, s2);                            \
            s3 = _mm256_fmadd_ps(LOAD8(w3, i), xv8, s3);                            \
        }                                                                           \
        float o0 = hsum256(s0), o1 = hsum256(s1), o2 = hsum256(s2), o3 = hsum256(s3); \
        for (; i < n; i++) {                                                        \
            o0 += SCALAR(w0, i) * x[i];                                             \
            o1 += SCALAR(w1, i) * x[i];                                             \
            o2 += SCALAR(w2, i) * x[i];                                             \
            o3 += SCALAR(w3, i) * x[i];                                             \
        }                                                                           \
        out[0] = o0;                                                                \
        out[1] = o1;                                                                \
        out[2] = o2;                                                                \
        out[3] = o3;                                                                \
    }

DEF_DOT_FLOAT(avx2_dot_f32, LOAD_F32, SCALAR_F32)
DEF_DOT_FLOAT(avx2_dot_f16, LOAD_F16, SCALAR_F16)
DEF_DOT_FLOAT(avx2_dot_bf16, LOAD_BF16, SCALAR_BF16)
DEF_DOT4_FLOAT(avx2_dot4_f32, LOAD_F32, SCALAR_F32)
DEF_DOT4_FLOAT(avx2_dot4_f16, LOAD_F16, SCALAR_F16)
DEF_DOT4_FLOAT(avx2_dot4_bf16, LOAD_BF16, SCALAR_BF16)

/* Sum of the 32 products w[j] * x[j] of signed bytes, as 8 int32 partial
 * sums in float. maddubs needs one unsigned operand: |w| and x with w's
 * sign moved onto it give the same products; the int16 pair sums stay below
 * 2 * 128 * 127 and cannot saturate (activations are never -128). */
static inline __m256 dot_i8x32(__m256i w, __m256i x)
{
    const __m256i aw = _mm256_sign_epi8(w, w);
    const __m256i sx = _mm256_sign_epi8(x, w);
    const __m256i p16 = _mm256_maddubs_epi16(aw, sx);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* Unsigned nibbles 0..15 of a q4_0 block in value order (j, then j + 16). */
static inline __m256i q4_nibbles(const uint8_t *qs)
{
    const __m128i b = _mm_loadu_si128((const __m128i *)qs);
    const __m128i m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}

/* q4_0 · q8_0 block without the sign trick: sum (q - 8) x = sum q x - 8 sum x,
 * and sum x (xsum8, int32 lanes already times 8) is shared by all rows. */
static inline __m256 dot_q4x32(__m256i nib, __m256i x, __m256i xsum8)
{
    const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(nib, x), _mm256_set1_epi16(1));
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(p, xsum8));
}

static inline __m256i block_sum8(__m256i x)
{
    const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), x),
                                        _mm256_set1_epi16(1));
    return _mm256_slli_epi32(s, 3);
}

static float avx2_dot_q8_0(const void *wv, const void *xv, int64_t n)
{
    const aik_block_q8_0 *w = wv, *x = xv;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / AIK_QK8_0; i++) {
        const __m256 d = _mm256_set1_ps(fp16(w[i].d) * fp16(x[i].d));
        const __m256 s = dot_i8x32(_mm256_loadu_si256((const __m256i *)w[i].qs),
                                   _mm256_loadu_si256((const __m256i *)x[i].qs));
        acc = _mm256_fmadd_ps(d, s, acc);
    }
    return hsum256(acc);
}

static float avx2_dot_q4_0(const void *wv, const void *xv, int64_t n)
{
    const aik_block_q4_0 *w = wv;
    const aik_block_q8_0 *x = xv;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / AIK_QK4_0; i++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256 d = _mm256_set1_ps(fp16(w[i].d) * fp16(x[i].d));
        acc = _mm256_fmadd_ps(d, dot_q4x32(q4_nibbles(w[i].qs), xq, block_sum8(xq)), acc);
    }
    return hsum256(acc);
}

/* Prefetch distance for the weight streams, in blocks (~1 KiB ahead). */
#ifndef PF_BLOCKS
#define PF_BLOCKS 32
#endif

/* d_w * d_x of block i for the 4 rows in one conversion and one multiply;
 * row r's broadcast is then a single permute. Same products as the scalar
 * fp16(w.d) * fp16(x.d) of the 1-row kernel, so results stay identical. */
static inline __m256 scales4(uint16_t d0, uint16_t d1, uint16_t d2, uint16_t d3,
                             uint16_t dx)
{
    const __m128 dw = _mm_cvtph_ps(_mm_setr_epi16((short)d0, (short)d1, (short)d2, (short)d3,
                                                  0, 0, 0, 0));
    const __m128 d = _mm_mul_ps(dw, _mm_set1_ps(fp16(dx)));
    return _mm256_castps128_ps256(d);
}

static inline __m256 lane_bcast(__m256 v, int r)
{
    return _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(r));
}

static void avx2_dot4_q8_0(const void *wv, size_t stride, const void *xv, int64_t n,
                           float out[4])
{
    const aik_block_q8_0 *w[4], *x = xv;
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        w[r] = (const aik_block_q8_0 *)((const char *)wv + (size_t)r * stride);
        acc[r] = _mm256_setzero_ps();
    }
    const int64_t nb = n / AIK_QK8_0;
    for (int64_t i = 0; i < nb; i++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256 d4 = scales4(w[0][i].d, w[1][i].d, w[2][i].d, w[3][i].d, x[i].d);
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            if (i + PF_BLOCKS < nb)
                _mm_prefetch((const char *)&w[r][i + PF_BLOCKS], _MM_HINT_T0);
            const __m256 d = lane_bcast(d4, r);
            acc[r] = _mm256_fmadd_ps(d, dot_i8x32(_mm256_loadu_si256((const __m256i *)w[r][i].qs), xq),
                                     acc[r]);
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        out[r] = hsum256(acc[r]);
}

static void avx2_dot4_q4_0(const void *wv, size_t stride, const void *xv, int64_t n,
                           float out[4])
{
    const aik_block_q4_0 *w[4];
    const aik_block_q8_0 *x = xv;
    __m256 acc[4];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        w[r] = (const aik_block_q4_0 *)((const char *)wv + (size_t)r * stride);
        acc[r] = _mm256_setzero_ps();
    }
    const int64_t nb = n / AIK_QK4_0;
    for (int64_t i = 0; i < nb; i++) {
        const __m256i xq = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256i xs8 = block_sum8(xq);
        const __m256 d4 = scales4(w[0][i].d, w[1][i].d, w[2][i].d, w[3][i].d, x[i].d);
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            if (i + PF_BLOCKS < nb)
                _mm_prefetch((const char *)&w[r][i + PF_BLOCKS], _MM_HINT_T0);
            const __m256 d = lane_bcast(d4, r);
            acc[r] = _mm256_fmadd_ps(d, dot_q4x32(q4_nibbles(w[r][i].qs), xq, xs8), acc[r]);
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        out[r] = hsum256(acc[r]);
}

/* 4 weight rows x 2 activation rows (prompt processing): each weight block
 * is loaded and unpacked once for both activation rows. Integer block sums
 * are exact and the scale / FMA sequence per (row, x) is that of the 4-row
 * kernel, so the results are bitwise those of dot4. */
static inline __m256 dot_i8x32_abs(__m256i aw, __m256i w, __m256i x)
{
    const __m256i p16 = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

#define DEF_DOT4X2_QUANT(name, BLOCK, LOADW)                                        \
    static void name(const void *wv, size_t stride, const void *x0v, const void *x1v, \
                     int64_t n, float out0[4], float out1[4])                       \
    {                                                                               \
        const BLOCK *w[4];                                                          \
        const aik_block_q8_0 *x0 = x0v, *x1 = x1v;                                  \
        __m256 a0[4], a1[4];                                                        \
        _Pragma("GCC unroll 4")                                                     \
        for (int r = 0; r < 4; r++) {                                               \
            w[r] = (const BLOCK *)((const char *)wv + (size_t)r * stride);          \
            a0[r] = _mm256_setzero_ps();                                            \
            a1[r] = _mm256_setzero_ps();                                            \
        }                                                                           \
        for (int64_t i = 0; i < n / AIK_QK8_0; i++) {                               \
            const __m256i xq0 = _mm256_loadu_si256((const __m256i *)x0[i].qs);      \
            const __m256i xq1 = _mm256_loadu_si256((const __m256i *)x1[i].qs);      \
            const __m256 d40 = scales4(w[0][i].d, w[1][i].d, w[2][i].d, w[3][i].d, x0[i].d); \
            const __m256 d41 = scales4(w[0][i].d, w[1][i].d, w[2][i].d, w[3][i].d, x1[i].d); \
            _Pragma("GCC unroll 4")                                                 \
            for (int r = 0; r < 4; r++) {                                           \
                const __m256i wq = LOADW(w[r][i].qs);                               \
                const __m256i aw = _mm256_sign_epi8(wq, wq);                        \
                a0[r] = _mm256_fmadd_ps(lane_bcast(d40, r), dot_i8x32_abs(aw, wq, xq0), a0[r]); \
                a1[r] = _mm256_fmadd_ps(lane_bcast(d41, r), dot_i8x32_abs(aw, wq, xq1), a1[r]); \
            }                                                                       \
        }                                                                           \
        _Pragma("GCC unroll 4")                                                     \
        for (int r = 0; r < 4; r++) {                                               \
            out0[r] = hsum256(a0[r]);                                               \
            out1[r] = hsum256(a1[r]);                                               \
        }                                                                           \
    }

#define LOADW_Q8(qs) _mm256_loadu_si256((const __m256i *)(qs))
#define LOADW_Q4(qs) _mm256_sub_epi8(q4_nibbles(qs), _mm256_set1_epi8(8))
DEF_DOT4X2_QUANT(avx2_dot4x2_q8_0, aik_block_q8_0, LOADW_Q8)
DEF_DOT4X2_QUANT(avx2_dot4x2_q4_0, aik_block_q4_0, LOADW_Q4)

/* ------------------------------------------------ element-wise / rows --- */

static void avx2_rms_norm(const float *x, const float *w, float *y, int64_t n, float eps)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
    }
    double ss = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        ss += (double)x[i] * x[i];
    const float inv = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv);
        if (w)
            v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
        _mm256_storeu_ps(y + i, v);
    }
    for (; i < n; i++)
        y[i] = x[i] * inv * (w ? w[i] : 1.0f);
}

static void avx2_add(const float *a, const float *b, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++)
        y[i] = a[i] + b[i];
}

static void avx2_mul(const float *a, const float *b, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++)
        y[i] = a[i] * b[i];
}

static void avx2_scale(const float *x, float s, float *y, int64_t n)
{
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
    for (; i < n; i++)
        y[i] = x[i] * s;
}

static inline __m256 silu256(__m256 v)
{
    const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), v));
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

static void avx2_silu(const float *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, silu256(_mm256_loadu_ps(x + i)));
    for (; i < n; i++)
        y[i] = simd_tail_silu(x[i]);
}

static void avx2_swiglu(const float *gate, const float *up, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(silu256(_mm256_loadu_ps(gate + i)),
                                              _mm256_loadu_ps(up + i)));
    for (; i < n; i++)
        y[i] = simd_tail_silu(gate[i]) * up[i];
}

static void avx2_softmax(float *x, int64_t n)
{
    int64_t i = 0;
    float max = x[0];
    if (n >= 8) {
        __m256 m = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8)
            m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
        max = hmax256(m);
    }
    for (; i < n; i++)
        max = fmaxf(max, x[i]);

    const __m256 vmax = _mm256_set1_ps(max);
    __m256 vs = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        _mm256_storeu_ps(x + i, e);
        vs = _mm256_add_ps(vs, e);
    }
    double sum = hsum256(vs);
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    avx2_scale(x, (float)(1.0 / sum), x, n);
}

static void avx2_axpy(float a, const float *x, float *y, int64_t n)
{
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* 32 output values per pass held in 4 registers while all positions
 * stream by; narrower passes for the rest. */
static void avx2_wsum(const float *a, const float *v, int64_t stride, int64_t n_pos,
                      int64_t dim, float *out)
{
    int64_t d = 0;
    for (; d + 32 <= dim; d += 32) {
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
        for (int64_t p = 0; p < n_pos; p++) {
            const float *vp = v + p * stride + d;
            const __m256 ap = _mm256_set1_ps(a[p]);
            s0 = _mm256_fmadd_ps(ap, _mm256_loadu_ps(vp), s0);
            s1 = _mm256_fmadd_ps(ap, _mm256_loadu_ps(vp + 8), s1);
            s2 = _mm256_fmadd_ps(ap, _mm256_loadu_ps(vp + 16), s2);
            s3 = _mm256_fmadd_ps(ap, _mm256_loadu_ps(vp + 24), s3);
        }
        _mm256_storeu_ps(out + d, s0);
        _mm256_storeu_ps(out + d + 8, s1);
        _mm256_storeu_ps(out + d + 16, s2);
        _mm256_storeu_ps(out + d + 24, s3);
    }
    for (; d + 8 <= dim; d += 8) {
        __m256 s0 = _mm256_setzero_ps();
        for (int64_t p = 0; p < n_pos; p++)
            s0 = _mm256_fmadd_ps(_mm256_set1_ps(a[p]), _mm256_loadu_ps(v + p * stride + d), s0);
        _mm256_storeu_ps(out + d, s0);
    }
    for (; d < dim; d++) {
        float s0 = 0.0f;
        for (int64_t p = 0; p < n_pos; p++)
            s0 += a[p] * v[p * stride + d];
        out[d] = s0;
    }
}

const aik_cpu_ops aik_cpu_ops_avx2 = {
    .dot = {
        [AIK_DTYPE_F32] = avx2_dot_f32,
        [AIK_DTYPE_F16] = avx2_dot_f16,
        [AIK_DTYPE_BF16] = avx2_dot_bf16,
        [AIK_DTYPE_Q8_0] = avx2_dot_q8_0,
        [AIK_DTYPE_Q4_0] = avx2_dot_q4_0,
    },
    .dot4 = {
        [AIK_DTYPE_F32] = avx2_dot4_f32,
        [AIK_DTYPE_F16] = avx2_dot4_f16,
        [AIK_DTYPE_BF16] = avx2_dot4_bf16,
        [AIK_DTYPE_Q8_0] = avx2_dot4_q8_0,
        [AIK_DTYPE_Q4_0] = avx2_dot4_q4_0,
    },
    .dot4x2 = {
        [AIK_DTYPE_Q8_0] = avx2_dot4x2_q8_0,
        [AIK_DTYPE_Q4_0] = avx2_dot4x2_q4_0,
    },
    .quantize_q8_0 = avx2_quantize_q8_0,
    .fp16_to_f32 = avx2_fp16_to_f32,
    .f32_to_fp16 = avx2_f32_to_fp16,
    .bf16_to_f32 = avx2_bf16_to_f32,
    .f32_to_bf16 = avx2_f32_to_bf16,
    .rms_norm = avx2_rms_norm,
    .add = avx2_add,
    .mul = avx2_mul,
    .scale = avx2_scale,
    .silu = avx2_silu,
    .swiglu = avx2_swiglu,
    .softmax = avx2_softmax,
    .axpy = avx2_axpy,
    .wsum = avx2_wsum,
};
