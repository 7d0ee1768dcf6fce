/* SPDX-License-Identifier: MIT */
/*
 * bench_kernels — matvec GB/s for each weight dtype vs read bandwidth.
 *
 *   bench_kernels [seconds-per-measurement]   (default 0.25)
 *
 * "cold" cycles through enough copies of the weight matrix to exceed the
 * last-level cache (256 MiB), so it measures the memory roofline case that
 * decode of a real model hits; "hot" repeats one matrix (cache resident when
 * it fits). Read bandwidth is a SIMD f32 dot product of a 256 MiB buffer
 * with itself (one read stream, like a matvec), and memcpy for reference. AIK_CPU_ISA=scalar|avx2 selects a lower ISA level.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cpu/cpu_kernels.h"
#include "scheduler/threadpool.h"

#define BIG (256u << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static volatile float sink;

struct dot_job {
    const float *buf;
    size_t chunk;
    float part[64];
};

static void dot_task(void *ctx, int task, int thread)
{
    struct dot_job *j = ctx;
    /* each task streams one chunk of buf; dotted with itself, so there is
     * exactly one memory stream, as in a matvec */
    const float *c = j->buf + (size_t)task * j->chunk;
    j->part[task % 64] += aik_vec_dot_f32(c, c, (int64_t)j->chunk);
}

static double read_bandwidth(const float *buf, size_t n_floats, double secs, aik_threadpool *pool)
{
    struct dot_job j = { buf, 1u << 20, { 0 } };
    const int tasks = (int)(n_floats / j.chunk);
    double t0 = now(), t;
    long reps = 0;
    do {
        aik_threadpool_parallel_for(pool, tasks, dot_task, &j);
        reps++;
        t = now();
    } while (t - t0 < secs);
    sink = j.part[0];
    return (double)reps * tasks * j.chunk * 4 / (t - t0) / 1e9;
}

static double matvec(aik_dtype wt, const unsigned char *W, size_t copies, size_t wbytes,
                     const float *x, void *scratch, float *y, int64_t M, int64_t K,
                     int64_t N, double secs, aik_threadpool *pool)
{
    double t0 = now(), t;
    long reps = 0;
    do {
        aik_matmul_threaded(pool, wt, W + (size_t)(reps % (long)copies) * wbytes, x, scratch,
                            y, M, K, N);
        reps++;
        t = now();
    } while (t - t0 < secs);
    return (double)reps * (double)wbytes / (t - t0) / 1e9;
}

