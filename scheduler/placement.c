/* SPDX-License-Identifier: MIT */
/*
 * Placement planner (see placement.h for the cost model and search, and
 * docs/placement.md for the reasoning).
 */
#include "scheduler/placement.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aik/tensor.h"
#include "common/checked.h"
#include "common/error.h"
#include "graph/graph.h"
#include "loader/exec_profile.h"

struct aik_placer {
    aik_device_inventory inv;
    aik_placement_options opt;
    uint32_t n_units, n_dev, n_weights;
    aik_placement_unit *units;
    uint32_t *weight_idx;      /* all units' weight lists, back to back */
    uint64_t *weight_bytes;
    double *measured;          /* [u * n_dev + d], NAN when not recorded */
    uint32_t n_layers;         /* units 1..n_layers are layers (graph placers); synthetic: n_units - 2 */
};

/* ---------- construction ---------- */

static int placer_alloc(uint32_t n_units, uint32_t n_weights, uint64_t n_refs, const aik_device_inventory *inv,
                        const aik_placement_options *opt, aik_placer **ret, aik_error *err)
{
    aik_placer *p;
    if (n_units < 1 || n_units > AIK_PLACEMENT_MAX_UNITS)
        return aik_fail(err, -E2BIG, "placement.units", "%u units, must be 1..%u", n_units, AIK_PLACEMENT_MAX_UNITS);
    if (!inv || inv->n_devices < 1 || inv->n_devices > AIK_INV_MAX_DEVICES)
        return aik_fail(err, -EINVAL, "placement.inventory", "needs 1..%u devices", AIK_INV_MAX_DEVICES);
    p = calloc(1, sizeof(*p));
    if (!p)
        return aik_fail(err, -ENOMEM, "placement", "out of memory");
    p->inv = *inv;
    if (opt)
        p->opt = *opt;
    p->n_units = n_units;
    p->n_dev = inv->n_devices;
    p->n_weights = n_weights;
    p->n_layers = n_units >= 2 ? n_units - 2 : 0;
    p->units = calloc(n_units, sizeof(*p->units));
    p->weight_idx = calloc(n_refs ? n_refs : 1, sizeof(*p->weight_idx));
    p->weight_bytes = calloc(n_weights ? n_weights : 1, sizeof(*p->weight_bytes));
    p->measured = calloc((size_t)n_units * p->n_dev, sizeof(*p->measured));
    if (!p->units || !p->weight_idx || !p->weight_bytes || !p->measured) {
        aik_placer_free(p);
        return aik_fail(err, -ENOMEM, "placement", "out of memory");
    }
    for (size_t i = 0; i < (size_t)n_units * p->n_dev; i++)
        p->measured[i] = NAN;
    *ret = p;
    return 0;
}

int aik_placer_new_units(const aik_placement_unit *units, uint32_t n_units, const uint64_t *weight_bytes,
                         uint32_t n_weights, const aik_device_inventory *inv, const aik_placement_options *opt,
                         aik_placer **ret_placer, aik_error *err)
{
    aik_placer *p = NULL;
    uint64_t refs = 0;
    int r;

    if (!units || !ret_placer || (n_weights && !weight_bytes))
        return aik_fail(err, -EINVAL, "placement", "missing units or weights");
    for (uint32_t u = 0; u < n_units; u++) {
        if (units[u].n_weights && !units[u].weights)
            return aik_fail(err, -EINVAL, units[u].name, "weights missing");
        for (uint32_t i = 0; i < units[u].n_weights; i++)
            if (units[u].weights[i] >= n_weights)
                return aik_fail(err, -EINVAL, units[u].name, "weight index %u out of range (%u weights)",
                                units[u].weights[i], n_weights);
        if (!(units[u].flops >= 0) || !isfinite(units[u].flops))
            return aik_fail(err, -EINVAL, units[u].name, "flops must be finite and >= 0");
        refs += units[u].n_weights;
    }
    r = placer_alloc(n_units, n_weights, refs, inv, opt, &p, err);
    if (r < 0)
        return r;
    memcpy(p->weight_bytes, weight_bytes, n_weights * sizeof(*weight_bytes));
    refs = 0;
    for (uint32_t u = 0; u < n_units; u++) {
        p->units[u] = units[u];
        p->units[u].name[sizeof(p->units[u].name) - 1] = '\0';
        memcpy(p->weight_idx + refs, units[u].weights, units[u].n_weights * sizeof(uint32_t));
        p->units[u].weights = p->weight_idx + refs;
        refs += units[u].n_weights;
    }
    *ret_placer = p;
    return 0;
}

/* Unit of a weight by name: token_embd* -> 0, blk.N.* -> N + 1, else head. */
static int weight_unit(const char *name, uint32_t n_layers, uint32_t *ret)
{
    if (strncmp(name, "blk.", 4) == 0) {
        char *end = NULL;
        unsigned long n = strtoul(name + 4, &end, 10);
        if (end == name + 4 || *end != '.' || n >= n_layers)
            return -EINVAL;
        *ret = (uint32_t)n + 1;
    } else if (strncmp(name, "token_embd", 10) == 0) {
        *ret = 0;
    } else {
        *ret = n_layers + 1;
    }
    return 0;
}

static bool is_exec(const aik_gnode *n)
{
    return n->op != AIK_OP_WEIGHT && n->op != AIK_OP_TOKENS && n->op != AIK_OP_NONE;
}

