/* SPDX-License-Identifier: MIT */
/* Thread pool: every task runs exactly once, on a valid thread index, the
 * caller participates, nesting and concurrent callers work, bad sizes are
 * refused. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler/threadpool.h"
#include "testutil.h"

enum { MAX_TASKS = 5000 };

struct count_ctx {
    _Atomic int hits[MAX_TASKS];
    _Atomic int per_thread[64];
    _Atomic int bad_thread;
    int size;
};

static void count_task(void *p, int task, int thread)
{
    struct count_ctx *c = p;
    atomic_fetch_add(&c->hits[task], 1);
    if (thread < 0 || thread >= c->size)
        atomic_store(&c->bad_thread, 1);
    else
        atomic_fetch_add(&c->per_thread[thread], 1);
}

static struct count_ctx *count_new(int size)
{
    struct count_ctx *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->size = size;
    return c;
}

START_TEST(test_new_invalid)
{
    aik_threadpool *pool = (aik_threadpool *)0x1;
    ck_assert_int_eq(aik_threadpool_new(-1, &pool), -EINVAL);
    ck_assert_int_eq(aik_threadpool_new(100000, &pool), -EINVAL);
    ck_assert_int_eq(aik_threadpool_new(2, NULL), -EINVAL);
    ck_assert_ptr_eq(pool, (aik_threadpool *)0x1); /* untouched on failure */
    aik_threadpool_free(NULL);
    ck_assert_int_eq(aik_threadpool_size(NULL), 1);
}
END_TEST

START_TEST(test_default_size)
{
    aik_threadpool *pool = NULL;
    ck_assert_int_eq(aik_threadpool_new(0, &pool), 0);
    ck_assert_int_eq(aik_threadpool_size(pool), (int)sysconf(_SC_NPROCESSORS_ONLN));
    aik_threadpool_free(pool);
}
END_TEST

START_TEST(test_every_task_once)
{
    static const int sizes[] = { 1, 2, 4, 7 };
    static const int counts[] = { 0, 1, 2, 3, 100, MAX_TASKS };
    for (size_t si = 0; si < 4; si++) {
        aik_threadpool *pool = NULL;
        ck_assert_int_eq(aik_threadpool_new(sizes[si], &pool), 0);
        ck_assert_int_eq(aik_threadpool_size(pool), sizes[si]);
        for (size_t ci = 0; ci < 6; ci++) {
            struct count_ctx *c = count_new(sizes[si]);
            aik_threadpool_parallel_for(pool, counts[ci], count_task, c);
            for (int t = 0; t < counts[ci]; t++)
                ck_assert_int_eq(atomic_load(&c->hits[t]), 1);
            ck_assert_int_eq(atomic_load(&c->hits[counts[ci] < MAX_TASKS ? counts[ci] : 0]),
                             counts[ci] < MAX_TASKS ? 0 : 1);
            ck_assert_int_eq(atomic_load(&c->bad_thread), 0);
            free(c);
        }
        aik_threadpool_free(pool);
    }
}
END_TEST

/* Every worker takes part, and the caller too: a thread's first task waits
 * (up to 10 s) until all four threads have started one, so no thread can
 * run through the tasks while another is still waking up on a loaded
 * machine. */
struct all_ctx {
    struct count_ctx *c;
    _Atomic int started;
    _Atomic int seen[4];
};

