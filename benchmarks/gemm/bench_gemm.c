/* SPDX-License-Identifier: MIT */
/*
 * bench_gemm — aik_gemm_f32_threaded against the machine's measured fp32
 * peak, for the trainer's three GEMMs at the model sizes of the trainer.
 *
 *   usage: bench_gemm [threads (default: online CPUs)] [seconds per case (0.3)]
 *                     [rounds (3): the whole table is measured this many
 *                      times and the best of each figure printed]
 *                     [recipe: the default model's shapes, 1024 rows, dim 192,
 *                      instead of the 256-row table]
 *   AIK_CPU_ISA=avx2|scalar picks a lower ISA level (see cpu_kernels.h).
 *
 * Peak method: every thread of the pool runs a loop of independent FMAs
 * (16 accumulator registers with AVX-512, 12 with AVX2, enough to cover
 * FMA latency × the number of FMA ports on current x86 cores) on the widest vectors of the active ISA
 * level (512-bit for avx512, 256-bit for avx2), with no memory traffic.
 * flops = 2 × lanes × FMAs; peak = flops of all threads / wall time of the
 * whole parallel loop, best of repeated ~0.5 ms runs (a long run on a
 * shared machine is always preempted somewhere, a short one often is not;
 * the GEMM calls are timed the same way). This is the attainable peak at
 * the clock the cores actually run at under that vector width, which is
 * what a GEMM of the same width can reach; not the data-sheet number.
 *
 * The machine this was written on is shared (2 cores, several builds and
 * tests running), so a second figure is printed next to each wall-clock
 * one: the per-core peak measured by each thread's CPU time, and the GEMM
 * rate by process CPU time divided by the threads (averaged over all
 * calls). These say what the code does with the core time it gets; the
 * wall-clock ones what a caller saw.
 *
 * GEMM timing: one warm-up call, then repeated calls for the given time;
 * wall: the best call; cpu: the average. Inputs are random in [-1, 1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/gemm.h"
#include "scheduler/gemm_threaded.h"
#include "scheduler/threadpool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* × 16 FMAs per thread: ~0.5 ms at 3 GHz. Short runs, many of them, best
 * one kept: on a shared machine a long run is always preempted somewhere,
 * a short one often is not (the GEMM calls are timed the same way). */
#define PEAK_ITERS 100000L
#define PEAK_ACC 16
/* AVX2 has 16 vector registers: 12 accumulators + the two operands, so
 * nothing spills (12 chains still cover 4 cycles × 2 FMA ports). */
#define PEAK_ACC_AVX2 12

typedef struct peak_ctx {
    aik_cpu_isa isa;
    float sink[64];       /* results stored so the loop cannot be removed */
    double cpu_s[1024];   /* CPU time of the last run, per thread */
} peak_ctx;

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void peak_avx512(float *sink)
{
    __m512 acc[PEAK_ACC];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < PEAK_ACC; i++)
        acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < PEAK_ITERS; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < PEAK_ACC; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    for (int i = 1; i < PEAK_ACC; i++)
        acc[0] = _mm512_add_ps(acc[0], acc[i]);
    _mm512_storeu_ps(sink, acc[0]);
}

__attribute__((target("avx2,fma"))) static void peak_avx2(float *sink)
{
    __m256 acc[PEAK_ACC_AVX2];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < PEAK_ACC_AVX2; i++)
        acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < PEAK_ITERS; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < PEAK_ACC_AVX2; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    for (int i = 1; i < PEAK_ACC_AVX2; i++)
        acc[0] = _mm256_add_ps(acc[0], acc[i]);
    _mm256_storeu_ps(sink, acc[0]);
}
#endif

static void peak_scalar(float *sink)
{
    float acc[PEAK_ACC];
    for (int i = 0; i < PEAK_ACC; i++)
        acc[i] = (float)i;
    for (long it = 0; it < PEAK_ITERS / 8; it++)
        for (int i = 0; i < PEAK_ACC; i++)
            acc[i] = acc[i] * 0.999999f + 1e-7f;
    for (int i = 1; i < PEAK_ACC; i++)
        acc[0] += acc[i];
    sink[0] = acc[0];
}

