/* SPDX-License-Identifier: MIT */
/*
 * Gradient checks: the backward of every op, and of a whole two-layer llama
 * model, against central finite differences of the same forward pass.
 * Each per-op graph is tokens → embedding → <op under test> → projection to
 * the vocabulary, built through the real builder vtable, so the check runs
 * on exactly what architecture modules produce.
 */
#include <errno.h>
#include <math.h>

#include "graph/graph.h"
#include "modules/llama/llama_arch.h"
#include "train/autograd.h"
#include "testutil.h"

enum { V = 11, C = 8, T = 5 };

static int which_op;

static aik_node w1(const aik_graph_api *api, aik_graph *g, const char *name, uint64_t a)
{
    uint64_t s[1] = { a };
    return api->weight(g, name, 1, s, 0);
}

static aik_node w2(const aik_graph_api *api, aik_graph *g, const char *name, uint64_t a, uint64_t b)
{
    uint64_t s[2] = { a, b };
    return api->weight(g, name, 2, s, 0);
}

enum { OP_MATMUL, OP_ADD_ACT, OP_ADD_BIAS, OP_MUL_ACT, OP_MUL_W, OP_RMS, OP_ROPE, OP_ROPE_NEOX, OP_ATT, OP_SILU,
       OP_SWIGLU, OP_SOFTMAX, OP_RESHAPE, OP_OUTROWS, OP_N };
static const char *const op_label[OP_N] = { "matmul", "add", "add-bias", "mul", "mul-weight", "rms_norm", "rope",
                                            "rope-neox", "attention", "silu", "swiglu", "softmax", "reshape",
                                            "output_rows" };

static int build_op(const aik_graph_api *api, aik_graph *g, const aik_model_hparams *hp)
{
    aik_node x = api->get_rows(g, w2(api, g, "emb", C, V), api->tokens(g));
    aik_node y = x;
    (void)hp;
    switch (which_op) {
    case OP_MATMUL: y = api->matmul(g, x, w2(api, g, "w", C, C)); break;
    case OP_ADD_ACT: y = api->add(g, x, api->matmul(g, x, w2(api, g, "w", C, C))); break;
    case OP_ADD_BIAS: y = api->add(g, x, w1(api, g, "b", C)); break;
    case OP_MUL_ACT: y = api->mul(g, x, api->matmul(g, x, w2(api, g, "w", C, C))); break;
    case OP_MUL_W: y = api->mul(g, x, w1(api, g, "b", C)); break;
    case OP_RMS: y = api->rms_norm(g, x, w1(api, g, "b", C), 1e-5f); break;
    case OP_ROPE: y = api->rope(g, x, 2, 4, 100.0f, AIK_ROPE_NORMAL); break;
    case OP_ROPE_NEOX: y = api->rope(g, x, 2, 4, 100.0f, AIK_ROPE_NEOX); break;
    case OP_ATT: {
        /* 2 query heads on 1 kv head (GQA), head_dim 4 */
        aik_node q = api->matmul(g, x, w2(api, g, "wq", C, 8));
        aik_node k = api->matmul(g, x, w2(api, g, "wk", C, 4));
        aik_node v = api->matmul(g, x, w2(api, g, "wv", C, 4));
        y = api->attention(g, q, k, v, 0, 2, 1, 4, 0.5f);
        break;
    }
    case OP_SILU: y = api->silu(g, x); break;
    case OP_SWIGLU: y = api->swiglu(g, x, api->matmul(g, x, w2(api, g, "w", C, C))); break;
    case OP_SOFTMAX: y = api->softmax(g, x); break;
    case OP_RESHAPE: y = api->reshape(g, api->silu(g, api->reshape(g, x, 4)), C); break;
    case OP_OUTROWS: y = api->output_rows(g, x); break;
    }
    return api->set_logits(g, api->matmul(g, y, w2(api, g, "out", C, V)));
}

static const aik_arch_ops test_arch = { sizeof(aik_arch_ops), AIK_GRAPH_ABI_MAJOR, 1, build_op };

typedef struct params {
    aik_graph *g;
    aik_tape *tape;
    float **val, **grad;
    uint64_t *n;
} params;

static uint64_t rng = 12345;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
}

