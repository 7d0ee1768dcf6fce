/* SPDX-License-Identifier: MIT */
/*
 * Split execution across devices by a placement plan; see
 * scheduler/split_exec.h. Structure: setup() turns a plan into per-device
 * state (a bound copy of the node table, buffers, KV caches, the imports of
 * every segment), run_once() runs one batch through the segments, and
 * recover() replaces the state after a device failed.
 */
#include "scheduler/split_exec.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/checked.h"
#include "common/error.h"
#include "scheduler/segment_nodes.h"

typedef struct dev_state {
    const aik_backend_ops *ops;
    aik_backend *b;
    int (*sync)(aik_backend *b, aik_error *err); /* NULL: absent, or a table too old to have it */
    bool is_cpu;
    bool used;                   /* runs a segment of the current plan */
    aik_backend_node *nodes;     /* the graph's nodes bound to this device's buffers */
    aik_backend_tensor *k, *v;   /* per KV slot (empty for layers run elsewhere) */
    aik_backend_buffer *tokens;  /* token ids, when a segment here reads them */
    aik_backend_buffer **owned;  /* every buffer allocated here */
    uint32_t n_owned, cap_owned;
} dev_state;

typedef struct seg_state {
    uint32_t dev;
    uint32_t first, end;             /* node range */
    uint32_t first_unit, end_unit;
    uint32_t *imports;               /* activations produced on other devices, copied in first */
    uint32_t n_imports;
    double ms;                       /* last run: execute + synchronize */
} seg_state;

struct aik_split_exec {
    const aik_graph *g;
    aik_backend_node *base; /* flattened graph, no storage */
    uint32_t n_nodes;
    uint32_t n_devs;
    dev_state *dev;
    aik_split_config cfg;
    char *override;
    aik_placement *plan;
    seg_state *segs;
    uint32_t n_segs;
    int32_t *node_dev;      /* per node: device that computes it (-1: weight, tokens) */
    uint32_t max_batch, ctx_len, n_past;
    uint32_t kv_valid;      /* positions the current devices' KV caches hold (< n_past after a fallback) */
    int32_t *history;       /* tokens of positions 0 .. n_past-1 (replayed after a fallback) */
    float *staging;         /* host bounce buffer for cross-device copies */
    uint64_t staging_bytes;
    float *logits;
    aik_error fallback;
    uint32_t n_fallbacks;
};

static bool is_exec(const aik_backend_node *n)
{
    return n->op != AIK_OP_WEIGHT && n->op != AIK_OP_TOKENS && n->op != AIK_OP_NONE;
}

