/* SPDX-License-Identifier: MIT */
/*
 * scheduler/gemm_threaded.h — aik_gemm_f32 (kernels/cpu/gemm.h) spread over
 * the thread pool (scheduler/threadpool.h).
 */
#ifndef AIK_SCHEDULER_GEMM_THREADED_H
#define AIK_SCHEDULER_GEMM_THREADED_H

#include <stdbool.h>
#include <stdint.h>

#include "scheduler/threadpool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* C = alpha * op(A) · op(B) + beta * C, same contract as aik_gemm_f32.
 * C is cut into blocks on whole register tiles: over M or over N
 * (whichever makes the operand that every block packs again the smaller
 * one; on 2 threads, the larger of M and N is split), or a 2-D grid when
 * there are many threads; one block per thread, except a split over M
 * whose packed op(B) each thread can keep (aik_gemm_f32_b_reusable): that
 * one is cut into up to 4 blocks per thread, handed out as threads come
 * free. Each block of C is written by exactly one task. pool may be NULL
 * (runs on the calling thread), as do products under ~2e5 flops. Each
 * thread uses its
 * own thread-local packing buffers; nothing is allocated. Called from
 * inside a pool task, it runs serially (the pool does not nest). The result
 * is bitwise identical to aik_gemm_f32 for the same ISA level, whatever the
 * thread count. */
void aik_gemm_f32_threaded(aik_threadpool *pool, bool trans_a, bool trans_b,
                           int64_t M, int64_t N, int64_t K, float alpha,
                           const float *A, int64_t lda, const float *B,
                           int64_t ldb, float beta, float *C, int64_t ldc);

#ifdef __cplusplus
}
#endif
#endif /* AIK_SCHEDULER_GEMM_THREADED_H */
