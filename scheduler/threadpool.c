/* SPDX-License-Identifier: MIT */
/*
 * scheduler/threadpool.c — fixed pthread pool with low-latency dispatch.
 *
 * A job is published by bumping `gen`. Workers spin on it for a while
 * (decode issues a job every few tens of microseconds, and waking a thread
 * from a futex costs about as much as a small job), then sleep on the futex
 * of `gen`.
 *
 * The caller never waits for a worker that has not taken a task. Tasks are
 * claimed with a compare-and-swap on one word holding the job's task count
 * and its next task, so a worker that shows up late (asleep, or its vCPU
 * taken away by the hypervisor) can only claim a task of the job that is
 * current; the caller takes every task nobody else has, and the job is
 * over when all its tasks are done. On a busy VM a worker whose vCPU the
 * hypervisor has taken away then costs a job its share of the work, not
 * the time until that vCPU runs again. Only a worker caught inside a task
 * still holds the caller up.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernels/cpu/cpu_kernels.h"
#include "scheduler/threadpool.h"

#define MAX_THREADS 1024
/* Waiting: PAUSE_SPINS rounds of the pause instruction (~140 cycles each on
 * recent Intel cores, so ~10-20 us in all), then YIELD_SPINS rounds of
 * sched_yield — which matters when there are more threads than free cores:
 * the thread we wait for may need the very core we would spin on — then
 * sleep on the futex. */
#define PAUSE_SPINS 256
#define YIELD_SPINS 64

/* claim word: the job's task count in the high half, its next unclaimed
 * task in the low half */
#define CLAIM(n_tasks, next) ((uint64_t)(n_tasks) << 32 | (uint32_t)(next))
#define CLAIM_COUNT(w) ((uint32_t)((w) >> 32))
#define CLAIM_NEXT(w) ((uint32_t)(w))

struct aik_threadpool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t call_lock; /* one parallel_for at a time */

    /* the job; written by the caller before claim and gen are published,
     * read by a worker only after it has claimed one of its tasks (the job
     * cannot end, nor these be overwritten, before that task is done) */
    aik_parallel_fn fn;
    void *ctx;
    /* per worker: memory to pull into its cache once it has run out of
     * tasks (aik_threadpool_parallel_for_then) */
    aik_prefetch_span *after;

    _Atomic uint64_t claim;     /* CLAIM(task count, next task) */
    _Atomic uint32_t done;      /* futex word: tasks of this job finished */
    _Atomic uint32_t gen;       /* futex word: bumped per job (and to stop) */
    _Atomic int stop;
    /* Threads inside (or about to enter) a futex wait. The wake syscall is
     * only made when someone sleeps: in steady decode everyone spins and a
     * job costs no system call at all. Sequentially consistent on both
     * sides (Dekker): either the waker sees the count, or the sleeper's
     * futex sees the new value and returns at once. */
    _Atomic int gen_sleepers;
    _Atomic int caller_sleeping;
};

struct worker_arg {
    aik_threadpool *pool;
    int index;
};

/* Set in pool threads (and in a caller while it runs tasks): nested
 * parallel_for calls then run serially instead of deadlocking. */
static _Thread_local int tls_thread_index = -1;

static long futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* One round of waiting; returns false when it is time to sleep. */
static bool spin_once(int *spins)
{
    const int n = ++*spins;
    if (n < PAUSE_SPINS) {
        cpu_relax();
        return true;
    }
    if (n < PAUSE_SPINS + YIELD_SPINS) {
        sched_yield();
        return true;
    }
    *spins = 0;
    return false;
}

/* Claim a task of the current job; -1 once it has none left. The word
 * holds the job's task count beside its next task, so a claim is valid
 * exactly when its CAS succeeds, however late the thread: the job cannot
 * end (nor its fields be overwritten) before the claimed task is done. */