int main(int argc, char **argv)
{
    const double secs = argc > 1 ? atof(argv[1]) : 0.25;
    static const int64_t shapes[][2] = { { 1536, 576 }, { 49152, 576 } };
    aik_threadpool *pool = NULL;
    unsigned char *big = aligned_alloc(64, BIG);
    if (!big || aik_threadpool_new(0, &pool) < 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < BIG / 4; i++)
        ((float *)big)[i] = (float)(i & 1023) * 1e-3f;

    printf("isa %s, %d threads\n", aik_cpu_isa_name(aik_cpu_active_isa()), aik_threadpool_size(pool));
    const double bw1 = read_bandwidth((const float *)big, BIG / 4, secs, NULL);
    const double bwn = read_bandwidth((const float *)big, BIG / 4, secs, pool);
    printf("read bandwidth (256 MiB f32 dot): 1 thread %.1f GB/s, %d threads %.1f GB/s\n",
           bw1, aik_threadpool_size(pool), bwn);
    {
        const double t0 = now();
        memcpy(big + BIG / 2, big, BIG / 2);
        memcpy(big, big + BIG / 2, BIG / 2);
        printf("memcpy 1 thread: %.1f GB/s copied (x2 for read + write traffic)\n",
               (double)BIG / (now() - t0) / 1e9);
    }
    printf("matvec, GB/s of weights read (N = 1):\n");

    float *x = malloc(16 * 576 * sizeof(float));
    float *y = malloc(16 * 49152 * sizeof(float));
    void *scratch = malloc(aik_matmul_scratch_size(AIK_DTYPE_Q8_0, 576, 16));
    float *wf = malloc((size_t)49152 * 576 * sizeof(float));
    if (!x || !y || !scratch || !wf)
        return 1;
    for (int i = 0; i < 16 * 576; i++)
        x[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (size_t i = 0; i < (size_t)49152 * 576; i++)
        wf[i] = (float)((i * 2654435761u) % 2000) * 1e-3f - 1.0f;

    /* the read bandwidth is measured again next to each row: on a shared
     * machine it drifts, and the ratio is what matters */
    printf("%-6s %-11s %9s %9s %9s %9s %9s %9s\n", "dtype", "M x K", "hot 1T", "cold 1T",
           "1T/bw", "hot nT", "cold nT", "nT/bw");
    for (int t = 0; t < AIK_DTYPE_COUNT; t++) {
        for (int s = 0; s < 2; s++) {
            const int64_t M = shapes[s][0], K = shapes[s][1];
            uint64_t wbytes;
            if (aik_dtype_bytes((aik_dtype)t, (uint64_t)(M * K), &wbytes) < 0)
                return 1;
            size_t copies = BIG / wbytes;
            if (copies < 1)
                copies = 1;
            unsigned char *W = copies * wbytes <= BIG ? big : malloc(wbytes);
            if (!W)
                return 1;
            const size_t rb = (size_t)wbytes / (size_t)M;
            for (int64_t m = 0; m < M; m++)
                aik_quantize_row((aik_dtype)t, wf + m * K, W + (size_t)m * rb, K);
            for (size_t c = 1; c < copies; c++)
                memcpy(W + c * wbytes, W, wbytes);
            const double h1 = matvec((aik_dtype)t, W, 1, wbytes, x, scratch, y, M, K, 1, secs, NULL);
            const double b1 = read_bandwidth((const float *)big, BIG / 4, secs, NULL);
            const double c1 = matvec((aik_dtype)t, W, copies, wbytes, x, scratch, y, M, K, 1, secs, NULL);
            const double hn = matvec((aik_dtype)t, W, 1, wbytes, x, scratch, y, M, K, 1, secs, pool);
            const double bn = read_bandwidth((const float *)big, BIG / 4, secs, pool);
            const double cn = matvec((aik_dtype)t, W, copies, wbytes, x, scratch, y, M, K, 1, secs, pool);
            printf("%-6s %5ldx%-5ld %9.1f %9.1f %8.0f%% %9.1f %9.1f %8.0f%%\n",
                   aik_dtype_name((aik_dtype)t), (long)M, (long)K, h1, c1, 100.0 * c1 / b1, hn, cn,
                   100.0 * cn / bn);
            if (W != big)
                free(W);
        }
    }
    /* prompt processing: 16 activation rows at once, weights read per tile */
    printf("batched N=16, 49152x576, %d threads (GFLOP/s):", aik_threadpool_size(pool));
    for (int t = 0; t < AIK_DTYPE_COUNT; t++) {
        const int64_t M = 49152, K = 576;
        uint64_t wbytes;
        aik_dtype_bytes((aik_dtype)t, (uint64_t)(M * K), &wbytes);
        const size_t rb = (size_t)wbytes / (size_t)M;
        for (int64_t m = 0; m < M; m++)
            aik_quantize_row((aik_dtype)t, wf + m * K, big + (size_t)m * rb, K);
        const double gbs = matvec((aik_dtype)t, big, 1, wbytes, x, scratch, y, M, K, 16, secs, pool);
        printf(" %s %.1f", aik_dtype_name((aik_dtype)t), gbs / (double)wbytes * 1e9 * 2.0 * M * K * 16 / 1e9);
    }
    printf("\n");
    free(wf);
    free(x);
    free(y);
    free(scratch);
    free(big);
    aik_threadpool_free(pool);
    return 0;
}
