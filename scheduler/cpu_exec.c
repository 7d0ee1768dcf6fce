/* SPDX-License-Identifier: MIT */
#include "scheduler/cpu_exec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "kernels/cpu/cpu_kernels.h"
#include "scheduler/gemm_threaded.h"
#include "scheduler/packed_weights.h"

typedef struct buffer {
    float *data;
    size_t floats;
    bool busy;
} buffer;

struct aik_cpu_exec {
    const aik_graph *g;
    aik_threadpool *pool;
    uint32_t max_batch, ctx_len, n_past;
    int32_t *buf_of;       /* node -> buffer index (-1: none) */
    buffer *bufs;
    int n_bufs;
    void *mm_scratch;      /* quantized activations for matmul */
    size_t mm_scratch_size;
    /* per KV slot, head-major: kv head h's position p at (h·ctx_len + p)·head_dim,
     * so attention reads one head's keys and values as one contiguous run */
    float **k_cache, **v_cache;
    float *att_scratch;    /* per thread: att_group * ctx_len scores */
    uint32_t att_group;    /* most q heads per kv head in any layer */
    /* rope cos/sin per row of the current run (aik_rope_table), made by
     * the first rope node of the run and reused by the rest: every layer
     * rotates by the same angles. Valid for rope_head_dim and rope_theta. */
    float *rope_cs;
    int rope_head_dim;
    float rope_theta;
    const int32_t *tokens; /* current run */
    uint64_t act_bytes, kv_bytes;
    bool profile;
    uint64_t op_ns[AIK_OP_COUNT];
    /* per node: matmuls run together from this one (see group_matmuls);
     * 0 for a matmul that an earlier node's group runs */
    uint8_t *mm_group;
    const aik_packed_weights *packed; /* NULL: file layout only */
    const aik_lora_ref **lora_of; /* per weight node: the adapter applied now, or NULL */
    float *lora_h;                /* max_batch × max rank: x·Aᵀ */
    size_t lora_h_floats;
};

static int alloc_buffer(aik_cpu_exec *e, size_t floats)
{
    int best = -1;

    /* Best fit among free buffers; else grow the smallest free one or make a new one. */
    for (int i = 0; i < e->n_bufs; i++)
        if (!e->bufs[i].busy && e->bufs[i].floats >= floats &&
            (best < 0 || e->bufs[i].floats < e->bufs[best].floats))
            best = i;
    if (best < 0) {
        for (int i = 0; i < e->n_bufs; i++)
            if (!e->bufs[i].busy) {
                best = i;
                break;
            }
        if (best < 0) {
            buffer *nb = realloc(e->bufs, (size_t)(e->n_bufs + 1) * sizeof(*nb));
            if (!nb)
                return -ENOMEM;
            e->bufs = nb;
            best = e->n_bufs++;
            e->bufs[best] = (buffer){ 0 };
        }
        e->bufs[best].floats = floats; /* sized for real after planning */
    }
    e->bufs[best].busy = true;
    return best;
}

static int plan(aik_cpu_exec *e)
{
    const aik_graph *g = e->g;

    for (aik_node i = 0; i < g->n_nodes; i++) {
        const aik_gnode *n = &g->nodes[i];
        e->buf_of[i] = -1;
        if (n->op == AIK_OP_WEIGHT || n->op == AIK_OP_TOKENS)
            continue;
        if (n->op == AIK_OP_RESHAPE) {
            e->buf_of[i] = e->buf_of[n->src[0]];
        } else {
            size_t floats = (size_t)e->max_batch * n->width;
            int b = alloc_buffer(e, floats);
            if (b < 0)
                return b;
            e->buf_of[i] = b;
        }
        /* Release sources whose last reader is this node. A RESHAPE is a
         * view: follow it to the node that owns the buffer (whose liveness
         * the graph extended to cover every reader of the view). */
        for (int s = 0; s < 3; s++) {
            aik_node root = n->src[s];
            while (root >= 0 && g->nodes[root].op == AIK_OP_RESHAPE)
                root = g->nodes[root].src[0];
            if (root >= 0 && g->nodes[root].last_use == i && e->buf_of[root] >= 0 &&
                e->buf_of[root] != e->buf_of[i])
                e->bufs[e->buf_of[root]].busy = false;
        }
    }
    for (int i = 0; i < e->n_bufs; i++) {
        e->bufs[i].data = aligned_alloc(64, ((e->bufs[i].floats * sizeof(float)) + 63) & ~(size_t)63);
        if (!e->bufs[i].data)
            return -ENOMEM;
        e->act_bytes += e->bufs[i].floats * sizeof(float);
    }
    return 0;
}

