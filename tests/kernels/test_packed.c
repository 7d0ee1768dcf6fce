/* SPDX-License-Identifier: MIT */
/*
 * Packed q8_0 / q4_0 weights (kernels/cpu/packed.c):
 *   - the layout's size, and which matrices are packed;
 *   - results against the scalar reference matmul (NMSE <= 1e-7), with
 *     tail rows (M % 16), odd block counts and batches;
 *   - the SIMD kernel bit for bit equal to the plain C definition
 *     (aik_packed_group_scalar), including weights and activations at the
 *     ends of their ranges;
 *   - results independent of the batch, the row split and the thread
 *     count; the multi-part dispatch equal to separate matmuls.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_internal.h"
#include "scheduler/threadpool.h"
#include "kernel_test_data.h"
#include "testutil.h"

#define NMSE_F32 1e-7

/* Pack W and run every activation row through the packed path at the
 * current level; P must hold aik_packed_bytes. */
static void packed_matmul(aik_dtype t, const void *W, void *P, const float *X, void *scratch, float *Y,
                          int64_t M, int64_t K, int64_t N)
{
    aik_matmul_pack(t, W, M, K, P);
    for (int64_t n = 0; n < N; n++)
        aik_matmul_prepare_row_packed(t, X, K, n, scratch);
    aik_matmul_rows_packed(t, P, scratch, Y, M, K, N, 0, M);
}

static bool has_packed_kernel(void)
{
    aik_cpu_set_isa(aik_cpu_detect());
    return aik_cpu_ops_active()->qdot16[AIK_DTYPE_Q8_0] != NULL;
}

static void teardown(void)
{
    aik_cpu_set_isa(aik_cpu_detect());
}

START_TEST(test_pack_size)
{
    /* 16-row groups of 18 blocks of 32 + 512 (q8_0) / 32 + 256 (q4_0)
     * bytes, then the tail rows in the file layout */
    ck_assert_uint_eq(aik_packed_bytes(AIK_DTYPE_Q8_0, 576, 576), 36 * 18 * 544);
    ck_assert_uint_eq(aik_packed_bytes(AIK_DTYPE_Q4_0, 35, 96), 2 * 3 * 288 + 3 * 3 * 18);
    ck_assert_uint_eq(aik_packed_bytes(AIK_DTYPE_Q8_0, 17, 32), 544 + 34);
    /* not packed: float types, fewer than 16 rows, K not whole blocks */
    ck_assert_uint_eq(aik_packed_bytes(AIK_DTYPE_F32, 64, 64), 0);
    ck_assert_uint_eq(aik_packed_bytes(AIK_DTYPE_Q8_0, 15, 64), 0);
    ck_assert_uint_eq(aik_packed_bytes(AIK_DTYPE_Q4_0, 64, 48), 0);
    ck_assert_uint_eq(aik_packed_bytes(AIK_DTYPE_Q4_0, 64, 0), 0);
    ck_assert_uint_eq(aik_packed_bytes(AIK_DTYPE_Q8_0, INT64_MAX / 2, INT64_MAX / 64 * 32), 0);
    /* a level without the packed kernel keeps the file layout */
    aik_cpu_set_isa(AIK_CPU_SCALAR);
    ck_assert_uint_eq(aik_matmul_pack_size(AIK_DTYPE_Q8_0, 576, 576), 0);
    if (has_packed_kernel()) {
        ck_assert_uint_eq(aik_matmul_pack_size(AIK_DTYPE_Q8_0, 576, 576), 36 * 18 * 544);
        ck_assert_uint_eq(aik_matmul_pack_size(AIK_DTYPE_F32, 576, 576), 0);
    } else {
        printf("%s: no packed kernel at this CPU's level: sizes at the top level skipped\n", __func__);
    }
}
END_TEST

/* Against aik_ref_matmul at every level this CPU has (the packed path runs
 * in plain C below the VNNI level). */
