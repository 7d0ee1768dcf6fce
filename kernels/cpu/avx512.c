/* SPDX-License-Identifier: MIT */
/*
 * kernels/cpu/avx512.c — AVX-512 (F/BW/VL) kernels.
 *
 * Compiled with -mavx512f -mavx512bw -mavx512vl (plus the AVX2 flags), and
 * a second time as avx512vnni.c with AIK_AVX512_VNNI=1 and -mavx512vnni,
 * where the int8 dot products use vpdpbusd. dispatch.c hands these tables
 * out only when CPUID reports the features.
 *
 * Quantized dot products handle two 32-value blocks per 512-bit register;
 * each half is scaled by its own d_w * d_x.
 */
#include <immintrin.h>

#include "kernels/cpu/simd_common.h"

#ifndef AIK_AVX512_VNNI
#define AIK_AVX512_VNNI 0
#endif

#if AIK_AVX512_VNNI
#define OPS_NAME aik_cpu_ops_avx512vnni
#else
#define OPS_NAME aik_cpu_ops_avx512
#endif

static inline float fp16(uint16_t h)
{
    return _cvtsh_ss(h);
}

static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m512 exp512(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(AIK_EXP_LO)), _mm512_set1_ps(AIK_EXP_HI));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(AIK_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(AIK_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(AIK_LN2_LO), r);
    __m512 p = _mm512_set1_ps(AIK_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(AIK_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(AIK_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(AIK_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(AIK_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(AIK_EXP_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    /* scalef multiplies by 2^n without building the exponent bits */
    return _mm512_scalef_ps(p, n);
}

static inline __mmask16 tail_mask(int64_t left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* ------------------------------------------------------ conversions --- */

static void avx512_fp16_to_f32(const uint16_t *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m256i h = _mm256_maskz_loadu_epi16(k, src + i);
        _mm512_mask_storeu_ps(dst + i, k, _mm512_cvtph_ps(h));
    }
}

static void avx512_f32_to_fp16(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(k, src + i);
        _mm256_mask_storeu_epi16(dst + i, k, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
}

static inline __m512 bf16x16_to_f32(__m256i h)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static void avx512_bf16_to_f32(const uint16_t *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(dst + i, k, bf16x16_to_f32(_mm256_maskz_loadu_epi16(k, src + i)));
    }
}

static void avx512_f32_to_bf16(const float *src, uint16_t *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512i x = _mm512_castps_si512(_mm512_maskz_loadu_ps(k, src + i));
        const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
        __m512i r = _mm512_srli_epi32(
            _mm512_add_epi32(x, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
        const __mmask16 nan = _mm512_cmpgt_epi32_mask(
            _mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
        r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(x, 16), _mm512_set1_epi32(0x40));
        _mm256_mask_storeu_epi16(dst + i, k, _mm512_cvtepi32_epi16(r));
    }
}

/* ----------------------------------------------------- quantization --- */

/* roundf() semantics exactly (see avx2.c round_away). */
static inline __m512 round_away(__m512 v)
{
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
    const __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(_mm512_set1_ps(1.0f)),
        _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u))));
    return _mm512_mask_add_ps(t, up, t, one);
}

static void avx512_quantize_q8_0(const float *x, void *blocks, int64_t n)
{
    aik_block_q8_0 *y = blocks;
    for (int64_t i = 0; i < n / AIK_QK8_0; i++) {
        const float *xb = x + i * AIK_QK8_0;
        const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = aik_f32_to_fp16(d);
        const __m512 vid = _mm512_set1_ps(id);
        const __m512i i0 = _mm512_cvtps_epi32(round_away(_mm512_mul_ps(v0, vid)));
        const __m512i i1 = _mm512_cvtps_epi32(round_away(_mm512_mul_ps(v1, vid)));
        _mm_storeu_si128((__m128i *)y[i].qs, _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(y[i].qs + 16), _mm512_cvtepi32_epi8(i1));
    }
}

/* The packed kernels' activations in one pass: avx512_quantize_q8_0's
 * arithmetic, the scale's round trip through fp16 with F16C (round to
 * nearest even, as aik_f32_to_fp16), and the block sum from the int32
 * lanes. Decode quantizes a row before each of its ~120 matmuls on the
 * calling thread while the others wait: 576 values took 1.46 us one block
 * at a time through quantize_q8_0, a scalar sum and two fp16 calls, and
 * take 0.60 us here. */
static void avx512_quantize_xblocks(const float *x, aik_xblock *xb, int64_t nb, int32_t bias)
{
    for (int64_t i = 0; i < nb; i++) {
        const float *p = x + i * AIK_QK8_0;
        const __m512 v0 = _mm512_loadu_ps(p), v1 = _mm512_loadu_ps(p + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const __m512 vid = _mm512_set1_ps(id);
        const __m512i i0 = _mm512_cvtps_epi32(round_away(_mm512_mul_ps(v0, vid)));
        const __m512i i1 = _mm512_cvtps_epi32(round_away(_mm512_mul_ps(v1, vid)));
        _mm_storeu_si128((__m128i *)xb[i].qs, _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(xb[i].qs + 16), _mm512_cvtepi32_epi8(i1));
        const float d16 = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
        const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        xb[i].d = d16;
        xb[i].c = d16 * (float)(bias * sum);
    }
}

/* ----------------------------------------------------- dot products --- */

#define LOAD_F32(p, i, k) _mm512_maskz_loadu_ps(k, (const float *)(p) + (i))
#define LOAD_F16(p, i, k) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, (const uint16_t *)(p) + (i)))
#define LOAD_BF16(p, i, k) bf16x16_to_f32(_mm256_maskz_loadu_epi16(k, (const uint16_t *)(p) + (i)))

/* Masked loads handle the tail, so there is no scalar remainder loop. */
#define DEF_DOT_FLOAT(name, LOAD16)                                                 \
    static float name(const void *w, const void *xv, int64_t n)                     \
    {                                                                               \
        const float *x = xv;                                                        \
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();                  \
        int64_t i = 0;                                                              \
        for (; i + 32 <= n; i += 32) {                                              \
            s0 = _mm512_fmadd_ps(LOAD16(w, i, 0xffff), _mm512_loadu_ps(x + i), s0); \
            s1 = _mm512_fmadd_ps(LOAD16(w, i + 16, 0xffff), _mm512_loadu_ps(x + i + 16), s1); \
        }                                                                           \
        for (; i < n; i += 16) {                                                    \
            const __mmask16 k = tail_mask(n - i);                                   \
            s0 = _mm512_fmadd_ps(LOAD16(w, i, k), _mm512_maskz_loadu_ps(k, x + i), s0); \
        }                                                                           \
        return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));                         \
    }

/* Rows of the 4-row kernel are summed exactly like the 1-row kernel (see
 * avx2.c): matmul results do not depend on how rows are split. */
#define DEF_DOT4_FLOAT(name, LOAD16)                                                \
    static void name(const void *w, size_t stride, const void *xv, int64_t n,       \
                     float out[4])                                                  \
    {                                                                               \
        const float *x = xv;                                                        \
        const char *wr[4];                                                          \
        __m512 s0[4], s1[4];                                                        \
        _Pragma("GCC unroll 4") \
        for (int r = 0; r < 4; r++) {                                               \
            wr[r] = (const char *)w + (size_t)r * stride;                           \
            s0[r] = _mm512_setzero_ps();                                            \
            s1[r] = _mm512_setzero_ps();                                            \
        }                                                                           \
        int64_t i = 0;                                                              \
        for (; i + 32 <= n; i += 32) {                                              \
            const __m512 xa = _mm512_loadu_ps(x + i), xb = _mm512_loadu_ps(x + i + 16); \
            _Pragma("GCC unroll 4") \
            for (int r = 0; r < 4; r++) {                                           \
                s0[r] = _mm512_fmadd_ps(LOAD16(wr[r], i, 0xffff), xa, s0[r]);       \
                s1[r] = _mm512_fmadd_ps(LOAD16(wr[r], i + 16, 0xffff), xb, s1[r]);  \
            }                                                                       \
        }                                                                           \
        for (; i < n; i += 16) {                                                    \
            const __mmask16 k = tail_mask(n - i);                                   \
            const __m512 xv16 = _mm512_maskz_loadu_ps(k, x + i);                    \
            _Pragma("GCC unroll 4") \
            for (int r = 0; r < 4; r++)                                             \
                s0[r] = _mm512_fmadd_ps(LOAD16(wr[r], i, k), xv16, s0[r]);          \
        }                                                                           \
        _Pragma("GCC unroll 4") \
        for (int r = 0; r < 4; r++)                                                 \
            out[r] = _mm512_reduce_add_ps(_mm512_add_ps(s0[r], s1[r]));             \
    }

DEF_DOT_FLOAT(avx512_dot_f32, LOAD_F32)
DEF_DOT_FLOAT(avx512_dot_f16, LOAD_F16)
DEF_DOT_FLOAT(avx512_dot_bf16, LOAD_BF16)
DEF_DOT4_FLOAT(avx512_dot4_f32, LOAD_F32)
DEF_DOT4_FLOAT(avx512_dot4_f16, LOAD_F16)
DEF_DOT4_FLOAT(avx512_dot4_bf16, LOAD_BF16)

/* Two 32-byte block payloads side by side in one register. */
static inline __m512i load2(const int8_t *a, const int8_t *b)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

/* 16 int32 lanes: sums of 4 products of unsigned bytes u with signed s. */
static inline __m512i dot_u8s8(__m512i u, __m512i s)
{
#if AIK_AVX512_VNNI
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
#else
    /* int16 pair sums stay below 2 * 255 * 127 only for u <= 128 operands,
     * which is all that is passed here (|w| or nibbles) */
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
#endif
}

/* int8 · int8 for two blocks: |w| times x with w's sign (AVX-512 has no
 * vpsignb: negate x where w < 0 instead). */
static inline __m512 dot_i8x64(__m512i w, __m512i x)
{
    const __mmask64 neg = _mm512_movepi8_mask(w);
    const __m512i sx = _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x);
    return _mm512_cvtepi32_ps(dot_u8s8(_mm512_abs_epi8(w), sx));
}

/* The 256-bit version for an odd last block (AVX2 instructions, which this
 * file may use). */
static inline __m256 dot_i8x32(__m256i w, __m256i x)
{
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* Nibbles of two q4_0 blocks a, b as 64 bytes in the order
 * [a 0..15, b 0..15, a 16..31, b 16..31]: one 256-bit load of both 16-byte
 * payloads, low nibbles in the low half, high nibbles in the high half. The
 * activations are permuted once to match (x_for_q4), shared by 4 rows. */
static inline __m512i q4_nibbles2(const uint8_t *qa, const uint8_t *qb)
{
    const __m256i v = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)qa)),
        _mm_loadu_si128((const __m128i *)qb), 1);
    const __m256i m = _mm256_set1_epi8(0x0f);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, m)),
                              _mm256_and_si256(_mm256_srli_epi16(v, 4), m), 1);
}