static void peak_task(void *vctx, int task, int thread)
{
    peak_ctx *ctx = vctx;
    float local[16];
    const double t0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    (void)task;
#if defined(__x86_64__)
    if (ctx->isa >= AIK_CPU_AVX512)
        peak_avx512(local);
    else if (ctx->isa >= AIK_CPU_AVX2)
        peak_avx2(local);
    else
#endif
        peak_scalar(local);
    ctx->sink[thread % 4] += local[0];
    ctx->cpu_s[thread] = clock_s(CLOCK_THREAD_CPUTIME_ID) - t0;
}

/* Peak GFLOP/s of all threads together by wall time (ret_wall), and of one
 * core by its thread's CPU time (ret_core: what a core delivers while it
 * runs, whatever else shares the machine). 2 flops per FMA lane. */
static void measure_peak(aik_threadpool *pool, int n_threads, aik_cpu_isa isa, double seconds,
                         double *ret_wall, double *ret_core)
{
    static peak_ctx ctx;
    ctx.isa = isa;
    const int lanes = isa >= AIK_CPU_AVX512 ? 16 : isa >= AIK_CPU_AVX2 ? 8 : 1;
    const long iters = isa >= AIK_CPU_AVX2 ? PEAK_ITERS : PEAK_ITERS / 8;
    const int acc = isa == AIK_CPU_AVX2 ? PEAK_ACC_AVX2 : PEAK_ACC;
    const double flops = 2.0 * lanes * acc * (double)iters;
    double best = 1e30, best_cpu = 1e30;
    const double start = now_s();
    for (int rep = 0; rep < 10 || now_s() - start < seconds; rep++) {
        const double t0 = now_s();
        aik_threadpool_parallel_for(pool, n_threads, peak_task, &ctx);
        const double dt = now_s() - t0;
        best = dt < best ? dt : best;
        for (int t = 0; t < n_threads; t++)
            best_cpu = ctx.cpu_s[t] > 0.0 && ctx.cpu_s[t] < best_cpu ? ctx.cpu_s[t] : best_cpu;
    }
    if (ctx.sink[0] == 12345.0f) /* keeps the sink alive */
        printf(" ");
    *ret_wall = flops * n_threads / best * 1e-9;
    *ret_core = flops / best_cpu * 1e-9;
}

