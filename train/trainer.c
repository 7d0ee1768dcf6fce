/* SPDX-License-Identifier: MIT */
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __SSE2__
#include <immintrin.h>
#endif

#include "common/atomic_file.h"
#include "common/checked.h"
#include "common/digest.h"
#include "common/error.h"
#include "common/rng.h"
#include "kernels/cpu/cpu_kernels.h"
#include "runtime/generate.h"
#include "train/autograd.h"

/* One optimised tensor: a model weight (full mode) or a LoRA factor. */
typedef struct param {
    char name[AIK_SLM_NAME_MAX + 8];
    float *val, *grad, *m, *v;
    uint64_t n;
    bool decay;
} param;

typedef struct lora_pair {
    aik_node node;
    uint32_t rank;
    uint64_t in, out;
    size_t a, b; /* indices into params (the array moves as it grows) */
} lora_pair;

struct aik_trainer {
    const aik_model *m;
    aik_train_config cfg;
    aik_threadpool *pool;
    aik_tape *tape;
    param *params;
    size_t n_params;
    lora_pair *lora;
    size_t n_lora;
    aik_session *teacher;
    uint32_t chunk;       /* sequences per forward/backward pass */
    int32_t *in, *tgt;    /* chunk × seq_len inputs and targets */
    float *dlogits;       /* chunk × seq_len × n_vocab */
    float *tlogits;       /* teacher logits, same shape (distillation only) */
    uint32_t step;
    bool grads_dirty;       /* a gradient may be non-zero (calloc'ed zero; AdamW clears them) */
    aik_train_profile prof; /* aik_trainer_step only */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void aik_train_config_default(aik_train_config *c)
{
    static const char *const qkvo[] = { "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight" };
    memset(c, 0, sizeof(*c));
    c->mode = AIK_TRAIN_FULL;
    c->seq_len = 128;
    c->micro_batches = 8;
    c->steps = 1000;
    c->warmup_steps = 100;
    c->lr = 1e-3f;
    c->min_lr = 1e-4f;
    c->weight_decay = 0.1f;
    c->beta1 = 0.9f;
    c->beta2 = 0.95f;
    c->adam_eps = 1e-8f;
    c->grad_clip = 1.0f;
    c->lora_rank = 8;
    c->lora_alpha = 16.0f;
    c->lora_targets = qkvo;
    c->n_lora_targets = 4;
    c->distill_temp = 2.0f;
    c->ce_weight = 1.0f;
}

float aik_trainer_lr_at(const aik_train_config *c, uint32_t step)
{
    if (c->warmup_steps && step < c->warmup_steps)
        return c->lr * (float)(step + 1) / (float)c->warmup_steps;
    if (step >= c->steps)
        return c->min_lr;
    double span = (double)(c->steps - c->warmup_steps);
    double progress = span > 0 ? (double)(step - c->warmup_steps) / span : 1.0;
    return c->min_lr + (float)(0.5 * (1.0 + cos(M_PI * progress))) * (c->lr - c->min_lr);
}

static int check_config(const aik_model *m, const aik_train_config *c, aik_error *err)
{
    if (c->mode != AIK_TRAIN_FULL && c->mode != AIK_TRAIN_LORA)
        return aik_fail(err, -EINVAL, "train.mode", "must be full or lora");
    if (c->seq_len < 2 || c->seq_len > m->hp.ctx_len)
        return aik_fail(err, -EINVAL, "train.seq_len", "%u must be in 2..%u (the model's context)", c->seq_len,
                        m->hp.ctx_len);
    if (c->micro_batches == 0 || c->micro_batches > 4096)
        return aik_fail(err, -EINVAL, "train.micro_batches", "must be 1..4096");
    if (c->steps == 0)
        return aik_fail(err, -EINVAL, "train.steps", "must be > 0");
    if (c->warmup_steps > c->steps)
        return aik_fail(err, -EINVAL, "train.warmup_steps", "%u exceeds steps %u", c->warmup_steps, c->steps);
    if (!(c->lr > 0) || !(c->min_lr >= 0) || c->min_lr > c->lr || !isfinite(c->lr))
        return aik_fail(err, -EINVAL, "train.lr", "need 0 <= min_lr <= lr, lr > 0");
    if (!(c->weight_decay >= 0) || !(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) ||
        !(c->adam_eps > 0) || !(c->grad_clip >= 0))
        return aik_fail(err, -EINVAL, "train.optimizer", "weight_decay >= 0, betas in [0, 1), eps > 0, clip >= 0");
    if (c->mode == AIK_TRAIN_LORA) {
        if (c->lora_rank == 0 || c->lora_rank > 1024)
            return aik_fail(err, -EINVAL, "train.lora_rank", "must be 1..1024");
        if (!(c->lora_alpha > 0))
            return aik_fail(err, -EINVAL, "train.lora_alpha", "must be > 0");
        if (c->n_lora_targets == 0 || !c->lora_targets)
            return aik_fail(err, -EINVAL, "train.lora_targets", "name at least one weight suffix");
    }
    if (c->teacher) {
        if (c->teacher->hp.n_vocab != m->hp.n_vocab)
            return aik_fail(err, -EINVAL, "train.teacher", "vocabulary %u differs from the student's %u",
                            c->teacher->hp.n_vocab, m->hp.n_vocab);
        if (c->seq_len > c->teacher->hp.ctx_len)
            return aik_fail(err, -EINVAL, "train.teacher", "context %u shorter than seq_len", c->teacher->hp.ctx_len);
        if (!(c->distill_temp > 0) || !(c->ce_weight >= 0 && c->ce_weight <= 1))
            return aik_fail(err, -EINVAL, "train.distill", "temperature > 0 and ce_weight in [0, 1]");
    }
    return 0;
}

static param *add_param(aik_trainer *tr, const char *name, uint64_t n, bool decay)
{
    param *np = realloc(tr->params, (tr->n_params + 1) * sizeof(*np));
    param *p;
    if (!np)
        return NULL;
    tr->params = np;
    p = &tr->params[tr->n_params];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->n = n;
    p->decay = decay;
    p->val = calloc(n, sizeof(float));
    p->grad = calloc(n, sizeof(float));
    p->m = calloc(n, sizeof(float));
    p->v = calloc(n, sizeof(float));
    if (!p->val || !p->grad || !p->m || !p->v) {
        free(p->val);
        free(p->grad);
        free(p->m);
        free(p->v);
        return NULL;
    }
    tr->n_params++;
    return p;
}

/* A LoRA target names a tensor without its layer prefix: "attn_q.weight"
 * matches blk.N.attn_q.weight for every N; "output.weight" matches only the
 * output head (not blk.N.attn_output.weight). */
static bool target_matches(const char *name, const char *target)
{
    if (strncmp(name, "blk.", 4) == 0) {
        const char *p = name + 4;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p > name + 4 && *p == '.')
            name = p + 1;
    }
    return strcmp(name, target) == 0;
}

