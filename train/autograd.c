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
};

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
    if (!t->s)
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
} att_ctx;

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
     * small GEMMs on strided head slices beat per-row dot products. */
    float *P = c->P + (size_t)h * T * T;
    aik_gemm_f32(false, true, T, T, hd, n->scale, c->q + (size_t)h * hd, qc, c->k + (size_t)kvh * hd, kc, 0.0f, P, T);
    for (uint32_t i = 0; i < T; i++) {
        float *p = P + (size_t)i * T;
        aik_softmax(p, i + 1);
        for (uint32_t j = i + 1; j < T; j++)
            p[j] = 0.0f;
    }
    aik_gemm_f32(false, false, T, hd, T, 1.0f, P, T, c->v + (size_t)kvh * hd, kc, 0.0f, c->out + (size_t)h * hd, qc);
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
        /* dP = dO·Vᵀ;  dV += Pᵀ·dO */
        aik_gemm_f32(false, true, T, T, hd, 1.0f, dO, qc, V, kc, 0.0f, dS, T);
        aik_gemm_f32(true, false, T, hd, T, 1.0f, P, T, dO, qc, 1.0f, dV, kc);
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
        /* dQ += dS·K;  dK += dSᵀ·Q */
        aik_gemm_f32(false, false, T, hd, T, 1.0f, dS, T, K, kc, 1.0f, dQ, qc);
        aik_gemm_f32(true, false, T, hd, T, 1.0f, dS, T, Q, qc, 1.0f, dK, kc);
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

/* rows: all rows of the pass; the position of row r is r % T. sign -1
 * rotates back (the backward: the transpose of a rotation is its inverse). */