/* [xa 0..15, xa 16..31, xb 0..15, xb 16..31] -> the q4_nibbles2 order. */
static inline __m512i x_for_q4(__m512i xq)
{
    return _mm512_shuffle_i64x2(xq, xq, _MM_SHUFFLE(3, 1, 2, 0));
}

/* Scale lanes for that order: int32 lanes 0-3 and 8-11 are block a. */
static inline __m512 q4_scale2(float da, float db)
{
    return _mm512_mask_blend_ps(0xf0f0, _mm512_set1_ps(da), _mm512_set1_ps(db));
}

static inline __m256i q4_nibbles(const uint8_t *qs)
{
    const __m128i b = _mm_loadu_si128((const __m128i *)qs);
    const __m128i m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}

/* Scale vector: d0 in lanes 0..7 (first block), d1 in lanes 8..15. */
static inline __m512 scale2(float d0, float d1)
{
    return _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(d0), _mm512_set1_ps(d1));
}

#ifndef PF_BLOCKS
#define PF_BLOCKS 32
#endif

/* Scales of blocks i and i+1 of the 4 rows times the activation scales, in
 * one conversion: lanes [r0b0 r0b1 r1b0 r1b1 r2b0 r2b1 r3b0 r3b1]. Row r's
 * 512-bit scale vector is then one permute (see row_scale) instead of four
 * scalar conversions, two multiplies and two broadcasts per row. */
#define SCALES4(w, i, x)                                                        \
    _mm256_mul_ps(                                                              \
        _mm256_cvtph_ps(_mm_setr_epi16(                                         \
            (short)w[0][i].d, (short)w[0][i + 1].d, (short)w[1][i].d,           \
            (short)w[1][i + 1].d, (short)w[2][i].d, (short)w[2][i + 1].d,       \
            (short)w[3][i].d, (short)w[3][i + 1].d)),                           \
        _mm256_cvtph_ps(_mm_set1_epi32((int)((uint32_t)x[i].d | (uint32_t)x[i + 1].d << 16))))