void aik_trainer_free(aik_trainer *tr)
{
    if (!tr)
        return;
    for (size_t i = 0; i < tr->n_params; i++) {
        free(tr->params[i].val);
        free(tr->params[i].grad);
        free(tr->params[i].m);
        free(tr->params[i].v);
    }
    free(tr->params);
    free(tr->lora);
    aik_tape_free(tr->tape);
    aik_session_free(tr->teacher);
    aik_threadpool_free(tr->pool);
    free(tr->dlogits);
    free(tr->tlogits);
    free(tr->in);
    free(tr->tgt);
    free(tr);
}

int aik_trainer_new(const aik_model *m, const aik_train_config *cfg, aik_trainer **ret, aik_error *err)
{
    const aik_graph *g;
    aik_trainer *tr;
    int r;

    if (!m || !cfg || !ret)
        return aik_fail(err, -EINVAL, "train", "missing model or configuration");
    r = check_config(m, cfg, err);
    if (r < 0)
        return r;
    g = m->graph;
    tr = calloc(1, sizeof(*tr));
    if (!tr)
        return aik_fail(err, -ENOMEM, "train", "out of memory");
    tr->m = m;
    tr->cfg = *cfg;
    tr->cfg.lora_targets = NULL; /* not kept: only used here */
    r = aik_threadpool_new((int)cfg->n_threads, &tr->pool);
    if (r < 0)
        goto fail_msg;
    /* Several sequences per pass give the GEMMs more rows; the logits
     * (rows × vocabulary, twice with a teacher) bound how many. */
    {
        uint64_t rows = 2048, by_logits = (32u << 20) / m->hp.n_vocab;
        if (rows > by_logits)
            rows = by_logits;
        tr->chunk = (uint32_t)(rows / cfg->seq_len);
        if (tr->chunk < 1)
            tr->chunk = 1;
        if (tr->chunk > cfg->micro_batches)
            tr->chunk = cfg->micro_batches;
    }
    r = aik_tape_new_batch(g, cfg->seq_len, tr->chunk, tr->pool, &tr->tape, err);
    if (r < 0)
        goto fail;
    {
        size_t rows = (size_t)tr->chunk * cfg->seq_len;
        tr->dlogits = malloc(rows * m->hp.n_vocab * sizeof(float));
        tr->in = malloc(rows * sizeof(int32_t));
        tr->tgt = malloc(rows * sizeof(int32_t));
        if (!tr->dlogits || !tr->in || !tr->tgt)
            goto oom;
        if (cfg->teacher && !(tr->tlogits = malloc(rows * m->hp.n_vocab * sizeof(float))))
            goto oom;
    }

    if (cfg->mode == AIK_TRAIN_FULL) {
        for (aik_node i = 0; i < g->n_nodes; i++) {
            const aik_gnode *n = &g->nodes[i];
            uint64_t ne = n->shape[0] * n->shape[1] * n->shape[2] * n->shape[3];
            param *p;
            if (n->op != AIK_OP_WEIGHT)
                continue;
            p = add_param(tr, n->name, ne, n->n_dims >= 2);
            if (!p)
                goto oom;
            aik_dequantize_row(n->dtype, n->data, p->val, (int64_t)ne);
            r = aik_tape_bind_param(tr->tape, i, p->val, p->grad, err);
            if (r < 0)
                goto fail;
        }
    } else {
        uint64_t rng = cfg->seed ^ 0x10A4A11CEull;
        for (aik_node i = 0; i < g->n_nodes; i++) {
            const aik_gnode *n = &g->nodes[i];
            bool target = false, used_by_matmul = false;
            if (n->op != AIK_OP_WEIGHT || n->n_dims != 2)
                continue;
            for (size_t k = 0; k < cfg->n_lora_targets; k++)
                if (target_matches(n->name, cfg->lora_targets[k]))
                    target = true;
            for (aik_node j = i + 1; j < g->n_nodes && target; j++)
                if (g->nodes[j].op == AIK_OP_MATMUL && g->nodes[j].src[1] == i)
                    used_by_matmul = true;
            if (!target || !used_by_matmul)
                continue;
            lora_pair *nl = realloc(tr->lora, (tr->n_lora + 1) * sizeof(*nl));
            char name[AIK_SLM_NAME_MAX + 8];
            if (!nl)
                goto oom;
            tr->lora = nl;
            lora_pair *lp = &tr->lora[tr->n_lora++];
            lp->node = i;
            lp->rank = cfg->lora_rank;
            lp->in = n->shape[0];
            lp->out = n->shape[1];
            snprintf(name, sizeof(name), "%s.lora_a", n->name);
            if (!add_param(tr, name, (uint64_t)cfg->lora_rank * lp->in, false))
                goto oom;
            snprintf(name, sizeof(name), "%s.lora_b", n->name);
            if (!add_param(tr, name, lp->out * cfg->lora_rank, false))
                goto oom;
            lp->a = tr->n_params - 2;
            lp->b = tr->n_params - 1;
            /* A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0: the adapter starts as a no-op. */
            param *A = &tr->params[lp->a];
            float bound = 1.0f / sqrtf((float)lp->in);
            for (uint64_t k = 0; k < A->n; k++)
                A->val[k] = bound * (float)((double)(aik_splitmix64(&rng) >> 11) * 0x1.0p-52 - 1.0);
        }
        if (tr->n_lora == 0) {
            r = aik_fail(err, -EINVAL, "train.lora_targets", "no matmul weight of the model matches the targets");
            goto fail;
        }
        /* bind after all params exist (their array no longer moves) */
        for (size_t k = 0; k < tr->n_lora; k++) {
            lora_pair *lp = &tr->lora[k];
            param *A = &tr->params[lp->a], *B = &tr->params[lp->b];
            r = aik_tape_bind_lora(tr->tape, lp->node, lp->rank, cfg->lora_alpha / (float)lp->rank, A->val, B->val,
                                   A->grad, B->grad, err);
            if (r < 0)
                goto fail;
        }
    }
    if (cfg->teacher) {
        aik_session_config sc = { .n_threads = cfg->n_threads, .ctx_len = cfg->seq_len, .batch = cfg->seq_len };
        r = aik_session_new(cfg->teacher, &sc, &tr->teacher, err);
        if (r < 0)
            goto fail;
    }
    *ret = tr;
    return 0;
oom:
    r = -ENOMEM;
fail_msg:
    aik_fail(err, r, "train", r == -ENOMEM ? "out of memory" : "cannot start threads");
fail:
    aik_trainer_free(tr);
    return r;
}