int aik_placer_new(const aik_graph *g, const aik_device_inventory *inv, const aik_placement_options *opt,
                   aik_placer **ret_placer, aik_error *err)
{
    aik_placer *p = NULL;
    uint32_t *tag = NULL, *maxuse = NULL, *widx = NULL, *wseen = NULL;
    uint32_t L, n_units, n_weights = 0, ctx;
    uint64_t refs = 0;
    int32_t n;
    int r;

    if (!g || !ret_placer)
        return aik_fail(err, -EINVAL, "placement", "no graph");
    n = g->n_nodes;
    L = g->hp.n_layers;
    if (L > AIK_PLACEMENT_MAX_UNITS - 2)
        return aik_fail(err, -E2BIG, "graph.n_layers", "%u layers, at most %u", L, AIK_PLACEMENT_MAX_UNITS - 2);
    n_units = L + 2;
    ctx = opt && opt->ctx_len ? opt->ctx_len : g->hp.ctx_len;
    tag = calloc((size_t)n + 1, sizeof(*tag));
    maxuse = calloc((size_t)n + 1, sizeof(*maxuse));
    widx = calloc((size_t)n + 1, sizeof(*widx));
    wseen = calloc((size_t)n + 1, sizeof(*wseen));
    if (!tag || !maxuse || !widx || !wseen) {
        r = aik_fail(err, -ENOMEM, "placement", "out of memory");
        goto out;
    }

    /* Pass 1: unit of every node, weight numbering. */
    for (int32_t i = 0; i < n; i++) {
        const aik_gnode *nd = &g->nodes[i];
        uint32_t t = 0;
        if (nd->op == AIK_OP_WEIGHT) {
            if (weight_unit(nd->name, L, &t) < 0) {
                r = aik_fail(err, -EINVAL, nd->name, "layer index outside 0..%u", L ? L - 1 : 0);
                goto out;
            }
            widx[i] = n_weights++;
        } else if (nd->op != AIK_OP_TOKENS) {
            for (int k = 0; k < 3; k++)
                if (nd->src[k] >= 0 && nd->src[k] < i && tag[nd->src[k]] > t)
                    t = tag[nd->src[k]];
            if (nd->op == AIK_OP_ATTENTION && nd->layer + 1 > t) {
                if (nd->layer >= L) {
                    r = aik_fail(err, -EINVAL, "graph.attention", "KV slot %u outside %u layers", nd->layer, L);
                    goto out;
                }
                t = nd->layer + 1;
            }
        }
        tag[i] = t;
    }
    r = placer_alloc(n_units, n_weights, 0, inv, opt, &p, err);
    if (r < 0)
        goto out;
    for (uint32_t u = 0; u < n_units; u++) {
        aik_placement_unit *un = &p->units[u];
        if (u == 0)
            snprintf(un->name, sizeof(un->name), "embedding");
        else if (u == n_units - 1)
            snprintf(un->name, sizeof(un->name), "output");
        else
            snprintf(un->name, sizeof(un->name), "layer %u", u - 1);
        un->first_node = UINT32_MAX;
    }

    /* Pass 2: order check, node ranges, costs, ops, boundary traffic. */
    uint32_t prev = 0;
    for (int32_t i = 0; i < n; i++) {
        const aik_gnode *nd = &g->nodes[i];
        aik_placement_unit *un = &p->units[tag[i]];
        uint64_t rows = aik_gnode_rows(nd, 1, 1), cols = nd->n_cols, wbytes = 0;
        int32_t wsrc = -1;
        double f = 0;

        if (nd->op == AIK_OP_WEIGHT) {
            uint64_t elems = 1;
            for (uint32_t k = 0; k < nd->n_dims && k < AIK_MAX_DIMS; k++)
                if (aik_mul_overflow(elems, nd->shape[k], &elems)) {
                    r = aik_fail(err, -EOVERFLOW, nd->name, "element count overflows");
                    goto out;
                }
            if (aik_dtype_bytes(nd->dtype, elems, &p->weight_bytes[widx[i]]) < 0) {
                r = aik_fail(err, -EINVAL, nd->name, "size not representable in dtype %s", aik_dtype_name(nd->dtype));
                goto out;
            }
            continue;
        }
        if (!is_exec(nd))
            continue;
        if (tag[i] < prev) {
            r = aik_fail(err, -EINVAL, "graph", "node %d (%s) belongs to %s but follows %s: nodes are not ordered "
                         "embedding, layers, output", i, aik_op_name(nd->op), un->name, p->units[prev].name);
            goto out;
        }
        prev = tag[i];
        if (un->first_node == UINT32_MAX)
            un->first_node = (uint32_t)i;
        un->end_node = (uint32_t)i + 1;

        for (int k = 0; k < 3; k++) {
            int32_t s = nd->src[k];
            if (s < 0 || s >= i)
                continue;
            if (g->nodes[s].op == AIK_OP_WEIGHT) {
                wsrc = s;
                if (wseen[s] != tag[i] + 1) { /* once per unit */
                    wseen[s] = tag[i] + 1;
                    refs++;
                }
            } else if (tag[s] < tag[i] && tag[i] > maxuse[s]) {
                maxuse[s] = tag[i];
            }
        }
        if (wsrc >= 0)
            wbytes = p->weight_bytes[widx[wsrc]];
        switch (nd->op) {
        case AIK_OP_MATMUL:
            if (wsrc >= 0)
                f = 2.0 * (double)rows * (double)g->nodes[wsrc].shape[0] * (double)g->nodes[wsrc].shape[1];
            else
                f = 2.0 * (double)rows * (double)cols * (double)cols;
            un->read_bytes += wbytes;
            break;
        case AIK_OP_GET_ROWS: /* reads one row of the table per token */
            f = (double)rows * (double)cols;
            if (wsrc >= 0 && g->nodes[wsrc].n_dims >= 2 && g->nodes[wsrc].shape[1])
                un->read_bytes += wbytes / g->nodes[wsrc].shape[1] * rows;
            break;
        case AIK_OP_ATTENTION: {
            uint64_t kvc = (uint64_t)nd->n_kv_heads * nd->head_dim, kv;
            f = 4.0 * (double)ctx * (double)nd->n_heads * (double)nd->head_dim;
            kv = 2ull * ctx * kvc * sizeof(float);
            un->kv_bytes += kv;
            un->read_bytes += kv; /* decode at full context: the worst case a budget must hold */
            break;
        }
        case AIK_OP_RMS_NORM: f = 4.0 * (double)rows * (double)cols; un->read_bytes += wbytes; break;
        case AIK_OP_ROPE: f = 6.0 * (double)rows * (double)cols; break;
        case AIK_OP_SILU: case AIK_OP_SWIGLU: case AIK_OP_SOFTMAX: f = 5.0 * (double)rows * (double)cols; break;
        case AIK_OP_ADD: case AIK_OP_MUL: f = (double)rows * (double)cols; un->read_bytes += wbytes; break;
        default: break; /* RESHAPE, OUTPUT_ROWS: views */
        }
        un->flops += f;
        un->op_dtypes[nd->op] |= 1u << (wsrc >= 0 ? (uint32_t)g->nodes[wsrc].dtype : (uint32_t)AIK_DTYPE_F32);
    }
    for (uint32_t u = 0; u < n_units; u++)
        if (p->units[u].first_node == UINT32_MAX)
            p->units[u].first_node = p->units[u].end_node = 0;

    /* Activations crossing boundaries: node s leaves its unit and is read up
     * to unit maxuse[s], so every boundary in between carries it. */
    for (int32_t s = 0; s < n; s++) {
        const aik_gnode *nd = &g->nodes[s];
        uint64_t bytes;
        if (maxuse[s] <= tag[s] || nd->op == AIK_OP_WEIGHT)
            continue;
        bytes = nd->op == AIK_OP_TOKENS ? sizeof(int32_t) : aik_gnode_rows(nd, 1, 1) * nd->n_cols * sizeof(float);
        for (uint32_t b = tag[s]; b < maxuse[s]; b++)
            p->units[b].out_bytes += bytes;
    }

    /* Per-unit weight lists (a weight used by two units is listed in both;
     * memory accounting counts it once per device). */
    free(p->weight_idx);
    p->weight_idx = calloc(refs ? refs : 1, sizeof(*p->weight_idx));
    if (!p->weight_idx) {
        r = aik_fail(err, -ENOMEM, "placement", "out of memory");
        goto out;
    }
    memset(wseen, 0, ((size_t)n + 1) * sizeof(*wseen));
    {
        uint64_t at = 0;
        for (uint32_t u = 0; u < n_units; u++) {
            p->units[u].weights = p->weight_idx + at;
            for (int32_t i = 0; i < n; i++) {
                const aik_gnode *nd = &g->nodes[i];
                if (tag[i] != u || !is_exec(nd))
                    continue;
                for (int k = 0; k < 3; k++) {
                    int32_t s = nd->src[k];
                    if (s >= 0 && s < i && g->nodes[s].op == AIK_OP_WEIGHT && wseen[s] != u + 1) {
                        wseen[s] = u + 1;
                        p->weight_idx[at++] = widx[s];
                        p->units[u].n_weights++;
                    }
                }
            }
        }
    }
    *ret_placer = p;
    p = NULL;
    r = 0;
out:
    aik_placer_free(p);
    free(tag);
    free(maxuse);
    free(widx);
    free(wseen);
    return r;
}