static void bind_all(params *p, float init_scale)
{
    aik_error err;
    p->val = calloc((size_t)p->g->n_nodes, sizeof(float *));
    p->grad = calloc((size_t)p->g->n_nodes, sizeof(float *));
    p->n = calloc((size_t)p->g->n_nodes, sizeof(uint64_t));
    for (aik_node i = 0; i < p->g->n_nodes; i++) {
        const aik_gnode *nd = &p->g->nodes[i];
        if (nd->op != AIK_OP_WEIGHT)
            continue;
        p->n[i] = nd->shape[0] * nd->shape[1] * nd->shape[2] * nd->shape[3];
        p->val[i] = malloc(p->n[i] * sizeof(float));
        p->grad[i] = calloc(p->n[i], sizeof(float));
        for (uint64_t k = 0; k < p->n[i]; k++)
            p->val[i][k] = nd->n_dims == 1 ? 1.0f + 0.3f * frand() : init_scale * frand();
        ck_assert_int_eq(aik_tape_bind_param(p->tape, i, p->val[i], p->grad[i], &err), 0);
    }
}

static void free_params(params *p)
{
    for (aik_node i = 0; i < p->g->n_nodes; i++) {
        free(p->val[i]);
        free(p->grad[i]);
    }
    free(p->val);
    free(p->grad);
    free(p->n);
    aik_tape_free(p->tape);
    aik_graph_free(p->g);
}

static double loss_of(params *p, const int32_t *tok, const int32_t *tgt, int n, uint32_t vocab, float *dlogits)
{
    const float *lg;
    aik_error err;
    ck_assert_int_eq(aik_tape_forward(p->tape, tok, (uint32_t)n, &lg, &err), 0);
    return aik_cross_entropy(lg, tgt, (uint32_t)n, vocab, 1.0f, dlogits, NULL);
}

/* Compare every (or a sample of every) parameter's gradient with FD. */
static void grad_check(params *p, const int32_t *tok, const int32_t *tgt, int n, uint32_t vocab, int per_tensor,
                       const char *label)
{
    aik_error err;
    float *dl = malloc((size_t)n * vocab * sizeof(float));
    loss_of(p, tok, tgt, n, vocab, dl);
    ck_assert_int_eq(aik_tape_backward(p->tape, dl, &err), 0);
    free(dl);
    int checked = 0;
    double worst = 0;
    for (aik_node i = 0; i < p->g->n_nodes; i++) {
        if (!p->val[i])
            continue;
        for (int s = 0; s < per_tensor; s++) {
            uint64_t k = (uint64_t)((frand() + 1.0f) * 0.5f * (float)p->n[i]) % p->n[i];
            float keep = p->val[i][k], h = 1e-2f;
            p->val[i][k] = keep + h;
            double lp = loss_of(p, tok, tgt, n, vocab, NULL);
            p->val[i][k] = keep - h;
            double lm = loss_of(p, tok, tgt, n, vocab, NULL);
            p->val[i][k] = keep;
            double fd = (lp - lm) / (2 * h), an = p->grad[i][k];
            double tol = 2e-3 + 3e-2 * fmax(fabs(fd), fabs(an));
            double e = fabs(fd - an);
            if (e / (2e-3 + fmax(fabs(fd), fabs(an))) > worst)
                worst = e / (2e-3 + fmax(fabs(fd), fabs(an)));
            ck_assert_msg(e <= tol, "%s: d/d %s[%llu]: analytic %.6g, finite difference %.6g", label,
                          p->g->nodes[i].name, (unsigned long long)k, an, fd);
            checked++;
        }
    }
    ck_assert_int_gt(checked, 0);
}

START_TEST(test_op_gradients)
{
    int op = _i;
    aik_model_hparams hp = { .struct_size = sizeof(hp), .model_type = 1, .n_vocab = V, .dim = C, .ctx_len = 16 };
    params p = { 0 };
    aik_error err;
    int32_t tok[T] = { 1, 4, 2, 9, 4 }, tgt[T] = { 4, 2, 9, 4, 0 };

    which_op = op;
    ck_assert_msg(aik_graph_build(&test_arch, &hp, NULL, &p.g, &err) == 0, "%s: %s", err.where, err.message);
    ck_assert_int_eq(aik_tape_new(p.g, T, NULL, &p.tape, &err), 0);
    bind_all(&p, 0.7f);
    grad_check(&p, tok, tgt, T, V, 12, op_label[op]);
    free_params(&p);
}
END_TEST

