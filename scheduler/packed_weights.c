/* SPDX-License-Identifier: MIT */
#include "scheduler/packed_weights.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/cpu/cpu_kernels.h"

struct aik_packed_weights {
    const aik_graph *g;
    pthread_mutex_t lock;
    bool filled;
    int fill_result;
    void **copy; /* per node: the packed copy of a weight node (in arena), or NULL */
    void *arena; /* every copy, in one huge-page-backed allocation */
    size_t arena_size;
    uint64_t bytes;
};

int aik_packed_weights_new(const aik_graph *g, aik_packed_weights **ret)
{
    aik_packed_weights *pw = calloc(1, sizeof(*pw));
    if (!pw)
        return -ENOMEM;
    pw->copy = calloc(g->n_nodes ? (size_t)g->n_nodes : 1, sizeof(*pw->copy));
    if (!pw->copy) {
        free(pw);
        return -ENOMEM;
    }
    pw->g = g;
    pthread_mutex_init(&pw->lock, NULL);
    *ret = pw;
    return 0;
}

/* One matrix, its groups of 16 rows split over the pool. */
typedef struct pack_job {
    aik_dtype wt;
    const void *W;
    int64_t M, K, groups_per_task;
    void *dst;
} pack_job;

static void pack_task(void *ctx, int task, int thread)
{
    const pack_job *j = ctx;
    const int64_t groups = j->M / 16, g0 = (int64_t)task * j->groups_per_task;
    const int64_t g1 = g0 + j->groups_per_task < groups ? g0 + j->groups_per_task : groups;
    (void)thread;
    aik_matmul_pack_groups(j->wt, j->W, j->M, j->K, g0, g1, j->dst);
}

/* The file-layout weights were just read whole to pack them; from now on
 * decode reads the copy. Ask the kernel to reclaim the original's pages so
 * the process does not hold both: MADV_PAGEOUT never loses data (a file
 * mapping's clean pages are read again on demand, anonymous memory goes to
 * swap or stays), so it is safe whatever backs the weights. A kernel
 * without it (before Linux 5.4) says EINVAL, and the pages simply stay. */
static void release_original(const void *data, size_t bytes)
{
#ifdef MADV_PAGEOUT
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t begin = ((uintptr_t)data + page - 1) & ~(page - 1);
    const uintptr_t end = ((uintptr_t)data + bytes) & ~(page - 1);
    if (end > begin)
        (void)madvise((void *)begin, end - begin, MADV_PAGEOUT);
#else
    (void)data;
    (void)bytes;
#endif
}

/* Whether a node other than a matmul's weight input reads w (a tied
 * embedding's lookup): then its file-layout pages stay where they are. */
static bool read_elsewhere(const aik_graph *g, aik_node w)
{
    for (aik_node i = 0; i < g->n_nodes; i++)
        for (int s = 0; s < 3; s++)
            if (g->nodes[i].src[s] == w && !(g->nodes[i].op == AIK_OP_MATMUL && s == 1))
                return true;
    return false;
}

static void drop_copies(aik_packed_weights *pw)
{
    for (aik_node i = 0; i < pw->g->n_nodes; i++)
        pw->copy[i] = NULL;
    if (pw->arena)
        munmap(pw->arena, pw->arena_size);
    pw->arena = NULL;
    pw->arena_size = 0;
    pw->bytes = 0;
}

/* The weight node a matmul node multiplies by, when it gets a packed copy
 * (a tied embedding is the output head's weight once, whatever reads it
 * elsewhere: get_rows keeps the file layout); -1 otherwise. */
static aik_node packable_weight(const aik_graph *g, aik_node i, size_t *ret_size)
{
    if (g->nodes[i].op != AIK_OP_MATMUL)
        return -1;
    const aik_node wn = g->nodes[i].src[1];
    const aik_gnode *w = &g->nodes[wn];
    if (w->op != AIK_OP_WEIGHT)
        return -1;
    *ret_size = aik_matmul_pack_size(w->dtype, (int64_t)w->shape[1], (int64_t)w->shape[0]);
    return *ret_size ? wn : -1;
}

#define HUGE_PAGE ((size_t)2 << 20)

static int fill_locked(aik_packed_weights *pw, aik_threadpool *pool)
{
    const aik_graph *g = pw->g;
    const int nt = aik_threadpool_size(pool);
    size_t total = 0, size;

    /* One allocation for every copy, on 2 MiB pages where the kernel gives
     * them: decode walks all of it once per token, and with 4 KiB pages
     * that is a TLB miss every 4 KiB (35 000 page walks per token for a
     * 143 MB model). Anonymous mmap memory is zero-filled and page-aligned;
     * MADV_HUGEPAGE is a request (THP "madvise" mode), refused quietly. */
    for (aik_node i = 0; i < g->n_nodes; i++)
        if (packable_weight(g, i, &size) >= 0)
            total += (size + 63) & ~(size_t)63; /* a tied weight counted twice at worst */
    if (total == 0)
        return 0;
    total = (total + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    void *arena = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arena == MAP_FAILED)
        return -ENOMEM;
#ifdef MADV_HUGEPAGE
    (void)madvise(arena, total, MADV_HUGEPAGE);
#endif
    pw->arena = arena;
    pw->arena_size = total;

    size_t at = 0;
    for (aik_node i = 0; i < g->n_nodes; i++) {
        const aik_node wn = packable_weight(g, i, &size);
        if (wn < 0 || pw->copy[wn])
            continue;
        const aik_gnode *w = &g->nodes[wn];
        const int64_t M = (int64_t)w->shape[1], K = (int64_t)w->shape[0];
        void *dst = (char *)arena + at;
        at += (size + 63) & ~(size_t)63;
        const int64_t groups = M / 16;
        pack_job j = { w->dtype, w->data, M, K, (groups + 4 * nt - 1) / (4 * nt), dst };
        aik_threadpool_parallel_for(pool, (int)((groups + j.groups_per_task - 1) / j.groups_per_task), pack_task,
                                    &j);
        pw->copy[wn] = dst;
        pw->bytes += size;
        if (!read_elsewhere(g, wn))
            release_original(w->data, (size_t)M * aik_matmul_row_bytes(w->dtype, K));
    }
    return 0;
}

int aik_packed_weights_fill(aik_packed_weights *pw, aik_threadpool *pool)
{
    int r;
    pthread_mutex_lock(&pw->lock);
    if (!pw->filled) {
        pw->fill_result = fill_locked(pw, pool);
        pw->filled = true;
    }
    r = pw->fill_result;
    pthread_mutex_unlock(&pw->lock);
    return r;
}

const void *aik_packed_weights_get(const aik_packed_weights *pw, aik_node w)
{
    return pw && w >= 0 && w < pw->g->n_nodes ? pw->copy[w] : NULL;
}

uint64_t aik_packed_weights_bytes(const aik_packed_weights *pw)
{
    return pw ? pw->bytes : 0;
}

void aik_packed_weights_free(aik_packed_weights *pw)
{
    if (!pw)
        return;
    drop_copies(pw);
    free(pw->copy);
    pthread_mutex_destroy(&pw->lock);
    free(pw);
}