void aik_placer_free(aik_placer *p)
{
    if (!p)
        return;
    free(p->units);
    free(p->weight_idx);
    free(p->weight_bytes);
    free(p->measured);
    free(p);
}

uint32_t aik_placer_unit_count(const aik_placer *p)
{
    return p ? p->n_units : 0;
}

const aik_placement_unit *aik_placer_unit(const aik_placer *p, uint32_t u)
{
    return p && u < p->n_units ? &p->units[u] : NULL;
}

/* ---------- cost model ---------- */

static uint64_t budget(const aik_placer *p, uint32_t d)
{
    uint64_t m = p->inv.dev[d].info.memory_bytes;
    return m > p->opt.reserve_bytes ? m - p->opt.reserve_bytes : 0;
}

/* Why unit u cannot run on d regardless of memory: 0, or -ENOTSUP with a
 * reason in buf. */
static int unit_supported(const aik_placer *p, uint32_t u, uint32_t d, char *buf, size_t len)
{
    const aik_inv_device *dev = &p->inv.dev[d];
    if (p->opt.backends && !(p->opt.backends & dev->backend_bit)) {
        if (buf)
            snprintf(buf, len, "backend not allowed by the execution profile");
        return -ENOTSUP;
    }
    for (int op = 0; op < AIK_OP_COUNT && op < 32; op++) {
        uint32_t missing = p->units[u].op_dtypes[op] & ~dev->info.op_dtypes[op];
        if (missing) {
            if (buf)
                snprintf(buf, len, "op %s with %s unsupported", aik_op_name((aik_op)op),
                         aik_dtype_name((aik_dtype)__builtin_ctz(missing)));
            return -ENOTSUP;
        }
    }
    return 0;
}

static double estimate_ms(const aik_placer *p, uint32_t u, uint32_t d)
{
    const aik_inv_device *dev = &p->inv.dev[d];
    double c = p->units[u].flops / (dev->info.declared_gflops * 1e9);
    double b = (double)p->units[u].read_bytes / (dev->info.declared_gbps * 1e9);
    return (c > b ? c : b) * 1e3;
}

static double unit_ms(const aik_placer *p, uint32_t u, uint32_t d)
{
    double m = p->measured[(size_t)u * p->n_dev + d];
    return isnan(m) ? estimate_ms(p, u, d) : m;
}

static double launch_ms(const aik_placer *p, uint32_t d)
{
    return p->inv.dev[d].launch_us / 1e3;
}

/* Moving unit (u-1)'s outputs from device a to b. */
static double transfer_ms(const aik_placer *p, uint32_t u, uint32_t a, uint32_t b)
{
    double gbps, lat;
    if (a == b || u == 0)
        return 0;
    aik_device_inventory_link(&p->inv, a, b, &gbps, &lat);
    return (double)p->units[u - 1].out_bytes / (gbps * 1e9) * 1e3 + lat / 1e3;
}

/* Cost of placing u on d after u-1 on prev. */
static double step_ms(const aik_placer *p, uint32_t u, uint32_t prev, uint32_t d)
{
    double c = unit_ms(p, u, d);
    if (u == 0 || prev != d)
        c += launch_ms(p, d) + transfer_ms(p, u, prev, d);
    return c;
}

int aik_placer_unit_cost(const aik_placer *p, uint32_t u, uint32_t d, double *ret_ms)
{
    if (!p || u >= p->n_units || d >= p->n_dev || !ret_ms)
        return -EINVAL;
    if (unit_supported(p, u, d, NULL, 0) < 0)
        return -ENOTSUP;
    *ret_ms = unit_ms(p, u, d);
    return 0;
}

/* Memory a unit alone needs on a device (its distinct weights + KV). */
static uint64_t unit_bytes(const aik_placer *p, uint32_t u)
{
    uint64_t b = p->units[u].kv_bytes;
    for (uint32_t i = 0; i < p->units[u].n_weights; i++)
        if (aik_add_overflow(b, p->weight_bytes[p->units[u].weights[i]], &b))
            return UINT64_MAX;
    return b;
}