static void dev_name(const aik_split_exec *e, uint32_t d, char *buf, size_t len)
{
    if (e->cfg.inventory && d < e->cfg.inventory->n_devices)
        snprintf(buf, len, "%s", e->cfg.inventory->dev[d].id);
    else
        snprintf(buf, len, "device %u", d);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* ---------------------------------------------------------------- plans --- */

static int plan_copy(const aik_placement *src, aik_placement **ret)
{
    aik_placement *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    *p = *src;
    p->unit_device = calloc(src->n_units ? src->n_units : 1, sizeof(uint32_t));
    p->seg = calloc(src->n_segments ? src->n_segments : 1, sizeof(*p->seg));
    p->device_bytes = calloc(src->n_devices ? src->n_devices : 1, sizeof(uint64_t));
    if (!p->unit_device || !p->seg || !p->device_bytes) {
        aik_placement_free(p);
        return -ENOMEM;
    }
    memcpy(p->unit_device, src->unit_device, src->n_units * sizeof(uint32_t));
    memcpy(p->seg, src->seg, src->n_segments * sizeof(*p->seg));
    memcpy(p->device_bytes, src->device_bytes, src->n_devices * sizeof(uint64_t));
    *ret = p;
    return 0;
}

/* ------------------------------------------------------- device state --- */

static int dev_alloc(dev_state *ds, uint64_t bytes, aik_backend_buffer **ret, aik_error *err)
{
    int r;
    if (ds->n_owned == ds->cap_owned) {
        uint32_t nc = ds->cap_owned ? 2 * ds->cap_owned : 32;
        aik_backend_buffer **no = realloc(ds->owned, nc * sizeof(*no));
        if (!no)
            return aik_fail(err, -ENOMEM, "split", "out of memory");
        ds->owned = no;
        ds->cap_owned = nc;
    }
    if ((r = ds->ops->buffer_alloc(ds->b, bytes ? bytes : 4, ret, err)) < 0)
        return r;
    ds->owned[ds->n_owned++] = *ret;
    return 0;
}

static void dev_clear(dev_state *ds)
{
    for (uint32_t i = 0; i < ds->n_owned; i++)
        ds->ops->buffer_free(ds->b, ds->owned[i]);
    free(ds->owned);
    free(ds->nodes);
    free(ds->k);
    free(ds->v);
    ds->owned = NULL;
    ds->n_owned = ds->cap_owned = 0;
    ds->nodes = NULL;
    ds->k = ds->v = NULL;
    ds->tokens = NULL;
    ds->used = false;
}

static void teardown(aik_split_exec *e)
{
    for (uint32_t d = 0; e->dev && d < e->n_devs; d++)
        if (e->dev[d].ops)
            dev_clear(&e->dev[d]);
    for (uint32_t k = 0; e->segs && k < e->n_segs; k++)
        free(e->segs[k].imports);
    free(e->segs);
    e->segs = NULL;
    e->n_segs = 0;
}

/* Segments of the plan with node ranges, and the device of every node. */
static int map_segments(aik_split_exec *e, aik_error *err)
{
    const aik_placement *pl = e->plan;
    uint32_t prev_end = 0;

    e->segs = calloc(pl->n_segments ? pl->n_segments : 1, sizeof(*e->segs));
    if (!e->segs)
        return aik_fail(err, -ENOMEM, "split", "out of memory");
    for (uint32_t i = 0; i < e->n_nodes; i++)
        e->node_dev[i] = -1;
    for (uint32_t k = 0; k < pl->n_segments; k++) {
        const aik_placement_segment *s = &pl->seg[k];
        if (s->device >= e->n_devs || s->end_node > e->n_nodes || s->first_node > s->end_node ||
            (s->first_node < prev_end && s->first_node < s->end_node))
            return aik_fail(err, -EINVAL, "split.plan", "segment %u: nodes %u..%u on device %u do not follow %u in a "
                            "graph of %u nodes and %u devices", k, s->first_node, s->end_node, s->device, prev_end,
                            e->n_nodes, e->n_devs);
        if (s->first_node == s->end_node) /* a unit without executed nodes */
            continue;
        prev_end = s->end_node;
        if (!e->dev[s->device].ops) {
            char name[AIK_INV_ID_MAX + 16];
            dev_name(e, s->device, name, sizeof(name));
            return aik_fail(err, -ENODEV, name, "the plan puts segment %u here but no backend is open for it", k);
        }
        e->segs[e->n_segs++] = (seg_state){ .dev = s->device, .first = s->first_node, .end = s->end_node,
                                            .first_unit = s->first_unit, .end_unit = s->end_unit };
        e->dev[s->device].used = true;
        for (uint32_t i = s->first_node; i < s->end_node; i++)
            if (is_exec(&e->base[i]))
                e->node_dev[i] = (int32_t)s->device;
    }
    for (uint32_t i = 0; i < e->n_nodes; i++)
        if (is_exec(&e->base[i]) && e->node_dev[i] < 0)
            return aik_fail(err, -EINVAL, "split.plan", "node %u (%s) is in no segment of the plan", i,
                            aik_op_name((aik_op)e->base[i].op));
    if (e->node_dev[e->g->logits] < 0)
        return aik_fail(err, -EINVAL, "split.plan", "no segment computes the logits");
    return 0;
}

/* Activations each segment reads from another device. */
static int find_imports(aik_split_exec *e, aik_error *err)
{
    uint8_t *seen = malloc(e->n_nodes);
    if (!seen)
        return aik_fail(err, -ENOMEM, "split", "out of memory");
    for (uint32_t k = 0; k < e->n_segs; k++) {
        seg_state *sg = &e->segs[k];
        memset(seen, 0, e->n_nodes);
        for (uint32_t i = sg->first; i < sg->end; i++) {
            const aik_backend_node *n = &e->base[i];
            if (!is_exec(n))
                continue;
            for (int s = 0; s < 3; s++) {
                int32_t x = n->src[s];
                if (x < 0)
                    continue;
                if (x >= (int32_t)i || e->base[x].op == AIK_OP_NONE) {
                    free(seen);
                    return aik_fail(err, -EINVAL, "split.graph", "node %u: source %d is not an earlier node", i, x);
                }
                if (e->node_dev[x] >= 0 && e->node_dev[x] != (int32_t)sg->dev && !seen[x]) {
                    uint32_t *ni = realloc(sg->imports, (sg->n_imports + 1) * sizeof(*ni));
                    if (!ni) {
                        free(seen);
                        return aik_fail(err, -ENOMEM, "split", "out of memory");
                    }
                    sg->imports = ni;
                    sg->imports[sg->n_imports++] = (uint32_t)x;
                    seen[x] = 1;
                    uint64_t bytes = (uint64_t)e->max_batch * e->base[x].width * sizeof(float);
                    if (bytes > e->staging_bytes)
                        e->staging_bytes = bytes;
                }
            }
        }
    }
    free(seen);
    return 0;
}

enum { RES_NONE = 0, RES_LOCAL, RES_VIEW, RES_IMPORT };

/* Best fit among free buffers, else the first free one grown, else a new
 * one (the CPU executor's policy). */
static int32_t pick_buffer(uint64_t *floats, bool *busy, int32_t *n_bufs, uint64_t need)
{
    int32_t best = -1;
    for (int32_t b = 0; b < *n_bufs; b++)
        if (!busy[b] && floats[b] >= need && (best < 0 || floats[b] < floats[best]))
            best = b;
    if (best < 0)
        for (int32_t b = 0; b < *n_bufs; b++)
            if (!busy[b]) {
                best = b;
                break;
            }
    if (best < 0)
        best = (*n_bufs)++;
    if (floats[best] < need)
        floats[best] = need;
    busy[best] = true;
    return best;
}

/*
 * Activation buffers of device d by liveness, as scheduler/cpu_exec.c plans
 * them, over the nodes resident on d: those it computes (a RESHAPE of a
 * resident node is a view of its root) and those it imports. A buffer lives
 * from its node's index (an import: from the start of the first segment
 * that reads it) to its last reader on d, or — when another device imports
 * it — to the start of the last segment that copies it out.
 */
static int plan_device(aik_split_exec *e, uint32_t d, aik_error *err)
{
    dev_state *ds = &e->dev[d];
    uint32_t n = e->n_nodes;
    uint8_t *res = calloc(n, 1);
    int32_t *root = calloc(n, sizeof(*root)), *last = calloc(n, sizeof(*last)), *buf_of = calloc(n, sizeof(*buf_of));
    uint64_t *floats = calloc(n, sizeof(*floats));
    bool *busy = calloc(n, sizeof(*busy));
    aik_backend_buffer **bufs = NULL;
    int32_t n_bufs = 0;
    int r = -ENOMEM;

    if (!res || !root || !last || !buf_of || !floats || !busy) {
        r = aik_fail(err, -ENOMEM, "split", "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        root[i] = (int32_t)i;
        last[i] = -1;
        buf_of[i] = -1;
    }
    /* residency */
    for (uint32_t k = 0; k < e->n_segs; k++)
        if (e->segs[k].dev == d)
            for (uint32_t j = 0; j < e->segs[k].n_imports; j++)
                res[e->segs[k].imports[j]] = RES_IMPORT;
    for (uint32_t i = 0; i < n; i++) {
        if (e->node_dev[i] != (int32_t)d)
            continue;
        int32_t s = e->base[i].src[0];
        if (e->base[i].op == AIK_OP_RESHAPE && s >= 0 && res[s] != RES_NONE) {
            res[i] = RES_VIEW;
            root[i] = root[s];
        } else {
            res[i] = RES_LOCAL;
        }
        last[root[i]] = (int32_t)i > last[root[i]] ? (int32_t)i : last[root[i]];
    }
    /* last uses: readers on d, copies out to other devices, the logits */
    for (uint32_t i = 0; i < n; i++) {
        if (e->node_dev[i] != (int32_t)d)
            continue;
        for (int s = 0; s < 3; s++) {
            int32_t x = e->base[i].src[s];
            if (x >= 0 && res[x] != RES_NONE && last[root[x]] < (int32_t)i)
                last[root[x]] = (int32_t)i;
        }
    }
    for (uint32_t k = 0; k < e->n_segs; k++)
        for (uint32_t j = 0; j < e->segs[k].n_imports; j++) {
            uint32_t x = e->segs[k].imports[j];
            if (e->node_dev[x] == (int32_t)d && last[root[x]] < (int32_t)e->segs[k].first)
                last[root[x]] = (int32_t)e->segs[k].first;
        }
    if (e->node_dev[e->g->logits] == (int32_t)d)
        last[root[e->g->logits]] = (int32_t)n;

    /* sweep: allocate imports at their first segment, nodes at their index,
     * release after the last use */
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < e->n_segs; k++)
            if (e->segs[k].dev == d && e->segs[k].first == i)
                for (uint32_t j = 0; j < e->segs[k].n_imports; j++) {
                    uint32_t x = e->segs[k].imports[j];
                    if (buf_of[x] < 0)
                        buf_of[x] = pick_buffer(floats, busy, &n_bufs, (uint64_t)e->max_batch * e->base[x].width);
                }
        if (res[i] == RES_LOCAL && buf_of[i] < 0)
            buf_of[i] = pick_buffer(floats, busy, &n_bufs, (uint64_t)e->max_batch * e->base[i].width);
        if (res[i] == RES_VIEW)
            buf_of[i] = buf_of[root[i]];
        for (uint32_t x = 0; x < n; x++)
            if (root[x] == (int32_t)x && buf_of[x] >= 0 && last[x] == (int32_t)i && res[x] != RES_NONE)
                busy[buf_of[x]] = false;
    }
    bufs = calloc(n_bufs ? (size_t)n_bufs : 1, sizeof(*bufs));
    if (!bufs) {
        r = aik_fail(err, -ENOMEM, "split", "out of memory");
        goto out;
    }
    for (int32_t b = 0; b < n_bufs; b++) {
        uint64_t bytes;
        if (aik_mul_overflow(floats[b], sizeof(float), &bytes)) {
            r = aik_fail(err, -EOVERFLOW, "split", "activation buffer size overflows");
            goto out;
        }
        if ((r = dev_alloc(ds, bytes, &bufs[b], err)) < 0)
            goto out;
    }
    for (uint32_t i = 0; i < n; i++)
        if (res[i] != RES_NONE && buf_of[i] >= 0)
            ds->nodes[i].data = (aik_backend_tensor){ bufs[buf_of[i]], 0 };
    r = 0;
out:
    free(res);
    free(root);
    free(last);
    free(buf_of);
    free(floats);
    free(busy);
    free(bufs);
    return r;
}