/* Whether nodes a and b write the same buffer: the planner gives one buffer
 * to nodes whose lives do not meet, which is no longer true once they run
 * at the same time. */
static bool same_buffer(const aik_cpu_exec *e, aik_node a, aik_node b)
{
    return e->buf_of[a] >= 0 && e->buf_of[a] == e->buf_of[b];
}

/* Consecutive matmuls that read the same activations with weights of one
 * dtype and width (q, k, v; gate, up) run as one threaded dispatch: one
 * quantization of the input and one barrier instead of one each. Weight
 * nodes between them do no work and may sit in between; anything else ends
 * a group. A member must write its own buffer, apart from the input and
 * the other members, since they all run at once. */
static void group_matmuls(aik_cpu_exec *e)
{
    const aik_graph *g = e->g;

    for (aik_node i = 0; i < g->n_nodes; i++) {
        const aik_gnode *n = &g->nodes[i];
        if (n->op != AIK_OP_MATMUL) {
            e->mm_group[i] = 1;
            continue;
        }
        const aik_gnode *w = &g->nodes[n->src[1]];
        aik_node members[AIK_MATMUL_MAX_PARTS] = { i };
        int count = 1;
        for (aik_node j = i + 1; j < g->n_nodes && count < AIK_MATMUL_MAX_PARTS; j++) {
            const aik_gnode *m = &g->nodes[j];
            if (m->op == AIK_OP_WEIGHT)
                continue;
            if (m->op != AIK_OP_MATMUL || m->src[0] != n->src[0])
                break;
            const aik_gnode *wm = &g->nodes[m->src[1]];
            bool ok = wm->dtype == w->dtype && wm->shape[0] == w->shape[0] && !same_buffer(e, j, n->src[0]) &&
                      !aik_packed_weights_get(e->packed, m->src[1]) == !aik_packed_weights_get(e->packed, n->src[1]);
            for (int k = 0; ok && k < count; k++)
                ok = !same_buffer(e, j, members[k]);
            if (!ok)
                break;
            members[count++] = j;
        }
        e->mm_group[i] = (uint8_t)count;
        for (int k = 1; k < count; k++)
            e->mm_group[members[k]] = 0;
        i = members[count - 1];
    }
}

