/* SPDX-License-Identifier: MIT */
/*
 * GEMM tests (kernels/cpu/gemm.h, scheduler/gemm_threaded.h):
 *   - every ISA level this CPU has, all four transpose combinations, odd
 *     sizes, beta 0 / 1 / other, alpha != 1, padded leading dimensions,
 *     against a double-accumulated reference: NMSE <= 1e-7;
 *   - beta == 0 never reads C (C starts as NaN), nothing outside the M×N
 *     block of C is written (row padding and a tail guard keep a sentinel);
 *   - row / block splits and the threaded wrapper give bitwise the result
 *     of one aik_gemm_f32 call (the determinism promise of gemm.h), also
 *     when blocks of one call reuse a thread's packed op(B);
 *   - the trainer's three uses, including dW accumulated over two batches;
 *   - K == 0 and alpha == 0 (C = beta * C, A / B not read).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/gemm.h"
#include "scheduler/gemm_threaded.h"
#include "testutil.h"

#define NMSE_MAX 1e-7
#define SENTINEL 12345.5f
#define GUARD 64 /* floats after C that must stay SENTINEL */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* uniform in [-1, 1) */
static float rnd_f(void)
{
    return (float)rnd_u32() / 2147483648.0f - 1.0f;
}

static float *alloc_f(int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

static float *rand_matrix(int64_t rows, int64_t ld)
{
    float *p = alloc_f(rows * ld);
    for (int64_t i = 0; i < rows * ld; i++)
        p[i] = rnd_f();
    return p;
}

/* C = alpha * op(A) op(B) + beta * C with double accumulation, written
 * independently of the library so the library's reference is tested too. */
static void gemm_double(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                        const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                        double *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++) {
                const double a = ta ? A[k * lda + i] : A[i * lda + k];
                const double b = tb ? B[j * ldb + k] : B[k * ldb + j];
                s += a * b;
            }
            C[i * ldc + j] = alpha * s + (beta == 0.0f ? 0.0 : beta * C[i * ldc + j]);
        }
}

static double nmse_block(const float *got, const double *want, int64_t M, int64_t N,
                         int64_t ldc)
{
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            const double d = (double)got[i * ldc + j] - want[i * ldc + j];
            num += d * d;
            den += want[i * ldc + j] * want[i * ldc + j];
        }
    return den > 0.0 ? num / den : num;
}

/* C buffer with row padding and a tail guard set to SENTINEL; the M×N
 * block set to NaN (beta == 0: must not be read) or random values. */
static float *make_c(int64_t M, int64_t N, int64_t ldc, bool nan_block)
{
    float *C = alloc_f(M * ldc + GUARD);
    for (int64_t i = 0; i < M * ldc + GUARD; i++)
        C[i] = SENTINEL;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++)
            C[i * ldc + j] = nan_block ? NAN : rnd_f();
    return C;
}

static void check_untouched(const float *C, int64_t M, int64_t N, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = N; j < ldc; j++)
            ck_assert_msg(C[i * ldc + j] == SENTINEL, "padding C[%lld][%lld] written",
                          (long long)i, (long long)j);
    for (int64_t g = 0; g < GUARD; g++)
        ck_assert_msg(C[M * ldc + g] == SENTINEL, "guard after C written");
}

typedef enum { RUN_DISPATCH, RUN_REF } run_kind;

/* One full case: random operands with padded strides, run, compare. */
static void run_case(run_kind kind, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                     float alpha, float beta, int pad)
{
    const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
    const int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
    const int64_t lda = a_cols + pad, ldb = b_cols + 2 * pad, ldc = N + 3 * pad;
    float *A = rand_matrix(a_rows, lda), *B = rand_matrix(b_rows, ldb);
    float *C = make_c(M, N, ldc, beta == 0.0f);
    double *want = calloc((size_t)(M * ldc + 1), sizeof(double));
    ck_assert_ptr_nonnull(want);
    for (int64_t i = 0; i < M * ldc; i++)
        want[i] = C[i];

    gemm_double(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, want, ldc);
    if (kind == RUN_REF)
        aik_gemm_f32_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        aik_gemm_f32(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);

    const double e = nmse_block(C, want, M, N, ldc);
    ck_assert_msg(e <= NMSE_MAX, "%s ta=%d tb=%d M=%lld N=%lld K=%lld alpha=%g beta=%g: NMSE %g",
                  kind == RUN_REF ? "ref" : aik_cpu_isa_name(aik_cpu_active_isa()), ta, tb,
                  (long long)M, (long long)N, (long long)K, alpha, beta, e);
    check_untouched(C, M, N, ldc);
    free(A);
    free(B);
    free(C);
    free(want);
}