/* Weights read on d (once per storage), the token buffer, the KV caches of
 * the layers whose attention runs on d. */
static int bind_inputs(aik_split_exec *e, uint32_t d, aik_error *err)
{
    dev_state *ds = &e->dev[d];
    const aik_graph *g = e->g;
    int r;

    for (uint32_t i = 0; i < e->n_nodes; i++) {
        const aik_backend_node *n = &e->base[i];
        if (e->node_dev[i] != (int32_t)d)
            continue;
        for (int s = 0; s < 3; s++) {
            int32_t x = n->src[s];
            if (x < 0 || ds->nodes[x].data.buffer)
                continue;
            if (e->base[x].op == AIK_OP_TOKENS) {
                if (!ds->tokens && (r = dev_alloc(ds, (uint64_t)e->max_batch * sizeof(int32_t), &ds->tokens, err)) < 0)
                    return r;
                ds->nodes[x].data = (aik_backend_tensor){ ds->tokens, 0 };
            } else if (e->base[x].op == AIK_OP_WEIGHT) {
                const aik_gnode *w = &g->nodes[x];
                uint64_t elems = aik_segment_weight_elems(&e->base[x]), bytes;
                aik_backend_buffer *wb = NULL;
                if (!w->data)
                    return aik_fail(err, -EINVAL, w->name, "weight is not bound to data");
                /* Weights bound to the same storage (tied embeddings) share one upload. */
                for (uint32_t j = 0; j < e->n_nodes && !wb; j++)
                    if ((int32_t)j != x && g->nodes[j].op == AIK_OP_WEIGHT && ds->nodes[j].data.buffer &&
                        g->nodes[j].data == w->data && g->nodes[j].dtype == w->dtype &&
                        aik_segment_weight_elems(&e->base[j]) >= elems)
                        wb = ds->nodes[j].data.buffer;
                if (!wb) {
                    if (elems == UINT64_MAX || aik_dtype_bytes(w->dtype, elems, &bytes) < 0)
                        return aik_fail(err, -EINVAL, w->name, "size of %s weight not computable",
                                        aik_dtype_name(w->dtype));
                    if ((r = dev_alloc(ds, bytes, &wb, err)) < 0 ||
                        (r = ds->ops->buffer_upload(ds->b, wb, 0, w->data, bytes, err)) < 0)
                        return r;
                }
                ds->nodes[x].data = (aik_backend_tensor){ wb, 0 };
            }
        }
        if (n->op == AIK_OP_ATTENTION && !ds->k[n->layer].buffer) {
            uint64_t bytes = (uint64_t)e->ctx_len * g->kv_cols[n->layer] * sizeof(float);
            aik_backend_buffer *kb, *vb;
            if ((r = dev_alloc(ds, bytes, &kb, err)) < 0 || (r = dev_alloc(ds, bytes, &vb, err)) < 0)
                return r;
            ds->k[n->layer] = (aik_backend_tensor){ kb, 0 };
            ds->v[n->layer] = (aik_backend_tensor){ vb, 0 };
        }
    }
    return 0;
}