uint32_t aik_trainer_step_count(const aik_trainer *tr) { return tr->step; }

/* Flops per training token of the mat-muls (weights and LoRA factors) and
 * of attention. */
static void flops_split(const aik_trainer *tr, double *ret_matmul, double *ret_attention)
{
    const aik_graph *g = tr->m->graph;
    double mm = 0, att = 0;

    for (aik_node i = 0; i < g->n_nodes; i++) {
        const aik_gnode *n = &g->nodes[i];
        if (n->op == AIK_OP_MATMUL) {
            const aik_gnode *w = &g->nodes[n->src[1]];
            mm += 6.0 * (double)w->shape[0] * (double)w->shape[1];
        } else if (n->op == AIK_OP_ATTENTION) {
            att += 3.0 * 2.0 * 2.0 * (tr->cfg.seq_len / 2.0) * n->n_heads * n->head_dim;
        }
    }
    for (size_t k = 0; k < tr->n_lora; k++)
        mm += 6.0 * (double)tr->lora[k].rank * (double)(tr->lora[k].in + tr->lora[k].out);
    *ret_matmul = mm;
    *ret_attention = att;
}

double aik_trainer_flops_per_token(const aik_trainer *tr)
{
    double mm, att;
    flops_split(tr, &mm, &att);
    return mm + att;
}