static const int64_t sizes[] = {1, 3, 17, 33, 65, 127, 300};
#define N_SIZES ((int)(sizeof(sizes) / sizeof(sizes[0])))

/* Every size in every position of (M, N, K), each transpose combination and
 * a beta / alpha / padding that rotates with the case number. The product
 * M·N·K is kept moderate so the sanitizer build stays fast. */
static void sweep(run_kind kind)
{
    static const float betas[] = {0.0f, 1.0f, -0.75f};
    static const float alphas[] = {1.0f, -1.5f, 0.25f};
    int n = 0;
    for (int t = 0; t < 4; t++)
        for (int im = 0; im < N_SIZES; im++)
            for (int in = 0; in < N_SIZES; in++) {
                const int64_t M = sizes[im], N = sizes[in];
                const int64_t K = sizes[(im + 2 * in + t) % N_SIZES];
                if (M * N * K > 3000000) /* the 300^3 corner: covered in trainer tests */
                    continue;
                run_case(kind, t & 1, t & 2, M, N, K, alphas[n % 3], betas[(n / 3) % 3],
                         n % 2 ? 0 : 1 + n % 5);
                n++;
            }
}

START_TEST(test_ref_vs_double)
{
    sweep(RUN_REF);
}
END_TEST

/* _i is the ISA level (loop test); levels the CPU lacks are skipped. */
START_TEST(test_dispatch_vs_double)
{
    if ((int)aik_cpu_detect() < _i) {
        fprintf(stderr, "skip: ISA level %d not available\n", _i);
        return;
    }
    ck_assert_int_eq(aik_cpu_set_isa((aik_cpu_isa)_i), _i);
    sweep(RUN_DISPATCH);
    /* sizes around the blocking boundaries (KC 256, MC 144, NC 512) */
    run_case(RUN_DISPATCH, false, true, 145, 513, 257, 1.0f, 0.0f, 3);
    run_case(RUN_DISPATCH, true, false, 300, 520, 520, -1.0f, 1.0f, 0);
    /* A stored transposed with a row stride over 512 floats: its panels are
     * packed, not read in place (ragged last panel too) */
    run_case(RUN_DISPATCH, true, false, 601, 40, 70, 0.5f, -0.75f, 2);
    run_case(RUN_DISPATCH, true, true, 1030, 33, 17, 1.0f, 0.0f, 0);
    aik_cpu_set_isa(aik_cpu_detect());
}
END_TEST

/* Forcing scalar must run exactly the reference. */
START_TEST(test_scalar_is_ref)
{
    const int64_t M = 33, N = 65, K = 17;
    float *A = rand_matrix(M, K), *B = rand_matrix(K, N);
    float *C1 = make_c(M, N, N, false), *C2 = alloc_f(M * N + GUARD);
    memcpy(C2, C1, (size_t)(M * N + GUARD) * sizeof(float));
    aik_cpu_set_isa(AIK_CPU_SCALAR);
    aik_gemm_f32(false, false, M, N, K, 0.5f, A, K, B, N, 2.0f, C1, N);
    aik_cpu_set_isa(aik_cpu_detect());
    aik_gemm_f32_ref(false, false, M, N, K, 0.5f, A, K, B, N, 2.0f, C2, N);
    ck_assert_int_eq(memcmp(C1, C2, (size_t)(M * N) * sizeof(float)), 0);
    free(A);
    free(B);
    free(C1);
    free(C2);
}
END_TEST

/* The register tile the threaded split aligns to, per ISA level. */
START_TEST(test_tile_shape)
{
    static const int64_t want[3][2] = {{1, 1}, {6, 16}, {12, 32}};
    if ((int)aik_cpu_detect() < _i)
        return;
    aik_cpu_set_isa((aik_cpu_isa)_i);
    int64_t mr = 0, nr = 0;
    aik_gemm_f32_tile(&mr, &nr);
    aik_cpu_set_isa(aik_cpu_detect());
    ck_assert_int_eq(mr, want[_i][0]);
    ck_assert_int_eq(nr, want[_i][1]);
}
END_TEST

/* Rows and blocks computed separately, at unaligned boundaries, must equal
 * one whole call bit for bit (per ISA level). */
