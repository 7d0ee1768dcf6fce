/* SPDX-License-Identifier: MIT */
/*
 * scheduler/gemm_threaded.c — aik_gemm_f32 split into blocks of C over the
 * thread pool.
 *
 * Splitting over M makes every thread pack all of op(B) (and its own rows
 * of op(A)); splitting over N makes every thread pack all of op(A). Packing
 * is O(size) against O(M·N·K) compute, but the forward pass packs a
 * transposed W, which is the dearest copy, so we split the larger of M and
 * N: the operand that is packed twice is then the smaller one. Chunks are
 * whole register tiles (aik_gemm_f32_tile) so no thread runs a ragged tile
 * in the middle of C, and there are as many chunks as threads (each chunk
 * packs its shared operand once; more chunks would pack it more often).
 */
#include <assert.h>

#include "kernels/cpu/gemm.h"
#include "scheduler/gemm_threaded.h"

typedef struct gemm_job {
    bool trans_a, trans_b, split_m;
    int64_t M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int64_t lda, ldb, ldc;
    int64_t chunk; /* rows (split_m) or columns per task, a tile multiple */
} gemm_job;

static void gemm_task(void *ctx, int task, int thread)
{
    const gemm_job *j = ctx;
    const int64_t len = j->split_m ? j->M : j->N;
    const int64_t b = (int64_t)task * j->chunk;
    const int64_t e = b + j->chunk < len ? b + j->chunk : len;

    (void)thread;
    if (b >= e)
        return;
    if (j->split_m)
        aik_gemm_f32_block(j->trans_a, j->trans_b, j->M, j->N, j->K, j->alpha, j->A, j->lda,
                           j->B, j->ldb, j->beta, j->C, j->ldc, b, e, 0, j->N);
    else
        aik_gemm_f32_block(j->trans_a, j->trans_b, j->M, j->N, j->K, j->alpha, j->A, j->lda,
                           j->B, j->ldb, j->beta, j->C, j->ldc, 0, j->M, b, e);
}

void aik_gemm_f32_threaded(aik_threadpool *pool, bool trans_a, bool trans_b, int64_t M,
                           int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                           const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    assert(M >= 0 && N >= 0 && K >= 0);
    const int n_threads = aik_threadpool_size(pool);
    int64_t mr, nr;
    aik_gemm_f32_tile(&mr, &nr);

    /* Tiny products (or one thread): dispatch would cost more than it saves. */
    const double flops = 2.0 * (double)M * (double)N * (double)K;
    if (n_threads <= 1 || M == 0 || N == 0 || flops < 2.0e5) {
        aik_gemm_f32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }

    /* Split the larger dimension, unless it cannot give each thread a tile
     * while the other one can. */
    const int64_t m_tiles = (M + mr - 1) / mr, n_tiles = (N + nr - 1) / nr;
    bool split_m = M >= N;
    if (split_m && m_tiles < n_threads && n_tiles >= n_threads)
        split_m = false;
    else if (!split_m && n_tiles < n_threads && m_tiles >= n_threads)
        split_m = true;

    const int64_t tiles = split_m ? m_tiles : n_tiles;
    const int64_t tile = split_m ? mr : nr;
    const int64_t n_tasks = tiles < n_threads ? tiles : n_threads;
    const int64_t chunk = (tiles + n_tasks - 1) / n_tasks * tile;

    gemm_job job = {
        .trans_a = trans_a, .trans_b = trans_b, .split_m = split_m,
        .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
        .A = A, .B = B, .C = C, .lda = lda, .ldb = ldb, .ldc = ldc,
        .chunk = chunk,
    };
    /* recompute the count from the chunk: rounding may leave fewer tasks */
    const int64_t len = split_m ? M : N;
    aik_threadpool_parallel_for(pool, (int)((len + chunk - 1) / chunk), gemm_task, &job);
}