int aik_cpu_exec_new(const aik_graph *g, const aik_cpu_exec_config *cfg, aik_threadpool *pool,
                     aik_cpu_exec **ret_exec, aik_error *err)
{
    aik_cpu_exec *e;
    int r = -ENOMEM;
    int n_threads = aik_threadpool_size(pool);

    if (!g || !cfg || !ret_exec || cfg->max_batch == 0)
        return aik_fail(err, -EINVAL, "executor", "missing graph or max_batch == 0");
    e = calloc(1, sizeof(*e));
    if (!e)
        return aik_fail(err, -ENOMEM, "executor", "out of memory");
    e->g = g;
    e->pool = pool;
    e->max_batch = cfg->max_batch;
    e->ctx_len = cfg->ctx_len ? cfg->ctx_len : g->hp.ctx_len;
    e->profile = cfg->profile;
    e->packed = cfg->packed;
    if (e->ctx_len == 0 || e->ctx_len > AIK_SLM_MAX_CTX) {
        aik_cpu_exec_free(e);
        return aik_fail(err, -EINVAL, "executor", "context length %u out of range", e->ctx_len);
    }
    if (e->max_batch > e->ctx_len)
        e->max_batch = e->ctx_len;
    e->buf_of = calloc((size_t)g->n_nodes, sizeof(*e->buf_of));
    if (!e->buf_of)
        goto fail;
    r = plan(e);
    if (r < 0)
        goto fail;
    r = -ENOMEM;
    e->mm_group = calloc((size_t)g->n_nodes, 1);
    if (!e->mm_group)
        goto fail;
    group_matmuls(e);
    for (aik_node i = 0; i < g->n_nodes; i++) {
        const aik_gnode *n = &g->nodes[i];
        if (n->op == AIK_OP_MATMUL) {
            const aik_gnode *w = &g->nodes[n->src[1]];
            size_t s = aik_matmul_scratch_size(w->dtype, (int64_t)w->shape[0], e->max_batch);
            if (s == SIZE_MAX)
                goto fail;
            if (s > e->mm_scratch_size)
                e->mm_scratch_size = s;
        }
    }
    if (e->mm_scratch_size && !(e->mm_scratch = aligned_alloc(64, (e->mm_scratch_size + 63) & ~(size_t)63)))
        goto fail;
    e->k_cache = calloc(g->n_kv_layers ? g->n_kv_layers : 1, sizeof(float *));
    e->v_cache = calloc(g->n_kv_layers ? g->n_kv_layers : 1, sizeof(float *));
    if (!e->k_cache || !e->v_cache)
        goto fail;
    for (uint32_t l = 0; l < g->n_kv_layers; l++) {
        size_t floats = (size_t)e->ctx_len * g->kv_cols[l];
        if (!floats)
            continue;
        e->k_cache[l] = malloc(floats * sizeof(float));
        e->v_cache[l] = malloc(floats * sizeof(float));
        if (!e->k_cache[l] || !e->v_cache[l])
            goto fail;
        e->kv_bytes += 2 * floats * sizeof(float);
    }
    /* per thread: the scores of one kv head's group of q heads */
    for (aik_node i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == AIK_OP_ATTENTION && g->nodes[i].n_kv_heads &&
            g->nodes[i].n_heads / g->nodes[i].n_kv_heads > e->att_group)
            e->att_group = g->nodes[i].n_heads / g->nodes[i].n_kv_heads;
    if (!e->att_group)
        e->att_group = 1;
    e->att_scratch = malloc((size_t)n_threads * e->att_group * e->ctx_len * sizeof(float));
    if (!e->att_scratch)
        goto fail;
    size_t rope_floats = 0;
    for (aik_node i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == AIK_OP_ROPE && (size_t)e->max_batch * g->nodes[i].head_dim > rope_floats)
            rope_floats = (size_t)e->max_batch * g->nodes[i].head_dim;
    if (rope_floats && !(e->rope_cs = malloc(rope_floats * sizeof(float))))
        goto fail;
    *ret_exec = e;
    return 0;
fail:
    aik_cpu_exec_free(e);
    return aik_fail(err, r, "executor", "cannot allocate buffers (%s)", r == -ENOMEM ? "out of memory" : "size");
}

void aik_cpu_exec_free(aik_cpu_exec *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->n_bufs; i++)
        free(e->bufs[i].data);
    free(e->bufs);
    free(e->buf_of);
    free(e->mm_scratch);
    if (e->k_cache)
        for (uint32_t l = 0; l < e->g->n_kv_layers; l++)
            free(e->k_cache[l]);
    if (e->v_cache)
        for (uint32_t l = 0; l < e->g->n_kv_layers; l++)
            free(e->v_cache[l]);
    free(e->k_cache);
    free(e->v_cache);
    free(e->att_scratch);
    free(e->lora_of);
    free(e->lora_h);
    free(e->mm_group);
    free(e->rope_cs);
    free(e);
}

/* y += scale · (x·Aᵀ)·Bᵀ for rows rows of x. A decode step has one row and
 * rank·(in + out) multiply-adds here, a few percent of the matmul itself:
 * plain loops beat the GEMM's packing and thread hand-off at that size, so
 * the GEMM is used only for prompt batches. */