/* Build every device's state for e->plan. On failure the caller tears
 * down; *ret_failed is the device whose allocation or upload failed
 * (UINT32_MAX when no one device is to blame). */
static int setup(aik_split_exec *e, uint32_t *ret_failed, aik_error *err)
{
    const aik_graph *g = e->g;
    int r;

    *ret_failed = UINT32_MAX;
    e->staging_bytes = 0;
    if ((r = map_segments(e, err)) < 0 || (r = find_imports(e, err)) < 0)
        return r;
    for (uint32_t d = 0; d < e->n_devs; d++) {
        dev_state *ds = &e->dev[d];
        if (!ds->used)
            continue;
        ds->nodes = malloc((size_t)e->n_nodes * sizeof(*ds->nodes));
        ds->k = calloc(g->n_kv_layers ? g->n_kv_layers : 1, sizeof(*ds->k));
        ds->v = calloc(g->n_kv_layers ? g->n_kv_layers : 1, sizeof(*ds->v));
        if (!ds->nodes || !ds->k || !ds->v)
            return aik_fail(err, -ENOMEM, "split", "out of memory");
        memcpy(ds->nodes, e->base, (size_t)e->n_nodes * sizeof(*ds->nodes));
        if ((r = plan_device(e, d, err)) < 0 || (r = bind_inputs(e, d, err)) < 0) {
            char name[AIK_INV_ID_MAX + 16];
            dev_name(e, d, name, sizeof(name));
            aik_error_prefix(err, name);
            *ret_failed = d;
            return r;
        }
    }
    if (e->staging_bytes) {
        float *s = realloc(e->staging, e->staging_bytes);
        if (!s)
            return aik_fail(err, -ENOMEM, "split", "out of memory");
        e->staging = s;
    }
    return 0;
}