START_TEST(test_packed_vs_reference)
{
    static const int64_t Ms[] = { 16, 35, 64 };
    static const int64_t Ks[] = { 32, 96, 576 };
    static const int64_t Ns[] = { 1, 3, 6 };
    enum { MAXM = 64, MAXK = 576, MAXN = 6 };
    static float wf[MAXM * MAXK], X[MAXN * MAXK], Y[MAXN * MAXM], Yref[MAXN * MAXM];
    static unsigned char W[MAXM * MAXK * 2], xq[MAXK / 32 * 34];
    static _Alignas(64) unsigned char P[MAXM * MAXK * 2], scratch[MAXN * MAXK / 32 * sizeof(aik_xblock)];
    fill(wf, MAXM * MAXK, 1.0f);
    fill(X, MAXN * MAXK, 1.0f);
    for (int q = 0; q < 2; q++) {
        const aik_dtype t = q ? AIK_DTYPE_Q4_0 : AIK_DTYPE_Q8_0;
        for (size_t mi = 0; mi < 3; mi++)
            for (size_t ki = 0; ki < 3; ki++)
                for (size_t ni = 0; ni < 3; ni++) {
                    const int64_t M = Ms[mi], K = Ks[ki], N = Ns[ni];
                    make_weights(t, wf, W, M, K);
                    ck_assert_uint_le(aik_packed_bytes(t, M, K), sizeof(P));
                    aik_ref_matmul(t, W, X, xq, Yref, M, K, N);
                    for (int level = AIK_CPU_SCALAR; level <= (int)aik_cpu_detect(); level++) {
                        aik_cpu_set_isa((aik_cpu_isa)level);
                        memset(Y, 0, sizeof(Y));
                        packed_matmul(t, W, P, X, scratch, Y, M, K, N);
                        const double e = nmse(Y, Yref, M * N);
                        ck_assert_msg(e <= NMSE_F32, "%s %s M=%ld K=%ld N=%ld nmse %g",
                                      aik_cpu_isa_name((aik_cpu_isa)level), aik_dtype_name(t), (long)M, (long)K,
                                      (long)N, e);
                    }
                }
    }
}
END_TEST

/* The SIMD kernel equals its plain C definition bit for bit: random data,
 * then weights at the ends of their range (q8_0 -128 / 127, nibbles 0 /
 * 15), activations at full scale, and tiny and large block scales. 1..4
 * activation rows (the kernel's own batch), an odd block count. */
START_TEST(test_packed_simd_is_scalar)
{
    enum { M = 48, K = 160, NB = K / 32, N = 4 };
    static aik_block_q8_0 w8[M * NB];
    static aik_block_q4_0 w4[M * NB];
    static float X[N * K], Ysimd[N * M], Yscalar[N * M];
    static _Alignas(64) unsigned char P[M * NB * 34 * 2], scratch[N * NB * sizeof(aik_xblock)];
    if (!has_packed_kernel()) {
        printf("%s: SKIP (no packed kernel at this CPU's level)\n", __func__);
        return;
    }
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < M * NB; i++) {
            const float d = round == 0 ? 1e-3f * (1.0f + rnd_f()) : i % 3 == 0 ? 0.5f : i % 3 == 1 ? 6e-5f : 40.0f;
            w8[i].d = w4[i].d = aik_f32_to_fp16(d);
            for (int j = 0; j < 32; j++)
                w8[i].qs[j] = round == 0 ? (int8_t)(rnd_f() * 127.0f)
                                         : (int8_t)((i + j) % 3 == 0 ? -128 : (i + j) % 3 == 1 ? 127 : j - 16);
            for (int j = 0; j < 16; j++)
                w4[i].qs[j] = round == 0 ? (uint8_t)(rnd_f() * 127.0f + 128.0f)
                                         : (uint8_t)((i + j) % 2 ? 0x0f : j % 4 == 0 ? 0xf0 : 0xff);
        }
        for (int i = 0; i < N * K; i++)
            X[i] = round == 0 ? rnd_f() : i % 5 == 0 ? 100.0f : i % 5 == 1 ? -100.0f : rnd_f() * 100.0f;
        for (int q = 0; q < 2; q++) {
            const aik_dtype t = q ? AIK_DTYPE_Q4_0 : AIK_DTYPE_Q8_0;
            const void *W = q ? (const void *)w4 : (const void *)w8;
            for (int n_x = 1; n_x <= N; n_x++) {
                aik_cpu_set_isa(aik_cpu_detect());
                packed_matmul(t, W, P, X, scratch, Ysimd, M, K, n_x);
                aik_cpu_set_isa(AIK_CPU_SCALAR);
                packed_matmul(t, W, P, X, scratch, Yscalar, M, K, n_x);
                ck_assert_msg(memcmp(Ysimd, Yscalar, (size_t)(n_x * M) * sizeof(float)) == 0,
                              "%s round %d n_x %d: SIMD and scalar differ", aik_dtype_name(t), round, n_x);
            }
        }
    }
}
END_TEST

