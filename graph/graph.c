/* SPDX-License-Identifier: MIT */
/*
 * Graph builder: the implementation of aik_graph_api. Every builder call
 * checks its operands' shapes and, for weights, the package tensor behind
 * them, so a package that does not fit the architecture is refused while the
 * graph is built, naming the tensor and the expectation.
 */
#include "graph/graph.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define GRAPH_MAX_NODES (1 << 20)

static const char *const op_names[AIK_OP_COUNT] = {
    [AIK_OP_NONE] = "none",         [AIK_OP_TOKENS] = "tokens",     [AIK_OP_WEIGHT] = "weight",
    [AIK_OP_GET_ROWS] = "get_rows", [AIK_OP_MATMUL] = "matmul",     [AIK_OP_ADD] = "add",
    [AIK_OP_MUL] = "mul",           [AIK_OP_RMS_NORM] = "rms_norm", [AIK_OP_ROPE] = "rope",
    [AIK_OP_ATTENTION] = "attention", [AIK_OP_SILU] = "silu",     [AIK_OP_SWIGLU] = "swiglu",
    [AIK_OP_SOFTMAX] = "softmax",   [AIK_OP_RESHAPE] = "reshape",   [AIK_OP_OUTPUT_ROWS] = "output_rows",
};

const char *aik_op_name(aik_op op)
{
    return op >= 0 && op < AIK_OP_COUNT && op_names[op] ? op_names[op] : "?";
}

__attribute__((format(printf, 4, 5)))
static int gfail(aik_graph *g, int code, const char *where, const char *fmt, ...)
{
    if (g->sticky)
        return g->sticky;
    g->sticky = code;
    g->err.code = code;
    snprintf(g->err.where, sizeof(g->err.where), "%s", where ? where : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err.message, sizeof(g->err.message), fmt, ap);
    va_end(ap);
    return code;
}

static aik_node push(aik_graph *g, const aik_gnode *n)
{
    if (g->n_nodes == g->cap) {
        int32_t cap = g->cap ? g->cap * 2 : 256;
        aik_gnode *nn;
        if (cap > GRAPH_MAX_NODES)
            return gfail(g, -E2BIG, NULL, "graph exceeds %d nodes", GRAPH_MAX_NODES);
        nn = realloc(g->nodes, (size_t)cap * sizeof(*nn));
        if (!nn)
            return gfail(g, -ENOMEM, NULL, "out of memory building graph");
        g->nodes = nn;
        g->cap = cap;
    }
    g->nodes[g->n_nodes] = *n;
    g->nodes[g->n_nodes].last_use = -1;
    return g->n_nodes++;
}

static void blank(aik_gnode *n, aik_op op)
{
    memset(n, 0, sizeof(*n));
    n->op = op;
    n->src[0] = n->src[1] = n->src[2] = -1;
}

/* Validate that id names an existing node; for activations return it. */
static const aik_gnode *operand(aik_graph *g, aik_node id, const char *opname, bool want_weight)
{
    const aik_gnode *n;

    if (g->sticky)
        return NULL;
    if (id < 0 || id >= g->n_nodes) {
        gfail(g, id < 0 ? id : -EINVAL, opname, "operand is not a node of this graph (%d)", id);
        return NULL;
    }
    n = &g->nodes[id];
    if (want_weight != (n->op == AIK_OP_WEIGHT)) {
        gfail(g, -EINVAL, opname, "operand %d must be %s", id, want_weight ? "a weight" : "an activation");
        return NULL;
    }
    return n;
}

static void shape_str(char *buf, size_t len, uint32_t n_dims, const uint64_t *shape)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (uint32_t i = 0; i < n_dims && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%" PRIu64, i ? ", " : "", shape[i]);
    if (o < len)
        snprintf(buf + o, len - o, "]");
}

static aik_node b_tokens(aik_graph *g)
{
    aik_gnode n;

    if (g->sticky)
        return g->sticky;
    if (g->tokens >= 0)
        return g->tokens;
    blank(&n, AIK_OP_TOKENS);
    n.n_cols = n.width = 1;
    g->tokens = push(g, &n);
    return g->tokens;
}