static int claim_task(aik_threadpool *pool, uint32_t *n_tasks)
{
    uint64_t w = atomic_load_explicit(&pool->claim, memory_order_acquire);
    for (;;) {
        if (CLAIM_NEXT(w) >= CLAIM_COUNT(w))
            return -1;
        if (atomic_compare_exchange_weak_explicit(&pool->claim, &w, w + 1, memory_order_acquire,
                                                  memory_order_acquire)) {
            *n_tasks = CLAIM_COUNT(w);
            return (int)CLAIM_NEXT(w);
        }
    }
}

/* Run tasks of the current job until none is left. Returns how many were
 * run; the first claim copies the thread's prefetch spans (while the job
 * is alive). */
static int run_tasks(aik_threadpool *pool, int thread, aik_prefetch_span *spans)
{
    int t, ran = 0;
    uint32_t n = 0;
    while ((t = claim_task(pool, &n)) >= 0) {
        const aik_parallel_fn fn = pool->fn;
        void *ctx = pool->ctx;
        if (ran++ == 0 && spans)
            memcpy(spans, &pool->after[thread * AIK_PREFETCH_SPANS],
                   AIK_PREFETCH_SPANS * sizeof(*spans));
        fn(ctx, t, thread);
        /* the last task to finish wakes the caller if it went to sleep */
        if (atomic_fetch_add(&pool->done, 1) + 1 == n && atomic_load(&pool->caller_sleeping))
            futex(&pool->done, FUTEX_WAKE_PRIVATE, 1);
    }
    return ran;
}

/* While the caller runs the serial work between two jobs (norms, rope,
 * attention), pull the memory the next job will read into this core's L2,
 * so the memory bus is busy when it would otherwise idle. Stops as soon as
 * a new job is posted. */
static bool prefetch_while_idle(aik_threadpool *pool, uint32_t seen, aik_prefetch_span span)
{
    const char *p = span.addr;
    for (size_t off = 0; off < span.bytes; off += 64) {
        if ((off & 1023) == 0 && atomic_load_explicit(&pool->gen, memory_order_relaxed) != seen)
            return false;
        __builtin_prefetch(p + off, 0, 2);
    }
    return true;
}

static void *worker_main(void *argp)
{
    struct worker_arg *arg = argp;
    aik_threadpool *pool = arg->pool;
    const int index = arg->index;
    uint32_t seen = 0;

    free(arg);
    tls_thread_index = index;
    for (;;) {
        uint32_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool->gen, memory_order_acquire)) == seen)
            if (!spin_once(&spins)) {
                atomic_fetch_add(&pool->gen_sleepers, 1);
                futex(&pool->gen, FUTEX_WAIT_PRIVATE, seen);
                atomic_fetch_sub(&pool->gen_sleepers, 1);
            }
        /* a worker that wakes late joins the newest job, if any is left */
        seen = g;
        if (atomic_load_explicit(&pool->stop, memory_order_acquire))
            break;
        aik_prefetch_span spans[AIK_PREFETCH_SPANS];
        if (run_tasks(pool, index, spans) == 0)
            continue;
        for (int k = 0; k < AIK_PREFETCH_SPANS && prefetch_while_idle(pool, seen, spans[k]); k++)
            ;
    }
    return NULL;
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