START_TEST(test_split_bitwise)
{
    if ((int)aik_cpu_detect() < _i)
        return;
    aik_cpu_set_isa((aik_cpu_isa)_i);
    for (int t = 0; t < 4; t++) {
        const bool ta = t & 1, tb = t & 2;
        const int64_t M = 127, N = 101, K = 300;
        const int64_t lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 5;
        float *A = rand_matrix(ta ? K : M, lda), *B = rand_matrix(tb ? N : K, ldb);
        float *C0 = make_c(M, N, ldc, false);
        float *C1 = alloc_f(M * ldc + GUARD), *C2 = alloc_f(M * ldc + GUARD);
        memcpy(C1, C0, (size_t)(M * ldc + GUARD) * sizeof(float));
        memcpy(C2, C0, (size_t)(M * ldc + GUARD) * sizeof(float));

        aik_gemm_f32(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 1.0f, C0, ldc);

        static const int64_t rb[] = {0, 5, 6, 37, 100, 127};
        for (int r = 0; r + 1 < 6; r++)
            aik_gemm_f32_rows(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 1.0f, C1, ldc, rb[r],
                              rb[r + 1]);
        ck_assert_int_eq(memcmp(C0, C1, (size_t)(M * ldc + GUARD) * sizeof(float)), 0);

        static const int64_t cb[] = {0, 1, 33, 64, 101};
        for (int r = 0; r + 1 < 6; r++)
            for (int c = 0; c + 1 < 5; c++)
                aik_gemm_f32_block(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 1.0f, C2, ldc,
                                   rb[r], rb[r + 1], cb[c], cb[c + 1]);
        ck_assert_int_eq(memcmp(C0, C2, (size_t)(M * ldc + GUARD) * sizeof(float)), 0);
        /* an empty range writes nothing */
        aik_gemm_f32_rows(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.0f, C2, ldc, 7, 7);
        ck_assert_int_eq(memcmp(C0, C2, (size_t)(M * ldc + GUARD) * sizeof(float)), 0);
        free(A);
        free(B);
        free(C0);
        free(C1);
        free(C2);
    }
    aik_cpu_set_isa(aik_cpu_detect());
}
END_TEST

/* aik_gemm_f32_block_call: the blocks of one call_id, run in turn on this
 * thread (so the second and later reuse the first one's packed op(B)),
 * equal one aik_gemm_f32 call bit for bit; a new call_id after B changed
 * in place, and a call without an id clobbering the buffer in between,
 * never see stale panels. Per ISA level. */
START_TEST(test_block_call_reuse)
{
    if ((int)aik_cpu_detect() < _i)
        return;
    aik_cpu_set_isa((aik_cpu_isa)_i);
    for (int t = 0; t < 4; t++) {
        const bool ta = t & 1, tb = t & 2;
        const int64_t M = 131, N = 97, K = 300; /* two K blocks, ragged tiles */
        const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
        ck_assert(aik_gemm_f32_b_reusable(N, K) == (_i >= AIK_CPU_AVX2));
        const int64_t b_size = (tb ? N : K) * ldb;
        float *A = rand_matrix(ta ? K : M, lda), *B = rand_matrix(tb ? N : K, ldb);
        float *Bs[2] = {alloc_f(b_size), alloc_f(b_size)}; /* B of each round */
        float *C0 = make_c(M, N, ldc, false), *C1 = alloc_f(M * ldc + GUARD);
        float *want[2] = {alloc_f(M * ldc + GUARD), alloc_f(M * ldc + GUARD)};
        float *other = rand_matrix(40, 40), *oc = alloc_f(40 * 40);

        for (int round = 0; round < 2; round++) {
            for (int64_t i = 0; i < b_size; i++)
                Bs[round][i] = round ? -0.5f * B[i] + 0.25f : B[i];
            memcpy(want[round], C0, (size_t)(M * ldc + GUARD) * sizeof(float));
            aik_gemm_f32(ta, tb, M, N, K, 0.5f, A, lda, Bs[round], ldb, -1.0f, want[round], ldc);
        }
        /* Round 1 changes B in place, under the same pointer, and runs right
         * after round 0's last blocks: only its new id tells it apart. */
        for (int round = 0; round < 2; round++) {
            memcpy(B, Bs[round], (size_t)b_size * sizeof(float));
            memcpy(C1, C0, (size_t)(M * ldc + GUARD) * sizeof(float));
            const uint64_t id = aik_gemm_f32_call_id();
            static const int64_t rb[] = {0, 12, 37, 72, 131};
            for (int r = 0; r + 1 < 5; r++) {
                aik_gemm_f32_block_call(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, -1.0f, C1, ldc,
                                        rb[r], rb[r + 1], 0, N, id);
                if (r == 1) /* clobbers the packing buffers; the id must not be trusted */
                    aik_gemm_f32(false, false, 40, 40, 40, 1.0f, other, 40, other, 40, 0.0f,
                                 oc, 40);
            }
            ck_assert_msg(memcmp(want[round], C1, (size_t)(M * ldc + GUARD) * sizeof(float)) == 0,
                          "isa %d trans %d round %d differs", _i, t, round);
        }
        ck_assert_uint_ne(aik_gemm_f32_call_id(), 0);
        free(A);
        free(B);
        free(C0);
        free(C1);
        free(want[0]);
        free(want[1]);
        free(Bs[0]);
        free(Bs[1]);
        free(other);
        free(oc);
    }
    aik_cpu_set_isa(aik_cpu_detect());
}
END_TEST