static aik_node b_weight(aik_graph *g, const char *name, uint32_t n_dims, const uint64_t *shape,
                         uint32_t flags)
{
    aik_gnode n;
    char want[96], have[96];

    if (g->sticky)
        return g->sticky;
    if (!name || !*name || strlen(name) > AIK_SLM_NAME_MAX)
        return gfail(g, -EINVAL, name ? name : "(null)", "weight name empty or longer than %d bytes",
                     AIK_SLM_NAME_MAX);
    if (n_dims < 1 || n_dims > AIK_MAX_DIMS || !shape)
        return gfail(g, -EINVAL, name, "weight declared with %u dimensions (1..%d)", n_dims, AIK_MAX_DIMS);
    for (uint32_t i = 0; i < n_dims; i++)
        if (shape[i] == 0 || shape[i] > UINT32_MAX)
            return gfail(g, -EINVAL, name, "declared dimension %u is %" PRIu64, i, shape[i]);
    /* The same weight may be used twice (tied embeddings): reuse its node. */
    for (aik_node i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == AIK_OP_WEIGHT && strcmp(g->nodes[i].name, name) == 0)
            return i;

    blank(&n, AIK_OP_WEIGHT);
    snprintf(n.name, sizeof(n.name), "%s", name);
    n.n_dims = n_dims;
    for (uint32_t i = 0; i < AIK_MAX_DIMS; i++)
        n.shape[i] = i < n_dims ? shape[i] : 1;
    n.dtype = AIK_DTYPE_F32;

    if (g->pkg) {
        const aik_slm_tensor *t = aik_slm_find(g->pkg, name);
        if (!t) {
            if (flags & AIK_WEIGHT_OPTIONAL)
                return -ENOENT;
            shape_str(want, sizeof(want), n_dims, shape);
            return gfail(g, -ENOENT, name, "tensor missing from package (the architecture needs shape %s)", want);
        }
        bool same = true;
        for (uint32_t i = 0; i < AIK_MAX_DIMS; i++)
            if (t->shape[i] != n.shape[i])
                same = false;
        if (!same) {
            shape_str(want, sizeof(want), n_dims, shape);
            shape_str(have, sizeof(have), t->n_dims, t->shape);
            return gfail(g, -EINVAL, name, "has shape %s, the architecture expects %s", have, want);
        }
        n.dtype = t->dtype;
        n.data = t->data;
    } else if (flags & AIK_WEIGHT_OPTIONAL) {
        /* Unbound graphs keep optional weights: the caller binds them. */
    }
    return push(g, &n);
}

static aik_node act(aik_graph *g, aik_op op, aik_node a, aik_node b, uint32_t cols, aik_row_base base)
{
    aik_gnode n;

    blank(&n, op);
    n.src[0] = a;
    n.src[1] = b;
    n.n_cols = n.width = cols;
    n.base = base;
    return push(g, &n);
}

/* Float weights that feed element-wise ops must be f32 (norms, biases). */
static int need_f32(aik_graph *g, const aik_gnode *w, const char *opname)
{
    if (w->dtype != AIK_DTYPE_F32)
        return gfail(g, -EINVAL, w->name, "dtype %s not supported as %s operand (needs f32)",
                     aik_dtype_name(w->dtype), opname);
    return 0;
}

static aik_node b_get_rows(aik_graph *g, aik_node table, aik_node ids)
{
    const aik_gnode *t = operand(g, table, "get_rows", true);
    const aik_gnode *i = operand(g, ids, "get_rows", false);

    if (!t || !i)
        return g->sticky;
    if (i->op != AIK_OP_TOKENS)
        return gfail(g, -EINVAL, "get_rows", "ids must be the tokens node");
    if (t->n_dims != 2)
        return gfail(g, -EINVAL, t->name, "embedding table must be 2-D [cols, rows]");
    return act(g, AIK_OP_GET_ROWS, table, ids, (uint32_t)t->shape[0], AIK_ROWS_BATCH);
}