/* Resident bytes per device for an assignment (shared weights once). */
static int device_usage(const aik_placer *p, const uint32_t *assign, uint64_t *used)
{
    uint8_t *seen = calloc((size_t)p->n_dev * (p->n_weights ? p->n_weights : 1), 1);
    if (!seen)
        return -ENOMEM;
    memset(used, 0, p->n_dev * sizeof(*used));
    for (uint32_t u = 0; u < p->n_units; u++) {
        uint32_t d = assign[u];
        uint64_t *x = &used[d];
        if (aik_add_overflow(*x, p->units[u].kv_bytes, x))
            *x = UINT64_MAX;
        for (uint32_t i = 0; i < p->units[u].n_weights; i++) {
            uint32_t w = p->units[u].weights[i];
            if (!seen[(size_t)d * p->n_weights + w]) {
                seen[(size_t)d * p->n_weights + w] = 1;
                if (aik_add_overflow(*x, p->weight_bytes[w], x))
                    *x = UINT64_MAX;
            }
        }
    }
    free(seen);
    return 0;
}

int aik_placer_evaluate(const aik_placer *p, const uint32_t *unit_device, double *ret_ms, aik_error *err)
{
    uint64_t used[AIK_INV_MAX_DEVICES];
    char why[128];
    double t = 0;
    int r;

    if (!p || !unit_device || !ret_ms)
        return aik_fail(err, -EINVAL, "placement", "missing argument");
    for (uint32_t u = 0; u < p->n_units; u++) {
        uint32_t d = unit_device[u];
        if (d >= p->n_dev)
            return aik_fail(err, -EINVAL, p->units[u].name, "device index %u out of range", d);
        if (unit_supported(p, u, d, why, sizeof(why)) < 0)
            return aik_fail(err, -ENOTSUP, p->units[u].name, "cannot run on %s: %s", p->inv.dev[d].id, why);
        t += step_ms(p, u, u ? unit_device[u - 1] : d, d);
    }
    r = device_usage(p, unit_device, used);
    if (r < 0)
        return aik_fail(err, r, "placement", "out of memory");
    for (uint32_t d = 0; d < p->n_dev; d++)
        if (used[d] > budget(p, d))
            return aik_fail(err, -ENOSPC, p->inv.dev[d].id, "needs %" PRIu64 " bytes, budget %" PRIu64, used[d],
                            budget(p, d));
    *ret_ms = t;
    return 0;
}

/* ---------- search ---------- */

typedef struct search {
    const aik_placer *p;
    const int32_t *pin;       /* per unit: device or -1 */
    uint32_t excluded;        /* device bit mask */
    uint8_t *ok;              /* [u * D + d]: may run there (ops, profile, pin, alone fits) */
    double *h;                /* [u * D + d]: exact memory-free cost of units after u, u on d */
    uint32_t *refc;           /* [d * W + w] */
    uint64_t used[AIK_INV_MAX_DEVICES];
    uint32_t *cur, *best;
    double best_ms;
    bool found, exhausted;
    uint64_t expansions;
    /* Memo of visited states (see memo_seen). */
    bool memo_on;
    uint32_t n_shared, shared[64]; /* weights listed by more than one unit */
    uint64_t *memo;               /* MEMO_SLOTS entries of memo_stride words */
    size_t memo_stride;
    /* Lagrangian memory bound: lam[d] ms per byte of device d's capacity,
     * lsuf[u] = sum over units >= u of min_d (cost + lam[d] * own bytes). */
    double lam[AIK_INV_MAX_DEVICES];
    double *lsuf;
    uint64_t *own;                /* per unit: bytes excluding shared weights */
} search;

/* Lower bound on the cost of units >= u given the memory left: for any
 * lam >= 0, sum_u min_d (c_ud + lam_d b_u) - sum_d lam_d cap_d <= the
 * cheapest assignment that fits (Lagrangian relaxation of the capacities;
 * transfers and launches are >= 0 and left out). */
static double mem_bound(const search *s, uint32_t u)
{
    const aik_placer *p = s->p;
    double b = s->lsuf[u];
    for (uint32_t d = 0; d < p->n_dev; d++) {
        uint64_t cap = budget(p, d);
        b -= s->lam[d] * (double)(cap > s->used[d] ? cap - s->used[d] : 0);
    }
    return b;
}

static void lagrange_suffix(search *s, const double *lam, double *suf, uint32_t *arg)
{
    const aik_placer *p = s->p;
    uint32_t U = p->n_units, D = p->n_dev;
    suf[U] = 0;
    for (uint32_t u = U; u-- > 0;) {
        double m = INFINITY;
        for (uint32_t d = 0; d < D; d++)
            if (s->ok[(size_t)u * D + d]) {
                double c = unit_ms(p, u, d) + lam[d] * (double)s->own[u];
                if (c < m) {
                    m = c;
                    if (arg)
                        arg[u] = d;
                }
            }
        suf[u] = suf[u + 1] + m;
    }
}

/* Pick lam by a few subgradient steps on the root relaxation (any lam is
 * valid; better ones prune more). */