static void wait_all_task(void *p, int task, int thread)
{
    struct all_ctx *a = p;
    if (thread >= 0 && thread < 4 && atomic_exchange(&a->seen[thread], 1) == 0) {
        atomic_fetch_add(&a->started, 1);
        for (int ms = 0; ms < 10000 && atomic_load(&a->started) < 4; ms++) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    count_task(a->c, task, thread);
}

START_TEST(test_all_threads_work)
{
    aik_threadpool *pool = NULL;
    ck_assert_int_eq(aik_threadpool_new(4, &pool), 0);
    struct all_ctx *a = calloc(1, sizeof(*a));
    ck_assert_ptr_nonnull(a);
    a->c = count_new(4);
    aik_threadpool_parallel_for(pool, 200, wait_all_task, a);
    int total = 0;
    for (int t = 0; t < 4; t++) {
        ck_assert_int_gt(atomic_load(&a->c->per_thread[t]), 0);
        total += atomic_load(&a->c->per_thread[t]);
    }
    ck_assert_int_eq(total, 200);
    free(a->c);
    free(a);
    aik_threadpool_free(pool);
}
END_TEST

/* Many tiny jobs back to back, as decode issues them. */
START_TEST(test_many_small_jobs)
{
    aik_threadpool *pool = NULL;
    ck_assert_int_eq(aik_threadpool_new(3, &pool), 0);
    struct count_ctx *c = count_new(3);
    for (int rep = 0; rep < 20000; rep++)
        aik_threadpool_parallel_for(pool, 6, count_task, c);
    for (int t = 0; t < 6; t++)
        ck_assert_int_eq(atomic_load(&c->hits[t]), 20000);
    free(c);
    aik_threadpool_free(pool);
}
END_TEST

/* Back-to-back jobs with their own contexts and task counts, most of them
 * over before a worker wakes up: a worker that comes late may only take
 * tasks of the job that is current, with that job's context. */
struct tagged_ctx {
    _Atomic int hits[8];
    _Atomic int closed; /* set once its job has returned */
    _Atomic int late;   /* a task ran after that */
};

static void tagged_task(void *p, int task, int thread)
{
    struct tagged_ctx *c = p;
    (void)thread;
    if (atomic_load(&c->closed))
        atomic_store(&c->late, 1);
    atomic_fetch_add(&c->hits[task], 1);
}

START_TEST(test_late_workers)
{
    enum { JOBS = 20000 };
    aik_threadpool *pool = NULL;
    ck_assert_int_eq(aik_threadpool_new(3, &pool), 0);
    struct tagged_ctx *ctx = calloc(JOBS, sizeof(*ctx));
    ck_assert_ptr_nonnull(ctx);
    for (int j = 0; j < JOBS; j++) {
        const int n = 2 + j % 6;
        aik_threadpool_parallel_for(pool, n, tagged_task, &ctx[j]);
        atomic_store(&ctx[j].closed, 1);
        for (int t = 0; t < 8; t++)
            ck_assert_int_eq(atomic_load(&ctx[j].hits[t]), t < n);
        /* let the workers fall asleep now and then */
        if (j % 5000 == 4999) {
            struct timespec ts = { 0, 5000000 };
            nanosleep(&ts, NULL);
        }
    }
    for (int j = 0; j < JOBS; j++)
        ck_assert_int_eq(atomic_load(&ctx[j].late), 0);
    free(ctx);
    aik_threadpool_free(pool);
}
END_TEST

/* Jobs posted while workers still prefetch the previous job's spans: every
 * task still runs exactly once (a worker drops its prefetch for the new
 * job), with spans of every size, NULL entries and a NULL array. */
START_TEST(test_prefetch_after)
{
    enum { THREADS = 3, BYTES = 1 << 20 };
    aik_threadpool *pool = NULL;
    ck_assert_int_eq(aik_threadpool_new(THREADS, &pool), 0);
    struct count_ctx *c = count_new(THREADS);
    char *mem = calloc(1, BYTES);
    ck_assert_ptr_nonnull(mem);
    for (int rep = 0; rep < 5000; rep++) {
        aik_prefetch_span after[THREADS * AIK_PREFETCH_SPANS] = { { NULL, 0 } };
        after[1 * AIK_PREFETCH_SPANS] = (aik_prefetch_span){ mem, (size_t)(rep % 7) * BYTES / 7 };
        after[1 * AIK_PREFETCH_SPANS + 3] = (aik_prefetch_span){ mem + 100, 1000 };
        after[2 * AIK_PREFETCH_SPANS + 1] = (aik_prefetch_span){ rep % 3 ? mem + 4096 : NULL, rep % 3 ? 65536 : 0 };
        aik_threadpool_parallel_for_then(pool, 6, count_task, c, rep % 5 ? after : NULL);
    }
    for (int t = 0; t < 6; t++)
        ck_assert_int_eq(atomic_load(&c->hits[t]), 5000);
    ck_assert_int_eq(atomic_load(&c->bad_thread), 0);
    free(mem);
    free(c);
    aik_threadpool_free(pool);
}
END_TEST

struct nest_ctx {
    aik_threadpool *pool;
    _Atomic int inner_hits;
};

static void inner_task(void *p, int task, int thread)
{
    struct nest_ctx *n = p;
    atomic_fetch_add(&n->inner_hits, 1);
}

static void outer_task(void *p, int task, int thread)
{
    struct nest_ctx *n = p;
    /* runs serially on this thread instead of deadlocking */
    aik_threadpool_parallel_for(n->pool, 10, inner_task, n);
}

START_TEST(test_nested)
{
    struct nest_ctx n = { NULL, 0 };
    ck_assert_int_eq(aik_threadpool_new(3, &n.pool), 0);
    aik_threadpool_parallel_for(n.pool, 8, outer_task, &n);
    ck_assert_int_eq(atomic_load(&n.inner_hits), 80);
    aik_threadpool_free(n.pool);
}
END_TEST

struct caller_arg {
    aik_threadpool *pool;
    struct count_ctx *c;
};

static void *caller_main(void *p)
{
    struct caller_arg *a = p;
    for (int rep = 0; rep < 2000; rep++)
        aik_threadpool_parallel_for(a->pool, 50, count_task, a->c);
    return NULL;
}

/* Two threads share one pool: their calls are serialized, none is lost. */
START_TEST(test_concurrent_callers)
{
    aik_threadpool *pool = NULL;
    pthread_t th[2];
    struct caller_arg args[2];
    ck_assert_int_eq(aik_threadpool_new(3, &pool), 0);
    for (int i = 0; i < 2; i++) {
        args[i].pool = pool;
        args[i].c = count_new(3);
        ck_assert_int_eq(pthread_create(&th[i], NULL, caller_main, &args[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        for (int t = 0; t < 50; t++)
            ck_assert_int_eq(atomic_load(&args[i].c->hits[t]), 2000);
        ck_assert_int_eq(atomic_load(&args[i].c->bad_thread), 0);
        free(args[i].c);
    }
    aik_threadpool_free(pool);
}
END_TEST

START_TEST(test_null_pool_serial)
{
    struct count_ctx *c = count_new(1);
    aik_threadpool_parallel_for(NULL, 33, count_task, c);
    for (int t = 0; t < 33; t++)
        ck_assert_int_eq(atomic_load(&c->hits[t]), 1);
    ck_assert_int_eq(atomic_load(&c->per_thread[0]), 33);
    free(c);
}
END_TEST

static Suite *threadpool_suite(void)
{
    Suite *s = suite_create("threadpool");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_new_invalid);
    tcase_add_test(tc, test_default_size);
    tcase_add_test(tc, test_every_task_once);
    tcase_add_test(tc, test_all_threads_work);
    tcase_add_test(tc, test_many_small_jobs);
    tcase_add_test(tc, test_late_workers);
    tcase_add_test(tc, test_prefetch_after);
    tcase_add_test(tc, test_nested);
    tcase_add_test(tc, test_concurrent_callers);
    tcase_add_test(tc, test_null_pool_serial);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return aik_test_run(threadpool_suite());
}