static inline __m512 row_scale(__m256 d8, int r, __mmask16 b_lanes)
{
    const __m512i idx = _mm512_mask_blend_epi32(b_lanes, _mm512_set1_epi32(2 * r),
                                                _mm512_set1_epi32(2 * r + 1));
    return _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(d8));
}

static void avx512_dot4_q8_0(const void *wv, size_t stride, const void *xv, int64_t n,
                             float out[4])
{
    const aik_block_q8_0 *w[4], *x = xv;
    __m512 acc[4];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        w[r] = (const aik_block_q8_0 *)((const char *)wv + (size_t)r * stride);
        acc[r] = _mm512_setzero_ps();
    }
    const int64_t nb = n / AIK_QK8_0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512i xq = load2(x[i].qs, x[i + 1].qs);
        const __m256 d8 = SCALES4(w, i, x);
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            if (i + PF_BLOCKS < nb)
                _mm_prefetch((const char *)&w[r][i + PF_BLOCKS], _MM_HINT_T0);
            acc[r] = _mm512_fmadd_ps(row_scale(d8, r, 0xff00), dot_i8x64(load2(w[r][i].qs, w[r][i + 1].qs), xq),
                                     acc[r]);
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        float s = _mm512_reduce_add_ps(acc[r]);
        if (i < nb) {
            const __m256 p = dot_i8x32(_mm256_loadu_si256((const __m256i *)w[r][i].qs),
                                       _mm256_loadu_si256((const __m256i *)x[i].qs));
            s += hsum256(p) * (fp16(w[r][i].d) * fp16(x[i].d));
        }
        out[r] = s;
    }
}

static void avx512_dot4_q4_0(const void *wv, size_t stride, const void *xv, int64_t n,
                             float out[4])
{
    const aik_block_q4_0 *w[4];
    const aik_block_q8_0 *x = xv;
    __m512 acc[4];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        w[r] = (const aik_block_q4_0 *)((const char *)wv + (size_t)r * stride);
        acc[r] = _mm512_setzero_ps();
    }
    const int64_t nb = n / AIK_QK4_0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512i xq = x_for_q4(load2(x[i].qs, x[i + 1].qs));
        /* sum (q - 8) x = sum q x - 8 sum x; sum x is shared by the 4 rows */
        const __m512i xs8 = _mm512_slli_epi32(dot_u8s8(_mm512_set1_epi8(1), xq), 3);
        const __m256 d8 = SCALES4(w, i, x);
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            if (i + PF_BLOCKS < nb)
                _mm_prefetch((const char *)&w[r][i + PF_BLOCKS], _MM_HINT_T0);
            const __m512 d = row_scale(d8, r, 0xf0f0);
            const __m512i p = _mm512_sub_epi32(dot_u8s8(q4_nibbles2(w[r][i].qs, w[r][i + 1].qs), xq), xs8);
            acc[r] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc[r]);
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        float s = _mm512_reduce_add_ps(acc[r]);
        if (i < nb) {
            const __m256i q = _mm256_sub_epi8(q4_nibbles(w[r][i].qs), _mm256_set1_epi8(8));
            const __m256 p = dot_i8x32(q, _mm256_loadu_si256((const __m256i *)x[i].qs));
            s += hsum256(p) * (fp16(w[r][i].d) * fp16(x[i].d));
        }
        out[r] = s;
    }
}

/* 4 weight rows x 2 activation rows (prompt processing): the weights are
 * loaded and unpacked once for both activation rows. Every (row, x) sum is
 * formed by exactly the operations of the 4-row kernel, in the same order,
 * so results do not depend on how the activation rows were paired. */
static inline __m256 x_scales2(const aik_block_q8_0 *x, int64_t i)
{
    return _mm256_cvtph_ps(_mm_set1_epi32((int)((uint32_t)x[i].d | (uint32_t)x[i + 1].d << 16)));
}

#define W_SCALES4(w, i)                                                         \
    _mm256_cvtph_ps(_mm_setr_epi16(                                             \
        (short)w[0][i].d, (short)w[0][i + 1].d, (short)w[1][i].d,               \
        (short)w[1][i + 1].d, (short)w[2][i].d, (short)w[2][i + 1].d,           \
        (short)w[3][i].d, (short)w[3][i + 1].d))

static void avx512_dot4x2_q8_0(const void *wv, size_t stride, const void *x0v, const void *x1v,
                               int64_t n, float out0[4], float out1[4])
{
    const aik_block_q8_0 *w[4], *x0 = x0v, *x1 = x1v;
    __m512 a0[4], a1[4];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        w[r] = (const aik_block_q8_0 *)((const char *)wv + (size_t)r * stride);
        a0[r] = _mm512_setzero_ps();
        a1[r] = _mm512_setzero_ps();
    }
    const int64_t nb = n / AIK_QK8_0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512i xq0 = load2(x0[i].qs, x0[i + 1].qs);
        const __m512i xq1 = load2(x1[i].qs, x1[i + 1].qs);
        const __m256 dw = W_SCALES4(w, i);
        const __m256 d80 = _mm256_mul_ps(dw, x_scales2(x0, i));
        const __m256 d81 = _mm256_mul_ps(dw, x_scales2(x1, i));
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m512i wq = load2(w[r][i].qs, w[r][i + 1].qs);
            const __mmask64 neg = _mm512_movepi8_mask(wq);
            const __m512i aw = _mm512_abs_epi8(wq);
            const __m512i s0 = _mm512_mask_sub_epi8(xq0, neg, _mm512_setzero_si512(), xq0);
            const __m512i s1 = _mm512_mask_sub_epi8(xq1, neg, _mm512_setzero_si512(), xq1);
            a0[r] = _mm512_fmadd_ps(row_scale(d80, r, 0xff00), _mm512_cvtepi32_ps(dot_u8s8(aw, s0)), a0[r]);
            a1[r] = _mm512_fmadd_ps(row_scale(d81, r, 0xff00), _mm512_cvtepi32_ps(dot_u8s8(aw, s1)), a1[r]);
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        float s0 = _mm512_reduce_add_ps(a0[r]), s1 = _mm512_reduce_add_ps(a1[r]);
        if (i < nb) {
            const __m256i wq = _mm256_loadu_si256((const __m256i *)w[r][i].qs);
            const float dw = fp16(w[r][i].d);
            s0 += hsum256(dot_i8x32(wq, _mm256_loadu_si256((const __m256i *)x0[i].qs))) * (dw * fp16(x0[i].d));
            s1 += hsum256(dot_i8x32(wq, _mm256_loadu_si256((const __m256i *)x1[i].qs))) * (dw * fp16(x1[i].d));
        }
        out0[r] = s0;
        out1[r] = s1;
    }
}

