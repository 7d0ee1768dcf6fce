/* SPDX-License-Identifier: MIT */
/*
 * Forward with a tape, and the backward of every graph op. Each backward
 * sits next to the math it differentiates; gradient checks against finite
 * differences are in tests/train.
 */
#include "train/autograd.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/gemm.h"
#include "scheduler/gemm_threaded.h"

typedef struct lora {
    uint32_t rank;
    float scale;
    float *A, *B, *dA, *dB;
    float *h;  /* forward: x·Aᵀ, T × rank */
    float *dh; /* backward scratch, T × rank */
} lora;

typedef struct slot {
    float *act;   /* T_max × width (RESHAPE: aliases its source) */
    float *grad;
    float *value; /* bound parameter (weights) */
    float *pgrad;
    lora *lora;   /* matmul weight with an adapter */
    float *aux;   /* RMS_NORM: rstd per row; ATTENTION: probabilities heads × T × T */
    bool alias;
} slot;

struct aik_tape {
    const aik_graph *g;
    aik_threadpool *pool;
    uint32_t max_T, max_seqs; /* capacity: sequences of up to max_T tokens */
    uint32_t T, n_seq;        /* last forward: n_seq sequences of T tokens, rows = T·n_seq */
    slot *s;
    const int32_t *tokens;
    void *mm_scratch;   /* quantized activations for frozen quantized matmuls */
    float *deq;         /* dequantized frozen weight for backward */
    size_t deq_floats;
    /* RoPE angles for positions 0..max_T-1, built on first use for the
     * (theta, head_dim) of the model's rope nodes (one pair in llama). */
    float *rope_cos, *rope_sin;
    float rope_theta;
    uint32_t rope_hd;
    aik_tape_times times;
    bool *live; /* per node, backward: its gradient buffer holds a contribution (see aik_tape_backward) */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Where the time of one op goes in aik_tape_times. */
static double *time_slot(aik_tape *t, aik_op op)
{
    return op == AIK_OP_MATMUL ? &t->times.matmul : op == AIK_OP_ATTENTION ? &t->times.attention : &t->times.other;
}

void aik_tape_times_get(const aik_tape *t, aik_tape_times *ret)
{
    *ret = t->times;
}

static uint64_t nelems(const aik_gnode *n) { return n->shape[0] * n->shape[1] * n->shape[2] * n->shape[3]; }

void aik_tape_free(aik_tape *t)
{
    if (!t)
        return;
    if (t->s)
        for (aik_node i = 0; i < t->g->n_nodes; i++) {
            if (!t->s[i].alias) {
                free(t->s[i].act);
                free(t->s[i].grad);
            }
            free(t->s[i].aux);
            if (t->s[i].lora) {
                free(t->s[i].lora->h);
                free(t->s[i].lora->dh);
                free(t->s[i].lora);
            }
        }
    free(t->s);
    free(t->live);
    free(t->mm_scratch);
    free(t->deq);
    free(t->rope_cos);
    free(t->rope_sin);
    free(t);
}

int aik_tape_new(const aik_graph *g, uint32_t max_T, aik_threadpool *pool, aik_tape **ret, aik_error *err)
{
    return aik_tape_new_batch(g, max_T, 1, pool, ret, err);
}

int aik_tape_new_batch(const aik_graph *g, uint32_t max_T, uint32_t max_seqs, aik_threadpool *pool,
                       aik_tape **ret, aik_error *err)
{
    aik_tape *t;
    size_t scratch = 0, max_rows;

    if (!g || !ret || max_T == 0 || max_seqs == 0 || max_seqs > 4096)
        return aik_fail(err, -EINVAL, "tape", "missing graph, max_tokens == 0 or max_seqs outside 1..4096");
    if (max_T > g->hp.ctx_len)
        return aik_fail(err, -EINVAL, "tape", "sequence of %u tokens exceeds the model's context %u", max_T,
                        g->hp.ctx_len);
    t = calloc(1, sizeof(*t));
    if (!t)
        return aik_fail(err, -ENOMEM, "tape", "out of memory");
    t->g = g;
    t->pool = pool;
    t->max_T = max_T;
    t->max_seqs = max_seqs;
    max_rows = (size_t)max_T * max_seqs;
    t->s = calloc((size_t)g->n_nodes, sizeof(*t->s));
    t->live = calloc((size_t)g->n_nodes, sizeof(*t->live));
    if (!t->s || !t->live)
        goto oom;
    for (aik_node i = 0; i < g->n_nodes; i++) {
        const aik_gnode *n = &g->nodes[i];
        slot *s = &t->s[i];
        size_t floats = max_rows * n->width;
        if (n->op == AIK_OP_WEIGHT) {
            if (n->dtype != AIK_DTYPE_F32 && nelems(n) > t->deq_floats)
                t->deq_floats = nelems(n);
            continue;
        }
        if (n->op == AIK_OP_TOKENS)
            continue;
        if (n->op == AIK_OP_RESHAPE) {
            s->act = t->s[n->src[0]].act;
            s->grad = t->s[n->src[0]].grad;
            s->alias = true;
            continue;
        }
        s->act = malloc(floats * sizeof(float));
        s->grad = malloc(floats * sizeof(float));
        if (!s->act || !s->grad)
            goto oom;
        if (n->op == AIK_OP_RMS_NORM && !(s->aux = malloc(max_rows * sizeof(float))))
            goto oom;
        if (n->op == AIK_OP_ATTENTION &&
            !(s->aux = malloc((size_t)n->n_heads * max_T * max_T * max_seqs * sizeof(float))))
            goto oom;
        if (n->op == AIK_OP_MATMUL) {
            const aik_gnode *w = &g->nodes[n->src[1]];
            size_t sz = aik_matmul_scratch_size(w->dtype, (int64_t)w->shape[0], (int64_t)max_rows);
            if (sz > scratch)
                scratch = sz;
        }
    }
    if (scratch && !(t->mm_scratch = malloc(scratch)))
        goto oom;
    /* Frozen non-f32 weights are dequantized for the backward's dx = dy·W. */
    if (t->deq_floats && !(t->deq = malloc(t->deq_floats * sizeof(float))))
        goto oom;
    *ret = t;
    return 0;
oom:
    aik_tape_free(t);
    return aik_fail(err, -ENOMEM, "tape", "out of memory for activations");
}

static int check_weight(const aik_tape *t, aik_node w, aik_error *err)
{
    if (w < 0 || w >= t->g->n_nodes || t->g->nodes[w].op != AIK_OP_WEIGHT)
        return aik_fail(err, -EINVAL, "tape", "node %d is not a weight", w);
    return 0;
}

int aik_tape_bind_param(aik_tape *t, aik_node w, float *value, float *grad, aik_error *err)
{
    int r = check_weight(t, w, err);
    if (r < 0)
        return r;
    if (!value || !grad)
        return aik_fail(err, -EINVAL, t->g->nodes[w].name, "parameter needs value and gradient storage");
    t->s[w].value = value;
    t->s[w].pgrad = grad;
    return 0;
}

int aik_tape_bind_lora(aik_tape *t, aik_node w, uint32_t rank, float scale, float *A, float *B, float *dA, float *dB,
                       aik_error *err)
{
    int r = check_weight(t, w, err);
    lora *l;

    if (r < 0)
        return r;
    if (t->g->nodes[w].n_dims != 2 || rank == 0 || !A || !B || !dA || !dB)
        return aik_fail(err, -EINVAL, t->g->nodes[w].name, "LoRA needs a 2-D weight, rank > 0 and storage");
    l = calloc(1, sizeof(*l));
    if (!l)
        return aik_fail(err, -ENOMEM, "tape", "out of memory");
    *l = (lora){ rank, scale, A, B, dA, dB, malloc((size_t)t->max_T * t->max_seqs * rank * sizeof(float)),
                 malloc((size_t)t->max_T * t->max_seqs * rank * sizeof(float)) };
    if (!l->h || !l->dh) {
        free(l->h);
        free(l->dh);
        free(l);
        return aik_fail(err, -ENOMEM, "tape", "out of memory");
    }
    if (t->s[w].lora) {
        free(t->s[w].lora->h);
        free(t->s[w].lora->dh);
        free(t->s[w].lora);
    }
    t->s[w].lora = l;
    return 0;
}

/* f32 view of a 1-D weight (bias, norm gain): bound value or package data. */
static const float *vec_of(const aik_tape *t, aik_node w)
{
    return t->s[w].value ? t->s[w].value : (const float *)t->g->nodes[w].data;
}

/* ---- attention: forward keeps probabilities, backward per kv head ---- */


typedef struct att_ctx {
    const aik_tape *t;
    const aik_gnode *n;
    const float *q, *k, *v, *dout;
    float *out, *P, *dq, *dk, *dv;
    uint32_t T;
    float beta_q, beta_k, beta_v; /* backward: 0 where the gradient is not live yet (first writer) */
} att_ctx;

/* Causal attention needs only the lower triangle of the T × T scores. The
 * products are cut into blocks of ATT_BLOCK rows: rows [i0, i1) of S, dP,
 * O and dQ need keys 0..i1 only, and rows [i0, i1) of dV and dK need
 * queries i0..T only, which skips 3/8 of the flops at T = 128. Every
 * element is still the same dot product in the same order, the skipped
 * terms being exact zeros at the ends of the sums, so the numbers do not
 * change while T fits in one of the GEMM's K blocks (256; past that the
 * GEMM rounds its partial sums at other points: still deterministic). */
#define ATT_BLOCK 32

/* One task per (sequence, head); sequences are consecutive blocks of T rows. */
static void att_fwd_task(void *vctx, int task, int thread)
{
    const att_ctx *c = vctx;
    const aik_gnode *n = c->n;
    uint32_t seq = (uint32_t)task / n->n_heads, h = (uint32_t)task % n->n_heads, hd = n->head_dim, T = c->T;
    uint32_t kvh = h / (n->n_heads / n->n_kv_heads), qc = n->n_cols, kc = n->n_kv_heads * hd;
    att_ctx sc = *c;
    (void)thread;
    sc.q += (size_t)seq * T * qc;
    sc.k += (size_t)seq * T * kc;
    sc.v += (size_t)seq * T * kc;
    sc.out += (size_t)seq * T * qc;
    sc.P += (size_t)seq * n->n_heads * T * T;
    c = &sc;
    /* S = scale·Q·Kᵀ, causal softmax per row (future positions 0), O = P·V;
     * small GEMMs on strided head slices beat per-row dot products. Only
     * the lower triangle is computed (see ATT_BLOCK). */
    float *P = c->P + (size_t)h * T * T;
    const float *Q = c->q + (size_t)h * hd, *K = c->k + (size_t)kvh * hd, *V = c->v + (size_t)kvh * hd;
    for (uint32_t i0 = 0; i0 < T; i0 += ATT_BLOCK) {
        uint32_t i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T;
        aik_gemm_f32(false, true, i1 - i0, i1, hd, n->scale, Q + (size_t)i0 * qc, qc, K, kc, 0.0f,
                     P + (size_t)i0 * T, T);
    }
    for (uint32_t i = 0; i < T; i++) {
        float *p = P + (size_t)i * T;
        aik_softmax(p, i + 1);
        for (uint32_t j = i + 1; j < T; j++)
            p[j] = 0.0f;
    }
    for (uint32_t i0 = 0; i0 < T; i0 += ATT_BLOCK) {
        uint32_t i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T;
        aik_gemm_f32(false, false, i1 - i0, hd, i1, 1.0f, P + (size_t)i0 * T, T, V, kc, 0.0f,
                     c->out + (size_t)i0 * qc + (size_t)h * hd, qc);
    }
}

/* One task per (sequence, kv head): its query heads' contributions to dk/dv
 * never race. */
static void att_bwd_task(void *vctx, int task, int thread)
{
    const att_ctx *c = vctx;
    const aik_gnode *n = c->n;
    uint32_t seq = (uint32_t)task / n->n_kv_heads, kvh = (uint32_t)task % n->n_kv_heads;
    uint32_t group = n->n_heads / n->n_kv_heads, hd = n->head_dim, T = c->T;
    uint32_t qc = n->n_cols, kc = n->n_kv_heads * hd;
    att_ctx sc = *c;
    (void)thread;
    sc.q += (size_t)seq * T * qc;
    sc.k += (size_t)seq * T * kc;
    sc.v += (size_t)seq * T * kc;
    sc.dout += (size_t)seq * T * qc;
    sc.P += (size_t)seq * n->n_heads * T * T;
    sc.dq += (size_t)seq * T * qc;
    sc.dk += (size_t)seq * T * kc;
    sc.dv += (size_t)seq * T * kc;
    c = &sc;
    float *dS = malloc((size_t)T * T * sizeof(float));
    if (!dS)
        abort(); /* T² floats; allocation failure here is not recoverable mid-backward */
    const float *K = c->k + (size_t)kvh * hd, *V = c->v + (size_t)kvh * hd;
    float *dK = c->dk + (size_t)kvh * hd, *dV = c->dv + (size_t)kvh * hd;
    for (uint32_t h = kvh * group; h < (kvh + 1) * group; h++) {
        const float *P = c->P + (size_t)h * T * T, *dO = c->dout + (size_t)h * hd, *Q = c->q + (size_t)h * hd;
        float *dQ = c->dq + (size_t)h * hd;
        /* the group's first head writes dK and dV unless they are live */
        float beta_kv_k = h == kvh * group ? c->beta_k : 1.0f, beta_kv_v = h == kvh * group ? c->beta_v : 1.0f;
        /* dP = dO·Vᵀ;  dV += Pᵀ·dO  (lower triangle only: dV[j] sums queries i >= j) */
        for (uint32_t i0 = 0; i0 < T; i0 += ATT_BLOCK) {
            uint32_t i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T;
            aik_gemm_f32(false, true, i1 - i0, i1, hd, 1.0f, dO + (size_t)i0 * qc, qc, V, kc, 0.0f,
                         dS + (size_t)i0 * T, T);
            aik_gemm_f32(true, false, i1 - i0, hd, T - i0, 1.0f, P + (size_t)i0 * T + i0, T, dO + (size_t)i0 * qc,
                         qc, beta_kv_v, dV + (size_t)i0 * kc, kc);
        }
        /* dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale (zero above the diagonal, where P is) */
        for (uint32_t i = 0; i < T; i++) {
            const float *p = P + (size_t)i * T;
            float *d = dS + (size_t)i * T;
            double dot = 0;
            for (uint32_t j = 0; j <= i; j++)
                dot += (double)p[j] * d[j];
            for (uint32_t j = 0; j < T; j++)
                d[j] = j <= i ? p[j] * (d[j] - (float)dot) * n->scale : 0.0f;
        }
        /* dQ += dS·K;  dK += dSᵀ·Q  (again only the lower triangle of dS) */
        for (uint32_t i0 = 0; i0 < T; i0 += ATT_BLOCK) {
            uint32_t i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T;
            aik_gemm_f32(false, false, i1 - i0, hd, i1, 1.0f, dS + (size_t)i0 * T, T, K, kc, c->beta_q,
                         dQ + (size_t)i0 * qc, qc);
            aik_gemm_f32(true, false, i1 - i0, hd, T - i0, 1.0f, dS + (size_t)i0 * T + i0, T, Q + (size_t)i0 * qc,
                         qc, beta_kv_k, dK + (size_t)i0 * kc, kc);
        }
    }
    free(dS);
}

/* ---- rope: rotation by +angle forward, -angle backward ---- */

/* cos/sin of pos·theta^(-2i/hd) for pos < max_T, i < hd/2; recomputed only
 * when a node with another (theta, head_dim) comes along. */
static int rope_table(aik_tape *t, const aik_gnode *n)
{
    uint32_t half = n->head_dim / 2;
    if (t->rope_cos && t->rope_theta == n->theta && t->rope_hd == n->head_dim)
        return 0;
    free(t->rope_cos);
    free(t->rope_sin);
    t->rope_cos = malloc((size_t)t->max_T * half * sizeof(float));
    t->rope_sin = malloc((size_t)t->max_T * half * sizeof(float));
    if (!t->rope_cos || !t->rope_sin) {
        free(t->rope_cos);
        free(t->rope_sin);
        t->rope_cos = t->rope_sin = NULL;
        return -ENOMEM;
    }
    for (uint32_t pos = 0; pos < t->max_T; pos++)
        for (uint32_t i = 0; i < half; i++) {
            float ang = (float)pos * powf(n->theta, -2.0f * (float)i / (float)n->head_dim);
            t->rope_cos[(size_t)pos * half + i] = cosf(ang);
            t->rope_sin[(size_t)pos * half + i] = sinf(ang);
        }
    t->rope_theta = n->theta;
    t->rope_hd = n->head_dim;
    return 0;
}

/* Rows [r0, r1) of the pass; the position of row r is r % T. dst = rot(src),
 * or dst += rot(src) when acc; sign -1 rotates back (the backward: the
 * transpose of a rotation is its inverse). Columns past the heads pass
 * through. */
static void rope_rows(const aik_tape *t, const float *src, float *dst, bool acc, const aik_gnode *n, size_t r0,
                      size_t r1, uint32_t T, float sign)
{
    uint32_t hd = n->head_dim, half = hd / 2, C = n->n_cols, rot_cols = n->n_heads * hd;
    for (size_t r = r0; r < r1; r++) {
        const float *cs = t->rope_cos + (size_t)(r % T) * half, *sn = t->rope_sin + (size_t)(r % T) * half;
        for (uint32_t h = 0; h < n->n_heads; h++) {
            const float *u = src + r * C + (size_t)h * hd;
            float *v = dst + r * C + (size_t)h * hd;
            for (uint32_t i = 0; i < half; i++) {
                float c = cs[i], s = sign * sn[i];
                uint32_t a = n->rope_mode == AIK_ROPE_NEOX ? i : 2 * i;
                uint32_t b = n->rope_mode == AIK_ROPE_NEOX ? i + half : 2 * i + 1;
                float x0 = u[a], x1 = u[b];
                float y0 = x0 * c - x1 * s, y1 = x0 * s + x1 * c;
                v[a] = acc ? v[a] + y0 : y0;
                v[b] = acc ? v[b] + y1 : y1;
            }
        }
        for (uint32_t c = rot_cols; c < C; c++)
            dst[r * C + c] = acc ? dst[r * C + c] + src[r * C + c] : src[r * C + c];
    }
}

/* ---- matmul with optional LoRA ---- */

static void matmul_fwd(aik_tape *t, const aik_gnode *n, const float *x, float *y, uint32_t T)
{
    aik_node wi = n->src[1];
    const aik_gnode *w = &t->g->nodes[wi];
    int64_t in = (int64_t)w->shape[0], out = (int64_t)w->shape[1];
    const slot *ws = &t->s[wi];

    if (ws->value)
        aik_gemm_f32_threaded(t->pool, false, true, T, out, in, 1.0f, x, in, ws->value, in, 0.0f, y, out);
    else
        aik_matmul_threaded(t->pool, w->dtype, w->data, x, t->mm_scratch, y, out, in, T);
    if (ws->lora) {
        lora *l = ws->lora;
        aik_gemm_f32_threaded(t->pool, false, true, T, l->rank, in, 1.0f, x, in, l->A, in, 0.0f, l->h, l->rank);
        aik_gemm_f32_threaded(t->pool, false, true, T, out, l->rank, l->scale, l->h, l->rank, l->B, l->rank, 1.0f,
                              y, out);
    }
}

/* beta_dx: 0 when dx is not live yet (this is its first contribution), 1 to add. */
static void matmul_bwd(aik_tape *t, const aik_gnode *n, const float *x, const float *dy, float *dx, uint32_t T,
                       float beta_dx)
{
    aik_node wi = n->src[1];
    const aik_gnode *w = &t->g->nodes[wi];
    int64_t in = (int64_t)w->shape[0], out = (int64_t)w->shape[1];
    const slot *ws = &t->s[wi];
    const float *W = ws->value;

    if (!W) {
        if (w->dtype == AIK_DTYPE_F32) {
            W = w->data;
        } else {
            aik_dequantize_row(w->dtype, w->data, t->deq, in * out);
            W = t->deq;
        }
    }
    /* dx += dy · W   (W stored out × in) */
    aik_gemm_f32_threaded(t->pool, false, false, T, in, out, 1.0f, dy, out, W, in, beta_dx, dx, in);
    /* dW += dyᵀ · x */
    if (ws->pgrad)
        aik_gemm_f32_threaded(t->pool, true, false, out, in, T, 1.0f, dy, out, x, in, 1.0f, ws->pgrad, in);
    if (ws->lora) {
        lora *l = ws->lora;
        /* y += s·h·Bᵀ, h = x·Aᵀ:  dB += s·dyᵀ·h;  dh = s·dy·B;  dA += dhᵀ·x;  dx += dh·A */
        aik_gemm_f32_threaded(t->pool, true, false, out, l->rank, T, l->scale, dy, out, l->h, l->rank, 1.0f, l->dB,
                              l->rank);
        aik_gemm_f32_threaded(t->pool, false, false, T, l->rank, out, l->scale, dy, out, l->B, l->rank, 0.0f, l->dh,
                              l->rank);
        aik_gemm_f32_threaded(t->pool, true, false, l->rank, in, T, 1.0f, l->dh, l->rank, x, in, 1.0f, l->dA, in);
        aik_gemm_f32_threaded(t->pool, false, false, T, in, l->rank, 1.0f, l->dh, l->rank, l->A, in, 1.0f, dx, in);
    }
}

/* ---- every other op: row ranges and column ranges over the pool ---- */

/* These ops work on each row by itself, so they run as row ranges over the
 * pool. The weight gradients they produce (norm gains, biases, embedding
 * rows) are sums over rows, so those run as column ranges instead, each
 * summing its columns over all rows in row order. Either way every number
 * comes from the same operations in the same order whatever the split:
 * results are those of one thread, bit for bit, for any thread count.
 * Element-wise kernels are cut on multiples of 64 floats, so their SIMD
 * bodies and tails see the same elements as one call over everything. */

typedef struct op_job {
    aik_tape *t;
    const aik_gnode *n;
    slot *s;
    const float *dy;      /* backward: this node's gradient */
    uint32_t rows, T_seq; /* rows of the pass, tokens per sequence */
    int n_tasks;
    bool acc_a, acc_b;    /* backward: add into the sources' gradients (false: first writer, store) */
} op_job;

/* [begin, end) of part `task` of n_tasks of total items cut on multiples of quantum. */
static void split(size_t total, size_t quantum, int task, int n_tasks, size_t *ret_begin, size_t *ret_end)
{
    size_t units = (total + quantum - 1) / quantum;
    size_t b = units * (size_t)task / (size_t)n_tasks * quantum, e = units * (size_t)(task + 1) / (size_t)n_tasks * quantum;
    *ret_begin = b < total ? b : total;
    *ret_end = e < total ? e : total;
}

/* How many parts a pass over `work` floats is cut into: one for small ones
 * (waking the pool costs more), else a few per thread so a thread slowed
 * by another process on its core does not hold the others up. */
static int n_parts(const aik_tape *t, size_t work)
{
    return work < 16384 ? 1 : 4 * aik_threadpool_size(t->pool);
}

/* d = x or d += x over n floats */
static void put(float *d, const float *x, size_t n, bool acc)
{
    if (acc)
        aik_add(d, x, d, (int64_t)n);
    else
        memcpy(d, x, n * sizeof(float));
}

static void fwd_task(void *ctx, int task, int thread)
{
    const op_job *j = ctx;
    const aik_tape *t = j->t;
    const aik_gnode *n = j->n;
    const float *a = n->src[0] >= 0 ? t->s[n->src[0]].act : NULL;
    float *y = j->s->act;
    uint32_t C = n->n_cols;
    size_t r0, r1, e0, e1;

    (void)thread;
    split(j->rows, 1, task, j->n_tasks, &r0, &r1);
    split((size_t)j->rows * n->width, 64, task, j->n_tasks, &e0, &e1);
    switch (n->op) {
    case AIK_OP_GET_ROWS: {
        aik_node wi = n->src[0];
        const aik_gnode *w = &t->g->nodes[wi];
        for (size_t r = r0; r < r1; r++) {
            if (t->s[wi].value)
                memcpy(y + r * C, t->s[wi].value + (size_t)t->tokens[r] * C, C * sizeof(float));
            else
                aik_get_row(w->dtype, w->data, t->tokens[r], C, y + r * C);
        }
        break;
    }
    case AIK_OP_ADD:
    case AIK_OP_MUL: {
        aik_node bi = n->src[1];
        void (*f)(const float *, const float *, float *, int64_t) = n->op == AIK_OP_ADD ? aik_add : aik_mul;
        if (t->g->nodes[bi].op == AIK_OP_WEIGHT)
            for (size_t r = r0; r < r1; r++)
                f(a + r * C, vec_of(t, bi), y + r * C, C);
        else
            f(a + e0, t->s[bi].act + e0, y + e0, (int64_t)(e1 - e0));
        break;
    }
    case AIK_OP_RMS_NORM: {
        const float *w = vec_of(t, n->src[1]);
        for (size_t r = r0; r < r1; r++) {
            const float *x = a + r * C;
            double ss = 0;
            for (uint32_t c = 0; c < C; c++)
                ss += (double)x[c] * x[c];
            float rs = 1.0f / sqrtf((float)(ss / C) + n->eps);
            j->s->aux[r] = rs;
            for (uint32_t c = 0; c < C; c++)
                y[r * C + c] = x[c] * rs * w[c];
        }
        break;
    }
    case AIK_OP_ROPE:
        rope_rows(t, a, y, false, n, r0, r1, j->T_seq, 1.0f);
        break;
    case AIK_OP_SILU:
        aik_silu(a + e0, y + e0, (int64_t)(e1 - e0));
        break;
    case AIK_OP_SWIGLU:
        aik_swiglu(a + e0, t->s[n->src[1]].act + e0, y + e0, (int64_t)(e1 - e0));
        break;
    case AIK_OP_SOFTMAX:
        for (size_t r = r0; r < r1; r++) {
            memcpy(y + r * C, a + r * C, C * sizeof(float));
            aik_softmax(y + r * C, C);
        }
        break;
    case AIK_OP_OUTPUT_ROWS: /* training scores every position */
        memcpy(y + e0, a + e0, (e1 - e0) * sizeof(float));
        break;
    default:
        break;
    }
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Backward, activation gradients: row ranges. */
static void bwd_task(void *ctx, int task, int thread)
{
    const op_job *j = ctx;
    const aik_tape *t = j->t;
    const aik_gnode *n = j->n;
    const float *dy = j->dy;
    aik_node ai = n->src[0], bi = n->src[1];
    float *da = ai >= 0 ? t->s[ai].grad : NULL;
    const float *a = ai >= 0 ? t->s[ai].act : NULL;
    bool acc = j->acc_a, acc_b = j->acc_b;
    uint32_t C = n->n_cols;
    size_t r0, r1, e0, e1;

    (void)thread;
    split(j->rows, 1, task, j->n_tasks, &r0, &r1);
    split((size_t)j->rows * n->width, 64, task, j->n_tasks, &e0, &e1);
    switch (n->op) {
    case AIK_OP_ADD:
        put(da + e0, dy + e0, e1 - e0, acc);
        if (t->g->nodes[bi].op != AIK_OP_WEIGHT)
            put(t->s[bi].grad + e0, dy + e0, e1 - e0, acc_b);
        break;
    case AIK_OP_MUL:
        if (t->g->nodes[bi].op == AIK_OP_WEIGHT) {
            const float *w = vec_of(t, bi);
            for (size_t r = r0; r < r1; r++)
                for (uint32_t c = 0; c < C; c++) {
                    size_t k = r * C + c;
                    float v = dy[k] * w[c];
                    da[k] = acc ? da[k] + v : v;
                }
        } else {
            const float *b = t->s[bi].act;
            float *db = t->s[bi].grad;
            for (size_t k = e0; k < e1; k++) {
                float va = dy[k] * b[k];
                da[k] = acc ? da[k] + va : va;
                float vb = dy[k] * a[k];
                db[k] = acc_b ? db[k] + vb : vb;
            }
        }
        break;
    case AIK_OP_RMS_NORM: {
        const float *w = vec_of(t, bi);
        for (size_t r = r0; r < r1; r++) {
            const float *x = a + r * C, *g_ = dy + r * C;
            float *dx = da + r * C, rs = j->s->aux[r];
            double dot = 0;
            for (uint32_t c = 0; c < C; c++)
                dot += (double)g_[c] * w[c] * x[c];
            float coef = (float)(dot * rs * rs * rs / C);
            for (uint32_t c = 0; c < C; c++) {
                float v = g_[c] * w[c] * rs - x[c] * coef;
                dx[c] = acc ? dx[c] + v : v;
            }
        }
        break;
    }
    case AIK_OP_ROPE:
        rope_rows(t, dy, da, acc, n, r0, r1, j->T_seq, -1.0f);
        break;
    case AIK_OP_SILU:
        for (size_t k = e0; k < e1; k++) {
            float sg = sigmoidf(a[k]);
            float v = dy[k] * sg * (1.0f + a[k] * (1.0f - sg));
            da[k] = acc ? da[k] + v : v;
        }
        break;
    case AIK_OP_SWIGLU: {
        /* silu(a) from the kernels' vectorized version and σ(a) = silu(a)/a
         * (σ(0) = 1/2): a scalar expf per element made this the costliest
         * op after the mat-muls. Chunks start on multiples of 64 floats like
         * the task ranges, so the split does not change the numbers. */
        const float *u = t->s[bi].act;
        float *du = t->s[bi].grad;
        float si[1024];
        for (size_t k0 = e0; k0 < e1; k0 += 1024) {
            size_t k1 = k0 + 1024 < e1 ? k0 + 1024 : e1;
            aik_silu(a + k0, si, (int64_t)(k1 - k0));
            for (size_t k = k0; k < k1; k++) {
                float sl = si[k - k0], sg = a[k] != 0.0f ? sl / a[k] : 0.5f;
                float va = dy[k] * u[k] * sg * (1.0f + a[k] * (1.0f - sg));
                da[k] = acc ? da[k] + va : va;
                float vu = dy[k] * sl;
                du[k] = acc_b ? du[k] + vu : vu;
            }
        }
        break;
    }
    case AIK_OP_SOFTMAX:
        for (size_t r = r0; r < r1; r++) {
            const float *y = j->s->act + r * C, *g_ = dy + r * C;
            double dot = 0;
            for (uint32_t c = 0; c < C; c++)
                dot += (double)g_[c] * y[c];
            for (uint32_t c = 0; c < C; c++) {
                float v = y[c] * (g_[c] - (float)dot);
                da[r * C + c] = acc ? da[r * C + c] + v : v;
            }
        }
        break;
    case AIK_OP_OUTPUT_ROWS:
        put(da + e0, dy + e0, e1 - e0, acc);
        break;
    default:
        break;
    }
}

/* Backward, weight gradients (sums over rows): column ranges, rows in order. */
static void bwd_weight_task(void *ctx, int task, int thread)
{
    const op_job *j = ctx;
    const aik_tape *t = j->t;
    const aik_gnode *n = j->n;
    const float *dy = j->dy;
    aik_node ai = n->src[0], bi = n->src[1];
    uint32_t C = n->n_cols;
    size_t c0, c1;

    (void)thread;
    split(C, 16, task, j->n_tasks, &c0, &c1);
    if (c0 == c1)
        return;
    switch (n->op) {
    case AIK_OP_GET_ROWS: { /* rows of the embedding, by token, in row order */
        float *dw = t->s[ai].pgrad;
        for (uint32_t r = 0; r < j->rows; r++) {
            float *d = dw + (size_t)t->tokens[r] * C + c0;
            aik_add(d, dy + (size_t)r * C + c0, d, (int64_t)(c1 - c0));
        }
        break;
    }
    case AIK_OP_ADD: {
        float *dw = t->s[bi].pgrad;
        for (uint32_t r = 0; r < j->rows; r++)
            aik_add(dw + c0, dy + (size_t)r * C + c0, dw + c0, (int64_t)(c1 - c0));
        break;
    }
    case AIK_OP_MUL: {
        const float *a = t->s[ai].act;
        float *dw = t->s[bi].pgrad;
        for (uint32_t r = 0; r < j->rows; r++)
            for (size_t c = c0; c < c1; c++)
                dw[c] += dy[(size_t)r * C + c] * a[(size_t)r * C + c];
        break;
    }
    case AIK_OP_RMS_NORM: {
        const float *a = t->s[ai].act;
        float *dw = t->s[bi].pgrad;
        for (uint32_t r = 0; r < j->rows; r++) {
            const float *x = a + (size_t)r * C, *g_ = dy + (size_t)r * C;
            float rs = j->s->aux[r];
            for (size_t c = c0; c < c1; c++)
                dw[c] += g_[c] * x[c] * rs;
        }
        break;
    }
    default:
        break;
    }
}

/* Does this op (other than matmul and attention) produce a weight gradient? */
static bool has_weight_grad(const aik_tape *t, const aik_gnode *n)
{
    switch (n->op) {
    case AIK_OP_GET_ROWS:
        return t->s[n->src[0]].pgrad != NULL;
    case AIK_OP_ADD:
    case AIK_OP_MUL:
    case AIK_OP_RMS_NORM:
        return t->g->nodes[n->src[1]].op == AIK_OP_WEIGHT && t->s[n->src[1]].pgrad != NULL;
    default:
        return false;
    }
}

int aik_tape_forward(aik_tape *t, const int32_t *tokens, uint32_t T, const float **ret_logits, aik_error *err)
{
    return aik_tape_forward_batch(t, tokens, T, 1, ret_logits, err);
}

int aik_tape_forward_batch(aik_tape *t, const int32_t *tokens, uint32_t T_seq, uint32_t n_seq,
                           const float **ret_logits, aik_error *err)
{
    const aik_graph *g = t->g;
    uint32_t T;

    if (!tokens || T_seq == 0 || T_seq > t->max_T || n_seq == 0 || n_seq > t->max_seqs)
        return aik_fail(err, -EINVAL, "tape", "%u sequences of %u tokens (capacity %u of 1..%u)", n_seq, T_seq,
                        t->max_seqs, t->max_T);
    T = T_seq * n_seq; /* rows of this pass; ops that care about positions use T_seq */
    for (uint32_t i = 0; i < T; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= g->hp.n_vocab)
            return aik_fail(err, -EINVAL, "tape", "token id %d at %u outside vocabulary", tokens[i], i);
    t->T = T_seq;
    t->n_seq = n_seq;
    t->tokens = tokens;
    for (aik_node i = 0; i < g->n_nodes; i++) {
        const aik_gnode *n = &g->nodes[i];
        slot *s = &t->s[i];
        const float *a = n->src[0] >= 0 ? t->s[n->src[0]].act : NULL;
        double t0 = now_s();

        switch (n->op) {
        case AIK_OP_NONE:
        case AIK_OP_TOKENS:
        case AIK_OP_WEIGHT:
        case AIK_OP_RESHAPE:
        case AIK_OP_COUNT:
            break;
        case AIK_OP_MATMUL:
            matmul_fwd(t, n, a, s->act, T);
            break;
        case AIK_OP_ATTENTION: {
            att_ctx c = { t, n, a, t->s[n->src[1]].act, t->s[n->src[2]].act, NULL, s->act, s->aux, NULL, NULL, NULL,
                          T_seq, 0, 0, 0 };
            aik_threadpool_parallel_for(t->pool, (int)(n->n_heads * n_seq), att_fwd_task, &c);
            break;
        }
        case AIK_OP_ROPE:
            if (rope_table(t, n) < 0)
                return aik_fail(err, -ENOMEM, "tape", "out of memory");
            /* fall through */
        default: {
            op_job j = { t, n, s, NULL, T, T_seq, n_parts(t, (size_t)T * n->width), false, false };
            aik_threadpool_parallel_for(t->pool, j.n_tasks, fwd_task, &j);
            break;
        }
        }
        *time_slot(t, n->op) += now_s() - t0;
    }
    *ret_logits = t->s[g->logits].act;
    return 0;
}

/* Gradient buffers are not cleared before a backward pass: the first op to
 * contribute to one writes it, later ones add (t->live, kept per buffer:
 * a RESHAPE shares its source's). An op whose own gradient nobody wrote
 * contributes nothing and is skipped. This saves a pass over every
 * activation gradient, and gives the same numbers as adding to zeros (up
 * to the sign of exact zeros, which no later step can tell apart). */
static aik_node grad_root(const aik_tape *t, aik_node i)
{
    while (t->g->nodes[i].op == AIK_OP_RESHAPE)
        i = t->g->nodes[i].src[0];
    return i;
}

/* Mark source x's gradient as being written; returns whether it already
 * held a contribution (add) or not (store). */
static bool claim(aik_tape *t, aik_node x)
{
    aik_node r = grad_root(t, x);
    bool was = t->live[r];
    t->live[r] = true;
    return was;
}

int aik_tape_backward(aik_tape *t, const float *dlogits, aik_error *err)
{
    const aik_graph *g = t->g;
    uint32_t T = t->T * t->n_seq; /* rows */
    aik_node lg = g->logits;
    /* the logits' gradient is read where the caller left it unless another
     * node's backward must add to it first */
    bool direct = lg == g->n_nodes - 1 && g->nodes[lg].op != AIK_OP_RESHAPE;

    if (!dlogits || T == 0)
        return aik_fail(err, -EINVAL, "tape", "backward without a forward pass");
    memset(t->live, 0, (size_t)g->n_nodes * sizeof(*t->live));
    if (!direct) {
        memcpy(t->s[lg].grad, dlogits, (size_t)T * g->nodes[lg].n_cols * sizeof(float));
        t->live[grad_root(t, lg)] = true;
    }

    for (aik_node i = g->n_nodes - 1; i >= 0; i--) {
        const aik_gnode *n = &g->nodes[i];
        slot *s = &t->s[i];
        aik_node ai = n->src[0], bi = n->src[1];
        const float *dy = direct && i == lg ? dlogits : s->grad;
        double t0;

        switch (n->op) {
        case AIK_OP_NONE:
        case AIK_OP_TOKENS:
        case AIK_OP_WEIGHT:
        case AIK_OP_RESHAPE: /* gradient buffer aliases the source's */
        case AIK_OP_COUNT:
            continue;
        default:
            break;
        }
        if (!(direct && i == lg) && !t->live[grad_root(t, i)])
            continue; /* no gradient reached this node: it contributes nothing */
        t0 = now_s();
        switch (n->op) {
        case AIK_OP_MATMUL: {
            float beta = claim(t, ai) ? 1.0f : 0.0f;
            matmul_bwd(t, n, t->s[ai].act, dy, t->s[ai].grad, T, beta);
            break;
        }
        case AIK_OP_ATTENTION: {
            aik_node vi = n->src[2];
            att_ctx c = { t, n, t->s[ai].act, t->s[bi].act, t->s[vi].act, dy, NULL, s->aux, t->s[ai].grad,
                          t->s[bi].grad, t->s[vi].grad, t->T, 0, 0, 0 };
            /* q, k and v are distinct nodes in any graph the builder makes; if
             * two shared a buffer, the second would have to add */
            c.beta_q = claim(t, ai) ? 1.0f : 0.0f;
            c.beta_k = claim(t, bi) ? 1.0f : 0.0f;
            c.beta_v = claim(t, vi) ? 1.0f : 0.0f;
            aik_threadpool_parallel_for(t->pool, (int)(n->n_kv_heads * t->n_seq), att_bwd_task, &c);
            break;
        }
        case AIK_OP_ROPE:
            if (rope_table(t, n) < 0)
                return aik_fail(err, -ENOMEM, "tape", "out of memory");
            /* fall through */
        default: {
            op_job j = { t, n, s, dy, T, t->T, n_parts(t, (size_t)T * n->width), false, false };
            bool act_a = ai >= 0 && t->s[ai].grad, act_b = bi >= 0 && t->s[bi].grad;
            if (act_a)
                j.acc_a = claim(t, ai);
            if (act_b)
                j.acc_b = claim(t, bi);
            if (act_a || act_b)
                aik_threadpool_parallel_for(t->pool, j.n_tasks, bwd_task, &j);
            if (has_weight_grad(t, n)) {
                j.n_tasks = n_parts(t, (size_t)T * n->n_cols);
                aik_threadpool_parallel_for(t->pool, j.n_tasks, bwd_weight_task, &j);
            }
            break;
        }
        }
        *time_slot(t, n->op) += now_s() - t0;
    }
    return 0;
}

/* log-sum-exp of one row: float exp, double accumulation */
static double row_lse(const float *l, uint32_t V)
{
    float mx = l[0];
    for (uint32_t v = 1; v < V; v++)
        if (l[v] > mx)
            mx = l[v];
    double sum = 0;
    for (uint32_t v = 0; v < V; v++)
        sum += expf(l[v] - mx);
    return log(sum) + mx;
}

double aik_cross_entropy(const float *logits, const int32_t *targets, uint32_t T, uint32_t V, float scale,
                         float *dlogits, uint32_t *ret_count)
{
    double loss = 0;
    uint32_t count = 0;

    for (uint32_t r = 0; r < T; r++) {
        const float *l = logits + (size_t)r * V;
        float *d = dlogits ? dlogits + (size_t)r * V : NULL;
        if (targets[r] < 0 || (uint32_t)targets[r] >= V) {
            if (d)
                memset(d, 0, V * sizeof(float));
            continue;
        }
        count++;
        if (!d) {
            loss += row_lse(l, V) - l[targets[r]];
            continue;
        }
        /* The gradient is scale · (softmax − one-hot): the kernels' vectorized
         * softmax writes it in place (this runs over every logit of every
         * token, so a scalar expf per logit was a tenth of a training step),
         * and the loss is −log p[target] — unless that probability is too
         * small to hold its own logarithm, then from the log-sum-exp. */
        memcpy(d, l, V * sizeof(float));
        aik_softmax(d, V);
        float pt = d[targets[r]];
        loss += pt >= 1e-30f ? -log((double)pt) : row_lse(l, V) - l[targets[r]];
        aik_scale(d, scale, d, V);
        d[targets[r]] -= scale;
    }
    if (ret_count)
        *ret_count = count;
    return loss;
}

double aik_distill_kl(const float *student, const float *teacher, uint32_t T, uint32_t V, float temp, float scale,
                      float *dlogits)
{
    double total = 0;

    for (uint32_t r = 0; r < T; r++) {
        const float *s = student + (size_t)r * V, *q = teacher + (size_t)r * V;
        float ms = s[0] / temp, mt = q[0] / temp;
        for (uint32_t v = 1; v < V; v++) {
            if (s[v] / temp > ms)
                ms = s[v] / temp;
            if (q[v] / temp > mt)
                mt = q[v] / temp;
        }
        double zs = 0, zt = 0;
        for (uint32_t v = 0; v < V; v++) {
            zs += exp((double)(s[v] / temp - ms));
            zt += exp((double)(q[v] / temp - mt));
        }
        double lzs = log(zs) + ms, lzt = log(zt) + mt, kl = 0;
        for (uint32_t v = 0; v < V; v++) {
            double lpt = q[v] / temp - lzt, lps = s[v] / temp - lzs, pt = exp(lpt);
            kl += pt * (lpt - lps);
            /* d(T²·KL)/ds_v = T·(p_s - p_t) */
            if (dlogits)
                dlogits[(size_t)r * V + v] += scale * temp * (float)(exp(lps) - pt);
        }
        total += kl * temp * temp;
    }
    return total;
}