#define LORA_DIRECT_ROWS 4
static void lora_apply(aik_cpu_exec *e, const aik_lora_ref *lr, const float *x, float *y, uint32_t rows, int64_t in,
                       int64_t out)
{
    const uint32_t rank = lr->rank;
    float *h = e->lora_h;

    if (rows > LORA_DIRECT_ROWS) {
        aik_gemm_f32_threaded(e->pool, false, true, rows, rank, in, 1.0f, x, in, lr->A, in, 0.0f, h, rank);
        aik_gemm_f32_threaded(e->pool, false, true, rows, out, rank, lr->scale, h, rank, lr->B, rank, 1.0f, y, out);
        return;
    }
    for (uint32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * (size_t)in;
        float *hr = h + (size_t)r * rank, *yr = y + (size_t)r * (size_t)out;
        for (uint32_t k = 0; k < rank; k++) {
            const float *a = lr->A + (size_t)k * (size_t)in;
            float s = 0.0f;
            for (int64_t i = 0; i < in; i++)
                s += a[i] * xr[i];
            hr[k] = s * lr->scale;
        }
        for (int64_t o = 0; o < out; o++) {
            const float *b = lr->B + (size_t)o * rank;
            float s = 0.0f;
            for (uint32_t k = 0; k < rank; k++)
                s += b[k] * hr[k];
            yr[o] += s;
        }
    }
}

int aik_cpu_exec_set_lora(aik_cpu_exec *e, const aik_lora_ref *refs, size_t n, aik_error *err)
{
    const aik_graph *g = e->g;
    const aik_lora_ref **map;
    uint32_t max_rank = 0;

    map = calloc((size_t)g->n_nodes, sizeof(*map));
    if (!map)
        return aik_fail(err, -ENOMEM, "lora", "out of memory");
    for (size_t k = 0; k < n; k++) {
        aik_node w = -1;
        for (aik_node i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].op == AIK_OP_MATMUL && strcmp(g->nodes[g->nodes[i].src[1]].name, refs[k].weight) == 0)
                w = g->nodes[i].src[1];
        if (w < 0) {
            free(map);
            return aik_fail(err, -ENOENT, refs[k].weight, "not a matmul weight of this model");
        }
        if (refs[k].rank == 0 || !refs[k].A || !refs[k].B) {
            free(map);
            return aik_fail(err, -EINVAL, refs[k].weight, "adapter needs rank > 0 and both factors");
        }
        map[w] = &refs[k];
        if (refs[k].rank > max_rank)
            max_rank = refs[k].rank;
    }
    size_t need = (size_t)e->max_batch * max_rank;
    if (need > e->lora_h_floats) {
        float *h = realloc(e->lora_h, need * sizeof(float));
        if (!h) {
            free(map);
            return aik_fail(err, -ENOMEM, "lora", "out of memory");
        }
        e->lora_h = h;
        e->lora_h_floats = need;
    }
    free(e->lora_of);
    e->lora_of = n ? map : NULL;
    if (!n)
        free(map);
    return 0;
}

uint32_t aik_cpu_exec_n_past(const aik_cpu_exec *e) { return e->n_past; }
uint32_t aik_cpu_exec_ctx_len(const aik_cpu_exec *e) { return e->ctx_len; }
uint64_t aik_cpu_exec_activation_bytes(const aik_cpu_exec *e) { return e->act_bytes; }
uint64_t aik_cpu_exec_kv_bytes(const aik_cpu_exec *e) { return e->kv_bytes; }
const uint64_t *aik_cpu_exec_op_times(const aik_cpu_exec *e) { return e->profile ? e->op_ns : NULL; }

void aik_cpu_exec_truncate(aik_cpu_exec *e, uint32_t n_past)
{
    if (n_past < e->n_past)
        e->n_past = n_past;
}

static float *out_of(aik_cpu_exec *e, aik_node i) { return e->bufs[e->buf_of[i]].data; }

/* ---- attention, threaded over (row, head) ---- */

typedef struct att_job {
    aik_cpu_exec *e;
    const aik_gnode *n;
    const float *q;
    float *out;
    uint32_t n_rows, pos0;
} att_job;

