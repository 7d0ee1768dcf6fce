/* SPDX-License-Identifier: MIT */
/*
 * Kernel tests: each dispatched kernel, at each ISA level this CPU has,
 * against the scalar reference in kernels/cpu/ref.c.
 *   f32 paths:        NMSE <= 1e-7
 *   quantization:     bit-identical to the reference (GGUF blocks), and
 *                     ggml test-quantize-fns.cpp tolerances on its data
 *   quantized dots:   same integer sums as the reference, so only float
 *                     summation order differs (relative 1e-5), and the
 *                     ggml dot-product tolerance vs the exact f64 dot
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"
#include "scheduler/threadpool.h"
#include "kernel_test_data.h"
#include "testutil.h"

/* ggml tests/test-quantize-fns.cpp */
#define MAX_QUANTIZATION_REFERENCE_ERROR 0.0001f
#define MAX_QUANTIZATION_TOTAL_ERROR 0.002f
#define MAX_DOT_PRODUCT_ERROR 0.02f
#define NMSE_F32 1e-7

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

/* Runs body once per ISA level, forced with aik_cpu_set_isa; levels the CPU
 * lacks are reported and skipped. */
#define FOR_EACH_ISA(level)                                                          \
    for (int level##_i = AIK_CPU_SCALAR; level##_i <= AIK_CPU_AVX512; level##_i++)   \
        if (level##_i > (int)aik_cpu_detect()) {                                     \
            printf("%s: SKIP isa %s (CPU lacks it)\n", __func__,                     \
                   aik_cpu_isa_name((aik_cpu_isa)level##_i));                        \
        } else                                                                       \
            for (int level##_once = 1; level##_once; level##_once = 0)               \
                for (aik_cpu_isa level __attribute__((unused)) =                       \
                         aik_cpu_set_isa((aik_cpu_isa)level##_i);                     \
                     level##_once; level##_once = 0)

static void teardown(void)
{
    aik_cpu_set_isa(aik_cpu_detect());
}

/* ---------------------------------------------------------------- ISA --- */

START_TEST(test_isa_override)
{
    const aik_cpu_isa max = aik_cpu_detect();
    printf("detected isa: %s\n", aik_cpu_isa_name(max));
    ck_assert_int_eq(aik_cpu_set_isa(AIK_CPU_SCALAR), AIK_CPU_SCALAR);
    ck_assert_int_eq(aik_cpu_active_isa(), AIK_CPU_SCALAR);
    /* clamped to what the CPU has */
    ck_assert_int_eq(aik_cpu_set_isa((aik_cpu_isa)7), max);
    ck_assert_int_eq(aik_cpu_active_isa(), max);
    ck_assert_str_eq(aik_cpu_isa_name(AIK_CPU_AVX2), "avx2");
    ck_assert_str_eq(aik_cpu_isa_name((aik_cpu_isa)9), "?");
}
END_TEST

/* -------------------------------------------------------- conversions --- */

START_TEST(test_fp16_known_values)
{
    ck_assert_uint_eq(aik_f32_to_fp16(1.0f), 0x3c00);
    ck_assert_uint_eq(aik_f32_to_fp16(-2.0f), 0xc000);
    ck_assert_uint_eq(aik_f32_to_fp16(0.0f), 0x0000);
    ck_assert_uint_eq(aik_f32_to_fp16(-0.0f), 0x8000);
    ck_assert_uint_eq(aik_f32_to_fp16(65504.0f), 0x7bff);
    ck_assert_uint_eq(aik_f32_to_fp16(65519.0f), 0x7bff);
    ck_assert_uint_eq(aik_f32_to_fp16(65520.0f), 0x7c00); /* tie -> even = inf */
    ck_assert_uint_eq(aik_f32_to_fp16(1e10f), 0x7c00);
    ck_assert_uint_eq(aik_f32_to_fp16(-INFINITY), 0xfc00);
    ck_assert_uint_eq(aik_f32_to_fp16(ldexpf(1.0f, -24)), 0x0001);  /* min subnormal */
    ck_assert_uint_eq(aik_f32_to_fp16(ldexpf(1.0f, -25)), 0x0000);  /* tie -> 0 */
    ck_assert_uint_eq(aik_f32_to_fp16(ldexpf(1.0001f, -25)), 0x0001);
    ck_assert_uint_eq(aik_f32_to_fp16(ldexpf(1.5f, -24)), 0x0002);  /* tie -> even */
    ck_assert_uint_eq(aik_f32_to_fp16(ldexpf(2.5f, -24)), 0x0002);
    ck_assert_uint_eq(aik_f32_to_fp16(ldexpf(1.0f, -14)), 0x0400);  /* min normal */
    ck_assert_uint_eq(aik_f32_to_fp16(1.0f + ldexpf(1.0f, -11)), 0x3c00); /* tie -> even */
    ck_assert_uint_eq(aik_f32_to_fp16(1.0f + 3 * ldexpf(1.0f, -11)), 0x3c02);
    const uint16_t hn = aik_f32_to_fp16(u2f(0x7f800001u)); /* signalling NaN */
    ck_assert((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff) != 0);
    ck_assert(isnan(aik_fp16_to_f32(0x7e00)));
    ck_assert(isinf(aik_fp16_to_f32(0xfc00)) && aik_fp16_to_f32(0xfc00) < 0);
    ck_assert(aik_fp16_to_f32(0x0001) == ldexpf(1.0f, -24));
    ck_assert(aik_fp16_to_f32(0x03ff) == ldexpf(1023.0f, -24));
    ck_assert(aik_fp16_to_f32(0x3555) == 0x1.554p-2f);
}
END_TEST

/* Every f16 survives f16 -> f32 -> f16; for random floats the result is the
 * nearest f16 (ties to even), checked against its neighbours. */
START_TEST(test_fp16_exhaustive)
{
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = aik_fp16_to_f32((uint16_t)h);
        const bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        /* a NaN comes back quieted */
        const uint32_t want = nan ? (h | 0x200) : h;
        if ((nan && !isnan(f)) || aik_f32_to_fp16(f) != want)
            ck_abort_msg("f16 %04x -> %a -> %04x", h, f, aik_f32_to_fp16(f));
    }
    for (int i = 0; i < 100000; i++) {
        const float f = ldexpf(rnd_f(), (int)(rnd_u32() % 44) - 28);
        const uint16_t h = aik_f32_to_fp16(f);
        const double err = fabs((double)f - aik_fp16_to_f32(h));
        const uint16_t mag = h & 0x7fff;
        for (int dlt = -1; dlt <= 1; dlt += 2) {
            if ((mag == 0 && dlt < 0) || mag + dlt >= 0x7c00)
                continue;
            const uint16_t nb = (uint16_t)((h & 0x8000) | (mag + dlt));
            const double nerr = fabs((double)f - aik_fp16_to_f32(nb));
            if (!(err < nerr || (err == nerr && !(h & 1))))
                ck_abort_msg("f=%a -> %04x not nearest-even (neighbour %04x)", f, h, nb);
        }
    }
}
END_TEST

START_TEST(test_bf16_known_values)
{
    ck_assert_uint_eq(aik_f32_to_bf16(1.0f), 0x3f80);
    ck_assert_uint_eq(aik_f32_to_bf16(u2f(0x3f808000u)), 0x3f80); /* tie -> even */
    ck_assert_uint_eq(aik_f32_to_bf16(u2f(0x3f818000u)), 0x3f82); /* tie -> even */
    ck_assert_uint_eq(aik_f32_to_bf16(u2f(0x3f808001u)), 0x3f81);
    ck_assert_uint_eq(aik_f32_to_bf16(INFINITY), 0x7f80);
    ck_assert_uint_eq(aik_f32_to_bf16(u2f(0x7f7fffffu)), 0x7f80); /* max rounds to inf */
    /* a NaN whose payload sits in the low bits must not become inf */
    const uint16_t b = aik_f32_to_bf16(u2f(0x7f800001u));
    ck_assert(isnan(aik_bf16_to_f32(b)));
    ck_assert(isnan(aik_bf16_to_f32(aik_f32_to_bf16(u2f(0xffc00000u)))));
    ck_assert(aik_bf16_to_f32(0xc040) == -3.0f);
}
END_TEST

/* Index of the first difference, or -1. (Check records every passing
 * ck_assert, so per-element asserts in long loops would dominate the run.) */
static int first_diff16(const uint16_t *a, const uint16_t *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i] != b[i])
            return i;
    return -1;
}

/* Special values, all f16 values, midpoints and random bit patterns through
 * every row converter at every level: bit-identical to the scalar ones. */
START_TEST(test_row_conversions)
{
    enum { N = 65536 * 3 + 37 };
    float *src = malloc(N * sizeof(float));
    float *back = malloc(N * sizeof(float)), *want_f = malloc(N * sizeof(float));
    uint16_t *h = malloc(N * 2), *want = malloc(N * 2), *hsrc = malloc(N * 2);
    ck_assert(src && back && want_f && h && want && hsrc);

    for (int i = 0; i < 65536; i++) {
        src[i] = aik_fp16_to_f32((uint16_t)i);
        /* midpoints between neighbouring f16 values: the rounding ties */
        src[65536 + i] = u2f(f2u(src[i]) + 0x1000u);
    }
    for (int i = 2 * 65536; i < N; i++)
        src[i] = u2f(rnd_u32());
    for (int i = 0; i < N; i++)
        hsrc[i] = (uint16_t)rnd_u32();

    FOR_EACH_ISA(isa) {
        int bad;
        for (int i = 0; i < N; i++)
            want[i] = aik_f32_to_fp16(src[i]);
        aik_f32_to_fp16_row(src, h, N);
        bad = first_diff16(h, want, N);
        ck_assert_msg(bad < 0, "%s f32->f16 [%d] %08x: %04x != %04x", aik_cpu_isa_name(isa),
                      bad, f2u(src[bad < 0 ? 0 : bad]), h[bad < 0 ? 0 : bad], want[bad < 0 ? 0 : bad]);
        for (int i = 0; i < N; i++)
            want[i] = aik_f32_to_bf16(src[i]);
        aik_f32_to_bf16_row(src, h, N);
        bad = first_diff16(h, want, N);
        ck_assert_msg(bad < 0, "%s f32->bf16 [%d] %08x: %04x != %04x", aik_cpu_isa_name(isa),
                      bad, f2u(src[bad < 0 ? 0 : bad]), h[bad < 0 ? 0 : bad], want[bad < 0 ? 0 : bad]);
        for (int i = 0; i < N; i++)
            want_f[i] = aik_fp16_to_f32(hsrc[i]);
        aik_fp16_to_f32_row(hsrc, back, N);
        ck_assert(memcmp(back, want_f, N * sizeof(float)) == 0);
        for (int i = 0; i < N; i++)
            want_f[i] = aik_bf16_to_f32(hsrc[i]);
        aik_bf16_to_f32_row(hsrc, back, N);
        ck_assert(memcmp(back, want_f, N * sizeof(float)) == 0);
        /* odd lengths exercise the tails and must not write past n */
        h[5] = 0xabcd;
        aik_f32_to_fp16_row(src, h, 5);
        ck_assert_uint_eq(h[5], 0xabcd);
        back[3] = 42.0f;
        aik_bf16_to_f32_row(hsrc, back, 3);
        ck_assert(back[3] == 42.0f);
    }
    free(src);
    free(back);
    free(want_f);
    free(h);
    free(want);
    free(hsrc);
}
END_TEST

/* ------------------------------------------------------- quantization --- */

START_TEST(test_quantize_known_blocks)
{
    float x[32] = { 0 };
    aik_block_q8_0 q8;
    aik_block_q4_0 q4;

    /* amax 127 -> d = 1: roundf ties go away from zero */
    x[0] = 127.0f;
    x[1] = 0.5f;
    x[2] = -2.5f;
    x[3] = 1.49f;
    x[4] = -127.0f;
    FOR_EACH_ISA(isa) {
        memset(&q8, 0x55, sizeof(q8));
        aik_quantize_row_q8_0(x, &q8, 32);
        ck_assert_uint_eq(q8.d, 0x3c00);
        ck_assert_int_eq(q8.qs[0], 127);
        ck_assert_int_eq(q8.qs[1], 1);
        ck_assert_int_eq(q8.qs[2], -3);
        ck_assert_int_eq(q8.qs[3], 1);
        ck_assert_int_eq(q8.qs[4], -127);
        ck_assert_int_eq(q8.qs[5], 0);
    }
    /* all-zero block: d = 0 and no division by zero */
    memset(x, 0, sizeof(x));
    aik_quantize_row_q8_0(x, &q8, 32);
    ck_assert_uint_eq(q8.d, 0);
    for (int j = 0; j < 32; j++)
        ck_assert_int_eq(q8.qs[j], 0);

    /* q4_0: the largest-magnitude value (-16) maps to nibble 0, d = 2 */
    x[0] = -16.0f;
    x[16] = 14.0f;
    x[1] = 3.0f;  /* 3/2 + 8.5 = 10 */
    x[17] = 100.0f / 1000.0f;
    aik_quantize_row_q4_0(x, &q4, 32);
    ck_assert_uint_eq(q4.d, 0x4000); /* 2.0 */
    ck_assert_uint_eq(q4.qs[0] & 0x0f, 0);
    ck_assert_uint_eq(q4.qs[0] >> 4, 15); /* 14/2 + 8.5 = 15.5 -> 15 (clamped) */
    ck_assert_uint_eq(q4.qs[1] & 0x0f, 10);
    ck_assert_uint_eq(q4.qs[1] >> 4, 8);
    float back[32];
    aik_dequantize_row(AIK_DTYPE_Q4_0, &q4, back, 32);
    ck_assert(back[0] == -16.0f && back[16] == 14.0f && back[1] == 4.0f && back[17] == 0.0f);
}
END_TEST

static void generate_data(float offset, int64_t n, float *dst)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = 0.1f + 2 * cosf((float)i + offset);
}

static float array_rmse(const float *a, const float *b, int64_t n)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)a[i] - b[i];
        sum += d * d;
    }
    return sqrtf((float)sum) / (float)n;
}