/* The executor and the tape compute the same forward. */
START_TEST(test_whole_model_gradients)
{
    aik_layer_hparams layers[2] = { { 4, 2, 24 }, { 2, 1, 16 } };
    aik_model_hparams hp = { .struct_size = sizeof(hp), .model_type = 1, .flags = AIK_MODEL_QKV_BIAS,
                             .n_vocab = 13, .dim = 16, .n_layers = 2, .head_dim = 4, .ctx_len = 16,
                             .rope_theta = 10000.0f, .norm_eps = 1e-5f, .layers = layers };
    params p = { 0 };
    aik_error err;
    int32_t tok[6] = { 1, 5, 12, 0, 7, 5 }, tgt[6] = { 5, 12, 0, 7, 5, 3 };
    int n_threads_cases[2] = { 1, 2 };

    for (int c = 0; c < 2; c++) {
        aik_threadpool *pool = NULL;
        ck_assert_int_eq(aik_threadpool_new(n_threads_cases[c], &pool), 0);
        ck_assert_int_eq(aik_graph_build(&aik_llama_arch_ops, &hp, NULL, &p.g, &err), 0);
        ck_assert_int_eq(aik_tape_new(p.g, 6, pool, &p.tape, &err), 0);
        rng = 777;
        bind_all(&p, 0.4f);
        grad_check(&p, tok, tgt, 6, 13, 6, "llama");
        free_params(&p);
        memset(&p, 0, sizeof(p));
        aik_threadpool_free(pool);
    }
}
END_TEST

/* A sequence longer than the attention's row blocks (32), and not a
 * multiple of them: the causal block products (three blocks, the last one
 * partial) against finite differences. */
START_TEST(test_long_sequence_gradients)
{
    aik_layer_hparams layers[2] = { { 4, 2, 24 }, { 2, 1, 16 } };
    aik_model_hparams hp = { .struct_size = sizeof(hp), .model_type = 1, .n_vocab = 13, .dim = 16, .n_layers = 2,
                             .head_dim = 4, .ctx_len = 80, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                             .layers = layers };
    enum { TL = 70 };
    params p = { 0 };
    aik_error err;
    int32_t tok[TL], tgt[TL];

    for (int k = 0; k < TL; k++) {
        tok[k] = (k * 5 + k / 7) % 13;
        tgt[k] = (k * 5 + 3) % 13;
    }
    ck_assert_int_eq(aik_graph_build(&aik_llama_arch_ops, &hp, NULL, &p.g, &err), 0);
    ck_assert_int_eq(aik_tape_new(p.g, TL, NULL, &p.tape, &err), 0);
    rng = 555;
    bind_all(&p, 0.4f);
    grad_check(&p, tok, tgt, TL, 13, 4, "llama, 70 tokens");
    free_params(&p);
}
END_TEST

/* Two sequences in one pass = two separate passes: same logits, and the
 * gradients of the batch are the sums of the separate ones. */
START_TEST(test_batched_equals_separate)
{
    aik_layer_hparams layers[2] = { { 4, 2, 24 }, { 2, 1, 16 } };
    aik_model_hparams hp = { .struct_size = sizeof(hp), .model_type = 1, .n_vocab = 13, .dim = 16, .n_layers = 2,
                             .head_dim = 4, .ctx_len = 16, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
                             .layers = layers };
    params one = { 0 }, two = { 0 };
    aik_error err;
    int32_t tok[12] = { 1, 5, 12, 0, 7, 5, 3, 3, 9, 2, 11, 4 };
    const float *lg;
    enum { V13 = 13 };
    float sep_logits[12 * V13], dl[12 * V13];

    ck_assert_int_eq(aik_graph_build(&aik_llama_arch_ops, &hp, NULL, &one.g, &err), 0);
    ck_assert_int_eq(aik_graph_build(&aik_llama_arch_ops, &hp, NULL, &two.g, &err), 0);
    ck_assert_int_eq(aik_tape_new(one.g, 6, NULL, &one.tape, &err), 0);
    ck_assert_int_eq(aik_tape_new_batch(two.g, 6, 2, NULL, &two.tape, &err), 0);
    rng = 99;
    bind_all(&one, 0.4f);
    rng = 99;
    bind_all(&two, 0.4f);
    for (int k = 0; k < 12 * V13; k++)
        dl[k] = 0.01f * frand();
    /* separate passes: accumulate both sequences' gradients */
    for (int q = 0; q < 2; q++) {
        ck_assert_int_eq(aik_tape_forward(one.tape, tok + 6 * q, 6, &lg, &err), 0);
        memcpy(sep_logits + 6 * q * V13, lg, 6 * V13 * sizeof(float));
        ck_assert_int_eq(aik_tape_backward(one.tape, dl + 6 * q * V13, &err), 0);
    }
    ck_assert_int_eq(aik_tape_forward_batch(two.tape, tok, 6, 2, &lg, &err), 0);
    for (int k = 0; k < 12 * V13; k++)
        ck_assert_msg(fabsf(lg[k] - sep_logits[k]) <= 1e-5f * (1 + fabsf(sep_logits[k])), "logit %d: %g vs %g", k,
                      lg[k], sep_logits[k]);
    ck_assert_int_eq(aik_tape_backward(two.tape, dl, &err), 0);
    for (aik_node i = 0; i < one.g->n_nodes; i++)
        for (uint64_t k = 0; one.val[i] && k < one.n[i]; k++)
            ck_assert_msg(fabsf(one.grad[i][k] - two.grad[i][k]) <= 1e-5f * (1 + fabsf(one.grad[i][k])),
                          "%s[%llu]: %g vs %g", one.g->nodes[i].name, (unsigned long long)k, one.grad[i][k],
                          two.grad[i][k]);
    /* capacity is enforced */
    ck_assert_int_eq(aik_tape_forward_batch(two.tape, tok, 6, 3, &lg, &err), -EINVAL);
    free_params(&one);
    free_params(&two);
}
END_TEST