static void rope_rows(const aik_tape *t, float *x, const aik_gnode *n, uint32_t rows, uint32_t T, float sign)
{
    uint32_t hd = n->head_dim, half = hd / 2;
    for (uint32_t r = 0; r < rows; r++) {
        const float *cs = t->rope_cos + (size_t)(r % T) * half, *sn = t->rope_sin + (size_t)(r % T) * half;
        for (uint32_t h = 0; h < n->n_heads; h++) {
            float *v = x + (size_t)r * n->n_cols + (size_t)h * hd;
            for (uint32_t i = 0; i < half; i++) {
                float c = cs[i], s = sign * sn[i];
                uint32_t a = n->rope_mode == AIK_ROPE_NEOX ? i : 2 * i;
                uint32_t b = n->rope_mode == AIK_ROPE_NEOX ? i + half : 2 * i + 1;
                float x0 = v[a], x1 = v[b];
                v[a] = x0 * c - x1 * s;
                v[b] = x0 * s + x1 * c;
            }
        }
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

static void matmul_bwd(aik_tape *t, const aik_gnode *n, const float *x, const float *dy, float *dx, uint32_t T)
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
    aik_gemm_f32_threaded(t->pool, false, false, T, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in);
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
        float *y = s->act;
        size_t cnt = (size_t)T * n->width;
        const float *a = n->src[0] >= 0 ? t->s[n->src[0]].act : NULL;

        switch (n->op) {
        case AIK_OP_NONE:
        case AIK_OP_TOKENS:
        case AIK_OP_WEIGHT:
        case AIK_OP_RESHAPE:
        case AIK_OP_COUNT:
            break;
        case AIK_OP_GET_ROWS: {
            aik_node wi = n->src[0];
            const aik_gnode *w = &g->nodes[wi];
            for (uint32_t r = 0; r < T; r++) {
                if (t->s[wi].value)
                    memcpy(y + (size_t)r * n->n_cols, t->s[wi].value + (size_t)tokens[r] * n->n_cols,
                           n->n_cols * sizeof(float));
                else
                    aik_get_row(w->dtype, w->data, tokens[r], n->n_cols, y + (size_t)r * n->n_cols);
            }
            break;
        }
        case AIK_OP_MATMUL:
            matmul_fwd(t, n, a, y, T);
            break;
        case AIK_OP_ADD:
        case AIK_OP_MUL: {
            aik_node bi = n->src[1];
            void (*f)(const float *, const float *, float *, int64_t) = n->op == AIK_OP_ADD ? aik_add : aik_mul;
            if (g->nodes[bi].op == AIK_OP_WEIGHT)
                for (uint32_t r = 0; r < T; r++)
                    f(a + (size_t)r * n->n_cols, vec_of(t, bi), y + (size_t)r * n->n_cols, n->n_cols);
            else
                f(a, t->s[bi].act, y, (int64_t)cnt);
            break;
        }
        case AIK_OP_RMS_NORM: {
            const float *w = vec_of(t, n->src[1]);
            for (uint32_t r = 0; r < T; r++) {
                const float *x = a + (size_t)r * n->n_cols;
                double ss = 0;
                for (uint32_t c = 0; c < n->n_cols; c++)
                    ss += (double)x[c] * x[c];
                float rs = 1.0f / sqrtf((float)(ss / n->n_cols) + n->eps);
                s->aux[r] = rs;
                for (uint32_t c = 0; c < n->n_cols; c++)
                    y[(size_t)r * n->n_cols + c] = x[c] * rs * w[c];
            }
            break;
        }
        case AIK_OP_ROPE:
            if (rope_table(t, n) < 0)
                return aik_fail(err, -ENOMEM, "tape", "out of memory");
            memcpy(y, a, cnt * sizeof(float));
            rope_rows(t, y, n, T, T_seq, 1.0f);
            break;
        case AIK_OP_ATTENTION: {
            att_ctx c = { t, n, a, t->s[n->src[1]].act, t->s[n->src[2]].act, NULL, y, s->aux, NULL, NULL, NULL, T_seq };
            aik_threadpool_parallel_for(t->pool, (int)(n->n_heads * n_seq), att_fwd_task, &c);
            break;
        }
        case AIK_OP_SILU:
            aik_silu(a, y, (int64_t)cnt);
            break;
        case AIK_OP_SWIGLU:
            aik_swiglu(a, t->s[n->src[1]].act, y, (int64_t)cnt);
            break;
        case AIK_OP_SOFTMAX:
            memcpy(y, a, cnt * sizeof(float));
            for (uint32_t r = 0; r < T; r++)
                aik_softmax(y + (size_t)r * n->n_cols, n->n_cols);
            break;
        case AIK_OP_OUTPUT_ROWS: /* training scores every position */
            memcpy(y, a, cnt * sizeof(float));
            break;
        }
    }
    *ret_logits = t->s[g->logits].act;
    return 0;
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

int aik_tape_backward(aik_tape *t, const float *dlogits, aik_error *err)
{
    const aik_graph *g = t->g;
    uint32_t T = t->T * t->n_seq; /* rows */

    if (!dlogits || T == 0)
        return aik_fail(err, -EINVAL, "tape", "backward without a forward pass");
    for (aik_node i = 0; i < g->n_nodes; i++)
        if (t->s[i].grad && !t->s[i].alias)
            memset(t->s[i].grad, 0, (size_t)T * g->nodes[i].width * sizeof(float));
    memcpy(t->s[g->logits].grad, dlogits, (size_t)T * g->nodes[g->logits].n_cols * sizeof(float));

    for (aik_node i = g->n_nodes - 1; i >= 0; i--) {
        const aik_gnode *n = &g->nodes[i];
        slot *s = &t->s[i];
        const float *dy = s->grad;
        size_t cnt = (size_t)T * n->width;
        aik_node ai = n->src[0], bi = n->src[1];
        float *da = ai >= 0 ? t->s[ai].grad : NULL;
        const float *a = ai >= 0 ? t->s[ai].act : NULL;

        switch (n->op) {
        case AIK_OP_NONE:
        case AIK_OP_TOKENS:
        case AIK_OP_WEIGHT:
        case AIK_OP_RESHAPE: /* gradient buffer aliases the source's */
        case AIK_OP_COUNT:
            break;
        case AIK_OP_GET_ROWS: {
            float *dw = t->s[ai].pgrad;
            if (dw)
                for (uint32_t r = 0; r < T; r++)
                    aik_add(dw + (size_t)t->tokens[r] * n->n_cols, dy + (size_t)r * n->n_cols,
                            dw + (size_t)t->tokens[r] * n->n_cols, n->n_cols);
            break;
        }
        case AIK_OP_MATMUL:
            matmul_bwd(t, n, a, dy, da, T);
            break;
        case AIK_OP_ADD:
            aik_add(da, dy, da, (int64_t)cnt);
            if (g->nodes[bi].op == AIK_OP_WEIGHT) {
                if (t->s[bi].pgrad)
                    for (uint32_t r = 0; r < T; r++)
                        aik_add(t->s[bi].pgrad, dy + (size_t)r * n->n_cols, t->s[bi].pgrad, n->n_cols);
            } else {
                aik_add(t->s[bi].grad, dy, t->s[bi].grad, (int64_t)cnt);
            }
            break;
        case AIK_OP_MUL:
            if (g->nodes[bi].op == AIK_OP_WEIGHT) {
                const float *w = vec_of(t, bi);
                float *dw = t->s[bi].pgrad;
                for (uint32_t r = 0; r < T; r++)
                    for (uint32_t c = 0; c < n->n_cols; c++) {
                        size_t k = (size_t)r * n->n_cols + c;
                        da[k] += dy[k] * w[c];
                        if (dw)
                            dw[c] += dy[k] * a[k];
                    }
            } else {
                const float *b = t->s[bi].act;
                float *db = t->s[bi].grad;
                for (size_t k = 0; k < cnt; k++) {
                    da[k] += dy[k] * b[k];
                    db[k] += dy[k] * a[k];
                }
            }
            break;
        case AIK_OP_RMS_NORM: {
            const float *w = vec_of(t, bi);
            float *dw = t->s[bi].pgrad;
            uint32_t C = n->n_cols;
            for (uint32_t r = 0; r < T; r++) {
                const float *x = a + (size_t)r * C, *g_ = dy + (size_t)r * C;
                float *dx = da + (size_t)r * C, rs = s->aux[r];
                double dot = 0;
                for (uint32_t c = 0; c < C; c++)
                    dot += (double)g_[c] * w[c] * x[c];
                float coef = (float)(dot * rs * rs * rs / C);
                for (uint32_t c = 0; c < C; c++) {
                    dx[c] += g_[c] * w[c] * rs - x[c] * coef;
                    if (dw)
                        dw[c] += g_[c] * x[c] * rs;
                }
            }
            break;
        }
        case AIK_OP_ROPE: {
            /* the inverse rotation is the transpose: rotate dy back and accumulate */
            float *tmp = malloc(cnt * sizeof(float));
            if (!tmp)
                return aik_fail(err, -ENOMEM, "tape", "out of memory");
            memcpy(tmp, dy, cnt * sizeof(float));
            if (rope_table(t, n) < 0) {
                free(tmp);
                return aik_fail(err, -ENOMEM, "tape", "out of memory");
            }
            rope_rows(t, tmp, n, T, t->T, -1.0f);
            aik_add(da, tmp, da, (int64_t)cnt);
            free(tmp);
            break;
        }
        case AIK_OP_ATTENTION: {
            att_ctx c = { t, n, a, t->s[bi].act, t->s[n->src[2]].act, dy, NULL, s->aux, da, t->s[bi].grad,
                          t->s[n->src[2]].grad, t->T };
            aik_threadpool_parallel_for(t->pool, (int)(n->n_kv_heads * t->n_seq), att_bwd_task, &c);
            break;
        }
        case AIK_OP_SILU:
            for (size_t k = 0; k < cnt; k++) {
                float sg = sigmoidf(a[k]);
                da[k] += dy[k] * sg * (1.0f + a[k] * (1.0f - sg));
            }
            break;
        case AIK_OP_SWIGLU: {
            const float *u = t->s[bi].act;
            float *du = t->s[bi].grad;
            for (size_t k = 0; k < cnt; k++) {
                float sg = sigmoidf(a[k]), si = a[k] * sg;
                da[k] += dy[k] * u[k] * sg * (1.0f + a[k] * (1.0f - sg));
                du[k] += dy[k] * si;
            }
            break;
        }
        case AIK_OP_SOFTMAX:
            for (uint32_t r = 0; r < T; r++) {
                const float *y = s->act + (size_t)r * n->n_cols, *g_ = dy + (size_t)r * n->n_cols;
                double dot = 0;
                for (uint32_t c = 0; c < n->n_cols; c++)
                    dot += (double)g_[c] * y[c];
                for (uint32_t c = 0; c < n->n_cols; c++)
                    da[(size_t)r * n->n_cols + c] += y[c] * (g_[c] - (float)dot);
            }
            break;
        case AIK_OP_OUTPUT_ROWS:
            aik_add(da, dy, da, (int64_t)cnt);
            break;
        }
    }
    return 0;
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
        float mx = l[0];
        for (uint32_t v = 1; v < V; v++)
            if (l[v] > mx)
                mx = l[v];
        /* float exp, double accumulation: this runs V times per token */
        double sum = 0;
        for (uint32_t v = 0; v < V; v++)
            sum += expf(l[v] - mx);
        double lse = log(sum) + mx;
        loss += lse - l[targets[r]];
        count++;
        if (d) {
            float flse = (float)lse;
            for (uint32_t v = 0; v < V; v++)
                d[v] = scale * expf(l[v] - flse);
            d[targets[r]] -= scale;
        }
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