static aik_node b_matmul(aik_graph *g, aik_node x, aik_node w)
{
    const aik_gnode *xa = operand(g, x, "matmul", false);
    const aik_gnode *wa = operand(g, w, "matmul", true);

    if (!xa || !wa)
        return g->sticky;
    if (wa->n_dims != 2)
        return gfail(g, -EINVAL, wa->name, "matmul weight must be 2-D [in, out]");
    if (wa->shape[0] != xa->n_cols)
        return gfail(g, -EINVAL, wa->name, "matmul weight has %" PRIu64 " inputs, activation has %u columns",
                     wa->shape[0], xa->n_cols);
    if (aik_dtype_block_elems(wa->dtype) > 1 && wa->shape[0] % aik_dtype_block_elems(wa->dtype))
        return gfail(g, -EINVAL, wa->name, "%s rows must be a multiple of %u", aik_dtype_name(wa->dtype),
                     aik_dtype_block_elems(wa->dtype));
    aik_node r = act(g, AIK_OP_MATMUL, x, w, (uint32_t)wa->shape[1], xa->base);
    if (r >= 0 && xa->width != xa->n_cols)
        return gfail(g, -EINVAL, "matmul", "operand is a reshaped view; reshape back first");
    return r;
}

static aik_node binary(aik_graph *g, aik_op op, aik_node a, aik_node b)
{
    const char *opname = aik_op_name(op);
    const aik_gnode *aa = operand(g, a, opname, false), *bb;

    if (!aa)
        return g->sticky;
    if (b < 0 || b >= g->n_nodes)
        return gfail(g, b < 0 ? b : -EINVAL, opname, "operand is not a node of this graph (%d)", b);
    bb = &g->nodes[b];
    if (bb->op == AIK_OP_WEIGHT) {
        if (bb->n_dims != 1 || bb->shape[0] != aa->n_cols)
            return gfail(g, -EINVAL, bb->name, "broadcast operand of %s must be 1-D with %u entries", opname,
                         aa->n_cols);
        if (need_f32(g, bb, opname) < 0)
            return g->sticky;
    } else if (bb->n_cols != aa->n_cols || bb->width != aa->width || bb->base != aa->base) {
        return gfail(g, -EINVAL, opname, "operands have different shapes (%u vs %u columns)", aa->n_cols,
                     bb->n_cols);
    }
    aik_node r = act(g, op, a, b, aa->n_cols, aa->base);
    if (r >= 0)
        g->nodes[r].width = aa->width;
    return r;
}

static aik_node b_add(aik_graph *g, aik_node a, aik_node b) { return binary(g, AIK_OP_ADD, a, b); }
static aik_node b_mul(aik_graph *g, aik_node a, aik_node b) { return binary(g, AIK_OP_MUL, a, b); }

static aik_node b_rms_norm(aik_graph *g, aik_node x, aik_node w, float eps)
{
    const aik_gnode *xa = operand(g, x, "rms_norm", false);
    const aik_gnode *wa = operand(g, w, "rms_norm", true);

    if (!xa || !wa)
        return g->sticky;
    if (wa->n_dims != 1 || wa->shape[0] != xa->n_cols)
        return gfail(g, -EINVAL, wa->name, "norm weight must be 1-D with %u entries", xa->n_cols);
    if (need_f32(g, wa, "rms_norm") < 0)
        return g->sticky;
    if (!(eps > 0.0f) || eps > 1.0f)
        return gfail(g, -EINVAL, "rms_norm", "epsilon %g out of range (0, 1]", (double)eps);
    aik_node r = act(g, AIK_OP_RMS_NORM, x, w, xa->n_cols, xa->base);
    if (r >= 0)
        g->nodes[r].eps = eps;
    return r;
}

static aik_node b_rope(aik_graph *g, aik_node x, uint32_t n_heads, uint32_t head_dim, float theta,
                       aik_rope_mode mode)
{
    const aik_gnode *xa = operand(g, x, "rope", false);

    if (!xa)
        return g->sticky;
    if (n_heads == 0 || head_dim == 0 || head_dim % 2 || (uint64_t)n_heads * head_dim != xa->n_cols)
        return gfail(g, -EINVAL, "rope", "%u heads × %u (even) must equal the %u columns", n_heads, head_dim,
                     xa->n_cols);
    if (xa->base != AIK_ROWS_BATCH || xa->width != xa->n_cols)
        return gfail(g, -EINVAL, "rope", "operand rows must be the batch's tokens");
    if (!(theta > 0.0f))
        return gfail(g, -EINVAL, "rope", "theta %g must be > 0", (double)theta);
    if (mode != AIK_ROPE_NORMAL && mode != AIK_ROPE_NEOX)
        return gfail(g, -EINVAL, "rope", "unknown mode %d", (int)mode);
    aik_node r = act(g, AIK_OP_ROPE, x, -1, xa->n_cols, xa->base);
    if (r >= 0) {
        g->nodes[r].n_heads = n_heads;
        g->nodes[r].head_dim = head_dim;
        g->nodes[r].theta = theta;
        g->nodes[r].rope_mode = mode;
    }
    return r;
}