/* ------------------------------------------------------------------ run --- */

/* One batch through every segment at positions n_past..; on failure
 * *ret_failed is the device that failed. Writes the KV caches at n_past..
 * but changes no executor state. */
static int run_once(aik_split_exec *e, const int32_t *tokens, uint32_t n_tokens, uint32_t n_out, uint32_t n_past,
                    uint32_t *ret_failed, aik_error *err)
{
    const aik_graph *g = e->g;
    int r;

    for (uint32_t d = 0; d < e->n_devs; d++) {
        dev_state *ds = &e->dev[d];
        if (ds->used && ds->tokens &&
            (r = ds->ops->buffer_upload(ds->b, ds->tokens, 0, tokens, (uint64_t)n_tokens * sizeof(int32_t), err)) < 0) {
            *ret_failed = d;
            return r;
        }
    }
    for (uint32_t k = 0; k < e->n_segs; k++) {
        seg_state *sg = &e->segs[k];
        dev_state *ds = &e->dev[sg->dev];
        for (uint32_t j = 0; j < sg->n_imports; j++) {
            uint32_t x = sg->imports[j], from = (uint32_t)e->node_dev[x];
            dev_state *fs = &e->dev[from];
            uint64_t bytes = aik_segment_node_rows(&e->base[x], n_tokens, n_out) * e->base[x].n_cols * sizeof(float);
            const aik_backend_tensor *src = &fs->nodes[x].data, *dst = &ds->nodes[x].data;
            if ((r = fs->ops->buffer_download(fs->b, src->buffer, src->offset, e->staging, bytes, err)) < 0) {
                *ret_failed = from;
                return r;
            }
            if ((r = ds->ops->buffer_upload(ds->b, dst->buffer, dst->offset, e->staging, bytes, err)) < 0) {
                *ret_failed = sg->dev;
                return r;
            }
        }
        aik_backend_segment seg = {
            .struct_size = sizeof(seg),
            .nodes = ds->nodes,
            .n_nodes = e->n_nodes,
            .first = sg->first,
            .end = sg->end,
            .n_batch = n_tokens,
            .n_out = n_out,
            .n_past = n_past,
            .ctx_len = e->ctx_len,
            .n_kv = g->n_kv_layers,
            .k_cache = ds->k,
            .v_cache = ds->v,
        };
        double t0 = now_ms();
        r = ds->ops->execute(ds->b, &seg, err);
        if (r == 0 && ds->sync)
            r = ds->sync(ds->b, err);
        if (r < 0) {
            *ret_failed = sg->dev;
            return r;
        }
        sg->ms = now_ms() - t0;
    }
    uint32_t ld = (uint32_t)e->node_dev[g->logits];
    dev_state *ls = &e->dev[ld];
    const aik_backend_tensor *lt = &ls->nodes[g->logits].data;
    uint64_t rows = aik_segment_node_rows(&e->base[g->logits], n_tokens, n_out);
    if ((r = ls->ops->buffer_download(ls->b, lt->buffer, lt->offset, e->logits, rows * g->hp.n_vocab * sizeof(float),
                                      err)) < 0) {
        *ret_failed = ld;
        return r;
    }
    return 0;
}