/* The activations as the packed kernels read them (qs, d, c of each
 * block) are bitwise the same at every level: the fused AVX-512 pass
 * against quantize_q8_0 block by block. Blocks of zeros, tiny values
 * (the scale a subnormal or zero in fp16), values whose scale overflows
 * fp16, ties at .5 after scaling, mixed signs. */
START_TEST(test_prepare_packed_is_scalar)
{
    enum { K = 32 * 12 };
    static float X[K];
    static aik_xblock simd[K / 32], scalar[K / 32];
    for (int b = 0; b < K / 32; b++)
        for (int j = 0; j < 32; j++) {
            float *x = &X[b * 32 + j];
            switch (b % 6) {
            case 0: *x = 0.0f; break;
            case 1: *x = rnd_f() * 1e-9f; break;
            case 2: *x = (j % 2 ? -1.0f : 1.0f) * 2e7f * (0.5f + rnd_f()); break;
            case 3: *x = j == 0 ? 127.0f : (float)(j - 16) + 0.5f; break;
            case 4: *x = rnd_f() * 3.0f; break;
            default: *x = j == 5 ? -1e-3f : 0.0f; break;
            }
        }
    for (int q = 0; q < 2; q++) {
        const aik_dtype t = q ? AIK_DTYPE_Q4_0 : AIK_DTYPE_Q8_0;
        aik_cpu_set_isa(aik_cpu_detect());
        aik_matmul_prepare_row_packed(t, X, K, 0, simd);
        aik_cpu_set_isa(AIK_CPU_SCALAR);
        aik_matmul_prepare_row_packed(t, X, K, 0, scalar);
        for (int b = 0; b < K / 32; b++) {
            ck_assert_msg(memcmp(simd[b].qs, scalar[b].qs, sizeof(simd[b].qs)) == 0, "%s block %d: qs differ",
                          aik_dtype_name(t), b);
            ck_assert_msg(memcmp(&simd[b].d, &scalar[b].d, sizeof(float)) == 0 &&
                              memcmp(&simd[b].c, &scalar[b].c, sizeof(float)) == 0,
                          "%s block %d: d %g / %g, c %g / %g", aik_dtype_name(t), b, simd[b].d, scalar[b].d,
                          simd[b].c, scalar[b].c);
        }
    }
}
END_TEST

/* A batch gives each activation row what it gets alone; any split of the
 * rows on group boundaries writes exactly its rows, with the same values;
 * the threaded dispatch (1 and 3 threads, alone or as one part of several)
 * equals the single-threaded one. */