static aik_node b_attention(aik_graph *g, aik_node q, aik_node k, aik_node v, uint32_t layer, uint32_t n_heads,
                            uint32_t n_kv_heads, uint32_t head_dim, float scale)
{
    const aik_gnode *qa = operand(g, q, "attention", false);
    const aik_gnode *ka = operand(g, k, "attention", false);
    const aik_gnode *va = operand(g, v, "attention", false);

    if (!qa || !ka || !va)
        return g->sticky;
    if (n_heads == 0 || n_kv_heads == 0 || head_dim == 0 || n_heads % n_kv_heads)
        return gfail(g, -EINVAL, "attention", "%u query heads not a multiple of %u kv heads", n_heads, n_kv_heads);
    if ((uint64_t)n_heads * head_dim != qa->n_cols || (uint64_t)n_kv_heads * head_dim != ka->n_cols ||
        ka->n_cols != va->n_cols)
        return gfail(g, -EINVAL, "attention", "q/k/v columns (%u/%u/%u) do not match %u heads, %u kv heads × %u",
                     qa->n_cols, ka->n_cols, va->n_cols, n_heads, n_kv_heads, head_dim);
    if (qa->base != AIK_ROWS_BATCH || ka->base != AIK_ROWS_BATCH || va->base != AIK_ROWS_BATCH)
        return gfail(g, -EINVAL, "attention", "q/k/v rows must be the batch's tokens");
    if (layer >= AIK_SLM_MAX_LAYERS)
        return gfail(g, -EINVAL, "attention", "layer slot %u out of range", layer);
    for (aik_node i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == AIK_OP_ATTENTION && g->nodes[i].layer == layer)
            return gfail(g, -EINVAL, "attention", "layer slot %u used twice", layer);
    if (!(scale > 0.0f))
        return gfail(g, -EINVAL, "attention", "scale must be > 0");
    if (layer >= g->n_kv_layers) {
        uint32_t *nc = realloc(g->kv_cols, (size_t)(layer + 1) * sizeof(*nc));
        if (!nc)
            return gfail(g, -ENOMEM, NULL, "out of memory");
        for (uint32_t i = g->n_kv_layers; i <= layer; i++)
            nc[i] = 0;
        g->kv_cols = nc;
        g->n_kv_layers = layer + 1;
    }
    g->kv_cols[layer] = ka->n_cols;
    aik_node r = act(g, AIK_OP_ATTENTION, q, k, qa->n_cols, AIK_ROWS_BATCH);
    if (r >= 0) {
        g->nodes[r].src[2] = v;
        g->nodes[r].layer = layer;
        g->nodes[r].n_heads = n_heads;
        g->nodes[r].n_kv_heads = n_kv_heads;
        g->nodes[r].head_dim = head_dim;
        g->nodes[r].scale = scale;
    }
    return r;
}

static aik_node unary(aik_graph *g, aik_op op, aik_node x)
{
    const aik_gnode *xa = operand(g, x, aik_op_name(op), false);
    aik_node r;

    if (!xa)
        return g->sticky;
    r = act(g, op, x, -1, xa->n_cols, xa->base);
    if (r >= 0)
        g->nodes[r].width = xa->width;
    return r;
}

static aik_node b_silu(aik_graph *g, aik_node x) { return unary(g, AIK_OP_SILU, x); }
static aik_node b_softmax(aik_graph *g, aik_node x) { return unary(g, AIK_OP_SOFTMAX, x); }