/* The checks of ggml's test-quantize-fns.cpp, for q8_0 and q4_0, at every
 * level, plus bit-identity of the blocks with the reference. */
START_TEST(test_quantize_ggml_tolerances)
{
    enum { N = 32 * 128 };
    static float d1[N], d2[N], out[N], out_ref[N];
    static aik_block_q8_0 q[N / 32], qref[N / 32], q2[N / 32];
    static aik_block_q4_0 q4[N / 32], q4ref[N / 32];
    generate_data(0.0f, N, d1);
    generate_data(1.0f, N, d2);
    double exact = 0;
    for (int i = 0; i < N; i++)
        exact += d1[i] * d2[i];

    FOR_EACH_ISA(isa) {
        aik_quantize_row_q8_0(d1, q, N);
        aik_ref_quantize_row_q8_0(d1, qref, N);
        ck_assert(memcmp(q, qref, sizeof(q)) == 0);
        aik_dequantize_row(AIK_DTYPE_Q8_0, q, out, N);
        aik_ref_dequantize_row(AIK_DTYPE_Q8_0, qref, out_ref, N);
        const float tot8 = array_rmse(d1, out, N);
        ck_assert_msg(tot8 < MAX_QUANTIZATION_TOTAL_ERROR, "q8_0 total %f", tot8);
        ck_assert(array_rmse(out, out_ref, N) < MAX_QUANTIZATION_REFERENCE_ERROR);

        aik_quantize_row_q4_0(d1, q4, N);
        aik_ref_quantize_row_q4_0(d1, q4ref, N);
        ck_assert(memcmp(q4, q4ref, sizeof(q4)) == 0);
        aik_dequantize_row(AIK_DTYPE_Q4_0, q4, out, N);
        const float tot4 = array_rmse(d1, out, N);
        ck_assert_msg(tot4 < MAX_QUANTIZATION_TOTAL_ERROR, "q4_0 total %f", tot4);

        aik_quantize_row_q8_0(d2, q2, N);
        const float e8 = fabsf(aik_vec_dot_q8_0_q8_0(q, q2, N) - (float)exact) / N;
        const float e4 = fabsf(aik_vec_dot_q4_0_q8_0(q4, q2, N) - (float)exact) / N;
        ck_assert_msg(e8 < MAX_DOT_PRODUCT_ERROR, "q8_0 dot error %f", e8);
        ck_assert_msg(e4 < MAX_DOT_PRODUCT_ERROR, "q4_0 dot error %f", e4);
        printf("%s: q8_0 err %.6f dot %.6f, q4_0 err %.6f dot %.6f\n",
                   aik_cpu_isa_name(isa), tot8, e8, tot4, e4);
    }
}
END_TEST