START_TEST(test_packed_invariance)
{
    enum { M = 83, K = 192, N = 7 };
    static float wf[M * K], X[N * K], Y[N * M], y1[M], Ys[N * M];
    static unsigned char W[M * K * 2];
    static _Alignas(64) unsigned char P[M * K * 2], scratch[N * K / 32 * sizeof(aik_xblock)];
    aik_threadpool *pool = NULL;
    ck_assert_int_eq(aik_threadpool_new(3, &pool), 0);
    fill(wf, M * K, 1.0f);
    fill(X, N * K, 1.0f);
    for (int q = 0; q < 2; q++) {
        const aik_dtype t = q ? AIK_DTYPE_Q4_0 : AIK_DTYPE_Q8_0;
        make_weights(t, wf, W, M, K);
        packed_matmul(t, W, P, X, scratch, Y, M, K, N);
        for (int n = 0; n < N; n++) {
            packed_matmul(t, W, P, X + n * K, scratch, y1, M, K, 1);
            ck_assert_msg(memcmp(y1, Y + n * M, sizeof(y1)) == 0, "%s row %d", aik_dtype_name(t), n);
        }
        /* rows [16, 48) only, then the tail [80, 83) */
        packed_matmul(t, W, P, X, scratch, Y, M, K, N);
        for (int i = 0; i < N * M; i++)
            Ys[i] = -999.0f;
        aik_matmul_rows_packed(t, P, scratch, Ys, M, K, N, 16, 48);
        aik_matmul_rows_packed(t, P, scratch, Ys, M, K, N, 80, M);
        for (int n = 0; n < N; n++)
            for (int m = 0; m < M; m++) {
                const bool in = (m >= 16 && m < 48) || m >= 80;
                ck_assert(in ? Ys[n * M + m] == Y[n * M + m] : Ys[n * M + m] == -999.0f);
            }
        for (int threads = 0; threads < 2; threads++) {
            aik_threadpool *p = threads ? pool : NULL;
            for (int64_t n = 1; n <= N; n += N - 1) {
                aik_matmul_part part = { P, Ys, M, true };
                memset(Ys, 0, sizeof(Ys));
                aik_matmul_threaded_parts(p, t, &part, 1, X, scratch, K, n);
                packed_matmul(t, W, P, X, scratch, Y, M, K, n);
                ck_assert_msg(memcmp(Ys, Y, (size_t)(n * M) * sizeof(float)) == 0, "%s threads %d N=%ld",
                              aik_dtype_name(t), threads ? 3 : 1, (long)n);
            }
        }
    }
    aik_threadpool_free(pool);
}
END_TEST

/* q, k, v as one dispatch: three parts of different heights over the same
 * activations equal three separate matmuls, packed and unpacked. */
START_TEST(test_matmul_parts)
{
    enum { K = 128, N = 5, M0 = 96, M1 = 32, M2 = 37 };
    static const int64_t Ms[3] = { M0, M1, M2 };
    static float wf[M0 * K], X[N * K], Y[3][N * M0], Yref[3][N * M0];
    static _Alignas(64) unsigned char W[3][M0 * K * 4];
    static _Alignas(64) unsigned char P[3][M0 * K * 2], scratch[N * K / 32 * sizeof(aik_xblock)];
    aik_threadpool *pool = NULL;
    ck_assert_int_eq(aik_threadpool_new(2, &pool), 0);
    fill(X, N * K, 1.0f);
    for (int t = 0; t < AIK_DTYPE_COUNT; t++)
        for (int packed = 0; packed < 2; packed++) {
            const aik_dtype dt = (aik_dtype)t;
            if (packed && aik_packed_bytes(dt, M2, K) == 0)
                continue;
            aik_matmul_part parts[3];
            for (int p = 0; p < 3; p++) {
                fill(wf, Ms[p] * K, 1.0f);
                make_weights(dt, wf, W[p], Ms[p], K);
                if (packed) {
                    packed_matmul(dt, W[p], P[p], X, scratch, Yref[p], Ms[p], K, N);
                } else {
                    aik_matmul(dt, W[p], X, scratch, Yref[p], Ms[p], K, N);
                }
                parts[p] = (aik_matmul_part){ packed ? (const void *)P[p] : (const void *)W[p], Y[p], Ms[p],
                                              packed != 0 };
            }
            for (int64_t n = 1; n <= N; n += N - 1) {
                memset(Y, 0, sizeof(Y));
                aik_matmul_threaded_parts(pool, dt, parts, 3, X, scratch, K, n);
                for (int p = 0; p < 3; p++)
                    ck_assert_msg(memcmp(Y[p], Yref[p], (size_t)(n * Ms[p]) * sizeof(float)) == 0,
                                  "%s packed %d part %d N=%ld", aik_dtype_name(dt), packed, p, (long)n);
            }
        }
    aik_threadpool_free(pool);
}
END_TEST

static Suite *packed_suite(void)
{
    Suite *s = suite_create("packed");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pack_size);
    tcase_add_test(tc, test_packed_vs_reference);
    tcase_add_test(tc, test_packed_simd_is_scalar);
    tcase_add_test(tc, test_prepare_packed_is_scalar);
    tcase_add_test(tc, test_packed_invariance);
    tcase_add_test(tc, test_matmul_parts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return aik_test_run(packed_suite());
}