void aik_trainer_profile(const aik_trainer *tr, aik_train_profile *ret)
{
    *ret = tr->prof;
    flops_split(tr, &ret->matmul_flops_per_token, &ret->attention_flops_per_token);
}

/* The loss, the gradient norm and AdamW are element-wise or per row: they
 * run as a FIXED number of tasks whose partial results are added in task
 * order, so the numbers do not depend on how many threads ran them. */
#define LOSS_TASKS 16
#define OPT_CHUNK 65536

typedef struct loss_job {
    const float *logits, *teacher;
    const int32_t *targets;
    float *dlogits;
    uint32_t rows, V;
    float scale, ce_w, temp;
    bool distill;
    double part[LOSS_TASKS];
    uint32_t count[LOSS_TASKS];
} loss_job;

static void loss_task(void *ctx, int task, int thread)
{
    loss_job *j = ctx;
    uint32_t r0 = (uint32_t)((uint64_t)j->rows * task / LOSS_TASKS);
    uint32_t r1 = (uint32_t)((uint64_t)j->rows * (task + 1) / LOSS_TASKS);
    size_t off = (size_t)r0 * j->V;
    float *d = j->dlogits ? j->dlogits + off : NULL;
    (void)thread;
    j->part[task] = 0;
    j->count[task] = 0;
    if (r1 == r0)
        return;
    if (!j->distill) {
        j->part[task] = aik_cross_entropy(j->logits + off, j->targets + r0, r1 - r0, j->V, j->scale, d, &j->count[task]);
        return;
    }
    float w = j->ce_w;
    j->part[task] = w * aik_cross_entropy(j->logits + off, j->targets + r0, r1 - r0, j->V, w * j->scale, d,
                                          &j->count[task]);
    j->part[task] += (1.0f - w) * aik_distill_kl(j->logits + off, j->teacher + off, r1 - r0, j->V, j->temp,
                                                 (1.0f - w) * j->scale, d);
}

/* Forward + loss (+ backward when training) of n sequences in one pass;
 * seqs holds n × (seq_len + 1) tokens. */
static int run_chunk(aik_trainer *tr, const int32_t *seqs, uint32_t n, float scale, bool backward, bool distill,
                     double *ret_loss, uint32_t *ret_count, aik_error *err)
{
    uint32_t T = tr->cfg.seq_len, V = tr->m->hp.n_vocab, rows = n * T;
    const float *logits;
    double loss;
    int r;

    for (uint32_t b = 0; b < n; b++) {
        memcpy(tr->in + (size_t)b * T, seqs + (size_t)b * (T + 1), T * sizeof(int32_t));
        memcpy(tr->tgt + (size_t)b * T, seqs + (size_t)b * (T + 1) + 1, T * sizeof(int32_t));
    }
    r = aik_tape_forward_batch(tr->tape, tr->in, T, n, &logits, err);
    if (r < 0)
        return r;
    if (distill && tr->teacher) {
        for (uint32_t b = 0; b < n; b++) {
            const float *tl;
            aik_session_reset(tr->teacher);
            r = aik_session_eval(tr->teacher, tr->in + (size_t)b * T, T, T, &tl, err);
            if (r < 0)
                return r;
            memcpy(tr->tlogits + (size_t)b * T * V, tl, (size_t)T * V * sizeof(float));
        }
    }
    loss_job lj = { logits, tr->tlogits, tr->tgt, backward ? tr->dlogits : NULL, rows, V, scale, tr->cfg.ce_weight,
                    tr->cfg.distill_temp, distill && tr->teacher, { 0 }, { 0 } };
    double t0 = now_s();
    aik_threadpool_parallel_for(tr->pool, LOSS_TASKS, loss_task, &lj);
    if (backward)
        tr->prof.loss_s += now_s() - t0;
    loss = 0;
    *ret_count = 0;
    for (int k = 0; k < LOSS_TASKS; k++) {
        loss += lj.part[k];
        *ret_count += lj.count[k];
    }
    *ret_loss = loss;
    return backward ? aik_tape_backward(tr->tape, tr->dlogits, err) : 0;
}