static void avx512_dot4x2_q4_0(const void *wv, size_t stride, const void *x0v, const void *x1v,
                               int64_t n, float out0[4], float out1[4])
{
    const aik_block_q4_0 *w[4];
    const aik_block_q8_0 *x0 = x0v, *x1 = x1v;
    __m512 a0[4], a1[4];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        w[r] = (const aik_block_q4_0 *)((const char *)wv + (size_t)r * stride);
        a0[r] = _mm512_setzero_ps();
        a1[r] = _mm512_setzero_ps();
    }
    const int64_t nb = n / AIK_QK4_0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512i xq0 = x_for_q4(load2(x0[i].qs, x0[i + 1].qs));
        const __m512i xq1 = x_for_q4(load2(x1[i].qs, x1[i + 1].qs));
        const __m512i xs0 = _mm512_slli_epi32(dot_u8s8(_mm512_set1_epi8(1), xq0), 3);
        const __m512i xs1 = _mm512_slli_epi32(dot_u8s8(_mm512_set1_epi8(1), xq1), 3);
        const __m256 dw = W_SCALES4(w, i);
        const __m256 d80 = _mm256_mul_ps(dw, x_scales2(x0, i));
        const __m256 d81 = _mm256_mul_ps(dw, x_scales2(x1, i));
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m512i nib = q4_nibbles2(w[r][i].qs, w[r][i + 1].qs);
            const __m512i p0 = _mm512_sub_epi32(dot_u8s8(nib, xq0), xs0);
            const __m512i p1 = _mm512_sub_epi32(dot_u8s8(nib, xq1), xs1);
            a0[r] = _mm512_fmadd_ps(row_scale(d80, r, 0xf0f0), _mm512_cvtepi32_ps(p0), a0[r]);
            a1[r] = _mm512_fmadd_ps(row_scale(d81, r, 0xf0f0), _mm512_cvtepi32_ps(p1), a1[r]);
        }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        float s0 = _mm512_reduce_add_ps(a0[r]), s1 = _mm512_reduce_add_ps(a1[r]);
        if (i < nb) {
            const __m256i q = _mm256_sub_epi8(q4_nibbles(w[r][i].qs), _mm256_set1_epi8(8));
            const float dw = fp16(w[r][i].d);
            s0 += hsum256(dot_i8x32(q, _mm256_loadu_si256((const __m256i *)x0[i].qs))) * (dw * fp16(x0[i].d));
            s1 += hsum256(dot_i8x32(q, _mm256_loadu_si256((const __m256i *)x1[i].qs))) * (dw * fp16(x1[i].d));
        }
        out0[r] = s0;
        out1[r] = s1;
    }
}

/* Single-row versions: a 4-row call would read past the matrix, so the
 * remainder rows (and the vec_dot API) go through these. */
static float avx512_dot_q8_0(const void *wv, const void *xv, int64_t n)
{
    const aik_block_q8_0 *w = wv, *x = xv;
    const int64_t nb = n / AIK_QK8_0;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512 d = scale2(fp16(w[i].d) * fp16(x[i].d), fp16(w[i + 1].d) * fp16(x[i + 1].d));
        acc = _mm512_fmadd_ps(d, dot_i8x64(load2(w[i].qs, w[i + 1].qs), load2(x[i].qs, x[i + 1].qs)), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (i < nb) {
        const __m256 p = dot_i8x32(_mm256_loadu_si256((const __m256i *)w[i].qs),
                                   _mm256_loadu_si256((const __m256i *)x[i].qs));
        s += hsum256(p) * (fp16(w[i].d) * fp16(x[i].d));
    }
    return s;
}

static float avx512_dot_q4_0(const void *wv, const void *xv, int64_t n)
{
    const aik_block_q4_0 *w = wv;
    const aik_block_q8_0 *x = xv;
    const int64_t nb = n / AIK_QK4_0;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512i xq = x_for_q4(load2(x[i].qs, x[i + 1].qs));
        const __m512i xs8 = _mm512_slli_epi32(dot_u8s8(_mm512_set1_epi8(1), xq), 3);
        const __m512 d = q4_scale2(fp16(w[i].d) * fp16(x[i].d), fp16(w[i + 1].d) * fp16(x[i + 1].d));
        const __m512i p = _mm512_sub_epi32(dot_u8s8(q4_nibbles2(w[i].qs, w[i + 1].qs), xq), xs8);
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (i < nb) {
        const __m256i q = _mm256_sub_epi8(q4_nibbles(w[i].qs), _mm256_set1_epi8(8));
        const __m256 p = dot_i8x32(q, _mm256_loadu_si256((const __m256i *)x[i].qs));
        s += hsum256(p) * (fp16(w[i].d) * fp16(x[i].d));
    }
    return s;
}

#if AIK_AVX512_VNNI
/* ------------------------------------- integer matmul kernels (VNNI) --- */

/* Per 32-value block and weight row (see aik_xblock in cpu_internal.h):
 *   acc += (dpbusd(u, x.qs) * x.dv - x.cv) * d_w
 * that is one operation to make u, then vpdpbusd, a conversion and two
 * FMAs, all on 256-bit registers: on these cores vpdpbusd, conversions and
 * FMAs have two ports at 256 bits but one at 512 bits, so ymm does the
 * same work per cycle without the lane shuffles that pairing two 34-byte
 * blocks in a zmm costs. d_w comes from the fp16 table as a broadcast
 * memory operand (no vector ALU work). Each row keeps two accumulators,
 * for even and odd blocks, so the FMA latency does not bound a single
 * row; the 1-, 4- and 4x2-row kernels all sum a row exactly this way. */

static inline __m256i qu_q8_0(const void *w, int64_t i)
{
    const aik_block_q8_0 *b = (const aik_block_q8_0 *)w + i;
    return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)b->qs),
                            _mm256_set1_epi8((char)0x80));
}