static int lagrange_init(search *s)
{
    const aik_placer *p = s->p;
    uint32_t U = p->n_units, D = p->n_dev;
    double lam[AIK_INV_MAX_DEVICES] = { 0 }, best = -INFINITY, scale = 0;
    double *suf = calloc(U + 1, sizeof(double));
    uint32_t *arg = calloc(U, sizeof(uint32_t));
    s->lsuf = calloc(U + 1, sizeof(double));
    if (!suf || !arg || !s->lsuf) {
        free(suf);
        free(arg);
        return -ENOMEM;
    }
    /* Step scale: the model's average ms per byte (a single tiny unit's
     * ratio would make the steps overshoot by orders of magnitude). */
    {
        double ms = 0, bytes = 0;
        for (uint32_t u = 0; u < U; u++) {
            double m = 0;
            for (uint32_t d = 0; d < D; d++)
                if (s->ok[(size_t)u * D + d] && unit_ms(p, u, d) > m)
                    m = unit_ms(p, u, d);
            ms += m;
            bytes += (double)s->own[u];
        }
        scale = bytes > 0 ? ms / bytes : 0;
    }
    for (int it = 0; it < 3000; it++) {
        double L, g[AIK_INV_MAX_DEVICES], norm = 0;
        lagrange_suffix(s, lam, suf, arg);
        L = suf[0];
        for (uint32_t d = 0; d < D; d++) {
            L -= lam[d] * (double)budget(p, d);
            g[d] = -(double)budget(p, d);
        }
        if (L > best) {
            best = L;
            memcpy(s->lam, lam, sizeof(lam));
        }
        for (uint32_t u = 0; u < U; u++)
            g[arg[u]] += (double)s->own[u];
        for (uint32_t d = 0; d < D; d++) {
            if (lam[d] <= 0 && g[d] < 0)
                g[d] = 0;
            norm += g[d] * g[d];
        }
        if (norm == 0)
            break; /* the relaxation fits: lam is optimal */
        norm = sqrt(norm);
        for (uint32_t d = 0; d < D; d++) {
            lam[d] += scale * 0.5 / sqrt((double)it + 1) * g[d] / norm;
            if (lam[d] < 0)
                lam[d] = 0;
        }
    }
    lagrange_suffix(s, s->lam, s->lsuf, NULL);
    free(suf);
    free(arg);
    return 0;
}

#define MEMO_SLOTS (1u << 16)

/* The cost of the remaining units depends only on (next unit, device of the
 * last one, bytes used per device, which shared weights each device already
 * holds). Two prefixes reaching the same state have the same future, so the
 * costlier (or equal) one can be dropped. Identical layers make such states
 * common (layer 3 on A and 4 on B vs the reverse), which keeps tight-memory
 * searches polynomial for uniform models. The table is a lossy cache: a
 * collision evicts, which only costs pruning power, never correctness.
 * Returns true when the state was seen with a cost <= g. */
static bool memo_seen(search *s, uint32_t u, uint32_t d, double g)
{
    const aik_placer *p = s->p;
    uint64_t key[2 + AIK_INV_MAX_DEVICES], h = 1469598103934665603ull, bits = 0;
    size_t n = 0;
    if (!s->memo_on)
        return false;
    for (uint32_t dv = 0; dv < p->n_dev; dv++)
        for (uint32_t i = 0; i < s->n_shared; i++)
            if (s->refc[(size_t)dv * p->n_weights + s->shared[i]])
                bits |= 1ull << (dv * s->n_shared + i);
    key[n++] = (uint64_t)u << 32 | d;
    key[n++] = bits;
    for (uint32_t dv = 0; dv < p->n_dev; dv++)
        key[n++] = s->used[dv];
    for (size_t i = 0; i < n; i++)
        h = (h ^ key[i]) * 1099511628211ull;
    uint64_t *e = s->memo + (h & (MEMO_SLOTS - 1)) * s->memo_stride;
    double stored;
    /* slot: [0] valid flag, [1..n] key, [n + 1] cost bits */
    if (e[0] && memcmp(e + 1, key, n * sizeof(uint64_t)) == 0) {
        memcpy(&stored, &e[n + 1], sizeof(stored));
        if (stored <= g * (1 + 1e-12))
            return true;
    }
    e[0] = 1;
    memcpy(e + 1, key, n * sizeof(uint64_t));
    memcpy(&e[n + 1], &g, sizeof(g));
    return false;
}

static void dfs(search *s, uint32_t u, double g)
{
    const aik_placer *p = s->p;
    uint32_t D = p->n_dev, W = p->n_weights;
    uint32_t order[AIK_INV_MAX_DEVICES];
    double key[AIK_INV_MAX_DEVICES];
    uint32_t n = 0;

    if (u == p->n_units) {
        if (!s->found || g < s->best_ms) {
            s->found = true;
            s->best_ms = g;
            memcpy(s->best, s->cur, p->n_units * sizeof(*s->cur));
        }
        return;
    }
    if (++s->expansions > (p->opt.max_expansions ? p->opt.max_expansions : AIK_PLACEMENT_MAX_EXPANSIONS)) {
        s->exhausted = true;
        return;
    }
    /* Children cheapest-bound first, so the first leaf is usually optimal. */
    for (uint32_t d = 0; d < D; d++) {
        if (!s->ok[(size_t)u * D + d])
            continue;
        double k = g + step_ms(p, u, u ? s->cur[u - 1] : d, d) + s->h[(size_t)u * D + d];
        /* The memory-aware bound for the units after u (u's own memory is
         * not yet charged to d here, so it is added before comparing). */
        if (s->lsuf) {
            double ku = g + step_ms(p, u, u ? s->cur[u - 1] : d, d) + mem_bound(s, u + 1) +
                        s->lam[d] * (double)s->own[u];
            if (ku > k)
                k = ku;
        }
        uint32_t j = n++;
        while (j > 0 && key[j - 1] > k) {
            key[j] = key[j - 1];
            order[j] = order[j - 1];
            j--;
        }
        key[j] = k;
        order[j] = d;
    }
    for (uint32_t i = 0; i < n && !s->exhausted; i++) {
        uint32_t d = order[i];
        uint64_t add = p->units[u].kv_bytes, before = s->used[d];
        bool fits = true;
        /* Prune with a relative epsilon so that float noise cannot make an
         * equal-cost plan look better. */
        if (s->found && key[i] >= s->best_ms * (1 - 1e-12))
            break;
        for (uint32_t w = 0; w < p->units[u].n_weights; w++) {
            uint32_t wi = p->units[u].weights[w];
            if (s->refc[(size_t)d * W + wi] == 0 && aik_add_overflow(add, p->weight_bytes[wi], &add))
                fits = false;
        }
        if (!fits || aik_add_overflow(before, add, &before) || before > budget(p, d))
            continue;
        s->used[d] = before;
        for (uint32_t w = 0; w < p->units[u].n_weights; w++)
            s->refc[(size_t)d * W + p->units[u].weights[w]]++;
        s->cur[u] = d;
        double g2 = g + step_ms(p, u, u ? s->cur[u - 1] : d, d);
        if (!memo_seen(s, u + 1, d, g2))
            dfs(s, u + 1, g2);
        for (uint32_t w = 0; w < p->units[u].n_weights; w++)
            s->refc[(size_t)d * W + p->units[u].weights[w]]--;
        s->used[d] -= add;
    }
}