/* One task per (row, kv head): the q heads that share a kv head go
 * together (aik_attention_group), so that kv head's keys and values are
 * read once for its group. */
static void att_task(void *ctx, int task, int thread)
{
    const att_job *j = ctx;
    const aik_gnode *n = j->n;
    const uint32_t row = (uint32_t)task / n->n_kv_heads, kvh = (uint32_t)task % n->n_kv_heads;
    const uint32_t group = n->n_heads / n->n_kv_heads;
    const size_t at = (size_t)row * n->n_cols + (size_t)kvh * group * n->head_dim;
    const size_t base = (size_t)kvh * j->e->ctx_len * n->head_dim;
    aik_attention_group(j->q + at, (int)group, j->e->k_cache[n->layer] + base, j->e->v_cache[n->layer] + base,
                        j->pos0 + row + 1, (int)n->head_dim, n->head_dim, n->scale,
                        j->e->att_scratch + (size_t)thread * j->e->att_group * j->e->ctx_len, j->out + at);
}

static void run_attention(aik_cpu_exec *e, const aik_gnode *n, aik_node self, uint32_t n_rows)
{
    const aik_graph *g = e->g;
    uint32_t kv_cols = n->n_kv_heads * n->head_dim;
    const float *k = out_of(e, n->src[1]), *v = out_of(e, n->src[2]);
    att_job j = { e, n, out_of(e, n->src[0]), out_of(e, self), n_rows, e->n_past };

    (void)g;
    for (uint32_t r = 0; r < n_rows; r++)
        for (uint32_t h = 0; h < n->n_kv_heads; h++) {
            const size_t at = ((size_t)h * e->ctx_len + e->n_past + r) * n->head_dim;
            const size_t from = (size_t)r * kv_cols + (size_t)h * n->head_dim;
            memcpy(e->k_cache[n->layer] + at, k + from, n->head_dim * sizeof(float));
            memcpy(e->v_cache[n->layer] + at, v + from, n->head_dim * sizeof(float));
        }
    aik_threadpool_parallel_for(e->pool, (int)(n_rows * n->n_kv_heads), att_task, &j);
}

/* The parts of the matmul group that starts at node i (mm_group[i] of
 * them), with their member nodes when member is not NULL; returns the last
 * member. */
static aik_node group_parts(aik_cpu_exec *e, aik_node i, aik_matmul_part *parts, aik_node *member)
{
    const aik_graph *g = e->g;
    aik_node j = i, last = i;
    for (int k = 0; k < e->mm_group[i]; j++)
        if (g->nodes[j].op == AIK_OP_MATMUL) {
            const aik_gnode *wj = &g->nodes[g->nodes[j].src[1]];
            const void *packed = aik_packed_weights_get(e->packed, g->nodes[j].src[1]);
            if (member)
                member[k] = j;
            parts[k++] = (aik_matmul_part){ packed ? packed : wj->data, out_of(e, j), (int64_t)wj->shape[1],
                                            packed != NULL };
            last = j;
        }
    return last;
}

/* The cached keys and values decode's attention node att will read, for
 * the workers to prefetch while the caller ropes and caches this token:
 * worker w most likely takes kv head w first (the caller takes head 0 as
 * it posts the job), then the heads after the last worker's. */
