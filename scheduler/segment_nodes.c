/* SPDX-License-Identifier: MIT */
#include "scheduler/segment_nodes.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/checked.h"
#include "common/error.h"

int aik_segment_nodes_from_graph(const aik_graph *g, aik_backend_node **ret_nodes, aik_error *err)
{
    aik_backend_node *nodes;

    if (!g || !ret_nodes || g->n_nodes <= 0)
        return aik_fail(err, -EINVAL, "segment", "no graph or an empty one");
    nodes = calloc((size_t)g->n_nodes, sizeof(*nodes));
    if (!nodes)
        return aik_fail(err, -ENOMEM, "segment", "out of memory");
    for (aik_node i = 0; i < g->n_nodes; i++) {
        const aik_gnode *n = &g->nodes[i];
        aik_backend_node *b = &nodes[i];
        *b = (aik_backend_node){
            .op = (uint32_t)n->op,
            .src = { n->src[0], n->src[1], n->src[2] },
            .n_cols = n->n_cols,
            .width = n->width,
            .row_base = n->base == AIK_ROWS_OUTPUT,
            .dtype = (uint32_t)n->dtype,
            .n_dims = n->n_dims,
            .eps = n->eps,
            .theta = n->theta,
            .scale = n->scale,
            .n_heads = n->n_heads,
            .n_kv_heads = n->n_kv_heads,
            .head_dim = n->head_dim,
            .layer = n->layer,
            .rope_mode = (uint32_t)n->rope_mode,
        };
        memcpy(b->shape, n->shape, sizeof(b->shape));
    }
    *ret_nodes = nodes;
    return 0;
}

uint64_t aik_segment_node_rows(const aik_backend_node *n, uint32_t n_batch, uint32_t n_out)
{
    uint64_t base = n->row_base == 0 ? n_batch : n_out;
    return n->n_cols ? base * n->width / n->n_cols : 0;
}

uint64_t aik_segment_weight_elems(const aik_backend_node *w)
{
    uint64_t e = 1;
    for (uint32_t i = 0; i < w->n_dims && i < AIK_MAX_DIMS; i++)
        if (aik_mul_overflow(e, w->shape[i], &e))
            return UINT64_MAX;
    return e;
}

static bool is_act(const aik_backend_node *x) { return x->op != AIK_OP_WEIGHT && x->op != AIK_OP_TOKENS; }