static void build_segments(const aik_placer *p, aik_placement *pl)
{
    pl->n_segments = 0;
    for (uint32_t u = 0; u < p->n_units; u++) {
        uint32_t d = pl->unit_device[u];
        aik_placement_segment *sg;
        if (u == 0 || d != pl->unit_device[u - 1]) {
            sg = &pl->seg[pl->n_segments++];
            memset(sg, 0, sizeof(*sg));
            sg->first_unit = u;
            sg->device = d;
            sg->first_node = p->units[u].first_node;
            sg->compute_ms = launch_ms(p, d);
            sg->transfer_in_ms = u ? transfer_ms(p, u, pl->unit_device[u - 1], d) : 0;
        }
        sg = &pl->seg[pl->n_segments - 1];
        sg->end_unit = u + 1;
        if (p->units[u].end_node)
            sg->end_node = p->units[u].end_node;
        sg->compute_ms += unit_ms(p, u, d);
    }
}

static int resolve_dev(const aik_placer *p, const char *name, size_t len, uint32_t *ret, aik_error *err)
{
    char id[AIK_INV_ID_MAX];
    int d;
    if (len == 0 || len >= sizeof(id))
        return aik_fail(err, -EINVAL, "override", "device name of %zu characters", len);
    memcpy(id, name, len);
    id[len] = '\0';
    d = aik_device_inventory_find(&p->inv, id);
    if (d < 0)
        return aik_fail(err, -EINVAL, "override", "no device '%s' in inventory '%s'", id, p->inv.name);
    *ret = (uint32_t)d;
    return 0;
}

static int parse_uint(const char *s, size_t len, uint32_t *ret)
{
    uint64_t v = 0;
    if (len == 0 || len > 9)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *ret = (uint32_t)v;
    return 0;
}

/* Fill pin[] from an override spec (see placement.h). */
static int parse_override(const aik_placer *p, const char *spec, int32_t *pin, aik_error *err)
{
    uint32_t L = p->n_layers;
    const char *s = spec;
    for (uint32_t u = 0; u < p->n_units; u++)
        pin[u] = -1;
    if (!spec || !*spec)
        return 0;
    while (*s) {
        size_t len = strcspn(s, ",");
        const char *colon = memchr(s, ':', len);
        uint32_t d = 0, a, b;
        int r;

        if (strncmp(s, "gpu-layers=", 11) == 0 && !colon) {
            uint32_t nl;
            int gpu = aik_device_inventory_find(&p->inv, "gpu"), cpu = aik_device_inventory_find(&p->inv, "cpu");
            if (parse_uint(s + 11, len - 11, &nl) < 0)
                return aik_fail(err, -EINVAL, "override", "'%.*s': gpu-layers needs a count", (int)len, s);
            if (gpu < 0 || cpu < 0)
                return aik_fail(err, -EINVAL, "override", "gpu-layers needs a gpu and a cpu in inventory '%s'",
                                p->inv.name);
            for (uint32_t u = 0; u < p->n_units; u++)
                pin[u] = cpu;
            for (uint32_t l = nl > L ? 0 : L - nl; l < L; l++)
                pin[l + 1] = gpu;
            if (nl > L)
                pin[p->n_units - 1] = gpu;
        } else {
            if (!colon)
                return aik_fail(err, -EINVAL, "override", "'%.*s': expected WHAT:DEVICE", (int)len, s);
            r = resolve_dev(p, colon + 1, len - (size_t)(colon + 1 - s), &d, err);
            if (r < 0)
                return r;
            size_t wl = (size_t)(colon - s);
            if (wl == 9 && strncmp(s, "embedding", 9) == 0) {
                pin[0] = (int32_t)d;
            } else if (wl == 6 && strncmp(s, "output", 6) == 0) {
                pin[p->n_units - 1] = (int32_t)d;
            } else if (wl > 7 && strncmp(s, "layers=", 7) == 0) {
                const char *dash = memchr(s + 7, '-', wl - 7);
                if (dash) {
                    if (parse_uint(s + 7, (size_t)(dash - s - 7), &a) < 0 ||
                        parse_uint(dash + 1, (size_t)(colon - dash - 1), &b) < 0)
                        return aik_fail(err, -EINVAL, "override", "'%.*s': bad layer range", (int)len, s);
                } else {
                    if (parse_uint(s + 7, wl - 7, &a) < 0)
                        return aik_fail(err, -EINVAL, "override", "'%.*s': bad layer number", (int)len, s);
                    b = a;
                }
                if (a > b || b >= L)
                    return aik_fail(err, -EINVAL, "override", "'%.*s': layers must be within 0-%u, first <= last",
                                    (int)len, s, L ? L - 1 : 0);
                for (uint32_t l = a; l <= b; l++)
                    pin[l + 1] = (int32_t)d;
            } else {
                return aik_fail(err, -EINVAL, "override", "'%.*s': expected embedding, output, layers=A-B or "
                                "gpu-layers=N", (int)len, s);
            }
        }
        s += len;
        if (*s == ',') {
            s++;
            if (!*s)
                return aik_fail(err, -EINVAL, "override", "trailing comma");
        }
    }
    return 0;
}