/* Random rows of many lengths, with scales that vary per block as real
 * weights do; q8_0 blocks at every level equal the reference's. */
START_TEST(test_quantize_random_bit_identical)
{
    enum { N = 32 * 300 };
    static float x[N];
    static aik_block_q8_0 q[N / 32], qref[N / 32];
    for (int b = 0; b < N / 32; b++)
        fill(x + b * 32, 32, ldexpf(1.0f, (int)(rnd_u32() % 30) - 15));
    /* exact .5 ties after scaling by 1/d */
    for (int j = 0; j < 32; j++)
        x[j] = (float)(j - 16) + 0.5f;
    x[31] = 127.0f;
    FOR_EACH_ISA(isa) {
        aik_quantize_row_q8_0(x, q, N);
        aik_ref_quantize_row_q8_0(x, qref, N);
        for (int b = 0; b < N / 32; b++)
            ck_assert_msg(memcmp(&q[b], &qref[b], sizeof(q[b])) == 0, "%s block %d",
                          aik_cpu_isa_name(isa), b);
    }
}
END_TEST

/* ------------------------------------------------------- dot products --- */

START_TEST(test_float_dots)
{
    enum { MAXN = 1100 };
    static float a[MAXN], b[MAXN], af[MAXN], got[3][200], want[3][200];
    static uint16_t ah[MAXN], ab[MAXN];
    fill(a, MAXN, 1.0f);
    fill(b, MAXN, 1.0f);
    aik_ref_dequantize_row(AIK_DTYPE_F32, a, af, MAXN);
    for (int i = 0; i < MAXN; i++) {
        ah[i] = aik_f32_to_fp16(a[i]);
        ab[i] = aik_f32_to_bf16(a[i]);
    }
    FOR_EACH_ISA(isa) {
        for (int t = 0; t < 200; t++) {
            const int64_t n = t < 100 ? t + 1 : (int64_t)(rnd_u32() % MAXN);
            got[0][t] = aik_vec_dot_f32(a, b, n);
            want[0][t] = aik_ref_dot_f32(af, b, n);
            got[1][t] = aik_vec_dot_f16_f32(ah, b, n);
            want[1][t] = aik_ref_dot_f16_f32(ah, b, n);
            got[2][t] = aik_vec_dot_bf16_f32(ab, b, n);
            want[2][t] = aik_ref_dot_bf16_f32(ab, b, n);
        }
        for (int k = 0; k < 3; k++) {
            const double e = nmse(got[k], want[k], 200);
            ck_assert_msg(e <= NMSE_F32, "%s dot kind %d nmse %g", aik_cpu_isa_name(isa), k, e);
        }
    }
}
END_TEST

