/* SPDX-License-Identifier: MIT */
/*
 * membw THREADS [MIB]: sustained memory read bandwidth, the roofline for
 * single-batch decode (which streams every weight once per token). Each
 * thread sums its own slice of a buffer far larger than the caches with a
 * SIMD dot product (one read stream, as a matvec), best of 7 passes.
 * Prints GB/s (1e9 bytes per second).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cpu/cpu_kernels.h"
#include "scheduler/threadpool.h"

typedef struct job {
    const float *buf;
    size_t per_task;
    float part[256];
} job;

static void task(void *ctx, int t, int thread)
{
    job *j = ctx;
    (void)thread;
    j->part[t] = aik_vec_dot_f32(j->buf + (size_t)t * j->per_task, j->buf + (size_t)t * j->per_task,
                                 (int64_t)j->per_task);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 1024;
    size_t n = mib << 18; /* floats */
    aik_threadpool *pool;
    float *buf = aligned_alloc(64, n * sizeof(float));
    job j;
    double best = 0;
    volatile float sink = 0;

    if (!buf || aik_threadpool_new(threads, &pool) < 0)
        return 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (float)(i & 7);
    int tasks = aik_threadpool_size(pool) * 4;
    j.buf = buf;
    j.per_task = n / (size_t)tasks;
    for (int pass = 0; pass < 7; pass++) {
        double t0 = now();
        aik_threadpool_parallel_for(pool, tasks, task, &j);
        double dt = now() - t0;
        for (int t = 0; t < tasks; t++)
            sink += j.part[t];
        double gbps = (double)j.per_task * tasks * sizeof(float) / dt / 1e9;
        if (gbps > best)
            best = gbps;
    }
    printf("%.2f\n", best);
    aik_threadpool_free(pool);
    free(buf);
    return sink == 12345.0f;
}