static int plan_core(aik_placer *p, const int32_t *pin, uint32_t excluded, aik_placement **ret, aik_error *err)
{
    uint32_t U = p->n_units, D = p->n_dev;
    search s = { .p = p, .pin = pin, .excluded = excluded };
    aik_placement *pl = NULL;
    char why[128];
    int r;

    s.ok = calloc((size_t)U * D, 1);
    s.h = calloc((size_t)U * D, sizeof(double));
    s.refc = calloc((size_t)D * (p->n_weights ? p->n_weights : 1), sizeof(uint32_t));
    s.cur = calloc(U, sizeof(uint32_t));
    s.best = calloc(U, sizeof(uint32_t));
    if (!s.ok || !s.h || !s.refc || !s.cur || !s.best) {
        r = aik_fail(err, -ENOMEM, "placement", "out of memory");
        goto out;
    }
    for (uint32_t u = 0; u < U; u++) {
        bool any = false;
        for (uint32_t d = 0; d < D; d++) {
            bool ok = !(excluded & (1u << d)) && (pin[u] < 0 || pin[u] == (int32_t)d) &&
                      unit_supported(p, u, d, why, sizeof(why)) == 0 && unit_bytes(p, u) <= budget(p, d);
            s.ok[(size_t)u * D + d] = ok;
            any |= ok;
        }
        if (!any) {
            if (pin[u] >= 0) {
                uint32_t d = (uint32_t)pin[u];
                if (excluded & (1u << d))
                    r = aik_fail(err, -ENOSPC, p->units[u].name, "pinned to excluded device %s", p->inv.dev[d].id);
                else if (unit_supported(p, u, d, why, sizeof(why)) < 0)
                    r = aik_fail(err, -ENOTSUP, p->units[u].name, "pinned to %s: %s", p->inv.dev[d].id, why);
                else
                    r = aik_fail(err, -ENOSPC, p->units[u].name, "pinned to %s: needs %" PRIu64 " bytes, budget %"
                                 PRIu64, p->inv.dev[d].id, unit_bytes(p, u), budget(p, d));
            } else {
                r = aik_fail(err, -ENOSPC, p->units[u].name, "no device can run it (ops, execution profile, "
                             "memory or excluded)");
            }
            goto out;
        }
    }
    /* Exact memory-free suffix costs (the search's lower bound). */
    for (uint32_t u = U; u-- > 0;)
        for (uint32_t d = 0; d < D; d++) {
            double m = INFINITY;
            if (u + 1 < U) {
                for (uint32_t e = 0; e < D; e++)
                    if (s.ok[(size_t)(u + 1) * D + e]) {
                        double c = step_ms(p, u + 1, d, e) + s.h[(size_t)(u + 1) * D + e];
                        if (c < m)
                            m = c;
                    }
            } else {
                m = 0;
            }
            s.h[(size_t)u * D + d] = m;
        }
    /* Shared weights go into the memo key; too many of them (more than fit
     * in 64 bits over all devices) and the memo is simply not used. */
    {
        uint32_t *cnt = calloc(p->n_weights ? p->n_weights : 1, sizeof(uint32_t));
        if (!cnt) {
            r = aik_fail(err, -ENOMEM, "placement", "out of memory");
            goto out;
        }
        s.memo_on = true;
        for (uint32_t u = 0; u < U; u++)
            for (uint32_t i = 0; i < p->units[u].n_weights; i++)
                cnt[p->units[u].weights[i]]++;
        for (uint32_t w = 0; w < p->n_weights && s.memo_on; w++)
            if (cnt[w] > 1) {
                if (s.n_shared == 64 || (s.n_shared + 1) * D > 64)
                    s.memo_on = false;
                else
                    s.shared[s.n_shared++] = w;
            }
        s.own = calloc(U, sizeof(uint64_t));
        if (s.own) {
            for (uint32_t u = 0; u < U; u++) {
                s.own[u] = p->units[u].kv_bytes;
                for (uint32_t i = 0; i < p->units[u].n_weights; i++)
                    if (cnt[p->units[u].weights[i]] == 1)
                        s.own[u] += p->weight_bytes[p->units[u].weights[i]];
            }
            if (lagrange_init(&s) < 0) { /* a weaker search, not a failure */
                free(s.lsuf);
                s.lsuf = NULL;
            }
        }
        free(cnt);
        s.memo_stride = 3 + D;
        if (s.memo_on && !(s.memo = calloc((size_t)MEMO_SLOTS * s.memo_stride, sizeof(uint64_t))))
            s.memo_on = false; /* a slower search, not a failure */
    }
    dfs(&s, 0, 0);
    if (!s.found) {
        r = aik_fail(err, -ENOSPC, "placement", s.exhausted ? "search budget of %u expansions ran out before a "
                     "plan fit the memory budgets" : "no assignment fits the devices' memory budgets (%u units, %u "
                     "devices)", s.exhausted ? AIK_PLACEMENT_MAX_EXPANSIONS : U, D);
        goto out;
    }
    pl = calloc(1, sizeof(*pl));
    if (!pl || !(pl->unit_device = calloc(U, sizeof(uint32_t))) || !(pl->seg = calloc(U, sizeof(*pl->seg))) ||
        !(pl->device_bytes = calloc(D, sizeof(uint64_t)))) {
        r = aik_fail(err, -ENOMEM, "placement", "out of memory");
        goto out;
    }
    pl->n_units = U;
    pl->n_devices = D;
    memcpy(pl->unit_device, s.best, U * sizeof(uint32_t));
    pl->total_ms = s.best_ms;
    pl->optimal = !s.exhausted;
    pl->excluded_mask = excluded;
    for (uint32_t u = 0; u < U; u++)
        pl->pinned_units += pin[u] >= 0;
    build_segments(p, pl);
    r = device_usage(p, pl->unit_device, pl->device_bytes);
    if (r < 0) {
        r = aik_fail(err, r, "placement", "out of memory");
        goto out;
    }
    *ret = pl;
    pl = NULL;
    r = 0;
out:
    aik_placement_free(pl);
    free(s.ok);
    free(s.h);
    free(s.refc);
    free(s.cur);
    free(s.best);
    free(s.memo);
    free(s.lsuf);
    free(s.own);
    return r;
}

int aik_placer_plan(aik_placer *p, const char *override, aik_placement **ret_plan, aik_error *err)
{
    int32_t *pin;
    int r;
    if (!p || !ret_plan)
        return aik_fail(err, -EINVAL, "placement", "missing argument");
    pin = calloc(p->n_units, sizeof(*pin));
    if (!pin)
        return aik_fail(err, -ENOMEM, "placement", "out of memory");
    r = parse_override(p, override, pin, err);
    if (r == 0)
        r = plan_core(p, pin, 0, ret_plan, err);
    free(pin);
    return r;
}