static inline __m256i qu_q4_0(const void *w, int64_t i)
{
    const aik_block_q4_0 *b = (const aik_block_q4_0 *)w + i;
    return _mm256_and_si256(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b->qs)),
                            _mm256_setr_m128i(_mm_set1_epi8(0x0f), _mm_set1_epi8((char)0xf0)));
}

static inline float qd_q8_0(const void *w, int64_t i)
{
    return aik_cpu_fp16_table[((const aik_block_q8_0 *)w)[i].d];
}

static inline float qd_q4_0(const void *w, int64_t i)
{
    return aik_cpu_fp16_table[((const aik_block_q4_0 *)w)[i].d];
}

static inline __m256 qstep(__m256 acc, __m256i u, const aik_xblock *x, float dw)
{
    const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u,
                                          _mm256_loadu_si256((const __m256i *)x->qs));
    const __m256 t = _mm256_fmsub_ps(_mm256_cvtepi32_ps(p), _mm256_loadu_ps(x->dv),
                                     _mm256_loadu_ps(x->cv));
    return _mm256_fmadd_ps(t, _mm256_set1_ps(dw), acc);
}

#define DEF_QDOT(T)                                                                 \
    static float avx512_qdot_##T(const void *w, const aik_xblock *x, int64_t n)     \
    {                                                                               \
        const int64_t nb = n / AIK_QK8_0;                                           \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                  \
        int64_t i = 0;                                                              \
        for (; i + 2 <= nb; i += 2) {                                               \
            a0 = qstep(a0, qu_##T(w, i), x + i, qd_##T(w, i));                      \
            a1 = qstep(a1, qu_##T(w, i + 1), x + i + 1, qd_##T(w, i + 1));          \
        }                                                                           \
        if (i < nb)                                                                 \
            a0 = qstep(a0, qu_##T(w, i), x + i, qd_##T(w, i));                      \
        return hsum256(_mm256_add_ps(a0, a1));                                      \
    }                                                                               \
                                                                                    \
    static void avx512_qdot4_##T(const void *wv, size_t stride, const aik_xblock *x, \
                                 int64_t n, float out[4])                           \
    {                                                                               \
        const char *w[4];                                                           \
        __m256 a0[4], a1[4];                                                        \
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)                         \
        {                                                                           \
            w[r] = (const char *)wv + (size_t)r * stride;                           \
            a0[r] = _mm256_setzero_ps();                                            \
            a1[r] = _mm256_setzero_ps();                                            \
        }                                                                           \
        const int64_t nb = n / AIK_QK8_0;                                           \
        int64_t i = 0;                                                              \
        for (; i + 2 <= nb; i += 2) {                                               \
            _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)                     \
            {                                                                       \
                a0[r] = qstep(a0[r], qu_##T(w[r], i), x + i, qd_##T(w[r], i));      \
                a1[r] = qstep(a1[r], qu_##T(w[r], i + 1), x + i + 1, qd_##T(w[r], i + 1)); \
            }                                                                       \
        }                                                                           \
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)                         \
        {                                                                           \
            if (i < nb)                                                             \
                a0[r] = qstep(a0[r], qu_##T(w[r], i), x + i, qd_##T(w[r], i));      \
            out[r] = hsum256(_mm256_add_ps(a0[r], a1[r]));                          \
        }                                                                           \
    }                                                                               \
                                                                                    \
    static void avx512_qdot4x2_##T(const void *wv, size_t stride, const aik_xblock *x0, \
                                   const aik_xblock *x1, int64_t n, float out0[4],  \
                                   float out1[4])                                   \
    {                                                                               \
        const char *w[4];                                                           \
        __m256 a0[4], a1[4], b0[4], b1[4];                                          \
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)                         \
        {                                                                           \
            w[r] = (const char *)wv + (size_t)r * stride;                           \
            a0[r] = a1[r] = b0[r] = b1[r] = _mm256_setzero_ps();                    \
        }                                                                           \
        const int64_t nb = n / AIK_QK8_0;                                           \
        int64_t i = 0;                                                              \
        for (; i + 2 <= nb; i += 2) {                                               \
            _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)                     \
            {                                                                       \
                const __m256i u0 = qu_##T(w[r], i), u1 = qu_##T(w[r], i + 1);        \
                const float d0 = qd_##T(w[r], i), d1 = qd_##T(w[r], i + 1);          \
                a0[r] = qstep(a0[r], u0, x0 + i, d0);                               \
                a1[r] = qstep(a1[r], u1, x0 + i + 1, d1);                           \
                b0[r] = qstep(b0[r], u0, x1 + i, d0);                               \
                b1[r] = qstep(b1[r], u1, x1 + i + 1, d1);                           \
            }                                                                       \
        }                                                                           \
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++)                         \
        {                                                                           \
            if (i < nb) {                                                           \
                const __m256i u0 = qu_##T(w[r], i);                                 \
                const float d0 = qd_##T(w[r], i);                                   \
                a0[r] = qstep(a0[r], u0, x0 + i, d0);                               \
                b0[r] = qstep(b0[r], u0, x1 + i, d0);                               \
            }                                                                       \
            out0[r] = hsum256(_mm256_add_ps(a0[r], a1[r]));                         \
            out1[r] = hsum256(_mm256_add_ps(b0[r], b1[r]));                         \
        }                                                                           \
    }

DEF_QDOT(q8_0)
DEF_QDOT(q4_0)

/* Packed layout (kernels/cpu/packed.c): one zmm lane per weight row, 16
 * rows per group; per block and activation row, 8 vpdpbusd (q8_0) or 4 + 4
 * on the masked nibbles (q4_0) sum the block exactly in int32, then one
 * conversion and two FMAs serve all 16 rows. The high q4_0 nibbles enter
 * as 16 q (masked in place) into their own sum, shifted back exactly. The
 * next blocks are prefetched at a steady distance: the group is one
 * contiguous stream. n_x is a compile-time constant in each instance. */
#define PACKED_PF_BYTES 2048

static inline __m512i xquad(const aik_xblock *x, int q)
{
    int32_t v;
    memcpy(&v, x->qs + 4 * q, 4);
    return _mm512_set1_epi32(v);
}