/* The threaded ops cut their rows and columns by the thread count; the
 * numbers must not move by a bit. A pass big enough to be cut (512 rows)
 * on 1 and on 3 threads: same logits, same gradients, bit for bit; and a
 * second backward over the same tape gives the same gradients again (the
 * activation gradients are overwritten, not added to stale ones). */
START_TEST(test_threads_bit_identical)
{
    aik_layer_hparams layers[2] = { { 4, 2, 96 }, { 4, 1, 64 } };
    aik_model_hparams hp = { .struct_size = sizeof(hp), .model_type = 1, .flags = AIK_MODEL_QKV_BIAS,
                             .n_vocab = 40, .dim = 64, .n_layers = 2, .head_dim = 16, .ctx_len = 32,
                             .rope_theta = 10000.0f, .norm_eps = 1e-5f, .layers = layers };
    enum { TT = 32, NS = 16, VV = 40 };
    params p[2] = { { 0 }, { 0 } };
    aik_threadpool *pool[2] = { NULL, NULL };
    static int32_t tok[TT * NS];
    static float dl[TT * NS * VV], logits[2][TT * NS * VV];
    const float *lg;
    aik_error err;

    for (int k = 0; k < TT * NS; k++)
        tok[k] = (int32_t)((k * 7 + k / 5) % VV);
    rng = 4242;
    for (int k = 0; k < TT * NS * VV; k++)
        dl[k] = 0.01f * frand();
    for (int c = 0; c < 2; c++) {
        ck_assert_int_eq(aik_threadpool_new(c == 0 ? 1 : 3, &pool[c]), 0);
        ck_assert_int_eq(aik_graph_build(&aik_llama_arch_ops, &hp, NULL, &p[c].g, &err), 0);
        ck_assert_int_eq(aik_tape_new_batch(p[c].g, TT, NS, pool[c], &p[c].tape, &err), 0);
        rng = 31;
        bind_all(&p[c], 0.3f);
        ck_assert_int_eq(aik_tape_forward_batch(p[c].tape, tok, TT, NS, &lg, &err), 0);
        memcpy(logits[c], lg, sizeof(logits[c]));
        ck_assert_int_eq(aik_tape_backward(p[c].tape, dl, &err), 0);
    }
    ck_assert_msg(memcmp(logits[0], logits[1], sizeof(logits[0])) == 0, "logits differ between 1 and 3 threads");
    for (aik_node i = 0; i < p[0].g->n_nodes; i++)
        if (p[0].val[i])
            ck_assert_msg(memcmp(p[0].grad[i], p[1].grad[i], p[0].n[i] * sizeof(float)) == 0,
                          "gradient of %s differs between 1 and 3 threads", p[0].g->nodes[i].name);
    /* again on the 3-thread tape, from zeroed parameter gradients */
    for (aik_node i = 0; i < p[1].g->n_nodes; i++)
        if (p[1].val[i])
            memset(p[1].grad[i], 0, p[1].n[i] * sizeof(float));
    ck_assert_int_eq(aik_tape_forward_batch(p[1].tape, tok, TT, NS, &lg, &err), 0);
    ck_assert_int_eq(aik_tape_backward(p[1].tape, dl, &err), 0);
    for (aik_node i = 0; i < p[0].g->n_nodes; i++)
        if (p[0].val[i])
            ck_assert_msg(memcmp(p[0].grad[i], p[1].grad[i], p[0].n[i] * sizeof(float)) == 0,
                          "gradient of %s differs on a second backward", p[0].g->nodes[i].name);
    for (int c = 0; c < 2; c++) {
        free_params(&p[c]);
        aik_threadpool_free(pool[c]);
    }
}
END_TEST