static aik_node b_swiglu(aik_graph *g, aik_node gate, aik_node up)
{
    const aik_gnode *ga = operand(g, gate, "swiglu", false);
    const aik_gnode *ua = operand(g, up, "swiglu", false);

    if (!ga || !ua)
        return g->sticky;
    if (ga->n_cols != ua->n_cols || ga->width != ua->width || ga->base != ua->base)
        return gfail(g, -EINVAL, "swiglu", "gate and up differ in shape (%u vs %u columns)", ga->n_cols, ua->n_cols);
    return act(g, AIK_OP_SWIGLU, gate, up, ga->n_cols, ga->base);
}

static aik_node b_reshape(aik_graph *g, aik_node x, uint32_t n_cols)
{
    const aik_gnode *xa = operand(g, x, "reshape", false);
    aik_node r;

    if (!xa)
        return g->sticky;
    if (n_cols == 0 || (n_cols > xa->width ? n_cols % xa->width : xa->width % n_cols))
        return gfail(g, -EINVAL, "reshape", "%u columns do not tile rows of %u", n_cols, xa->width);
    if (n_cols > xa->width)
        return gfail(g, -EINVAL, "reshape", "merging rows (%u -> %u columns) is not supported", xa->width, n_cols);
    r = act(g, AIK_OP_RESHAPE, x, -1, n_cols, xa->base);
    if (r >= 0)
        g->nodes[r].width = xa->width;
    return r;
}

static aik_node b_output_rows(aik_graph *g, aik_node x)
{
    const aik_gnode *xa = operand(g, x, "output_rows", false);

    if (!xa)
        return g->sticky;
    if (xa->base != AIK_ROWS_BATCH || xa->width != xa->n_cols)
        return gfail(g, -EINVAL, "output_rows", "operand must have one row per batch token");
    return act(g, AIK_OP_OUTPUT_ROWS, x, -1, xa->n_cols, AIK_ROWS_OUTPUT);
}

static int b_set_logits(aik_graph *g, aik_node logits)
{
    const aik_gnode *la = operand(g, logits, "set_logits", false);

    if (!la)
        return g->sticky;
    if (g->logits >= 0)
        return gfail(g, -EINVAL, "set_logits", "logits already set");
    if (g->hp.n_vocab && la->n_cols != g->hp.n_vocab)
        return gfail(g, -EINVAL, "set_logits", "logits have %u columns, vocabulary is %u", la->n_cols, g->hp.n_vocab);
    g->logits = logits;
    return 0;
}

static int b_fail(aik_graph *g, int code, const char *message)
{
    return gfail(g, code < 0 ? code : -EINVAL, "module", "%s", message ? message : "failed");
}

static const aik_graph_api builder_api = {
    .struct_size = sizeof(aik_graph_api),
    .abi_major = AIK_GRAPH_ABI_MAJOR,
    .abi_minor = AIK_GRAPH_ABI_MINOR,
    .tokens = b_tokens,
    .weight = b_weight,
    .get_rows = b_get_rows,
    .matmul = b_matmul,
    .add = b_add,
    .mul = b_mul,
    .rms_norm = b_rms_norm,
    .rope = b_rope,
    .attention = b_attention,
    .silu = b_silu,
    .swiglu = b_swiglu,
    .softmax = b_softmax,
    .reshape = b_reshape,
    .output_rows = b_output_rows,
    .set_logits = b_set_logits,
    .fail = b_fail,
};

const aik_graph_api *aik_graph_builder_api(void) { return &builder_api; }

int aik_graph_hparams_from_slm(const aik_slm *pkg, aik_model_hparams *hp, aik_layer_hparams **ret_layers)
{
    aik_layer_hparams *layers = calloc(pkg->hdr.n_layers ? pkg->hdr.n_layers : 1, sizeof(*layers));

    if (!layers)
        return -ENOMEM;
    for (uint32_t i = 0; i < pkg->hdr.n_layers; i++) {
        layers[i].n_heads = pkg->layers[i].n_heads;
        layers[i].n_kv_heads = pkg->layers[i].n_kv_heads;
        layers[i].ffn_dim = pkg->layers[i].ffn_dim;
    }
    memset(hp, 0, sizeof(*hp));
    hp->struct_size = sizeof(*hp);
    hp->model_type = pkg->hdr.model_type;
    hp->flags = pkg->hdr.flags;
    hp->n_vocab = pkg->hdr.n_vocab;
    hp->dim = pkg->hdr.dim;
    hp->n_layers = pkg->hdr.n_layers;
    hp->head_dim = pkg->hdr.head_dim;
    hp->ctx_len = pkg->hdr.ctx_len;
    hp->rope_theta = pkg->hdr.rope_theta;
    hp->norm_eps = pkg->hdr.norm_eps;
    hp->layers = layers;
    *ret_layers = layers;
    return 0;
}