START_TEST(test_quant_dots)
{
    enum { MAXB = 70 };
    static float w[MAXB * 32], x[MAXB * 32];
    static aik_block_q8_0 w8[MAXB], x8[MAXB];
    static aik_block_q4_0 w4[MAXB];
    fill(w, MAXB * 32, 2.0f);
    fill(x, MAXB * 32, 3.0f);
    /* extreme weights a file may hold: -128 is not produced by quantization
     * but is a valid int8 */
    aik_ref_quantize_row_q8_0(w, w8, MAXB * 32);
    aik_ref_quantize_row_q4_0(w, w4, MAXB * 32);
    aik_ref_quantize_row_q8_0(x, x8, MAXB * 32);
    w8[3].qs[0] = -128;
    w8[3].qs[31] = -128;
    FOR_EACH_ISA(isa) {
        for (int nb = 1; nb <= MAXB; nb++) {
            const float r8 = aik_ref_dot_q8_0_q8_0(w8, x8, nb * 32);
            const float r4 = aik_ref_dot_q4_0_q8_0(w4, x8, nb * 32);
            const float g8 = aik_vec_dot_q8_0_q8_0(w8, x8, nb * 32);
            const float g4 = aik_vec_dot_q4_0_q8_0(w4, x8, nb * 32);
            /* magnitude of the terms bounds the reordering error */
            const float mag = 6.0f * 32.0f * nb;
            ck_assert_msg(fabsf(g8 - r8) <= 1e-5f * mag, "%s q8 nb %d: %g vs %g",
                          aik_cpu_isa_name(isa), nb, g8, r8);
            ck_assert_msg(fabsf(g4 - r4) <= 1e-5f * mag, "%s q4 nb %d: %g vs %g",
                          aik_cpu_isa_name(isa), nb, g4, r4);
        }
    }
}
END_TEST