int aik_threadpool_new(int n_threads, aik_threadpool **ret_pool)
{
    aik_threadpool *pool;
    int r, started = 0;

    if (!ret_pool || n_threads < 0 || n_threads > MAX_THREADS)
        return -EINVAL;
    if (n_threads == 0)
        n_threads = online_cpus();

    pool = calloc(1, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    pool->n_threads = n_threads;
    atomic_init(&pool->gen, 0);
    atomic_init(&pool->claim, CLAIM(0, 0));
    atomic_init(&pool->done, 0);
    atomic_init(&pool->stop, 0);
    atomic_init(&pool->gen_sleepers, 0);
    atomic_init(&pool->caller_sleeping, 0);
    pool->after = calloc((size_t)n_threads * AIK_PREFETCH_SPANS, sizeof(*pool->after));
    if (!pool->after) {
        free(pool);
        return -ENOMEM;
    }
    r = pthread_mutex_init(&pool->call_lock, NULL);
    if (r != 0) {
        free(pool->after);
        free(pool);
        return -r;
    }
    if (n_threads > 1) {
        pool->threads = calloc((size_t)n_threads - 1, sizeof(*pool->threads));
        if (!pool->threads) {
            r = -ENOMEM;
            goto fail;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *arg = malloc(sizeof(*arg));
        if (!arg) {
            r = -ENOMEM;
            goto fail;
        }
        arg->pool = pool;
        arg->index = i;
        r = pthread_create(&pool->threads[i - 1], NULL, worker_main, arg);
        if (r != 0) {
            free(arg);
            r = -r;
            goto fail;
        }
        started++;
    }
    *ret_pool = pool;
    return 0;

fail:
    /* stop the workers that did start; they only look at stop and gen */
    atomic_store_explicit(&pool->stop, 1, memory_order_release);
    atomic_fetch_add_explicit(&pool->gen, 1, memory_order_release);
    futex(&pool->gen, FUTEX_WAKE_PRIVATE, INT_MAX);
    for (int i = 0; i < started; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->call_lock);
    free(pool->threads);
    free(pool->after);
    free(pool);
    return r;
}

void aik_threadpool_free(aik_threadpool *pool)
{
    if (!pool)
        return;
    atomic_store_explicit(&pool->stop, 1, memory_order_release);
    atomic_fetch_add_explicit(&pool->gen, 1, memory_order_release);
    futex(&pool->gen, FUTEX_WAKE_PRIVATE, INT_MAX);
    for (int i = 0; i < pool->n_threads - 1; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->call_lock);
    free(pool->threads);
    free(pool->after);
    free(pool);
}

int aik_threadpool_size(const aik_threadpool *pool)
{
    return pool ? pool->n_threads : 1;
}

void aik_threadpool_parallel_for(aik_threadpool *pool, int n_tasks,
                                 aik_parallel_fn fn, void *ctx)
{
    aik_threadpool_parallel_for_then(pool, n_tasks, fn, ctx, NULL);
}

void aik_threadpool_parallel_for_then(aik_threadpool *pool, int n_tasks, aik_parallel_fn fn,
                                      void *ctx, const aik_prefetch_span *after)
{
    if (n_tasks <= 0)
        return;
    if (!pool || pool->n_threads == 1 || n_tasks == 1 || tls_thread_index >= 0) {
        const int self = tls_thread_index >= 0 ? tls_thread_index : 0;
        for (int t = 0; t < n_tasks; t++)
            fn(ctx, t, self);
        return;
    }

    pthread_mutex_lock(&pool->call_lock);
    pool->fn = fn;
    pool->ctx = ctx;
    for (int i = AIK_PREFETCH_SPANS; i < pool->n_threads * AIK_PREFETCH_SPANS; i++)
        pool->after[i] = after ? after[i] : (aik_prefetch_span){ NULL, 0 };
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    /* release: a claim of the new job sees the fields above */
    atomic_store_explicit(&pool->claim, CLAIM(n_tasks, 0), memory_order_release);
    atomic_fetch_add(&pool->gen, 1);
    if (atomic_load(&pool->gen_sleepers) > 0)
        futex(&pool->gen, FUTEX_WAKE_PRIVATE, INT_MAX);

    tls_thread_index = 0;
    run_tasks(pool, 0, NULL);
    tls_thread_index = -1;

    /* only tasks that a worker has claimed and not finished are left */
    uint32_t d;
    int spins = 0;
    while ((d = atomic_load_explicit(&pool->done, memory_order_acquire)) != (uint32_t)n_tasks)
        if (!spin_once(&spins)) {
            atomic_store(&pool->caller_sleeping, 1);
            futex(&pool->done, FUTEX_WAIT_PRIVATE, d);
            atomic_store(&pool->caller_sleeping, 0);
        }
    pthread_mutex_unlock(&pool->call_lock);
}

/* ---------------------------------------------------- threaded matmul --- */

/* Rows are handed out by guided self-scheduling: a thread claims
 * remaining / (2 · threads) rows at a time, rounded up to the kernel's
 * granularity and at least MIN_CLAIM_ROWS. Early claims are long (few
 * atomics, long contiguous streams), the last ones short, so the threads
 * reach the barrier within one short claim of each other. Decode runs ~150
 * matmul dispatches per token; a fixed chunk of 1/8 of a matrix left up to
 * that much of it on one thread at the end of every one. The parts are
 * laid end to end as one row range; a claim never crosses into the next
 * part. Whatever the claims, every row is computed by the same operations
 * (claims start at multiples of the granularity), so the results do not
 * depend on them. */
#define MIN_CLAIM_ROWS 16

struct matmul_job {
    aik_dtype wt;
    const aik_matmul_part *parts;
    int n_parts;
    int64_t start[AIK_MATMUL_MAX_PARTS + 1]; /* part p: rows [start[p], start[p+1]) of the whole */
    int64_t gran;                            /* claims are multiples of it (but at part ends) */
    int nt;
    _Atomic int64_t cursor;                  /* first row not yet claimed */
    const float *X;
    void *scratch;
    int64_t K, N;
};

/* The claim starting at row cur of the whole: its end. */
static int64_t claim_end(const int64_t *start, int n_parts, int64_t gran, int nt, int64_t cur)
{
    const int64_t total = start[n_parts];
    int p = 0;
    while (cur >= start[p + 1])
        p++;
    int64_t take = (total - cur) / (2 * (int64_t)nt);
    if (take < MIN_CLAIM_ROWS)
        take = MIN_CLAIM_ROWS;
    take = (take + gran - 1) / gran * gran;
    return cur + take < start[p + 1] ? cur + take : start[p + 1];
}

static void prepare_row(const struct matmul_job *j, int64_t n)
{
    if (j->parts[0].packed)
        aik_matmul_prepare_row_packed(j->wt, j->X, j->K, n, j->scratch);
    else
        aik_matmul_prepare_row(j->wt, j->X, j->K, n, j->scratch);
}

static void matmul_prepare_task(void *ctxp, int task, int thread)
{
    (void)thread;
    prepare_row(ctxp, task);
}

static void matmul_rows_task(void *ctxp, int task, int thread)
{
    struct matmul_job *j = ctxp;
    const int64_t total = j->start[j->n_parts];
    (void)task;
    (void)thread;
    for (;;) {
        int64_t cur = atomic_load_explicit(&j->cursor, memory_order_relaxed), end;
        do {
            if (cur >= total)
                return;
            end = claim_end(j->start, j->n_parts, j->gran, j->nt, cur);
        } while (!atomic_compare_exchange_weak_explicit(&j->cursor, &cur, end, memory_order_relaxed,
                                                        memory_order_relaxed));
        int p = 0;
        while (cur >= j->start[p + 1])
            p++;
        const aik_matmul_part *part = &j->parts[p];
        const int64_t m0 = cur - j->start[p], m1 = end - j->start[p];
        if (part->packed)
            aik_matmul_rows_packed(j->wt, part->W, j->scratch, part->Y, part->M, j->K, j->N, m0, m1);
        else
            aik_matmul_rows(j->wt, part->W, j->X, j->scratch, part->Y, part->M, j->K, j->N, m0, m1);
    }
}

static void lay_out_parts(const aik_matmul_part *parts, int n_parts, int64_t *start)
{
    start[0] = 0;
    for (int p = 0; p < n_parts; p++)
        start[p + 1] = start[p] + parts[p].M;
}

/* Where worker w will most likely start the next dispatch: its first
 * claim, the caller having claimed first (it starts on the job as it posts
 * it) and the workers after it in order; up to NEXT_PREFETCH_BYTES of it. */
#define NEXT_PREFETCH_BYTES (48 * 1024)

static void plan_next(const aik_matmul_next *next, int nt, aik_prefetch_span *after)
{
    int64_t start[AIK_MATMUL_MAX_PARTS + 1];
    lay_out_parts(next->parts, next->n_parts, start);
    const int64_t gran = next->parts[0].packed ? 16 : 4;
    const size_t row = next->parts[0].packed ? aik_matmul_packed_row_bytes(next->wt, next->K)
                                             : aik_matmul_row_bytes(next->wt, next->K);
    memset(after, 0, (size_t)nt * AIK_PREFETCH_SPANS * sizeof(*after));
    int64_t cur = 0;
    for (int w = 0; w < nt && cur < start[next->n_parts]; w++) {
        const int64_t end = claim_end(start, next->n_parts, gran, nt, cur);
        int p = 0;
        while (cur >= start[p + 1])
            p++;
        const size_t bytes = (size_t)(end - cur) * row;
        if (w > 0)
            after[w * AIK_PREFETCH_SPANS] = (aik_prefetch_span){
                (const char *)next->parts[p].W + (size_t)(cur - start[p]) * row,
                bytes < NEXT_PREFETCH_BYTES ? bytes : NEXT_PREFETCH_BYTES };
        cur = end;
    }
}

void aik_matmul_threaded_parts_then(aik_threadpool *pool, aik_dtype wt, const aik_matmul_part *parts,
                                    int n_parts, const float *X, void *scratch, int64_t K, int64_t N,
                                    const aik_matmul_next *next)
{
    const int nt = aik_threadpool_size(pool);
    struct matmul_job j = { .wt = wt, .parts = parts, .n_parts = n_parts, .X = X, .scratch = scratch, .K = K, .N = N };

    assert(n_parts >= 1 && n_parts <= AIK_MATMUL_MAX_PARTS);
    for (int p = 0; p < n_parts; p++)
        assert(parts[p].packed == parts[0].packed);
    lay_out_parts(parts, n_parts, j.start);
    if (j.start[n_parts] <= 0 || N <= 0)
        return;
    if (aik_matmul_scratch_size(wt, K, N) > 0) {
        /* quantizing a row takes ~0.1 us per 32 values: only worth a
         * dispatch for a real batch */
        if (N > 1 && N <= INT_MAX && N * K >= 32768)
            aik_threadpool_parallel_for(pool, (int)N, matmul_prepare_task, &j);
        else
            for (int64_t n = 0; n < N; n++)
                prepare_row(&j, n);
    }
    /* the dot4 kernels take 4 rows, the packed ones 16 */
    j.gran = parts[0].packed ? 16 : 4;
    j.nt = nt;
    atomic_init(&j.cursor, 0);
    /* Only decode has gaps worth filling, and only up to a handful of
     * threads is the hint array worth building on the stack. */
    aik_prefetch_span after[16 * AIK_PREFETCH_SPANS];
    const aik_prefetch_span *hint = NULL;
    if (next && N == 1 && nt > 1 && nt <= 16) {
        if (next->spans) {
            hint = next->spans;
        } else if (next->n_parts >= 1 && next->n_parts <= AIK_MATMUL_MAX_PARTS) {
            plan_next(next, nt, after);
            hint = after;
        }
    }
    /* one task per thread; each claims rows until none are left */
    aik_threadpool_parallel_for_then(pool, nt, matmul_rows_task, &j, hint);
}

void aik_matmul_threaded_parts(aik_threadpool *pool, aik_dtype wt, const aik_matmul_part *parts,
                               int n_parts, const float *X, void *scratch, int64_t K, int64_t N)
{
    aik_matmul_threaded_parts_then(pool, wt, parts, n_parts, X, scratch, K, N, NULL);
}

void aik_matmul_threaded(aik_threadpool *pool, aik_dtype wt, const void *W,
                         const float *X, void *scratch, float *Y, int64_t M,
                         int64_t K, int64_t N)
{
    const aik_matmul_part part = { W, Y, M, false };
    if (M > 0)
        aik_matmul_threaded_parts(pool, wt, &part, 1, X, scratch, K, N);
}