static inline __attribute__((always_inline)) void
packed16(bool q4, const void *group, int64_t nb, const aik_xblock *x, int64_t xs, int n_x, float *y,
         int64_t ys)
{
    const size_t bbytes = q4 ? 32 + 256 : 32 + 512;
    const __m512i lo = _mm512_set1_epi8(0x0f), hi = _mm512_set1_epi8((char)0xf0);
    __m512 acc0[4], acc1[4]; /* even and odd blocks */
    _Pragma("GCC unroll 4") for (int j = 0; j < n_x; j++)
        acc0[j] = acc1[j] = _mm512_setzero_ps();
    const char *o = group;
    for (int64_t b = 0; b < nb; b++, o += bbytes) {
        _Pragma("GCC unroll 9") for (size_t l = 0; l < bbytes; l += 64)
            _mm_prefetch(o + PACKED_PF_BYTES + l, _MM_HINT_T0);
        __m512i a[4], ah[4];
        _Pragma("GCC unroll 4") for (int j = 0; j < n_x; j++)
            a[j] = ah[j] = _mm512_setzero_si512();
        if (q4) {
            _Pragma("GCC unroll 4") for (int p = 0; p < 4; p++) {
                const __m512i v = _mm512_loadu_si512(o + 32 + 64 * p);
                const __m512i vl = _mm512_and_si512(v, lo), vh = _mm512_and_si512(v, hi);
                _Pragma("GCC unroll 4") for (int j = 0; j < n_x; j++) {
                    a[j] = _mm512_dpbusd_epi32(a[j], vl, xquad(x + j * xs + b, p));
                    ah[j] = _mm512_dpbusd_epi32(ah[j], vh, xquad(x + j * xs + b, p + 4));
                }
            }
            _Pragma("GCC unroll 4") for (int j = 0; j < n_x; j++)
                a[j] = _mm512_add_epi32(a[j], _mm512_srai_epi32(ah[j], 4));
        } else {
            /* two chains per row so the vpdpbusd latency overlaps */
            _Pragma("GCC unroll 4") for (int q = 0; q < 8; q += 2) {
                const __m512i v0 = _mm512_loadu_si512(o + 32 + 64 * q);
                const __m512i v1 = _mm512_loadu_si512(o + 32 + 64 * (q + 1));
                _Pragma("GCC unroll 4") for (int j = 0; j < n_x; j++) {
                    a[j] = _mm512_dpbusd_epi32(a[j], v0, xquad(x + j * xs + b, q));
                    ah[j] = _mm512_dpbusd_epi32(ah[j], v1, xquad(x + j * xs + b, q + 1));
                }
            }
            _Pragma("GCC unroll 4") for (int j = 0; j < n_x; j++)
                a[j] = _mm512_add_epi32(a[j], ah[j]);
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)o));
        __m512 t[4];
        _Pragma("GCC unroll 4") for (int j = 0; j < n_x; j++) {
            const aik_xblock *xb = x + j * xs + b;
            t[j] = _mm512_fmsub_ps(_mm512_cvtepi32_ps(a[j]), _mm512_set1_ps(xb->d), _mm512_set1_ps(xb->c));
        }
        /* (a branch, not acc[j][b & 1]: that index would keep the
         * accumulators in memory) */
        if (b & 1) {
            _Pragma("GCC unroll 4") for (int j = 0; j < n_x; j++)
                acc1[j] = _mm512_fmadd_ps(t[j], dw, acc1[j]);
        } else {
            _Pragma("GCC unroll 4") for (int j = 0; j < n_x; j++)
                acc0[j] = _mm512_fmadd_ps(t[j], dw, acc0[j]);
        }
    }
    _Pragma("GCC unroll 4") for (int j = 0; j < n_x; j++)
        _mm512_storeu_ps(y + j * ys, _mm512_add_ps(acc0[j], acc1[j]));
}

#define DEF_QDOT16(T, Q4)                                                                \
    static void avx512_qdot16_##T(const void *g, int64_t nb, const aik_xblock *x,         \
                                  int64_t xs, int n_x, float *y, int64_t ys)              \
    {                                                                                     \
        switch (n_x) {                                                                    \
        case 1: packed16(Q4, g, nb, x, xs, 1, y, ys); break;                              \
        case 2: packed16(Q4, g, nb, x, xs, 2, y, ys); break;                              \
        case 3: packed16(Q4, g, nb, x, xs, 3, y, ys); break;                              \
        default: packed16(Q4, g, nb, x, xs, 4, y, ys); break;                             \
        }                                                                                 \
    }
DEF_QDOT16(q8_0, false)
DEF_QDOT16(q4_0, true)
#endif

/* ------------------------------------------------ element-wise / rows --- */

static void avx512_rms_norm(const float *x, const float *w, float *y, int64_t n, float eps)
{
    __m512 s = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
        s = _mm512_fmadd_ps(v, v, s);
    }
    const double ss = _mm512_reduce_add_ps(s);
    const __m512 inv = _mm512_set1_ps(1.0f / sqrtf((float)(ss / (double)n) + eps));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv);
        if (w)
            v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(k, w + i));
        _mm512_mask_storeu_ps(y + i, k, v);
    }
}

#define DEF_BINARY(name, OP)                                                   \
    static void name(const float *a, const float *b, float *y, int64_t n)      \
    {                                                                          \
        for (int64_t i = 0; i < n; i += 16) {                                  \
            const __mmask16 k = tail_mask(n - i);                              \
            _mm512_mask_storeu_ps(y + i, k, OP(_mm512_maskz_loadu_ps(k, a + i), \
                                               _mm512_maskz_loadu_ps(k, b + i))); \
        }                                                                      \
    }
DEF_BINARY(avx512_add, _mm512_add_ps)
DEF_BINARY(avx512_mul, _mm512_mul_ps)

static void avx512_scale(const float *x, float s, float *y, int64_t n)
{
    const __m512 vs = _mm512_set1_ps(s);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vs));
    }
}

static inline __m512 silu512(__m512 v)
{
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), v));
    return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

static void avx512_silu(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, k, silu512(_mm512_maskz_loadu_ps(k, x + i)));
    }
}

static void avx512_swiglu(const float *gate, const float *up, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(silu512(_mm512_maskz_loadu_ps(k, gate + i)),
                                                      _mm512_maskz_loadu_ps(k, up + i)));
    }
}

static void avx512_softmax(float *x, int64_t n)
{
    __m512 m = _mm512_set1_ps(x[0]);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        m = _mm512_mask_max_ps(m, k, m, _mm512_maskz_loadu_ps(k, x + i));
    }
    const __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(m));
    __m512 vs = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vmax));
        _mm512_mask_storeu_ps(x + i, k, e);
        vs = _mm512_mask_add_ps(vs, k, vs, e);
    }
    avx512_scale(x, (float)(1.0 / (double)_mm512_reduce_add_ps(vs)), x, n);
}