/* A slice of one parameter tensor: the unit of work of the optimizer. */
typedef struct opt_chunk {
    param *p;
    uint64_t begin, end;
    double sum; /* gradient sum of squares of the slice */
} opt_chunk;

typedef struct opt_job {
    aik_trainer *tr;
    float clip, lr, bc1, bc2;
    size_t n_chunks;
    opt_chunk *chunks;
} opt_job;

static int build_chunks(aik_trainer *tr, opt_job *j)
{
    size_t n = 0;
    for (size_t i = 0; i < tr->n_params; i++)
        n += (size_t)((tr->params[i].n + OPT_CHUNK - 1) / OPT_CHUNK);
    j->chunks = malloc((n ? n : 1) * sizeof(*j->chunks));
    if (!j->chunks)
        return -ENOMEM;
    j->n_chunks = 0;
    for (size_t i = 0; i < tr->n_params; i++)
        for (uint64_t b = 0; b < tr->params[i].n; b += OPT_CHUNK) {
            uint64_t e = b + OPT_CHUNK < tr->params[i].n ? b + OPT_CHUNK : tr->params[i].n;
            j->chunks[j->n_chunks++] = (opt_chunk){ &tr->params[i], b, e, 0 };
        }
    return 0;
}

static void norm_task(void *ctx, int task, int thread)
{
    opt_chunk *ch = &((opt_job *)ctx)->chunks[task];
    double s = 0;
    (void)thread;
    for (uint64_t k = ch->begin; k < ch->end; k++)
        s += (double)ch->p->grad[k] * ch->p->grad[k];
    ch->sum = s;
}

/* The update also clears the gradient for the next step's accumulation
 * (it is read here anyway; a separate pass would cost as much again).
 * On x86-64 four lanes at a time with SSE (part of the base ISA): vector
 * IEEE add, mul, div and sqrt round exactly like the scalar ones and the
 * operations are the same, in the same order, so the numbers do not change;
 * GCC does not vectorize this loop itself, even at -O3 (sqrtf keeps an
 * errno path). */
static void adamw_task(void *ctx, int task, int thread)
{
    const opt_job *j = ctx;
    const aik_train_config *c = &j->tr->cfg;
    const opt_chunk *ch = &j->chunks[task];
    param *p = ch->p;
    float *restrict val = p->val + ch->begin, *restrict grad = p->grad + ch->begin;
    float *restrict m = p->m + ch->begin, *restrict v = p->v + ch->begin;
    const float wd = p->decay ? c->weight_decay : 0.0f, b1 = c->beta1, b2 = c->beta2, eps = c->adam_eps;
    const float clip = j->clip, lr = j->lr, bc1 = j->bc1, bc2 = j->bc2;
    const uint64_t n = ch->end - ch->begin;
    uint64_t k = 0;
    (void)thread;
#ifdef __SSE2__
    const __m128 vclip = _mm_set1_ps(clip), vb1 = _mm_set1_ps(b1), vb2 = _mm_set1_ps(b2);
    const __m128 v1b1 = _mm_set1_ps(1.0f - b1), v1b2 = _mm_set1_ps(1.0f - b2), vbc1 = _mm_set1_ps(bc1);
    const __m128 vbc2 = _mm_set1_ps(bc2), veps = _mm_set1_ps(eps), vlr = _mm_set1_ps(lr), vwd = _mm_set1_ps(wd);
    for (; k + 4 <= n; k += 4) {
        __m128 gk = _mm_mul_ps(_mm_loadu_ps(grad + k), vclip);
        _mm_storeu_ps(grad + k, _mm_setzero_ps());
        __m128 mk = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + k)), _mm_mul_ps(v1b1, gk));
        __m128 vk = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + k)), _mm_mul_ps(_mm_mul_ps(v1b2, gk), gk));
        _mm_storeu_ps(m + k, mk);
        _mm_storeu_ps(v + k, vk);
        __m128 mh = _mm_div_ps(mk, vbc1), vh = _mm_div_ps(vk, vbc2), x = _mm_loadu_ps(val + k);
        __m128 upd = _mm_add_ps(_mm_div_ps(mh, _mm_add_ps(_mm_sqrt_ps(vh), veps)), _mm_mul_ps(vwd, x));
        _mm_storeu_ps(val + k, _mm_sub_ps(x, _mm_mul_ps(vlr, upd)));
    }