/* ------------------------------------------------------------- matmul --- */

START_TEST(test_matmul_vs_reference)
{
    static const int64_t Ms[] = { 1, 4, 7, 67 };
    static const int64_t Ks[] = { 32, 96, 576 };
    static const int64_t Ns[] = { 1, 3, 9 };
    enum { MAXM = 67, MAXK = 576, MAXN = 9 };
    static float wf[MAXM * MAXK], X[MAXN * MAXK], Y[MAXN * MAXM], Yref[MAXN * MAXM];
    static unsigned char W[MAXM * MAXK * 4], xq[MAXK / 32 * 34];
    static _Alignas(64) unsigned char scratch[MAXN * MAXK / 32 * 104];
    fill(wf, MAXM * MAXK, 1.0f);
    fill(X, MAXN * MAXK, 1.0f);

    for (int t = 0; t < AIK_DTYPE_COUNT; t++) {
        for (size_t mi = 0; mi < 4; mi++)
            for (size_t ki = 0; ki < 3; ki++)
                for (size_t ni = 0; ni < 3; ni++) {
                    const int64_t M = Ms[mi], N = Ns[ni];
                    /* float types also get a K that is no multiple of 8/16 */
                    const int64_t K = t <= AIK_DTYPE_BF16 && ki == 1 ? 93 : Ks[ki];
                    make_weights((aik_dtype)t, wf, W, M, K);
                    ck_assert_uint_le(aik_matmul_scratch_size((aik_dtype)t, K, N), sizeof(scratch));
                    aik_ref_matmul((aik_dtype)t, W, X, xq, Yref, M, K, N);
                    FOR_EACH_ISA(isa) {
                        memset(Y, 0, sizeof(Y));
                        aik_matmul((aik_dtype)t, W, X, scratch, Y, M, K, N);
                        const double e = nmse(Y, Yref, M * N);
                        ck_assert_msg(e <= NMSE_F32, "%s %s M=%ld K=%ld N=%ld nmse %g",
                                      aik_cpu_isa_name(isa), aik_dtype_name((aik_dtype)t),
                                      (long)M, (long)K, (long)N, e);
                    }
                }
    }
}
END_TEST

/* matmul_rows writes exactly the columns it is asked for. */
START_TEST(test_matmul_rows_range)
{
    enum { M = 37, K = 64, N = 3 };
    static float wf[M * K], X[N * K], Y[N * M], Yall[N * M];
    static unsigned char W[M * K * 4];
    static _Alignas(64) unsigned char scratch[N * K / 32 * 104];
    fill(wf, M * K, 1.0f);
    fill(X, N * K, 1.0f);
    FOR_EACH_ISA(isa) {
        for (int t = 0; t < AIK_DTYPE_COUNT; t++) {
            make_weights((aik_dtype)t, wf, W, M, K);
            aik_matmul((aik_dtype)t, W, X, scratch, Yall, M, K, N);
            for (int i = 0; i < N * M; i++)
                Y[i] = -999.0f;
            aik_matmul_rows((aik_dtype)t, W, X, scratch, Y, M, K, N, 5, 22);
            for (int n = 0; n < N; n++)
                for (int m = 0; m < M; m++) {
                    if (m >= 5 && m < 22)
                        ck_assert(Y[n * M + m] == Yall[n * M + m]);
                    else
                        ck_assert(Y[n * M + m] == -999.0f);
                }
        }
    }
}
END_TEST

/* Batched rows (tiled, paired 4x2 kernels) give bit for bit what each
 * activation row gives on its own: no result depends on the batch. */
START_TEST(test_matmul_batch_invariant)
{
    enum { M = 45, K = 160, N = 7 };
    static float wf[M * K], X[N * K], Y[N * M], y1[M];
    static unsigned char W[M * K * 4];
    static _Alignas(64) unsigned char scratch[N * K / 32 * 104];
    fill(wf, M * K, 1.0f);
    fill(X, N * K, 1.0f);
    FOR_EACH_ISA(isa) {
        for (int t = 0; t < AIK_DTYPE_COUNT; t++) {
            make_weights((aik_dtype)t, wf, W, M, K);
            aik_matmul((aik_dtype)t, W, X, scratch, Y, M, K, N);
            for (int n = 0; n < N; n++) {
                aik_matmul((aik_dtype)t, W, X + n * K, scratch, y1, M, K, 1);
                ck_assert_msg(memcmp(y1, Y + n * M, sizeof(y1)) == 0, "%s %s row %d",
                              aik_cpu_isa_name(isa), aik_dtype_name((aik_dtype)t), n);
            }
        }
    }
}
END_TEST

/* The integer (VNNI) kernels make weights unsigned (q8_0: w + 128) and
 * take the offset back out in float per lane: weights at the ends of their
 * range (q8_0 -128 and 127, q4_0 nibbles 0 and 15) and activations at full
 * scale must still match the reference. M = 6 exercises the 4-row kernel
 * and the single-row tail, N = 3 the paired and unpaired activation rows;
 * 5 blocks an odd block count. */
