/* SPDX-License-Identifier: MIT */
/*
 * scheduler/threadpool.h — a fixed pthread pool for data-parallel loops.
 *
 * Decode calls parallel_for ~10 times per layer per token, so dispatch is
 * cheap: workers spin briefly on an atomic generation counter before they
 * sleep on a futex, and the calling thread takes tasks itself.
 */
#ifndef AIK_SCHEDULER_THREADPOOL_H
#define AIK_SCHEDULER_THREADPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "aik/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aik_threadpool aik_threadpool;

/* Task body: task in [0, n_tasks), thread in [0, aik_threadpool_size()),
 * unique among the threads running concurrently (index per-thread scratch
 * with it). */
typedef void (*aik_parallel_fn)(void *ctx, int task, int thread);

/* Create a pool of n_threads threads in total, the caller of parallel_for
 * counting as one (so n_threads - 1 workers are started). n_threads == 0
 * means the number of online CPUs. Returns 0, -EINVAL (n_threads < 0 or
 * > 1024), -ENOMEM, or the pthread_create error (negated). */
int aik_threadpool_new(int n_threads, aik_threadpool **ret_pool);

/* Stop and join the workers. Accepts NULL. Must not race parallel_for. */
void aik_threadpool_free(aik_threadpool *pool);

/* Number of threads (workers + caller). 1 for a NULL pool. */
int aik_threadpool_size(const aik_threadpool *pool);

/* Run fn(ctx, task, thread) for every task in [0, n_tasks) and return when
 * all are done. Tasks are handed out dynamically (atomic counter). The
 * caller participates. A NULL pool, n_tasks == 1, or a nested call from
 * inside a task runs the tasks serially on the calling thread. Concurrent
 * calls from different threads are serialized. n_tasks <= 0 does nothing. */
void aik_threadpool_parallel_for(aik_threadpool *pool, int n_tasks,
                                 aik_parallel_fn fn, void *ctx);

/* Memory a worker pulls into its cache once it has run out of tasks. */
typedef struct aik_prefetch_span {
    const void *addr;
    size_t bytes;
} aik_prefetch_span;

/* parallel_for, then each worker i (1 <= i < size) that runs out of tasks
 * prefetches its spans after[i * AIK_PREFETCH_SPANS + k] (to L2, in order
 * of k; bytes 0: none) while the caller goes on alone, until the next job
 * is posted. after may be NULL; the caller's entries (i = 0) are unused.
 * The memory is only read by prefetch instructions, never dereferenced. */
#define AIK_PREFETCH_SPANS 4
void aik_threadpool_parallel_for_then(aik_threadpool *pool, int n_tasks, aik_parallel_fn fn,
                                      void *ctx, const aik_prefetch_span *after);

/* Y = W * X^T as aik_matmul (kernels/cpu/cpu_kernels.h), threaded: quantizes
 * X into scratch (aik_matmul_scratch_size bytes; NULL allowed when that is
 * 0), then splits the M output columns into chunks over the pool. pool may
 * be NULL (single-threaded). */
void aik_matmul_threaded(aik_threadpool *pool, aik_dtype wt, const void *W,
                         const float *X, void *scratch, float *Y, int64_t M,
                         int64_t K, int64_t N);

/* Several matmuls over the same activations X (K columns, N rows) in one
 * dispatch: Y_p = W_p * X^T for every part. Decode runs q, k and v (and
 * gate and up) this way: X is quantized once, and the short k and v
 * matmuls share one hand-off and one barrier with q instead of paying
 * their own. Parts must not overlap X or each other. 1 <= n_parts <=
 * AIK_MATMUL_MAX_PARTS. */
#define AIK_MATMUL_MAX_PARTS 8
typedef struct aik_matmul_part {
    const void *W; /* M x K weights of the call's dtype */
    float *Y;      /* N x M outputs */
    int64_t M;
    bool packed;   /* W is aik_matmul_pack'ed; the same for every part */
} aik_matmul_part;
void aik_matmul_threaded_parts(aik_threadpool *pool, aik_dtype wt, const aik_matmul_part *parts,
                               int n_parts, const float *X, void *scratch, int64_t K, int64_t N);

/* What decode reads next (Y pointers are not used): a matmul dispatch, or
 * (spans != NULL) memory given per worker as for
 * aik_threadpool_parallel_for_then, e.g. the KV cache attention reads. */
typedef struct aik_matmul_next {
    aik_dtype wt;
    const aik_matmul_part *parts;
    int n_parts;
    int64_t K;
    const aik_prefetch_span *spans;
} aik_matmul_next;

/* aik_matmul_threaded_parts, and for decode (N == 1) each worker then
 * warms its cache with what it will most likely read next (the start of
 * its rows of the next matmul, or next->spans; next NULL: nothing) while
 * the caller runs the ops in between. Results are the same either way. */
void aik_matmul_threaded_parts_then(aik_threadpool *pool, aik_dtype wt, const aik_matmul_part *parts,
                                    int n_parts, const float *X, void *scratch, int64_t K, int64_t N,
                                    const aik_matmul_next *next);

#ifdef __cplusplus
}
#endif
#endif /* AIK_SCHEDULER_THREADPOOL_H */