#endif
    for (; k < n; k++) {
        float gk = grad[k] * clip;
        grad[k] = 0.0f;
        m[k] = b1 * m[k] + (1.0f - b1) * gk;
        v[k] = b2 * v[k] + (1.0f - b2) * gk * gk;
        float mh = m[k] / bc1, vh = v[k] / bc2;
        val[k] -= lr * (mh / (sqrtf(vh) + eps) + wd * val[k]);
    }
}

int aik_trainer_step(aik_trainer *tr, const int32_t *seqs, aik_train_stats *ret, aik_error *err)
{
    const aik_train_config *c = &tr->cfg;
    uint32_t T = c->seq_len;
    float scale = 1.0f / (float)((uint64_t)T * c->micro_batches);
    double loss = 0, norm2 = 0;
    uint64_t tokens = 0;
    int r;

    if (!seqs)
        return aik_fail(err, -EINVAL, "train", "no data");
    double t_start = now_s();
    aik_tape_times tt0, tt1;
    aik_tape_times_get(tr->tape, &tt0);
    /* AdamW clears the gradients as it reads them; only a step that failed
     * half-way leaves some behind */
    if (tr->grads_dirty)
        for (size_t i = 0; i < tr->n_params; i++)
            memset(tr->params[i].grad, 0, tr->params[i].n * sizeof(float));
    tr->grads_dirty = true;
    tr->prof.optimizer_s += now_s() - t_start;
    for (uint32_t b = 0; b < c->micro_batches; b += tr->chunk) {
        uint32_t n = c->micro_batches - b < tr->chunk ? c->micro_batches - b : tr->chunk;
        double l;
        uint32_t cnt = 0;
        r = run_chunk(tr, seqs + (size_t)b * (T + 1), n, scale, true, true, &l, &cnt, err);
        if (r < 0)
            return r;
        loss += l;
        tokens += cnt;
    }
    double t_opt = now_s();
    opt_job oj = { tr, 0, 0, 0, 0, 0, NULL };
    if (build_chunks(tr, &oj) < 0)
        return aik_fail(err, -ENOMEM, "train", "out of memory");
    aik_threadpool_parallel_for(tr->pool, (int)oj.n_chunks, norm_task, &oj);
    for (size_t k = 0; k < oj.n_chunks; k++)
        norm2 += oj.chunks[k].sum;
    double norm = sqrt(norm2);
    if (!isfinite(norm)) {
        free(oj.chunks);
        return aik_fail(err, -ERANGE, "train", "gradient is not finite at step %u (lower the learning rate)",
                        tr->step);
    }
    float clip = (c->grad_clip > 0 && norm > c->grad_clip) ? (float)(c->grad_clip / norm) : 1.0f;
    float lr = aik_trainer_lr_at(c, tr->step);
    uint32_t t = tr->step + 1;
    oj.clip = clip;
    oj.lr = lr;
    oj.bc1 = 1.0f - powf(c->beta1, (float)t);
    oj.bc2 = 1.0f - powf(c->beta2, (float)t);
    aik_threadpool_parallel_for(tr->pool, (int)oj.n_chunks, adamw_task, &oj);
    tr->grads_dirty = false;
    free(oj.chunks);
    tr->step++;
    aik_tape_times_get(tr->tape, &tt1);
    tr->prof.optimizer_s += now_s() - t_opt;
    tr->prof.matmul_s += tt1.matmul - tt0.matmul;
    tr->prof.attention_s += tt1.attention - tt0.attention;
    tr->prof.other_ops_s += tt1.other - tt0.other;
    tr->prof.total_s += now_s() - t_start;
    tr->prof.tokens += (uint64_t)T * c->micro_batches;
    if (ret) {
        ret->step = tr->step;
        ret->loss = tokens ? loss / (double)tokens : 0.0;
        ret->grad_norm = norm;
        ret->lr = lr;
        ret->tokens = (uint64_t)T * c->micro_batches;
    }
    return 0;
}

int aik_trainer_eval(aik_trainer *tr, const int32_t *seqs, size_t n, double *ret_loss, aik_error *err)
{
    uint32_t T = tr->cfg.seq_len;
    double total = 0;
    uint64_t count = 0;

    if (!seqs || n == 0 || !ret_loss)
        return aik_fail(err, -EINVAL, "train.eval", "no data");
    for (size_t i = 0; i < n; i += tr->chunk) {
        uint32_t k = n - i < tr->chunk ? (uint32_t)(n - i) : tr->chunk, cnt = 0;
        double l;
        /* plain cross-entropy, whatever the training loss mixes in */
        int r = run_chunk(tr, seqs + i * (T + 1), k, 1.0f, false, false, &l, &cnt, err);
        if (r < 0)
            return r;
        total += l;
        count += cnt;
    }
    *ret_loss = count ? total / (double)count : 0.0;
    return 0;
}