static float *rand_buf(int64_t n)
{
    float *p = malloc((size_t)n * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    return p;
}

/* One trainer GEMM: GFLOP/s of the best call by wall time (ret_wall) and
 * by process CPU time over all calls, spread over the threads (ret_cpu: the
 * rate if the threads had their cores to themselves). The CPU figure is an
 * average, not a best call: the process clock sees other threads' time only
 * at scheduler ticks, so single short calls are mis-measured; and workers
 * that spin between calls count against it, so it errs low. */
static void bench_case(aik_threadpool *pool, int n_threads, bool ta, bool tb, int64_t M,
                       int64_t N, int64_t K, float beta, double seconds, double *ret_wall,
                       double *ret_cpu)
{
    const int64_t lda = ta ? M : K, ldb = tb ? K : N;
    float *A = rand_buf(M * K), *B = rand_buf(K * N), *C = rand_buf(M * N);
    aik_gemm_f32_threaded(pool, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, N);
    double best = 1e30;
    int reps = 0;
    const double start = now_s(), cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (; reps < 3 || now_s() - start < seconds; reps++) {
        const double t0 = now_s();
        aik_gemm_f32_threaded(pool, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, N);
        const double dt = now_s() - t0;
        best = dt < best ? dt : best;
    }
    const double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    free(A);
    free(B);
    free(C);
    const double flops = 2.0 * (double)M * (double)N * (double)K;
    *ret_wall = flops / best * 1e-9;
    *ret_cpu = flops * reps / (cpu / n_threads) * 1e-9;
}

#define N_CASES 15

int main(int argc, char **argv)
{
    const int n_threads = argc > 1 ? atoi(argv[1]) : 0;
    const double seconds = argc > 2 ? atof(argv[2]) : 0.3;
    const int rounds = argc > 3 && atoi(argv[3]) > 0 ? atoi(argv[3]) : 3;
    aik_threadpool *pool = NULL;
    int r = aik_threadpool_new(n_threads, &pool);
    if (r < 0) {
        fprintf(stderr, "bench_gemm: cannot create thread pool: %s\n", strerror(-r));
        return 1;
    }
    const int nt = aik_threadpool_size(pool);
    const aik_cpu_isa isa = aik_cpu_active_isa();
    int64_t mr, nr;
    aik_gemm_f32_tile(&mr, &nr);

    /* Default: square-ish 256-row shapes (the table kept since session 1).
     * "recipe": the default model's recipe (models/wordnet/recipe.json):
     * 8 x 128 = 1024 rows, dim 192, k/v 64, FFN 512, vocab 4096. */
    static const struct { int64_t T, in, out; } models_default[] = {
        {256, 256, 768}, {256, 768, 256}, {256, 256, 4096},
    }, models_recipe[] = {
        {1024, 192, 192}, {1024, 192, 64}, {1024, 192, 512}, {1024, 512, 192}, {1024, 192, 4096},
    };
    const bool recipe = argc > 4 && strcmp(argv[4], "recipe") == 0;
    const int n_models = recipe ? 5 : 3;
    const int n_cases = 3 * n_models;
    struct { int64_t T, in, out; } models[5];
    memcpy(models, recipe ? (const void *)models_recipe : (const void *)models_default,
           (size_t)n_models * sizeof(models[0]));
    struct { const char *name; bool ta, tb; int64_t M, N, K; float beta; char label[64]; }
        cases[N_CASES];
    for (int m = 0; m < n_models; m++) {
        const int64_t T = models[m].T, in = models[m].in, out = models[m].out;
        cases[3 * m + 0] = (__typeof__(cases[0])){"fwd Y=X.W^T", false, true, T, out, in, 0.0f, ""};
        cases[3 * m + 1] = (__typeof__(cases[0])){"dX=dY.W", false, false, T, in, out, 0.0f, ""};
        cases[3 * m + 2] = (__typeof__(cases[0])){"dW+=dY^T.X", true, false, out, in, T, 1.0f, ""};
        for (int c = 3 * m; c < 3 * m + 3; c++)
            snprintf(cases[c].label, sizeof(cases[c].label), "%s in=%lld out=%lld",
                     cases[c].name, (long long)in, (long long)out);
    }

    /* Several rounds, best of each figure kept: on a shared machine a
     * quiet moment is what shows what the code can do. */
    double peak = 0.0, core = 0.0, wall[N_CASES] = {0}, cpu[N_CASES] = {0};
    for (int round = 0; round < rounds; round++) {
        double p, c;
        measure_peak(pool, nt, isa, 2.0 * seconds, &p, &c);
        peak = p > peak ? p : peak;
        core = c > core ? c : core;
        for (int i = 0; i < n_cases; i++) {
            double w, u;
            bench_case(pool, nt, cases[i].ta, cases[i].tb, cases[i].M, cases[i].N, cases[i].K,
                       cases[i].beta, seconds, &w, &u);
            wall[i] = w > wall[i] ? w : wall[i];
            cpu[i] = u > cpu[i] ? u : cpu[i];
        }
    }

    printf("isa %s, tile %lldx%lld, %d threads, best of %d rounds\n", aik_cpu_isa_name(isa),
           (long long)mr, (long long)nr, nt, rounds);
    printf("fp32 FMA peak: %.1f GFLOP/s all threads by wall time; %.1f per core by CPU time "
           "(x %d = %.1f)\n", peak, core, nt, core * nt);
    printf("%-30s %5s %5s %5s %8s %6s | %8s %6s\n", recipe ? "case (T=1024)" : "case (T=256)", "M",
           "N", "K", "wall", "%peak", "cpu", "%core");
    for (int i = 0; i < n_cases; i++)
        printf("%-30s %5lld %5lld %5lld %8.1f %5.1f%% | %8.1f %5.1f%%\n", cases[i].label,
               (long long)cases[i].M, (long long)cases[i].N, (long long)cases[i].K, wall[i],
               100.0 * wall[i] / peak, cpu[i], 100.0 * cpu[i] / (core * nt));
    aik_threadpool_free(pool);
    return 0;
}