static void avx512_axpy(float a, const float *x, float *y, int64_t n)
{
    const __m512 va = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(k, x + i),
                                                        _mm512_maskz_loadu_ps(k, y + i)));
    }
}

/* 64 output values per pass held in 4 registers while all positions stream
 * by; the last pass is masked. */
static void avx512_wsum(const float *a, const float *v, int64_t stride, int64_t n_pos,
                        int64_t dim, float *out)
{
    for (int64_t d = 0; d < dim; d += 64) {
        const __mmask16 k0 = tail_mask(dim - d);
        const __mmask16 k1 = dim - d > 16 ? tail_mask(dim - d - 16) : 0;
        const __mmask16 k2 = dim - d > 32 ? tail_mask(dim - d - 32) : 0;
        const __mmask16 k3 = dim - d > 48 ? tail_mask(dim - d - 48) : 0;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
        for (int64_t p = 0; p < n_pos; p++) {
            const float *vp = v + p * stride + d;
            const __m512 ap = _mm512_set1_ps(a[p]);
            s0 = _mm512_fmadd_ps(ap, _mm512_maskz_loadu_ps(k0, vp), s0);
            s1 = _mm512_fmadd_ps(ap, _mm512_maskz_loadu_ps(k1, vp + 16), s1);
            s2 = _mm512_fmadd_ps(ap, _mm512_maskz_loadu_ps(k2, vp + 32), s2);
            s3 = _mm512_fmadd_ps(ap, _mm512_maskz_loadu_ps(k3, vp + 48), s3);
        }
        _mm512_mask_storeu_ps(out + d, k0, s0);
        _mm512_mask_storeu_ps(out + d + 16, k1, s1);
        _mm512_mask_storeu_ps(out + d + 32, k2, s2);
        _mm512_mask_storeu_ps(out + d + 48, k3, s3);
    }
}

/* ---- grouped-query attention: the q heads of one kv head in one pass ----
 *
 * The per-head path reads a kv head's keys and values once per q head (3
 * times for SmolLM2's groups of 3) and reduces every score on its own.
 * Here the keys come into L1 16 positions at a time for all the group's q
 * heads, 16 scores are reduced together, and the values are read once with
 * the group's output rows in registers. Every number is computed by the
 * same operations as the per-head path of this file (dot4 / dot: even
 * 16-lane chunks into one sum, odd into another, then
 * _mm512_reduce_add_ps's addition tree; scale; softmax; wsum's chains), so
 * the results are bitwise equal to it — the executors' results do not
 * depend on which one ran. */

/* Position order of the reduction's output lanes (see reduce16_add):
 * lane l holds input RED16_LANE[l]; the map is its own inverse. */
static const int RED16_LANE[16] = { 0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15 };

/* Lane l = _mm512_reduce_add_ps(a[RED16_LANE[l]]), by the same addition
 * tree (8 + 8, then 4 + 4, then lanes {0,1} + {2,3}, then 0 + 1) applied to
 * 16 vectors at once: 15 shuffles and adds instead of 16 reductions. */
static inline __m512 reduce16_add(const __m512 a[16])
{
    __m512 u[8], w[4], x[2];
    for (int i = 0; i < 8; i++)
        u[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[i], a[i + 8], 0xEE), _mm512_shuffle_f32x4(a[i], a[i + 8], 0x44));
    for (int i = 0; i < 4; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[i], u[i + 4], 0xDD), _mm512_shuffle_f32x4(u[i], u[i + 4], 0x88));
    for (int i = 0; i < 2; i++)
        x[i] = _mm512_add_ps(_mm512_shuffle_ps(w[i], w[i + 2], 0x44), _mm512_shuffle_ps(w[i], w[i + 2], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(x[0], x[1], 0x88), _mm512_shuffle_ps(x[0], x[1], 0xDD));
}

/* One score as dot4 / dot sum it: chunks 0, 2, 4... into s0, 1, 3... into
 * s1 (each from a zero sum), then s0 + s1. */
static inline __attribute__((always_inline)) __m512 score_lanes(const __m512 *qc, const float *k, const int chunks)
{
    const __m512 zero = _mm512_setzero_ps();
    __m512 s0 = _mm512_fmadd_ps(_mm512_loadu_ps(k), qc[0], zero);
    __m512 s1 = chunks > 1 ? _mm512_fmadd_ps(_mm512_loadu_ps(k + 16), qc[1], zero) : zero;
    _Pragma("GCC unroll 16")
    for (int c = 2; c < chunks; c++) {
        if (c % 2 == 0)
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(k + 16 * c), qc[c], s0);
        else
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(k + 16 * c), qc[c], s1);
    }
    return _mm512_add_ps(s0, s1);
}

enum { ATT_WSUM_HEADS = 4 }; /* output rows kept in registers at once */

/* The kernel for head_dim = 16 * chunks; inlined with a constant chunks
 * so that the loops unroll and the sums stay in registers. */