/* ---- checkpoints ---- */

#define CKPT_MAGIC "AIKCKPT\x01"

int aik_trainer_save_checkpoint(const aik_trainer *tr, const char *path, const void *extra, size_t extra_len,
                                aik_error *err)
{
    aik_atomic_file f;
    aik_sha256 *h = aik_sha256_new();
    uint8_t digest[32];
    uint64_t hdr[4] = { 1, tr->n_params, tr->step, extra_len };
    int r;

    if (!h)
        return aik_fail(err, -ENOMEM, "checkpoint", "out of memory");
    r = aik_atomic_file_open(&f, path, 0600);
    if (r < 0) {
        aik_sha256_free(h);
        return aik_fail(err, r, path, "cannot create checkpoint");
    }
#define PUT(ptr, len)                                                                                                  \
    do {                                                                                                               \
        if (r == 0)                                                                                                    \
            r = aik_atomic_file_write(&f, (ptr), (len));                                                               \
        if (r == 0)                                                                                                    \
            r = aik_sha256_update(h, (ptr), (len));                                                                    \
    } while (0)
    PUT(CKPT_MAGIC, 8);
    PUT(hdr, sizeof(hdr));
    for (size_t i = 0; i < tr->n_params; i++) {
        const param *p = &tr->params[i];
        uint64_t meta[2] = { strlen(p->name), p->n };
        PUT(meta, sizeof(meta));
        PUT(p->name, meta[0]);
        PUT(p->val, p->n * sizeof(float));
        PUT(p->m, p->n * sizeof(float));
        PUT(p->v, p->n * sizeof(float));
    }
    if (extra_len)
        PUT(extra, extra_len);
#undef PUT
    if (r == 0)
        r = aik_sha256_final(h, digest);
    if (r == 0)
        r = aik_atomic_file_write(&f, digest, sizeof(digest));
    aik_sha256_free(h);
    if (r < 0) {
        aik_atomic_file_abort(&f);
        return aik_fail(err, r, path, "cannot write checkpoint");
    }
    r = aik_atomic_file_commit(&f);
    return r < 0 ? aik_fail(err, r, path, "cannot commit checkpoint") : 0;
}

int aik_trainer_load_checkpoint(aik_trainer *tr, const char *path, void **ret_extra, size_t *ret_extra_len,
                                aik_error *err)
{
    char *data = NULL;
    size_t len = 0, off = 0;
    uint8_t digest[32];
    uint64_t hdr[4];
    int r = aik_read_file(path, (size_t)1 << 36, &data, &len);

    if (r < 0)
        return aik_fail(err, r, path, "cannot read checkpoint");
    r = -EBADMSG;
    if (len < 8 + sizeof(hdr) + 32 || memcmp(data, CKPT_MAGIC, 8) != 0) {
        aik_fail(err, r, path, "not an AIKernel checkpoint (bad magic or too short)");
        goto out;
    }
    if (aik_sha256_buf(data, len - 32, digest) < 0 || memcmp(digest, data + len - 32, 32) != 0) {
        aik_fail(err, r, path, "checksum mismatch: the checkpoint is damaged");
        goto out;
    }
    len -= 32;
    off = 8;
    memcpy(hdr, data + off, sizeof(hdr));
    off += sizeof(hdr);
    if (hdr[0] != 1 || hdr[1] != tr->n_params) {
        aik_fail(err, r, path, "checkpoint version %llu with %llu tensors; this trainer has %zu",
                 (unsigned long long)hdr[0], (unsigned long long)hdr[1], tr->n_params);
        goto out;
    }
    for (size_t i = 0; i < tr->n_params; i++) {
        param *p = &tr->params[i];
        uint64_t meta[2], bytes;
        if (!aik_range_ok(off, sizeof(meta), len))
            goto trunc;
        memcpy(meta, data + off, sizeof(meta));
        off += sizeof(meta);
        if (!aik_range_ok(off, meta[0], len))
            goto trunc;
        if (meta[0] != strlen(p->name) || memcmp(data + off, p->name, meta[0]) != 0 || meta[1] != p->n) {
            aik_fail(err, r, path, "tensor %zu is not %s with %llu values", i, p->name, (unsigned long long)p->n);
            goto out;
        }
        off += meta[0];
        if (aik_mul_overflow(p->n, 3 * sizeof(float), &bytes) || !aik_range_ok(off, bytes, len))
            goto trunc;
        memcpy(p->val, data + off, p->n * sizeof(float));
        memcpy(p->m, data + off + p->n * sizeof(float), p->n * sizeof(float));
        memcpy(p->v, data + off + 2 * p->n * sizeof(float), p->n * sizeof(float));
        off += bytes;
    }
    if (hdr[3] != len - off) {
        aik_fail(err, r, path, "caller state is %zu bytes, header says %llu", len - off, (unsigned long long)hdr[3]);
        goto out;
    }
    if (ret_extra) {
        *ret_extra = NULL;
        if (hdr[3]) {
            *ret_extra = malloc(hdr[3]);
            if (!*ret_extra) {
                r = aik_fail(err, -ENOMEM, path, "out of memory");
                goto out;
            }
            memcpy(*ret_extra, data + off, hdr[3]);
        }
        *ret_extra_len = hdr[3];
    }
    tr->step = (uint32_t)hdr[2];
    r = 0;
    goto out;
trunc:
    aik_fail(err, r, path, "truncated at byte %zu", off);
out:
    free(data);
    return r;
}