START_TEST(test_matmul_extreme_blocks)
{
    enum { M = 6, K = 160, N = 3, NB = K / 32 };
    static aik_block_q8_0 w8[M * NB];
    static aik_block_q4_0 w4[M * NB];
    static float X[N * K], Y[N * M], Yref[N * M];
    static _Alignas(64) unsigned char scratch[N * NB * 104];
    static unsigned char xq[NB * 34];
    for (int i = 0; i < M * NB; i++) {
        w8[i].d = aik_f32_to_fp16(i % 3 == 0 ? 0.5f : 1e-3f * (float)(i + 1));
        w4[i].d = w8[i].d;
        for (int j = 0; j < 32; j++)
            w8[i].qs[j] = (int8_t)((i + j) % 3 == 0 ? -128 : (i + j) % 3 == 1 ? 127 : (j * 37) % 256 - 128);
        for (int j = 0; j < 16; j++)
            w4[i].qs[j] = (uint8_t)((i + j) % 2 ? 0x0f : j % 4 == 0 ? 0xf0 : (j * 29) & 0xff);
    }
    for (int i = 0; i < N * K; i++)
        X[i] = i % 5 == 0 ? 100.0f : i % 5 == 1 ? -100.0f : rnd_f() * 100.0f;
    FOR_EACH_ISA(isa) {
        for (int q = 0; q < 2; q++) {
            const aik_dtype t = q ? AIK_DTYPE_Q4_0 : AIK_DTYPE_Q8_0;
            const void *W = q ? (const void *)w4 : (const void *)w8;
            aik_ref_matmul(t, W, X, xq, Yref, M, K, N);
            aik_matmul(t, W, X, scratch, Y, M, K, N);
            const double e = nmse(Y, Yref, M * N);
            ck_assert_msg(e <= NMSE_F32, "%s %s nmse %g", aik_cpu_isa_name(isa), aik_dtype_name(t), e);
        }
    }
}
END_TEST

START_TEST(test_matmul_scratch_size)
{
    ck_assert_uint_eq(aik_matmul_scratch_size(AIK_DTYPE_F32, 576, 9), 0);
    ck_assert_uint_eq(aik_matmul_scratch_size(AIK_DTYPE_BF16, 576, 9), 0);
    ck_assert_uint_eq(aik_matmul_scratch_size(AIK_DTYPE_Q8_0, 576, 9), 9 * 18 * 104);
    ck_assert_uint_eq(aik_matmul_scratch_size(AIK_DTYPE_Q4_0, 64, 1), 2 * 104);
    ck_assert_uint_eq(aik_matmul_scratch_size(AIK_DTYPE_Q4_0, INT64_MAX / 2 / 32 * 32, INT64_MAX / 2),
                      SIZE_MAX);
    ck_assert_uint_eq(aik_matmul_scratch_size(AIK_DTYPE_Q4_0, -32, 1), SIZE_MAX);
}
END_TEST

/* The threaded matmul gives exactly the single-threaded result (each output
 * is computed by the same kernel on the same data, just on another thread),
 * for decode (N = 1), a small batch, and a batch big enough that the
 * activations are quantized in parallel too. */
START_TEST(test_matmul_threaded)
{
    enum { MAXM = 301, K = 128, MAXN = 260 };
    static const int64_t shapes[][2] = { { 301, 1 }, { 301, 5 }, { 37, 260 } };
    static float wf[MAXM * K], X[MAXN * K], Y1[MAXN * MAXM], Y2[MAXN * MAXM];
    static unsigned char W[MAXM * K * 4];
    static _Alignas(64) unsigned char scratch[MAXN * K / 32 * 104];
    aik_threadpool *pool = NULL;
    ck_assert_int_eq(aik_threadpool_new(3, &pool), 0);
    fill(wf, MAXM * K, 1.0f);
    fill(X, MAXN * K, 1.0f);
    FOR_EACH_ISA(isa) {
        for (int t = 0; t < AIK_DTYPE_COUNT; t++) {
            for (size_t si = 0; si < 3; si++) {
                const int64_t M = shapes[si][0], n = shapes[si][1];
                const size_t bytes = (size_t)(n * M) * sizeof(float);
                make_weights((aik_dtype)t, wf, W, M, K);
                aik_matmul((aik_dtype)t, W, X, scratch, Y1, M, K, n);
                memset(Y2, 0, bytes);
                aik_matmul_threaded(pool, (aik_dtype)t, W, X, scratch, Y2, M, K, n);
                ck_assert_msg(memcmp(Y1, Y2, bytes) == 0, "%s %s M=%ld N=%ld",
                              aik_cpu_isa_name(isa), aik_dtype_name((aik_dtype)t), (long)M, (long)n);
                memset(Y2, 0, bytes);
                aik_matmul_threaded(NULL, (aik_dtype)t, W, X, scratch, Y2, M, K, n);
                ck_assert(memcmp(Y1, Y2, bytes) == 0);
            }
        }
    }
    aik_threadpool_free(pool);
}
END_TEST

/* ------------------------------------------------- element-wise / rows --- */