static inline __attribute__((always_inline)) void attention_group_impl(
    const float *q, int n_q, const float *k, const float *v, int64_t n_pos, const int chunks, int64_t kv_stride,
    float scale, float *scores, float *out)
{
    const int head_dim = 16 * chunks;
    const __m512 vscale = _mm512_set1_ps(scale);

    /* scores, 16 positions at a time; the keys of a block are read from
     * memory by the first head and from L1 by the others */
    for (int64_t p = 0; p < n_pos; p += 16) {
        const int n_blk = n_pos - p < 16 ? (int)(n_pos - p) : 16;
        /* the next block's keys and this block's values are on their way
         * while this block is reduced (the cache is cold in decode) */
        for (int j = 0; j < n_blk; j++) {
            _Pragma("GCC unroll 16")
            for (int c = 0; c < chunks; c += 4) {
                if (p + 16 + j < n_pos)
                    __builtin_prefetch(k + (p + 16 + j) * kv_stride + 16 * c, 0, 3);
                __builtin_prefetch(v + (p + j) * kv_stride + 16 * c, 0, 3);
            }
        }
        const float *kb = k + p * kv_stride;
        for (int h = 0; h < n_q; h++) {
            __m512 qc[AIK_ATT_MAX_DIM / 16], acc[16];
            _Pragma("GCC unroll 16")
            for (int c = 0; c < AIK_ATT_MAX_DIM / 16; c++) /* (zeros: dead, but no compiler warning) */
                qc[c] = c < chunks ? _mm512_loadu_ps(q + (size_t)h * head_dim + 16 * c) : _mm512_setzero_ps();
            if (n_blk == 16) {
                _Pragma("GCC unroll 16")
                for (int l = 0; l < 16; l++)
                    acc[l] = score_lanes(qc, kb + RED16_LANE[l] * kv_stride, chunks);
            } else {
                _Pragma("GCC unroll 16")
                for (int l = 0; l < 16; l++)
                    acc[l] = RED16_LANE[l] < n_blk ? score_lanes(qc, kb + RED16_LANE[l] * kv_stride, chunks)
                                                   : _mm512_setzero_ps();
            }
            _mm512_mask_storeu_ps(scores + (size_t)h * n_pos + p, tail_mask(n_blk),
                                  _mm512_mul_ps(reduce16_add(acc), vscale));
        }
    }
    for (int h = 0; h < n_q; h++)
        avx512_softmax(scores + (size_t)h * n_pos, n_pos);

    /* weighted sums: wsum's chains (64 values per pass, positions in
     * order), for up to ATT_WSUM_HEADS heads per read of the values */
    for (int h0 = 0; h0 < n_q; h0 += ATT_WSUM_HEADS) {
        const int nh = n_q - h0 < ATT_WSUM_HEADS ? n_q - h0 : ATT_WSUM_HEADS;
        const float *a = scores + (size_t)h0 * n_pos;
        _Pragma("GCC unroll 4")
        for (int d = 0; d < head_dim; d += 64) {
            const int nc = head_dim - d >= 64 ? 4 : (head_dim - d) / 16;
            __m512 s[ATT_WSUM_HEADS][4];
            _Pragma("GCC unroll 4")
            for (int h = 0; h < ATT_WSUM_HEADS; h++)
                _Pragma("GCC unroll 4")
                for (int c = 0; c < 4; c++)
                    s[h][c] = _mm512_setzero_ps();
            for (int64_t p = 0; p < n_pos; p++) {
                const float *vp = v + p * kv_stride + d;
                __m512 vc[4];
                _Pragma("GCC unroll 4")
                for (int c = 0; c < 4; c++)
                    vc[c] = c < nc ? _mm512_loadu_ps(vp + 16 * c) : _mm512_setzero_ps();
                _Pragma("GCC unroll 4")
                for (int h = 0; h < ATT_WSUM_HEADS; h++)
                    if (h < nh) {
                        const __m512 ah = _mm512_set1_ps(a[(size_t)h * n_pos + p]);
                        _Pragma("GCC unroll 4")
                        for (int c = 0; c < 4; c++)
                            if (c < nc)
                                s[h][c] = _mm512_fmadd_ps(ah, vc[c], s[h][c]);
                    }
            }
            _Pragma("GCC unroll 4")
            for (int h = 0; h < ATT_WSUM_HEADS; h++)
                if (h < nh)
                    _Pragma("GCC unroll 4")
                    for (int c = 0; c < 4; c++)
                        if (c < nc)
                            _mm512_storeu_ps(out + (size_t)(h0 + h) * head_dim + d + 16 * c, s[h][c]);
        }
    }
}

static void avx512_attention_group(const float *q, int n_q, const float *k, const float *v, int64_t n_pos,
                                   int head_dim, int64_t kv_stride, float scale, float *scores, float *out)
{
    switch (head_dim / 16) { /* the usual head sizes get their own copy */
    case 4:
        attention_group_impl(q, n_q, k, v, n_pos, 4, kv_stride, scale, scores, out);
        break;
    case 8:
        attention_group_impl(q, n_q, k, v, n_pos, 8, kv_stride, scale, scores, out);
        break;
    default:
        attention_group_impl(q, n_q, k, v, n_pos, head_dim / 16, kv_stride, scale, scores, out);
        break;
    }
}

const aik_cpu_ops OPS_NAME = {
    .dot = {
        [AIK_DTYPE_F32] = avx512_dot_f32,
        [AIK_DTYPE_F16] = avx512_dot_f16,
        [AIK_DTYPE_BF16] = avx512_dot_bf16,
        [AIK_DTYPE_Q8_0] = avx512_dot_q8_0,
        [AIK_DTYPE_Q4_0] = avx512_dot_q4_0,
    },
    .dot4 = {
        [AIK_DTYPE_F32] = avx512_dot4_f32,
        [AIK_DTYPE_F16] = avx512_dot4_f16,
        [AIK_DTYPE_BF16] = avx512_dot4_bf16,
        [AIK_DTYPE_Q8_0] = avx512_dot4_q8_0,
        [AIK_DTYPE_Q4_0] = avx512_dot4_q4_0,
    },
    .dot4x2 = {
        [AIK_DTYPE_Q8_0] = avx512_dot4x2_q8_0,
        [AIK_DTYPE_Q4_0] = avx512_dot4x2_q4_0,
    },
#if AIK_AVX512_VNNI
    .qdot = { [AIK_DTYPE_Q8_0] = avx512_qdot_q8_0, [AIK_DTYPE_Q4_0] = avx512_qdot_q4_0 },
    .qdot4 = { [AIK_DTYPE_Q8_0] = avx512_qdot4_q8_0, [AIK_DTYPE_Q4_0] = avx512_qdot4_q4_0 },
    .qdot4x2 = { [AIK_DTYPE_Q8_0] = avx512_qdot4x2_q8_0, [AIK_DTYPE_Q4_0] = avx512_qdot4x2_q4_0 },
    .qdot16 = { [AIK_DTYPE_Q8_0] = avx512_qdot16_q8_0, [AIK_DTYPE_Q4_0] = avx512_qdot16_q4_0 },
#endif
    .quantize_q8_0 = avx512_quantize_q8_0,
    .quantize_xblocks = avx512_quantize_xblocks,
    .fp16_to_f32 = avx512_fp16_to_f32,
    .f32_to_fp16 = avx512_f32_to_fp16,
    .bf16_to_f32 = avx512_bf16_to_f32,
    .f32_to_bf16 = avx512_f32_to_bf16,
    .rms_norm = avx512_rms_norm,
    .add = avx512_add,
    .mul = avx512_mul,
    .scale = avx512_scale,
    .silu = avx512_silu,
    .swiglu = avx512_swiglu,
    .softmax = avx512_softmax,
    .axpy = avx512_axpy,
    .wsum = avx512_wsum,
    .attention_group = avx512_attention_group,
};