/* One executed node: buffers present and large enough, shapes agree. */
static int check_node(const aik_backend_segment *seg, uint32_t i, uint64_t (*room)(const aik_backend_tensor *),
                      const char *where, aik_error *err)
{
    const aik_backend_node *n = &seg->nodes[i];
    const char *name = aik_op_name((aik_op)n->op);
    const aik_backend_node *src[3] = { 0 };
    uint64_t rows = aik_segment_node_rows(n, seg->n_batch, seg->n_out);
    uint64_t kv_cols = (uint64_t)n->n_kv_heads * n->head_dim, bytes;
    bool same = true;

    for (int s = 0; s < 3; s++) {
        if (n->src[s] < -1 || n->src[s] >= (int32_t)i)
            return aik_fail(err, -EINVAL, where, "node %u (%s): source %d is not an earlier node", i, name, n->src[s]);
        if (n->src[s] < 0)
            continue;
        const aik_backend_node *x = src[s] = &seg->nodes[n->src[s]];
        if (!x->data.buffer)
            return aik_fail(err, -EINVAL, where, "node %u (%s): source %d has no buffer", i, name, n->src[s]);
        if (x->op == AIK_OP_WEIGHT) {
            uint64_t elems = aik_segment_weight_elems(x);
            if (!aik_dtype_valid(x->dtype) || elems == UINT64_MAX ||
                aik_dtype_bytes((aik_dtype)x->dtype, elems, &bytes) < 0 || room(&x->data) < bytes)
                return aik_fail(err, -ERANGE, where, "node %u (%s): weight %d buffer too small", i, name, n->src[s]);
            if (n->op != AIK_OP_MATMUL && n->op != AIK_OP_GET_ROWS && (x->dtype != AIK_DTYPE_F32 || elems != n->n_cols))
                return aik_fail(err, -EINVAL, where, "node %u (%s): weight %d is not %u f32 values", i, name,
                                n->src[s], n->n_cols);
        } else if (x->op == AIK_OP_TOKENS) {
            if (n->op != AIK_OP_GET_ROWS || s != 1 || room(&x->data) < (uint64_t)seg->n_batch * sizeof(int32_t))
                return aik_fail(err, -EINVAL, where, "node %u (%s): bad use of the tokens node", i, name);
        } else if (x->n_cols == 0 ||
                   room(&x->data) < aik_segment_node_rows(x, seg->n_batch, seg->n_out) * x->n_cols * sizeof(float)) {
            return aik_fail(err, -ERANGE, where, "node %u (%s): source %d buffer too small", i, name, n->src[s]);
        }
    }
    if (n->op == AIK_OP_RESHAPE) { /* a view: its source's buffer must hold the same bytes */
        if (!src[0] || !is_act(src[0]) || !n->data.buffer || n->n_cols == 0)
            return aik_fail(err, -EINVAL, where, "node %u (reshape): no activation to view", i);
        return 0;
    }
    if (n->n_cols == 0 || n->width == 0)
        return aik_fail(err, -EINVAL, where, "node %u (%s): 0 columns", i, name);
    if (!n->data.buffer)
        return aik_fail(err, -EINVAL, where, "node %u (%s): no output buffer", i, name);
    if (room(&n->data) < rows * n->n_cols * sizeof(float))
        return aik_fail(err, -ERANGE, where, "node %u (%s): output buffer too small", i, name);
    const aik_backend_node *a = src[0], *b = src[1], *c = src[2];
    switch ((aik_op)n->op) {
    case AIK_OP_GET_ROWS:
        same = a && b && a->op == AIK_OP_WEIGHT && b->op == AIK_OP_TOKENS && a->n_dims == 2 &&
               a->shape[0] == n->n_cols && rows == seg->n_batch;
        break;
    case AIK_OP_MATMUL:
        same = a && b && is_act(a) && b->op == AIK_OP_WEIGHT && a->n_cols == b->shape[0] && b->shape[0] > 0 &&
               (b->n_dims < 2 || b->shape[1] == n->n_cols) &&
               b->shape[0] % aik_dtype_block_elems((aik_dtype)b->dtype) == 0 &&
               aik_segment_node_rows(a, seg->n_batch, seg->n_out) == rows;
        break;
    case AIK_OP_ADD:
    case AIK_OP_MUL:
    case AIK_OP_SWIGLU:
        same = a && b && is_act(a) && a->n_cols == n->n_cols &&
               aik_segment_node_rows(a, seg->n_batch, seg->n_out) == rows &&
               (b->op == AIK_OP_WEIGHT ? n->op != AIK_OP_SWIGLU
                                        : is_act(b) && b->n_cols == n->n_cols &&
                                              aik_segment_node_rows(b, seg->n_batch, seg->n_out) == rows);
        break;
    case AIK_OP_SILU:
    case AIK_OP_RMS_NORM:
    case AIK_OP_SOFTMAX:
    case AIK_OP_ROPE:
        same = a && is_act(a) && a->n_cols == n->n_cols && aik_segment_node_rows(a, seg->n_batch, seg->n_out) == rows &&
               (n->op != AIK_OP_RMS_NORM || !b || b->op == AIK_OP_WEIGHT) &&
               (n->op != AIK_OP_ROPE ||
                (n->head_dim > 0 && n->head_dim % 2 == 0 && (uint64_t)n->n_heads * n->head_dim == n->n_cols));
        break;
    case AIK_OP_OUTPUT_ROWS:
        same = a && is_act(a) && a->n_cols == n->n_cols &&
               aik_segment_node_rows(a, seg->n_batch, seg->n_out) == seg->n_batch && rows == seg->n_out;
        break;
    case AIK_OP_ATTENTION:
        same = a && b && c && is_act(a) && is_act(b) && is_act(c) && n->n_heads > 0 && n->n_kv_heads > 0 &&
               n->head_dim > 0 && n->n_heads % n->n_kv_heads == 0 && a->n_cols == n->n_cols &&
               (uint64_t)n->n_heads * n->head_dim == n->n_cols && b->n_cols == kv_cols && c->n_cols == kv_cols &&
               aik_segment_node_rows(a, seg->n_batch, seg->n_out) == rows &&
               aik_segment_node_rows(b, seg->n_batch, seg->n_out) == rows &&
               aik_segment_node_rows(c, seg->n_batch, seg->n_out) == rows && rows == seg->n_batch &&
               n->layer < seg->n_kv && seg->k_cache && seg->v_cache && seg->k_cache[n->layer].buffer &&
               seg->v_cache[n->layer].buffer &&
               room(&seg->k_cache[n->layer]) >= (uint64_t)seg->ctx_len * kv_cols * sizeof(float) &&
               room(&seg->v_cache[n->layer]) >= (uint64_t)seg->ctx_len * kv_cols * sizeof(float);
        break;
    default:
        return aik_fail(err, -ENOTSUP, where, "node %u: op %u cannot be executed", i, n->op);
    }
    if (!same)
        return aik_fail(err, -EINVAL, where, "node %u (%s): operands do not match (%u columns, %llu rows)", i, name,
                        n->n_cols, (unsigned long long)rows);
    return 0;
}

int aik_segment_check(const aik_backend_segment *seg, uint64_t (*room)(const aik_backend_tensor *t),
                      const char *where, aik_error *err)
{
    if (!seg || !room || !seg->nodes || seg->first >= seg->end || seg->end > seg->n_nodes || seg->n_batch == 0 ||
        seg->n_out == 0 || seg->n_out > seg->n_batch || seg->ctx_len == 0)
        return aik_fail(err, -EINVAL, where, "bad segment (nodes %u..%u of %u, batch %u, out %u)",
                        seg ? seg->first : 0, seg ? seg->end : 0, seg ? seg->n_nodes : 0, seg ? seg->n_batch : 0,
                        seg ? seg->n_out : 0);
    if ((uint64_t)seg->n_past + seg->n_batch > seg->ctx_len)
        return aik_fail(err, -ENOSPC, where, "positions %u + %u exceed the context of %u", seg->n_past, seg->n_batch,
                        seg->ctx_len);
    for (uint32_t i = seg->first; i < seg->end; i++) {
        const aik_backend_node *n = &seg->nodes[i];
        int r;
        if (n->op >= AIK_OP_COUNT)
            return aik_fail(err, -ENOTSUP, where, "node %u: unknown op %u", i, n->op);
        if (n->op == AIK_OP_NONE || n->op == AIK_OP_WEIGHT || n->op == AIK_OP_TOKENS)
            continue;
        if ((r = check_node(seg, i, room, where, err)) < 0)
            return r;
    }
    return 0;
}