START_TEST(test_elementwise)
{
    static const int64_t lens[] = { 1, 7, 8, 17, 64, 576, 1001 };
    enum { MAXN = 1001 };
    static float a[MAXN], b[MAXN], w[MAXN], y[MAXN], yref[MAXN];
    FOR_EACH_ISA(isa) {
        for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
            const int64_t n = lens[li];
            fill(a, n, 4.0f);
            fill(b, n, 4.0f);
            fill(w, n, 1.0f);
#define CHECK(what)                                                                     \
    ck_assert_msg(nmse(y, yref, n) <= NMSE_F32, "%s %s n=%ld nmse %g",                  \
                  aik_cpu_isa_name(isa), what, (long)n, nmse(y, yref, n))
            aik_rms_norm(a, w, y, n, 1e-5f);
            aik_ref_rms_norm(a, w, yref, n, 1e-5f);
            CHECK("rms_norm");
            aik_rms_norm(a, NULL, y, n, 1e-5f);
            aik_ref_rms_norm(a, NULL, yref, n, 1e-5f);
            CHECK("rms_norm no weight");
            aik_add(a, b, y, n);
            aik_ref_add(a, b, yref, n);
            CHECK("add");
            aik_mul(a, b, y, n);
            aik_ref_mul(a, b, yref, n);
            CHECK("mul");
            aik_scale(a, -0.37f, y, n);
            aik_ref_scale(a, -0.37f, yref, n);
            CHECK("scale");
            /* silu over a wide range, including where exp over/underflows */
            for (int64_t i = 0; i < n; i++)
                a[i] = rnd_f() * (i % 5 == 0 ? 120.0f : 8.0f);
            aik_silu(a, y, n);
            aik_ref_silu(a, yref, n);
            CHECK("silu");
            aik_swiglu(a, b, y, n);
            aik_ref_swiglu(a, b, yref, n);
            CHECK("swiglu");
            memcpy(y, a, (size_t)n * sizeof(float));
            memcpy(yref, a, (size_t)n * sizeof(float));
            aik_softmax(y, n);
            aik_ref_softmax(yref, n);
            CHECK("softmax");
            double sum = 0;
            for (int64_t i = 0; i < n; i++)
                sum += y[i];
            ck_assert_msg(fabs(sum - 1.0) < 1e-5, "softmax sums to %f", sum);
            /* in place */
            memcpy(y, a, (size_t)n * sizeof(float));
            aik_silu(y, y, n);
            aik_ref_silu(a, yref, n);
            CHECK("silu in place");
#undef CHECK
        }
        /* values the naive formula would overflow: softmax subtracts the max */
        float big[3] = { 1000.0f, 1000.0f, -1000.0f };
        aik_softmax(big, 3);
        ck_assert(fabsf(big[0] - 0.5f) < 1e-6f && fabsf(big[1] - 0.5f) < 1e-6f && big[2] < 1e-30f);
        float one = -5.0f;
        aik_softmax(&one, 1);
        ck_assert(one == 1.0f);
        float s[2] = { 0.0f, 2.0f };
        aik_silu(s, s, 2);
        ck_assert(s[0] == 0.0f && fabsf(s[1] - 2.0f / (1.0f + expf(-2.0f))) < 1e-6f);
    }
}
END_TEST

START_TEST(test_rope)
{
    enum { H = 3, D = 64 };
    static float x[H * D], y[H * D], yref[H * D];
    fill(x, H * D, 1.0f);
    FOR_EACH_ISA(isa) {
        for (int neox = 0; neox <= 1; neox++) {
            static const int64_t positions[] = { 0, 1, 37, 296, 4095, 131071 };
            for (size_t pi = 0; pi < sizeof(positions) / sizeof(positions[0]); pi++) {
                const int64_t pos = positions[pi];
                memcpy(y, x, sizeof(x));
                memcpy(yref, x, sizeof(x));
                aik_rope(y, H, D, pos, 10000.0f, neox);
                aik_ref_rope(yref, H, D, pos, 10000.0f, neox);
                ck_assert(nmse(y, yref, H * D) <= NMSE_F32);
                if (pos == 0)
                    ck_assert(memcmp(y, x, sizeof(x)) == 0);
            }
        }
    }
    /* pair 0 rotates by pos radians (frequency 1); layouts differ */
    float v[4] = { 1.0f, 0.0f, 0.0f, 0.0f };
    aik_rope(v, 1, 4, 1, 10000.0f, false); /* pairs (0,1), (2,3) */
    ck_assert(fabsf(v[0] - cosf(1.0f)) < 1e-6f && fabsf(v[1] - sinf(1.0f)) < 1e-6f);
    float u[4] = { 1.0f, 0.0f, 0.0f, 0.0f };
    aik_rope(u, 1, 4, 1, 10000.0f, true); /* pairs (0,2), (1,3) */
    ck_assert(fabsf(u[0] - cosf(1.0f)) < 1e-6f && fabsf(u[2] - sinf(1.0f)) < 1e-6f);
    ck_assert(u[1] == 0.0f);
    /* pair 1 of head_dim 4 turns at theta^(-1/2) = 0.01 rad per position */
    float p[4] = { 0.0f, 0.0f, 1.0f, 0.0f };
    aik_rope(p, 1, 4, 100, 10000.0f, false);
    ck_assert(fabsf(p[2] - cosf(1.0f)) < 1e-5f && fabsf(p[3] - sinf(1.0f)) < 1e-5f);
}
END_TEST