/* "layers 0-1, output" for the units of old that were on device d. */
static void describe_units(const aik_split_exec *e, const aik_placement *old, const aik_placement *now, uint32_t d,
                           uint32_t to, char *buf, size_t len)
{
    size_t at = 0;
    long run_first = -1, run_last = -1;
    buf[0] = '\0';
#define APPEND(...)                                                                                  \
    do {                                                                                             \
        if (at < len)                                                                                \
            at += (size_t)snprintf(buf + at, len - at, __VA_ARGS__);                                 \
    } while (0)
    for (uint32_t u = 0; u <= old->n_units; u++) {
        bool moved = u < old->n_units && old->unit_device[u] == d && now->unit_device[u] == to;
        const char *name = moved && e->cfg.placer ? aik_placer_unit(e->cfg.placer, u)->name : "";
        long layer = -1;
        if (moved && strncmp(name, "layer ", 6) == 0)
            layer = strtol(name + 6, NULL, 10);
        if (layer >= 0 && run_first >= 0 && layer == run_last + 1) {
            run_last = layer;
            continue;
        }
        if (run_first >= 0) { /* close the run of layers */
            if (run_first == run_last)
                APPEND("%slayer %ld", at ? ", " : "", run_first);
            else
                APPEND("%slayers %ld-%ld", at ? ", " : "", run_first, run_last);
            run_first = -1;
        }
        if (!moved)
            continue;
        if (layer >= 0)
            run_first = run_last = layer;
        else
            APPEND("%s%s", at ? ", " : "", name);
    }
#undef APPEND
}

static void fallback_message(aik_split_exec *e, const aik_placement *old, uint32_t failed, const aik_error *cause)
{
    char fname[AIK_INV_ID_MAX + 16], tname[AIK_INV_ID_MAX + 16], units[192];
    size_t at;
    aik_error *f = &e->fallback;

    dev_name(e, failed, fname, sizeof(fname));
    f->code = cause->code ? cause->code : -EIO;
    snprintf(f->where, sizeof(f->where), "%s", fname);
    const char *where = cause->where;
    size_t fl = strlen(fname);
    if (strncmp(where, fname, fl) == 0 && strncmp(where + fl, ": ", 2) == 0) /* setup() prefixed it */
        where += fl + 2;
    at = (size_t)snprintf(f->message, sizeof(f->message), "%s failed: %s%s%s", fname, where, where[0] ? ": " : "",
                          cause->message);
    for (uint32_t to = 0; to < e->n_devs; to++) {
        describe_units(e, old, e->plan, failed, to, units, sizeof(units));
        if (!units[0] || at >= sizeof(f->message))
            continue;
        dev_name(e, to, tname, sizeof(tname));
        at += (size_t)snprintf(f->message + at, sizeof(f->message) - at, "; %s moved to %s", units, tname);
    }
}

static bool can_fall_back(const aik_split_exec *e, uint32_t failed)
{
    return e->cfg.placer && failed < e->n_devs && !e->dev[failed].is_cpu &&
           !(e->plan->excluded_mask & (1u << failed)) && e->n_fallbacks < e->n_devs;
}

/* Rebuild the KV caches of positions kv_valid .. n_past-1 on the current
 * devices by running them again (after a fallback moved layers). */
static int replay(aik_split_exec *e, uint32_t *ret_failed, aik_error *err)
{
    while (e->kv_valid < e->n_past) {
        uint32_t n = e->n_past - e->kv_valid < e->max_batch ? e->n_past - e->kv_valid : e->max_batch;
        int r = run_once(e, e->history + e->kv_valid, n, 1, e->kv_valid, ret_failed, err);
        if (r < 0)
            return r;
        e->kv_valid += n;
    }
    return 0;
}

/* Device `failed` failed with `cause`: replan without it, rebuild every
 * device's state and the KV cache of positions 0 .. n_past-1. Another
 * non-CPU failure while rebuilding falls back again; any other failure is
 * returned, and the next run resumes the rebuild (kv_valid < n_past). */