/* The threaded wrapper with 1..4 threads (and NULL) equals one plain call
 * bit for bit, for shapes that split over M (finely, reusing op(B), and
 * not) and over N. */
START_TEST(test_threaded_bitwise)
{
    static const int64_t shapes[][3] = {
        {256, 96, 64}, {20, 700, 33}, {3, 1000, 70}, {1000, 3, 70}, {130, 130, 130}, {1, 1, 1},
        {1000, 200, 300}, {600, 520, 40},
    };
    for (int nt = 0; nt <= 4; nt++) {
        aik_threadpool *pool = NULL;
        if (nt > 0)
            ck_assert_int_eq(aik_threadpool_new(nt, &pool), 0);
        for (int s = 0; s < 8; s++)
            for (int t = 0; t < 4; t++) {
                const bool ta = t & 1, tb = t & 2;
                const int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                const int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N + 1;
                float *A = rand_matrix(ta ? K : M, lda), *B = rand_matrix(tb ? N : K, ldb);
                float *C0 = make_c(M, N, ldc, true), *C1 = alloc_f(M * ldc + GUARD);
                memcpy(C1, C0, (size_t)(M * ldc + GUARD) * sizeof(float));
                aik_gemm_f32(ta, tb, M, N, K, -1.25f, A, lda, B, ldb, 0.0f, C0, ldc);
                aik_gemm_f32_threaded(pool, ta, tb, M, N, K, -1.25f, A, lda, B, ldb, 0.0f,
                                      C1, ldc);
                ck_assert_msg(memcmp(C0, C1, (size_t)(M * ldc + GUARD) * sizeof(float)) == 0,
                              "threads=%d shape %d trans %d differs", nt, s, t);
                check_untouched(C1, M, N, ldc);
                free(A);
                free(B);
                free(C0);
                free(C1);
            }
        aik_threadpool_free(pool);
    }
}
END_TEST

/* The trainer's three uses at a small model size, threaded, against the
 * double reference; dW accumulates two batches with beta = 1. */