/* ---- results ---- */

static const param *find_param(const aik_trainer *tr, const char *name)
{
    for (size_t i = 0; i < tr->n_params; i++)
        if (strcmp(tr->params[i].name, name) == 0)
            return &tr->params[i];
    return NULL;
}

const float *aik_trainer_weight(const aik_trainer *tr, const char *name, uint64_t *ret_n)
{
    const param *p = tr->cfg.mode == AIK_TRAIN_FULL ? find_param(tr, name) : NULL;
    if (p && ret_n)
        *ret_n = p->n;
    return p ? p->val : NULL;
}

int aik_trainer_write_package(const aik_trainer *tr, const char *path, aik_dtype dtype, aik_error *err)
{
    const aik_slm *pkg = tr->m->pkg;
    aik_slm_writer *w = NULL;
    void *buf = NULL;
    int r;

    if (tr->cfg.mode != AIK_TRAIN_FULL)
        return aik_fail(err, -EINVAL, "train", "only full training writes a whole package (LoRA writes adapters)");
    r = aik_slm_writer_begin(path, &pkg->hdr, pkg->layers, pkg->tokenizer, pkg->hdr.tokenizer_size, &w, err);
    if (r < 0)
        return r;
    for (uint32_t i = 0; i < pkg->hdr.tensor_count; i++) {
        const aik_slm_tensor *t = &pkg->tensors[i];
        const param *p = find_param(tr, t->name);
        const void *data = t->data;
        aik_dtype dt = t->dtype;
        if (p) {
            uint64_t bytes, row_bytes;
            dt = t->n_dims == 1 ? AIK_DTYPE_F32 : dtype;
            if (aik_dtype_block_elems(dt) > 1 && t->shape[0] % aik_dtype_block_elems(dt))
                dt = AIK_DTYPE_F32;
            aik_dtype_bytes(dt, p->n, &bytes);
            aik_dtype_bytes(dt, t->shape[0], &row_bytes);
            free(buf);
            buf = malloc(bytes);
            if (!buf) {
                r = aik_fail(err, -ENOMEM, t->name, "out of memory");
                goto out;
            }
            for (uint64_t row = 0; row < p->n / t->shape[0]; row++)
                aik_quantize_row(dt, p->val + row * t->shape[0], (uint8_t *)buf + row * row_bytes,
                                 (int64_t)t->shape[0]);
            data = buf;
        }
        r = aik_slm_writer_add_tensor(w, t->name, dt, t->n_dims, t->shape, data, err);
        if (r < 0)
            goto out;
    }
    r = aik_slm_writer_finish(w, err);
    w = NULL;
out:
    aik_slm_writer_abort(w);
    free(buf);
    return r;
}

size_t aik_trainer_lora_count(const aik_trainer *tr) { return tr->n_lora; }

int aik_trainer_lora_get(const aik_trainer *tr, size_t i, const char **ret_name, uint32_t *ret_rank, float *ret_alpha,
                         const float **ret_A, const float **ret_B, uint64_t *ret_in, uint64_t *ret_out)
{
    const lora_pair *lp;
    if (i >= tr->n_lora)
        return -ENOENT;
    lp = &tr->lora[i];
    *ret_name = tr->m->graph->nodes[lp->node].name;
    *ret_rank = lp->rank;
    *ret_alpha = tr->cfg.lora_alpha;
    *ret_A = tr->params[lp->a].val;
    *ret_B = tr->params[lp->b].val;
    *ret_in = lp->in;
    *ret_out = lp->out;
    return 0;
}