START_TEST(test_attention)
{
    enum { P = 77, D = 64, STRIDE = 3 * D };
    static float q[D], kc[P * STRIDE], vc[P * STRIDE], sc[P], scref[P], out[D], outref[D];
    fill(q, D, 1.0f);
    fill(kc, P * STRIDE, 1.0f);
    fill(vc, P * STRIDE, 1.0f);
    FOR_EACH_ISA(isa) {
        /* head sizes that are not whole vectors exercise the tails */
        static const int dims[] = { 64, 40, 20, 3 };
        for (size_t di = 0; di < 4; di++) {
            const int hd = dims[di];
            for (int64_t n = 1; n <= P; n += 19) {
                /* this head's slice sits at offset D inside each row */
                aik_attention_head(q, kc + D, vc + D, n, hd, STRIDE, 0.125f, sc, out);
                aik_ref_attention_head(q, kc + D, vc + D, n, hd, STRIDE, 0.125f, scref, outref);
                ck_assert_msg(nmse(out, outref, hd) <= NMSE_F32, "%s hd %d n %ld",
                              aik_cpu_isa_name(isa), hd, (long)n);
                ck_assert(nmse(sc, scref, n) <= NMSE_F32);
            }
        }
        /* one position: the output is that position's value row */
        aik_attention_head(q, kc, vc, 1, D, STRIDE, 0.125f, sc, out);
        for (int d = 0; d < D; d++)
            ck_assert(fabsf(out[d] - vc[d]) < 1e-6f);
    }
}
END_TEST

/* The q heads of one kv head at once: bitwise what one aik_attention_head
 * per head gives at the same level (the executors rely on it), for head
 * sizes with and without a fused kernel, whole and partial blocks of 16
 * positions, group sizes above what the fused kernel keeps in registers,
 * and both cache layouts the executors use (head-major and interleaved);
 * extreme scores must not change that. */
START_TEST(test_attention_group)
{
    enum { P = 70, G = 6, MAXD = 128, STRIDE = 2 * MAXD };
    static float q[G * MAXD], kc[P * STRIDE], vc[P * STRIDE];
    static float sc[G * P], scw[G * P], out[G * MAXD], want[G * MAXD];
    fill(q, G * MAXD, 1.0f);
    fill(kc, P * STRIDE, 1.0f);
    fill(vc, P * STRIDE, 1.0f);
    kc[5 * STRIDE + 3] = 300.0f; /* one score far above the others */
    FOR_EACH_ISA(isa) {
        static const int dims[] = { 64, 128, 80, 16, 48, 40, 3 };
        for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
            const int hd = dims[di];
            for (int g = 1; g <= G; g++)
                for (int64_t n = 1; n <= P; n += n < 18 ? 1 : 13)
                    for (int64_t stride = hd; stride <= STRIDE; stride += STRIDE - hd) {
                        for (int h = 0; h < g; h++)
                            aik_attention_head(q + h * hd, kc, vc, n, hd, stride, 0.125f, scw + h * n,
                                               want + h * hd);
                        memset(out, 0xff, sizeof(out));
                        aik_attention_group(q, g, kc, vc, n, hd, stride, 0.125f, sc, out);
                        ck_assert_msg(memcmp(out, want, (size_t)g * hd * sizeof(float)) == 0,
                                      "%s hd %d g %d n %ld stride %ld", aik_cpu_isa_name(isa), hd, g, (long)n,
                                      (long)stride);
                    }
        }
    }
}
END_TEST

START_TEST(test_get_row)
{
    enum { R = 5, C = 96 };
    static float tf[R * C], row[C], want[C];
    static unsigned char table[R * C * 4];
    fill(tf, R * C, 3.0f);
    FOR_EACH_ISA(isa) {
        for (int t = 0; t < AIK_DTYPE_COUNT; t++) {
            make_weights((aik_dtype)t, tf, table, R, C);
            const size_t rb = aik_cpu_row_bytes((aik_dtype)t, C);
            aik_get_row((aik_dtype)t, table, 3, C, row);
            aik_ref_dequantize_row((aik_dtype)t, table + 3 * rb, want, C);
            ck_assert(memcmp(row, want, sizeof(row)) == 0);
            /* and close to the original floats */
            const double e = nmse(row, tf + 3 * C, C);
            ck_assert_msg(e < (t == AIK_DTYPE_Q4_0 ? 1e-2 : 1e-4), "%s nmse %g",
                          aik_dtype_name((aik_dtype)t), e);
            if (t == AIK_DTYPE_F32)
                ck_assert(e == 0.0);
        }
    }
}
END_TEST

static Suite *kernels_suite(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("cpu");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_isa_override);
    tcase_add_test(tc, test_fp16_known_values);
    tcase_add_test(tc, test_fp16_exhaustive);
    tcase_add_test(tc, test_bf16_known_values);
    tcase_add_test(tc, test_row_conversions);
    tcase_add_test(tc, test_quantize_known_blocks);
    tcase_add_test(tc, test_quantize_ggml_tolerances);
    tcase_add_test(tc, test_quantize_random_bit_identical);
    tcase_add_test(tc, test_float_dots);
    tcase_add_test(tc, test_quant_dots);
    tcase_add_test(tc, test_matmul_vs_reference);
    tcase_add_test(tc, test_matmul_rows_range);
    tcase_add_test(tc, test_matmul_batch_invariant);
    tcase_add_test(tc, test_matmul_extreme_blocks);
    tcase_add_test(tc, test_matmul_scratch_size);
    tcase_add_test(tc, test_matmul_threaded);
    tcase_add_test(tc, test_elementwise);
    tcase_add_test(tc, test_rope);
    tcase_add_test(tc, test_attention);
    tcase_add_test(tc, test_attention_group);
    tcase_add_test(tc, test_get_row);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return aik_test_run(kernels_suite());
}