static int recover(aik_split_exec *e, uint32_t failed, aik_error *cause, aik_error *err)
{
    for (;;) {
        aik_placement *np = NULL, *old = e->plan;
        aik_error perr = { 0 };
        int r = aik_placement_replan_without(e->cfg.placer, old, failed, e->override, &np, &perr);
        if (r < 0) {
            char name[AIK_INV_ID_MAX + 16];
            dev_name(e, failed, name, sizeof(name));
            return aik_fail(err, r, name, "failed (%s: %s) and no plan without it: %s: %s", cause->where,
                            cause->message, perr.where, perr.message);
        }
        teardown(e);
        e->plan = np;
        e->n_fallbacks++;
        fallback_message(e, old, failed, cause);
        aik_placement_free(old);
        uint32_t f2 = UINT32_MAX;
        aik_error lerr = { 0 };
        e->kv_valid = 0;
        bool built = (r = setup(e, &f2, &lerr)) == 0;
        if (built && (r = replay(e, &f2, &lerr)) == 0)
            return 0;
        if (!can_fall_back(e, f2)) {
            if (!built) /* nothing usable is left: later runs say so */
                teardown(e);
            if (err)
                *err = lerr;
            return r;
        }
        failed = f2;
        *cause = lerr;
    }
}

int aik_split_exec_run(aik_split_exec *e, const int32_t *tokens, uint32_t n_tokens, uint32_t n_out,
                       const float **ret_logits, aik_error *err)
{
    const aik_graph *g;
    uint32_t failed = UINT32_MAX;
    aik_error lerr = { 0 };
    int r;

    if (!e || !tokens || !ret_logits || n_tokens == 0 || n_out == 0 || n_out > n_tokens)
        return aik_fail(err, -EINVAL, "split", "bad arguments (n_tokens %u, n_out %u)", n_tokens, n_out);
    g = e->g;
    if (!e->segs)
        return aik_fail(err, -EIO, "split", "no usable plan after an earlier failure");
    if (n_tokens > e->max_batch)
        return aik_fail(err, -EINVAL, "split", "batch of %u tokens exceeds max_batch %u", n_tokens, e->max_batch);
    if ((uint64_t)e->n_past + n_tokens > e->ctx_len)
        return aik_fail(err, -ENOSPC, "split", "context full: %u positions used + %u new > %u", e->n_past, n_tokens,
                        e->ctx_len);
    for (uint32_t t = 0; t < n_tokens; t++)
        if (tokens[t] < 0 || (uint32_t)tokens[t] >= g->hp.n_vocab)
            return aik_fail(err, -EINVAL, "split", "token id %d at %u outside vocabulary of %u", tokens[t], t,
                            g->hp.n_vocab);
    for (;;) {
        r = replay(e, &failed, &lerr);
        if (r == 0)
            r = run_once(e, tokens, n_tokens, n_out, e->n_past, &failed, &lerr);
        if (r == 0)
            break;
        if (!can_fall_back(e, failed)) {
            if (err)
                *err = lerr;
            return r;
        }
        if ((r = recover(e, failed, &lerr, err)) < 0)
            return r;
    }
    memcpy(e->history + e->n_past, tokens, (size_t)n_tokens * sizeof(int32_t));
    e->n_past += n_tokens;
    e->kv_valid = e->n_past;
    if (e->cfg.record)
        for (uint32_t k = 0; k < e->n_segs; k++)
            e->cfg.record(e->cfg.record_user, e->segs[k].first_unit, e->segs[k].end_unit, e->segs[k].dev,
                          e->segs[k].ms);
    *ret_logits = e->logits;
    return 0;
}

/* ------------------------------------------------------------ lifecycle --- */

