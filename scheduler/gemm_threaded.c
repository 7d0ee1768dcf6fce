/* SPDX-License-Identifier: MIT */
/*
 * scheduler/gemm_threaded.c — aik_gemm_f32 split into blocks of C over the
 * thread pool.
 *
 * C is cut into a grid of pm × pn blocks, at most one per thread, on whole
 * register tiles (aik_gemm_f32_tile) so no thread runs a ragged tile in the
 * middle of C. Every block packs the rows of op(A) and the columns of op(B)
 * it needs, so a split over M packs op(B) once per block and a split over N
 * packs op(A) once per block. The grid is picked by a small cost model:
 *   time(block) ~ 2·rows·cols·K flops + PACK_FLOPS·(rows + cols)·K
 * which, on 2 threads, means splitting the larger of M and N (the operand
 * packed twice is then the smaller one), and on many threads a 2-D grid
 * once a 1-D split would leave threads idle or blocks thinner than a tile.
 * One block per thread, except where extra blocks cost no extra packing: a
 * split over M whose whole packed op(B) fits a thread's buffer is cut into
 * up to ROW_BLOCKS_PER_THREAD blocks per thread; each thread packs op(B) on
 * its first block and reuses it on the next ones (aik_gemm_f32_block_call
 * with the call's id), and A is read in place. Blocks are handed out as
 * threads come free, and each is written by exactly one task, so the
 * result does not depend on which thread ran which block.
 */
#include <assert.h>

#include "kernels/cpu/gemm.h"
#include "scheduler/gemm_threaded.h"

/* Cost of packing one element, in flops of micro-kernel time: a packed
 * copy runs at ~0.15 ns per element, a transposing one at ~0.4 ns, against
 * ~130 GFLOP/s per core (AVX-512); 32 sits between the two. */
#define PACK_FLOPS 32.0

/* Finer row blocks when op(B) is packed once per thread (see below). */
#define ROW_BLOCKS_PER_THREAD 4
#define MIN_BLOCK_TILES 4

/* Below this many flops one thread is faster than waking the pool. */
#define MIN_THREADED_FLOPS 2.0e5

typedef struct gemm_job {
    bool trans_a, trans_b;
    int64_t M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int64_t lda, ldb, ldc;
    int64_t rows, cols; /* block size (tile multiples) */
    int64_t grid_n;     /* blocks per row of the grid */
    uint64_t call_id;   /* lets a thread reuse its packed op(B) across blocks */
} gemm_job;

static void gemm_task(void *ctx, int task, int thread)
{
    const gemm_job *j = ctx;
    const int64_t m0 = (task / j->grid_n) * j->rows, n0 = (task % j->grid_n) * j->cols;
    const int64_t m1 = m0 + j->rows < j->M ? m0 + j->rows : j->M;
    const int64_t n1 = n0 + j->cols < j->N ? n0 + j->cols : j->N;

    (void)thread;
    if (m0 >= m1 || n0 >= n1)
        return;
    aik_gemm_f32_block_call(j->trans_a, j->trans_b, j->M, j->N, j->K, j->alpha, j->A, j->lda,
                            j->B, j->ldb, j->beta, j->C, j->ldc, m0, m1, n0, n1, j->call_id);
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

void aik_gemm_f32_threaded(aik_threadpool *pool, bool trans_a, bool trans_b, int64_t M,
                           int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                           const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    assert(M >= 0 && N >= 0 && K >= 0);
    const int n_threads = aik_threadpool_size(pool);
    const double flops = 2.0 * (double)M * (double)N * (double)K;
    if (n_threads <= 1 || M == 0 || N == 0 || flops < MIN_THREADED_FLOPS) {
        aik_gemm_f32(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }

    int64_t mr, nr;
    aik_gemm_f32_tile(&mr, &nr);
    const int64_t m_tiles = ceil_div(M, mr), n_tiles = ceil_div(N, nr);

    /* Try every pm (blocks along M) with pn = n_threads / pm; keep the grid
     * whose largest block is cheapest (the first one on a tie: fewer
     * blocks along M, so the rows of A are packed by fewer blocks). */
    int64_t best_rows = M, best_cols = N;
    double best_cost = -1.0;
    for (int64_t pm = 1; pm <= n_threads; pm++) {
        const int64_t pn = n_threads / pm;
        const int64_t tm = ceil_div(m_tiles, pm < m_tiles ? pm : m_tiles);
        const int64_t tn = ceil_div(n_tiles, pn < n_tiles ? pn : n_tiles);
        const double rows = (double)(tm * mr < M ? tm * mr : M);
        const double cols = (double)(tn * nr < N ? tn * nr : N);
        const double cost = 2.0 * rows * cols * (double)K + PACK_FLOPS * (rows + cols) * (double)K;
        if (best_cost < 0.0 || cost < best_cost) {
            best_cost = cost;
            best_rows = tm * mr;
            best_cols = tn * nr;
        }
    }

    /* A split over rows only, whose op(B) each thread can pack once and
     * keep: cut it finer, into up to ROW_BLOCKS_PER_THREAD blocks per
     * thread (of at least MIN_BLOCK_TILES tiles). The pool hands tasks out
     * as threads come free, so a thread that starts late (woken from
     * sleep) or is slowed down takes fewer blocks instead of holding the
     * others up at the end. */
    if (best_cols >= N && aik_gemm_f32_b_reusable(N, K)) {
        int64_t tiles = ceil_div(m_tiles, (int64_t)n_threads * ROW_BLOCKS_PER_THREAD);
        tiles = tiles < MIN_BLOCK_TILES ? MIN_BLOCK_TILES : tiles;
        if (tiles * mr < best_rows)
            best_rows = tiles * mr;
    }

    gemm_job job = {
        .trans_a = trans_a, .trans_b = trans_b,
        .M = M, .N = N, .K = K, .alpha = alpha, .beta = beta,
        .A = A, .B = B, .C = C, .lda = lda, .ldb = ldb, .ldc = ldc,
        .rows = best_rows, .cols = best_cols,
        .grid_n = ceil_div(N, best_cols),
        .call_id = aik_gemm_f32_call_id(),
    };
    const int64_t n_tasks = ceil_div(M, best_rows) * job.grid_n;
    assert(n_tasks >= 1);
    aik_threadpool_parallel_for(pool, (int)n_tasks, gemm_task, &job);
}
