/* SPDX-License-Identifier: MIT */
/*
 * bench_decode_matvec — the mat-vecs of one decoded token of the
 * SmolLM2-135M shape (30 layers of q, k, v, o, gate, up, down, then the
 * 49152 x 576 output head), each with its own random weights, so the 143 MB
 * (q8_0) or 76 MB (q4_0) stream from memory as in real decode. No
 * attention, norms or sampling: this isolates the matmul path.
 *
 *   bench_decode_matvec [q8_0|q4_0] [THREADS] [REPS]
 *
 * Prints the best and mean time per token and the time per shape. With
 * HOT=1 in the environment every layer reuses layer 0's matrices (3.8 MB
 * plus the head: the kernels' own speed, from cache). For before/after
 * comparisons run two builds alternately and compare the best times.
 * PACKED=1 runs on packed weights (kernels/cpu/packed.c), as sessions do
 * where the CPU has the packed kernels; FUSE=1 (with PACKED=1) runs q, k, v
 * and gate, up as one dispatch each, as the executor does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cpu/cpu_kernels.h"
#include "scheduler/threadpool.h"

enum { LAYERS = 30, PER_LAYER = 7, N_MATS = LAYERS * PER_LAYER + 1 };
static const int64_t shapes[PER_LAYER + 1][2] = { /* M x K */
    { 576, 576 }, { 192, 576 }, { 192, 576 }, { 576, 576 },
    { 1536, 576 }, { 1536, 576 }, { 576, 1536 }, { 49152, 576 },
};
static const char *const shape_names[PER_LAYER + 1] = { "q", "k", "v", "o", "gate", "up", "down", "head" };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static float rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(*s >> 40) / 8388608.0f - 1.0f;
}

int main(int argc, char **argv)
{
    const aik_dtype dt = argc > 1 && strcmp(argv[1], "q4_0") == 0 ? AIK_DTYPE_Q4_0 : AIK_DTYPE_Q8_0;
    const int threads = argc > 2 ? atoi(argv[2]) : 2;
    const int reps = argc > 3 ? atoi(argv[3]) : 20;
    const bool hot = getenv("HOT") != NULL, packed = getenv("PACKED") != NULL;
    const bool fuse = packed && getenv("FUSE") != NULL;
    size_t off[N_MATS], total = 0;
    uint64_t seed = 1;

    for (int m = 0; m < N_MATS; m++) {
        const int s = m == N_MATS - 1 ? PER_LAYER : m % PER_LAYER;
        uint64_t b;
        if (aik_dtype_bytes(dt, (uint64_t)(shapes[s][0] * shapes[s][1]), &b) < 0)
            return 1;
        if (packed) {
            b = aik_matmul_pack_size(dt, shapes[s][0], shapes[s][1]);
            if (b == 0) {
                fprintf(stderr, "PACKED: this CPU has no packed kernel\n");
                return 1;
            }
        }
        off[m] = total;
        total += (b + 63) & ~(uint64_t)63;
    }
    unsigned char *W = aligned_alloc(64, total);
    float *row = malloc(1536 * sizeof(float)), *x = malloc(1536 * sizeof(float));
    float *y = malloc(49152 * sizeof(float));
    void *scratch = aligned_alloc(64, (aik_matmul_scratch_size(dt, 1536, 1) + 63) & ~(size_t)63);
    aik_threadpool *pool = NULL;
    if (!W || !row || !x || !y || !scratch || aik_threadpool_new(threads, &pool) < 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (int m = 0; m < N_MATS; m++) {
        const int s = m == N_MATS - 1 ? PER_LAYER : m % PER_LAYER;
        const int64_t M = shapes[s][0], K = shapes[s][1];
        uint64_t rb;
        aik_dtype_bytes(dt, (uint64_t)K, &rb);
        unsigned char *dst = W + off[m];
        if (packed && !(dst = malloc((size_t)M * rb))) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (int64_t r = 0; r < M; r++) {
            for (int64_t k = 0; k < K; k++)
                row[k] = rnd(&seed);
            aik_quantize_row(dt, row, dst + (size_t)r * rb, K);
        }
        if (packed) {
            aik_matmul_pack(dt, dst, M, K, W + off[m]);
            free(dst);
        }
    }
    for (int k = 0; k < 1536; k++)
        x[k] = rnd(&seed);

    double best = 1e30, sum = 0, per[PER_LAYER + 1] = { 0 };
    for (int r = 0; r < reps; r++) {
        const double t0 = now();
        for (int m = 0; m < N_MATS; m++) {
            const int s = m == N_MATS - 1 ? PER_LAYER : m % PER_LAYER;
            const int src = hot && m < N_MATS - 1 ? s : m;
            /* fused: q with k and v (s 0..2), gate with up (s 4..5) */
            const int n_parts = !fuse ? 1 : s == 0 ? 3 : s == 4 ? 2 : s == 1 || s == 2 || s == 5 ? 0 : 1;
            if (n_parts == 0)
                continue;
            aik_matmul_part parts[3];
            for (int p = 0; p < n_parts; p++)
                parts[p] = (aik_matmul_part){ W + off[src + p], y + 4096 * p, shapes[s + p][0], packed };
            const double t1 = now();
            if (packed)
                aik_matmul_threaded_parts(pool, dt, parts, n_parts, x, scratch, shapes[s][1], 1);
            else
                aik_matmul_threaded(pool, dt, W + off[src], x, scratch, y, shapes[s][0], shapes[s][1], 1);
            per[s] += now() - t1;
        }
        const double t = now() - t0;
        sum += t;
        if (t < best)
            best = t;
    }
    printf("%s%s%s %d threads%s: best %.3f ms/token (%.1f GB/s of weights), mean %.3f ms |",
           aik_dtype_name(dt), packed ? " packed" : "", fuse ? " fused" : "", aik_threadpool_size(pool),
           hot ? " (hot)" : "", best * 1e3,
           hot ? 0.0 : (double)total / best / 1e9, sum / reps * 1e3);
    for (int s = 0; s <= PER_LAYER; s++)
        printf(" %s %.0f", shape_names[s], per[s] / reps * 1e6);
    printf(" us\n");
    aik_threadpool_free(pool);
    free(W);
    free(row);
    free(x);
    free(y);
    free(scratch);
    return 0;
}