int aik_split_exec_new(const aik_graph *g, const aik_placement *plan, const aik_split_device *devs,
                       uint32_t n_devs, const aik_split_config *cfg, aik_split_exec **ret_exec, aik_error *err)
{
    aik_split_exec *e;
    int r;

    if (!g || !plan || !devs || !cfg || !ret_exec || cfg->max_batch == 0 || n_devs == 0 ||
        n_devs != plan->n_devices || n_devs > 32 || g->logits < 0 || g->logits >= g->n_nodes ||
        g->nodes[g->logits].n_cols != g->hp.n_vocab)
        return aik_fail(err, -EINVAL, "split", "missing graph, plan, devices (plan for %u, given %u), logits of "
                        "n_vocab columns or max_batch", plan ? plan->n_devices : 0, n_devs);
    if (cfg->placer && aik_placer_unit_count(cfg->placer) != plan->n_units)
        return aik_fail(err, -EINVAL, "split", "plan has %u units, placer %u", plan->n_units,
                        aik_placer_unit_count(cfg->placer));
    for (uint32_t d = 0; d < n_devs; d++) {
        const aik_backend_ops *o = devs[d].ops;
        if (!o && !devs[d].backend)
            continue;
        if (!o || !devs[d].backend || o->abi_major != AIK_BACKEND_ABI_MAJOR ||
            o->struct_size < offsetof(aik_backend_ops, synchronize) || !o->get_info || !o->buffer_alloc ||
            !o->buffer_free || !o->buffer_upload || !o->buffer_download || !o->execute)
            return aik_fail(err, -EINVAL, "split", "device %u: no backend, ABI %u (want %u) or a required member "
                            "missing", d, o ? o->abi_major : 0, AIK_BACKEND_ABI_MAJOR);
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return aik_fail(err, -ENOMEM, "split", "out of memory");
    e->g = g;
    e->cfg = *cfg;
    e->n_devs = n_devs;
    e->n_nodes = (uint32_t)g->n_nodes;
    e->max_batch = cfg->max_batch;
    e->ctx_len = cfg->ctx_len ? cfg->ctx_len : g->hp.ctx_len;
    if (e->ctx_len == 0 || e->ctx_len > AIK_SLM_MAX_CTX) {
        r = aik_fail(err, -EINVAL, "split", "context length %u out of range", e->ctx_len);
        goto fail;
    }
    if (e->max_batch > e->ctx_len)
        e->max_batch = e->ctx_len;
    if ((r = aik_segment_nodes_from_graph(g, &e->base, err)) < 0)
        goto fail;
    e->dev = calloc(n_devs, sizeof(*e->dev));
    e->node_dev = calloc(e->n_nodes, sizeof(*e->node_dev));
    e->history = calloc(e->ctx_len, sizeof(*e->history));
    e->logits = calloc((size_t)e->max_batch * g->hp.n_vocab, sizeof(float));
    e->override = cfg->override ? strdup(cfg->override) : NULL;
    if (!e->dev || !e->node_dev || !e->history || !e->logits || (cfg->override && !e->override)) {
        r = aik_fail(err, -ENOMEM, "split", "out of memory");
        goto fail;
    }
    e->cfg.override = NULL; /* e->override is the copy in use */
    for (uint32_t d = 0; d < n_devs; d++) {
        aik_backend_info info = { .struct_size = sizeof(info) };
        e->dev[d].ops = devs[d].ops;
        e->dev[d].b = devs[d].backend;
        /* read an optional member only if the table is new enough to hold it */
        if (devs[d].ops && devs[d].ops->struct_size >= offsetof(aik_backend_ops, synchronize) + sizeof(void *))
            e->dev[d].sync = devs[d].ops->synchronize;
        if (devs[d].ops && (r = devs[d].ops->get_info(devs[d].backend, &info)) < 0) {
            r = aik_fail(err, r, "split", "device %u: get_info failed", d);
            goto fail;
        }
        e->dev[d].is_cpu = devs[d].ops && info.kind == AIK_BACKEND_CPU;
    }
    if (plan_copy(plan, &e->plan) < 0) {
        r = aik_fail(err, -ENOMEM, "split", "out of memory");
        goto fail;
    }
    {
        uint32_t failed;
        aik_error lerr = { 0 };
        /* a device that cannot take its weights or buffers is a run-time
         * failure like any other: fall back from it */
        if ((r = setup(e, &failed, &lerr)) < 0) {
            if (!can_fall_back(e, failed)) {
                if (err)
                    *err = lerr;
                goto fail;
            }
            if ((r = recover(e, failed, &lerr, err)) < 0)
                goto fail;
        }
    }
    *ret_exec = e;
    return 0;
fail:
    aik_split_exec_free(e);
    return r;
}

void aik_split_exec_free(aik_split_exec *e)
{
    if (!e)
        return;
    teardown(e);
    aik_placement_free(e->plan);
    free(e->dev);
    free(e->base);
    free(e->node_dev);
    free(e->history);
    free(e->staging);
    free(e->logits);
    free(e->override);
    free(e);
}

uint32_t aik_split_exec_n_past(const aik_split_exec *e) { return e ? e->n_past : 0; }
uint32_t aik_split_exec_ctx_len(const aik_split_exec *e) { return e ? e->ctx_len : 0; }
uint32_t aik_split_exec_max_batch(const aik_split_exec *e) { return e ? e->max_batch : 0; }

void aik_split_exec_truncate(aik_split_exec *e, uint32_t n_past)
{
    if (e && n_past < e->n_past)
        e->n_past = n_past;
    if (e && e->kv_valid > e->n_past)
        e->kv_valid = e->n_past;
}

const aik_placement *aik_split_exec_plan(const aik_split_exec *e) { return e ? e->plan : NULL; }

const aik_error *aik_split_exec_fallback(const aik_split_exec *e)
{
    return e && e->n_fallbacks ? &e->fallback : NULL;
}

uint32_t aik_split_exec_fallback_count(const aik_split_exec *e) { return e ? e->n_fallbacks : 0; }