void aik_graph_free(aik_graph *g)
{
    if (!g)
        return;
    free(g->nodes);
    free(g->layers);
    free(g->kv_cols);
    free(g);
}

/* last_use drives buffer reuse in the executor. */
static void compute_liveness(aik_graph *g)
{
    for (aik_node i = 0; i < g->n_nodes; i++)
        for (int s = 0; s < 3; s++) {
            aik_node src = g->nodes[i].src[s];
            if (src >= 0)
                g->nodes[src].last_use = i;
        }
    /* RESHAPE aliases its source: the source must live as long as the view. */
    for (aik_node i = g->n_nodes - 1; i >= 0; i--)
        if (g->nodes[i].op == AIK_OP_RESHAPE) {
            aik_node s = g->nodes[i].src[0];
            if (g->nodes[i].last_use > g->nodes[s].last_use)
                g->nodes[s].last_use = g->nodes[i].last_use;
        }
    if (g->logits >= 0)
        g->nodes[g->logits].last_use = g->n_nodes;
}

int aik_graph_build(const aik_arch_ops *ops, const aik_model_hparams *hp_in, const aik_slm *pkg,
                    aik_graph **ret_graph, aik_error *err)
{
    aik_graph *g;
    int r;

    if (!ops || !hp_in || !ret_graph || !ops->build)
        return aik_fail(err, -EINVAL, "graph", "missing architecture ops or hyper-parameters");
    if (ops->graph_abi_major != AIK_GRAPH_ABI_MAJOR)
        return aik_fail(err, -EPROTO, "graph", "module built for graph ABI %u, host has %u", ops->graph_abi_major,
                        AIK_GRAPH_ABI_MAJOR);
    if (hp_in->n_layers > AIK_SLM_MAX_LAYERS || (hp_in->n_layers && !hp_in->layers))
        return aik_fail(err, -EINVAL, "graph", "bad layer table");
    g = calloc(1, sizeof(*g));
    if (!g)
        return aik_fail(err, -ENOMEM, "graph", "out of memory");
    g->tokens = -1;
    g->logits = -1;
    g->pkg = pkg;
    g->hp = *hp_in;
    if (hp_in->n_layers) {
        g->layers = malloc(hp_in->n_layers * sizeof(*g->layers));
        if (!g->layers) {
            aik_graph_free(g);
            return aik_fail(err, -ENOMEM, "graph", "out of memory");
        }
        memcpy(g->layers, hp_in->layers, hp_in->n_layers * sizeof(*g->layers));
    }
    g->hp.layers = g->layers;

    r = ops->build(&builder_api, g, &g->hp);
    if (r == 0 && g->sticky)
        r = g->sticky;
    if (r == 0 && g->logits < 0)
        r = gfail(g, -EINVAL, "graph", "module did not mark the logits");
    if (r < 0) {
        if (err) {
            if (g->sticky)
                *err = g->err;
            else
                aik_fail(err, r, "module", "build failed without explanation");
        }
        aik_graph_free(g);
        return r;
    }
    compute_liveness(g);
    *ret_graph = g;
    return 0;
}

uint64_t aik_graph_weight_bytes(const aik_graph *g)
{
    uint64_t total = 0, b;

    for (aik_node i = 0; i < g->n_nodes; i++) {
        const aik_gnode *n = &g->nodes[i];
        if (n->op != AIK_OP_WEIGHT)
            continue;
        if (aik_dtype_bytes(n->dtype, n->shape[0] * n->shape[1] * n->shape[2] * n->shape[3], &b) == 0)
            total += b;
    }
    return total;
}