static bool kv_spans(const aik_cpu_exec *e, const aik_gnode *att, aik_prefetch_span *spans)
{
    const int nt = aik_threadpool_size(e->pool);
    if (nt < 2 || nt > 16 || e->n_past == 0)
        return false;
    memset(spans, 0, (size_t)nt * AIK_PREFETCH_SPANS * sizeof(*spans));
    const size_t bytes = (size_t)e->n_past * att->head_dim * sizeof(float);
    for (int w = 1; w < nt; w++)
        for (int k = 0; k < AIK_PREFETCH_SPANS / 2; k++) {
            const uint32_t h = k == 0 ? (uint32_t)w : (uint32_t)(nt - 1 + w);
            if (h >= att->n_kv_heads)
                break;
            const size_t base = (size_t)h * e->ctx_len * att->head_dim;
            spans[w * AIK_PREFETCH_SPANS + 2 * k] = (aik_prefetch_span){ e->k_cache[att->layer] + base, bytes };
            spans[w * AIK_PREFETCH_SPANS + 2 * k + 1] = (aik_prefetch_span){ e->v_cache[att->layer] + base, bytes };
        }
    return true;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int aik_cpu_exec_run(aik_cpu_exec *e, const int32_t *tokens, uint32_t n_tokens, uint32_t n_out,
                     const float **ret_logits, aik_error *err)
{
    const aik_graph *g;

    if (!e || !tokens || !ret_logits || n_tokens == 0 || n_out == 0 || n_out > n_tokens)
        return aik_fail(err, -EINVAL, "executor", "bad arguments (n_tokens %u, n_out %u)", n_tokens, n_out);
    g = e->g;
    if (n_tokens > e->max_batch)
        return aik_fail(err, -EINVAL, "executor", "batch of %u tokens exceeds max_batch %u", n_tokens, e->max_batch);
    if ((uint64_t)e->n_past + n_tokens > e->ctx_len)
        return aik_fail(err, -ENOSPC, "executor", "context full: %u positions used + %u new > %u", e->n_past,
                        n_tokens, e->ctx_len);
    for (uint32_t t = 0; t < n_tokens; t++)
        if (tokens[t] < 0 || (uint32_t)tokens[t] >= g->hp.n_vocab)
            return aik_fail(err, -EINVAL, "executor", "token id %d at %u outside vocabulary of %u", tokens[t], t,
                            g->hp.n_vocab);
    e->tokens = tokens;
    e->rope_head_dim = 0; /* the angles are per position: new run, new table */

    for (aik_node i = 0; i < g->n_nodes; i++) {
        const aik_gnode *n = &g->nodes[i];
        uint64_t t0 = e->profile ? now_ns() : 0;
        uint32_t rows = (uint32_t)aik_gnode_rows(n, n_tokens, n_out);
        float *y = (n->op == AIK_OP_WEIGHT || n->op == AIK_OP_TOKENS) ? NULL : out_of(e, i);

        switch (n->op) {
        case AIK_OP_TOKENS:
        case AIK_OP_WEIGHT:
        case AIK_OP_RESHAPE: /* aliases its source buffer */
        case AIK_OP_NONE:
        case AIK_OP_COUNT:
            break;
        case AIK_OP_GET_ROWS: {
            const aik_gnode *t = &g->nodes[n->src[0]];
            for (uint32_t r = 0; r < rows; r++)
                aik_get_row(t->dtype, t->data, tokens[r], n->n_cols, y + (size_t)r * n->n_cols);
            break;
        }
        case AIK_OP_MATMUL: {
            if (e->mm_group[i] == 0) /* ran with its group */
                break;
            const aik_gnode *w = &g->nodes[n->src[1]];
            aik_matmul_part parts[AIK_MATMUL_MAX_PARTS], next_parts[AIK_MATMUL_MAX_PARTS];
            aik_node member[AIK_MATMUL_MAX_PARTS];
            const aik_node last = group_parts(e, i, parts, member);
            const int n_parts = e->mm_group[i];
            /* the matmuls after this one, for the workers to prefetch */
            aik_node nx = last + 1;
            while (nx < g->n_nodes && !(g->nodes[nx].op == AIK_OP_MATMUL && e->mm_group[nx] > 0))
                nx++;
            aik_matmul_next next = { 0 };
            aik_prefetch_span kv[16 * AIK_PREFETCH_SPANS];
            const aik_gnode *att = NULL;
            for (aik_node k = last + 1; k < nx; k++)
                if (g->nodes[k].op == AIK_OP_ATTENTION)
                    att = &g->nodes[k];
            if (att && rows == 1 && kv_spans(e, att, kv)) {
                next.spans = kv;
            } else if (nx < g->n_nodes) {
                const aik_gnode *wn = &g->nodes[g->nodes[nx].src[1]];
                next = (aik_matmul_next){ wn->dtype, next_parts, e->mm_group[nx], (int64_t)wn->shape[0], NULL };
                group_parts(e, nx, next_parts, NULL);
            }
            aik_matmul_threaded_parts_then(e->pool, w->dtype, parts, n_parts, out_of(e, n->src[0]), e->mm_scratch,
                                           (int64_t)w->shape[0], rows,
                                           next.spans || nx < g->n_nodes ? &next : NULL);
            for (int k = 0; e->lora_of && k < n_parts; k++) {
                const aik_node wn = g->nodes[member[k]].src[1];
                if (e->lora_of[wn])
                    lora_apply(e, e->lora_of[wn], out_of(e, n->src[0]), parts[k].Y, rows,
                               (int64_t)g->nodes[wn].shape[0], (int64_t)g->nodes[wn].shape[1]);
            }
            break;
        }
        case AIK_OP_ADD:
        case AIK_OP_MUL: {
            const float *a = out_of(e, n->src[0]);
            const aik_gnode *b = &g->nodes[n->src[1]];
            void (*f)(const float *, const float *, float *, int64_t) = n->op == AIK_OP_ADD ? aik_add : aik_mul;
            if (b->op == AIK_OP_WEIGHT)
                for (uint32_t r = 0; r < rows; r++)
                    f(a + (size_t)r * n->n_cols, b->data, y + (size_t)r * n->n_cols, n->n_cols);
            else
                f(a, out_of(e, n->src[1]), y, (int64_t)rows * n->n_cols);
            break;
        }
        case AIK_OP_RMS_NORM: {
            const float *x = out_of(e, n->src[0]);
            const float *w = g->nodes[n->src[1]].data;
            for (uint32_t r = 0; r < rows; r++)
                aik_rms_norm(x + (size_t)r * n->n_cols, w, y + (size_t)r * n->n_cols, n->n_cols, n->eps);
            break;
        }
        case AIK_OP_ROPE: {
            const float *x = out_of(e, n->src[0]);
            if (y != x)
                memcpy(y, x, (size_t)rows * n->n_cols * sizeof(float));
            if (e->rope_head_dim != (int)n->head_dim || e->rope_theta != n->theta) {
                for (uint32_t r = 0; r < rows; r++)
                    aik_rope_table((int)n->head_dim, e->n_past + r, n->theta, e->rope_cs + (size_t)r * n->head_dim);
                e->rope_head_dim = (int)n->head_dim;
                e->rope_theta = n->theta;
            }
            for (uint32_t r = 0; r < rows; r++)
                aik_rope_apply(y + (size_t)r * n->n_cols, (int)n->n_heads, (int)n->head_dim,
                               e->rope_cs + (size_t)r * n->head_dim, n->rope_mode == AIK_ROPE_NEOX);
            break;
        }
        case AIK_OP_ATTENTION:
            run_attention(e, n, i, rows);
            break;
        case AIK_OP_SILU:
            aik_silu(out_of(e, n->src[0]), y, (int64_t)rows * n->n_cols);
            break;
        case AIK_OP_SWIGLU:
            aik_swiglu(out_of(e, n->src[0]), out_of(e, n->src[1]), y, (int64_t)rows * n->n_cols);
            break;
        case AIK_OP_SOFTMAX: {
            const float *x = out_of(e, n->src[0]);
            if (y != x)
                memcpy(y, x, (size_t)rows * n->n_cols * sizeof(float));
            for (uint32_t r = 0; r < rows; r++)
                aik_softmax(y + (size_t)r * n->n_cols, n->n_cols);
            break;
        }
        case AIK_OP_OUTPUT_ROWS: {
            const float *x = out_of(e, n->src[0]);
            memmove(y, x + (size_t)(n_tokens - n_out) * n->n_cols, (size_t)n_out * n->n_cols * sizeof(float));
            break;
        }
        }
        if (e->profile)
            e->op_ns[n->op] += now_ns() - t0;
    }
    e->n_past += n_tokens;
    *ret_logits = out_of(e, g->logits);
    return 0;
}