START_TEST(test_trainer_uses)
{
    const int64_t T = 64, in = 96, out = 300;
    aik_threadpool *pool = NULL;
    ck_assert_int_eq(aik_threadpool_new(2, &pool), 0);
    float *X = rand_matrix(T, in), *W = rand_matrix(out, in), *dY = rand_matrix(T, out);
    float *X2 = rand_matrix(T, in), *dY2 = rand_matrix(T, out);
    float *Y = alloc_f(T * out), *dX = alloc_f(T * in), *dW = alloc_f(out * in);
    double *want = calloc((size_t)(out * in + T * out), sizeof(double));
    ck_assert_ptr_nonnull(want);

    /* forward Y = X W^T */
    for (int64_t i = 0; i < T * out; i++)
        Y[i] = NAN;
    aik_gemm_f32_threaded(pool, false, true, T, out, in, 1.0f, X, in, W, in, 0.0f, Y, out);
    gemm_double(false, true, T, out, in, 1.0f, X, in, W, in, 0.0f, want, out);
    ck_assert(nmse_block(Y, want, T, out, out) <= NMSE_MAX);

    /* dX = dY W */
    aik_gemm_f32_threaded(pool, false, false, T, in, out, 1.0f, dY, out, W, in, 0.0f, dX, in);
    gemm_double(false, false, T, in, out, 1.0f, dY, out, W, in, 0.0f, want, in);
    ck_assert(nmse_block(dX, want, T, in, in) <= NMSE_MAX);

    /* dW = 0; dW += dY^T X; dW += dY2^T X2 */
    memset(dW, 0, (size_t)(out * in) * sizeof(float));
    memset(want, 0, (size_t)(out * in) * sizeof(double));
    aik_gemm_f32_threaded(pool, true, false, out, in, T, 1.0f, dY, out, X, in, 1.0f, dW, in);
    aik_gemm_f32_threaded(pool, true, false, out, in, T, 1.0f, dY2, out, X2, in, 1.0f, dW, in);
    gemm_double(true, false, out, in, T, 1.0f, dY, out, X, in, 1.0f, want, in);
    gemm_double(true, false, out, in, T, 1.0f, dY2, out, X2, in, 1.0f, want, in);
    ck_assert(nmse_block(dW, want, out, in, in) <= NMSE_MAX);

    /* the 300^3 corner of the size list, all transposes */
    for (int t = 0; t < 4; t++)
        run_case(RUN_DISPATCH, t & 1, t & 2, 300, 300, 300, 1.0f, 1.0f, 2);

    aik_threadpool_free(pool);
    free(X);
    free(W);
    free(dY);
    free(X2);
    free(dY2);
    free(Y);
    free(dX);
    free(dW);
    free(want);
}
END_TEST

/* K == 0 or alpha == 0: C = beta * C, and A / B are not touched (NULL). */
START_TEST(test_empty_product)
{
    const int64_t M = 5, N = 7, ldc = 9;
    float *C = make_c(M, N, ldc, false), *ref = alloc_f(M * ldc + GUARD);
    memcpy(ref, C, (size_t)(M * ldc + GUARD) * sizeof(float));

    aik_gemm_f32(false, false, M, N, 0, 1.0f, NULL, 0, NULL, N, 0.5f, C, ldc);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++)
            ck_assert(C[i * ldc + j] == 0.5f * ref[i * ldc + j]);
    check_untouched(C, M, N, ldc);

    aik_gemm_f32(true, true, M, N, 4, 0.0f, NULL, M, NULL, 4, 0.0f, C, ldc);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++)
            ck_assert(C[i * ldc + j] == 0.0f);
    check_untouched(C, M, N, ldc);

    /* M or N == 0: nothing at all happens */
    aik_gemm_f32(false, false, 0, N, 3, 1.0f, NULL, 3, NULL, N, 0.0f, NULL, N);
    aik_gemm_f32_threaded(NULL, false, false, M, 0, 3, 1.0f, NULL, 3, NULL, 0, 0.0f, NULL, 0);
    free(C);
    free(ref);
}
END_TEST

/* NaN / Inf in the inputs propagate (no fast path hides them). */
START_TEST(test_nonfinite_propagates)
{
    const int64_t M = 40, N = 40, K = 40;
    float *A = rand_matrix(M, K), *B = rand_matrix(K, N), *C = alloc_f(M * N);
    A[3 * K + 7] = NAN;
    B[5 * N + 9] = INFINITY;
    aik_gemm_f32(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
    for (int64_t j = 0; j < N; j++)
        ck_assert(isnan(C[3 * N + j]));
    ck_assert(isinf(C[0 * N + 9]) || isnan(C[0 * N + 9]));
    ck_assert(isfinite(C[0 * N + 8]));
    free(A);
    free(B);
    free(C);
}
END_TEST

static Suite *gemm_suite(void)
{
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_ref_vs_double);
    tcase_add_loop_test(tc, test_dispatch_vs_double, AIK_CPU_SCALAR, AIK_CPU_AVX512 + 1);
    tcase_add_test(tc, test_scalar_is_ref);
    tcase_add_loop_test(tc, test_tile_shape, AIK_CPU_SCALAR, AIK_CPU_AVX512 + 1);
    tcase_add_loop_test(tc, test_split_bitwise, AIK_CPU_SCALAR, AIK_CPU_AVX512 + 1);
    tcase_add_loop_test(tc, test_block_call_reuse, AIK_CPU_SCALAR, AIK_CPU_AVX512 + 1);
    tcase_add_test(tc, test_threaded_bitwise);
    tcase_add_test(tc, test_trainer_uses);
    tcase_add_test(tc, test_empty_product);
    tcase_add_test(tc, test_nonfinite_propagates);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return aik_test_run(gemm_suite());
}