int aik_placement_replan_without(aik_placer *p, const aik_placement *old, uint32_t device, const char *override,
                                 aik_placement **ret_plan, aik_error *err)
{
    aik_placement *pl = NULL;
    uint32_t excluded;
    int32_t *pin;
    int r;

    if (!p || !ret_plan || device >= (p ? p->n_dev : 0))
        return aik_fail(err, -EINVAL, "placement", "missing argument or device index out of range");
    if (old && old->n_units != p->n_units)
        return aik_fail(err, -EINVAL, "placement", "old plan is for %u units, placer has %u", old->n_units,
                        p->n_units);
    excluded = (old ? old->excluded_mask : 0) | (1u << device);
    if (excluded == (1u << p->n_dev) - 1)
        return aik_fail(err, -ENODEV, p->inv.dev[device].id, "failed and no other device is left");
    pin = calloc(p->n_units, sizeof(*pin));
    if (!pin)
        return aik_fail(err, -ENOMEM, "placement", "out of memory");
    r = parse_override(p, override, pin, err);
    if (r < 0)
        goto out;
    /* Pins to a failed device are void: falling back beats refusing to run. */
    for (uint32_t u = 0; u < p->n_units; u++)
        if (pin[u] >= 0 && (excluded & (1u << pin[u])))
            pin[u] = -1;
    r = plan_core(p, pin, excluded, &pl, err);
    if (r < 0) {
        aik_error_prefix(err, p->inv.dev[device].id);
        goto out;
    }
    {
        size_t at = (size_t)snprintf(pl->note, sizeof(pl->note), "%s failed; replanned without it",
                                     p->inv.dev[device].id);
        for (uint32_t u = 0; old && u < p->n_units && at < sizeof(pl->note); u++)
            if (old->unit_device[u] == device)
                at += (size_t)snprintf(pl->note + at, sizeof(pl->note) - at, "%s %s -> %s",
                                       at > 0 && strchr(pl->note, '>') ? "," : ":", p->units[u].name,
                                       p->inv.dev[pl->unit_device[u]].id);
    }
    *ret_plan = pl;
out:
    free(pin);
    return r;
}

void aik_placement_free(aik_placement *plan)
{
    if (!plan)
        return;
    free(plan->unit_device);
    free(plan->seg);
    free(plan->device_bytes);
    free(plan);
}

/* ---------- telemetry ---------- */

int aik_placement_record(void *placer, uint32_t first_unit, uint32_t end_unit, uint32_t device, double ms)
{
    aik_placer *p = placer;
    double total = 0, work;
    if (!p || first_unit >= end_unit || end_unit > p->n_units || device >= p->n_dev || !isfinite(ms) || ms < 0)
        return -EINVAL;
    for (uint32_t u = first_unit; u < end_unit; u++)
        total += estimate_ms(p, u, device);
    /* The launch overhead is charged per segment, not per unit. */
    work = ms - launch_ms(p, device);
    if (work < 0)
        work = 0;
    for (uint32_t u = first_unit; u < end_unit; u++) {
        double share = total > 0 ? work * estimate_ms(p, u, device) / total : work / (double)(end_unit - first_unit);
        double *m = &p->measured[(size_t)u * p->n_dev + device];
        *m = isnan(*m) ? share : (*m + share) / 2;
    }
    return 0;
}

/* ---------- explanation ---------- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int err;
} sbuf;

__attribute__((format(printf, 2, 3)))
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (b->err)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->err = -EINVAL;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n + 64;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->err = -ENOMEM;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

int aik_placement_explain(const aik_placer *p, const aik_placement *plan, char **ret_text)
{
    sbuf b = { 0 };
    uint32_t *alt = NULL;
    if (!p || !plan || !ret_text || plan->n_units != p->n_units || plan->n_devices != p->n_dev)
        return -EINVAL;
    b.s = malloc(256);
    alt = malloc(p->n_units * sizeof(*alt));
    if (!b.s || !alt) {
        free(b.s);
        free(alt);
        return -ENOMEM;
    }
    b.cap = 256;
    b.s[0] = '\0';
    sb_printf(&b, "inventory %s: %u units on %u segments, estimated %.4f ms/token%s\n", p->inv.name, p->n_units,
              plan->n_segments, plan->total_ms, plan->optimal ? " (optimal)" : " (search budget ran out: best found)");
    if (plan->note[0])
        sb_printf(&b, "%s\n", plan->note);
    for (uint32_t d = 0; d < p->n_dev; d++)
        sb_printf(&b, "device %s: %" PRIu64 " of %" PRIu64 " bytes%s\n", p->inv.dev[d].id, plan->device_bytes[d],
                  budget(p, d), plan->excluded_mask & (1u << d) ? " (excluded: failed)" : "");
    for (uint32_t i = 0; i < plan->n_segments; i++) {
        const aik_placement_segment *sg = &plan->seg[i];
        sb_printf(&b, "segment %u: %s..%s on %s: %.4f ms compute (incl. %.4f ms launch), %.4f ms transfer in\n", i,
                  p->units[sg->first_unit].name, p->units[sg->end_unit - 1].name, p->inv.dev[sg->device].id,
                  sg->compute_ms, launch_ms(p, sg->device), sg->transfer_in_ms);
        for (uint32_t u = sg->first_unit; u < sg->end_unit; u++) {
            bool measured = !isnan(p->measured[(size_t)u * p->n_dev + sg->device]);
            sb_printf(&b, "  %s: %.4f ms %s", p->units[u].name, unit_ms(p, u, sg->device),
                      measured ? "measured" : "estimated");
            for (uint32_t d = 0; d < p->n_dev; d++) {
                char why[128];
                aik_error e;
                double ms;
                if (d == sg->device)
                    continue;
                sb_printf(&b, "; %s: ", p->inv.dev[d].id);
                memcpy(alt, plan->unit_device, p->n_units * sizeof(*alt));
                alt[u] = d;
                aik_error_clear(&e);
                if (plan->excluded_mask & (1u << d))
                    sb_printf(&b, "excluded (failed)");
                else if (unit_supported(p, u, d, why, sizeof(why)) < 0)
                    sb_printf(&b, "%s", why);
                else if (aik_placer_evaluate(p, alt, &ms, &e) == -ENOSPC)
                    sb_printf(&b, "memory (%s: %s)", e.where, e.message);
                else if (e.code == 0)
                    sb_printf(&b, "%+.4f ms if moved alone", ms - plan->total_ms);
                else
                    sb_printf(&b, "%s", e.message);
            }
            sb_printf(&b, "\n");
        }
    }
    free(alt);
    if (b.err) {
        free(b.s);
        return b.err;
    }
    *ret_text = b.s;
    return 0;
}