START_TEST(test_lora_gradients)
{
    /* LoRA on a frozen base: only A and B move; check them by FD. */
    aik_model_hparams hp = { .struct_size = sizeof(hp), .model_type = 1, .n_vocab = V, .dim = C, .ctx_len = 16 };
    params p = { 0 };
    aik_error err;
    int32_t tok[T] = { 3, 1, 4, 1, 5 }, tgt[T] = { 1, 4, 1, 5, 9 };
    float A[2 * C], B[C * 2], dA[2 * C] = { 0 }, dB[C * 2] = { 0 };
    aik_node w = -1;

    which_op = OP_MATMUL;
    ck_assert_int_eq(aik_graph_build(&test_arch, &hp, NULL, &p.g, &err), 0);
    ck_assert_int_eq(aik_tape_new(p.g, T, NULL, &p.tape, &err), 0);
    bind_all(&p, 0.7f);
    for (aik_node i = 0; i < p.g->n_nodes; i++)
        if (p.g->nodes[i].op == AIK_OP_WEIGHT && strcmp(p.g->nodes[i].name, "w") == 0)
            w = i;
    ck_assert_int_ge(w, 0);
    for (int k = 0; k < 2 * C; k++) {
        A[k] = 0.5f * frand();
        B[k] = 0.5f * frand();
    }
    ck_assert_int_eq(aik_tape_bind_lora(p.tape, w, 2, 1.5f, A, B, dA, dB, &err), 0);
    float *dl = malloc(T * V * sizeof(float));
    loss_of(&p, tok, tgt, T, V, dl);
    ck_assert_int_eq(aik_tape_backward(p.tape, dl, &err), 0);
    free(dl);
    float *mats[2] = { A, B }, *grads[2] = { dA, dB };
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 2 * C; k++) {
            float keep = mats[m][k], h = 1e-2f;
            mats[m][k] = keep + h;
            double lp = loss_of(&p, tok, tgt, T, V, NULL);
            mats[m][k] = keep - h;
            double lm = loss_of(&p, tok, tgt, T, V, NULL);
            mats[m][k] = keep;
            double fd = (lp - lm) / (2 * h);
            ck_assert_msg(fabs(fd - grads[m][k]) <= 2e-3 + 3e-2 * fabs(fd), "lora %c[%d]: %g vs %g", "AB"[m], k,
                          grads[m][k], fd);
        }
    free_params(&p);
}
END_TEST

START_TEST(test_distill_gradient)
{
    float s[2 * 5], q[2 * 5], d[2 * 5] = { 0 };
    for (int k = 0; k < 10; k++) {
        s[k] = 2 * frand();
        q[k] = 2 * frand();
    }
    double base = aik_distill_kl(s, q, 2, 5, 2.0f, 1.0f, d);
    ck_assert(base > 0);
    for (int k = 0; k < 10; k++) {
        float keep = s[k];
        s[k] = keep + 1e-3f;
        double lp = aik_distill_kl(s, q, 2, 5, 2.0f, 1.0f, NULL);
        s[k] = keep - 1e-3f;
        double lm = aik_distill_kl(s, q, 2, 5, 2.0f, 1.0f, NULL);
        s[k] = keep;
        ck_assert_msg(fabs((lp - lm) / 2e-3 - d[k]) < 1e-3, "kl grad %d", k);
    }
    /* KL of identical distributions is zero */
    ck_assert(fabs(aik_distill_kl(q, q, 2, 5, 2.0f, 1.0f, NULL)) < 1e-9);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd");
    TCase *tc = tcase_create("grad");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_op_gradients, 0, OP_N);
    tcase_add_test(tc, test_whole_model_gradients);
    tcase_add_test(tc, test_lora_gradients);
    tcase_add_test(tc, test_batched_equals_separate);
    tcase_add_test(tc, test_threads_bit_identical);
    tcase_add_test(tc, test_long_sequence_gradients);
    tcase_add_test(tc, test_distill_gradient);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
