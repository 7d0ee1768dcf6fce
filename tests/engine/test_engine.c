/* SPDX-License-Identifier: MIT */
/*
 * The inference engine end to end on tiny random models written through the
 * real package writer: graph executor vs an independent, plain-loop llama
 * forward pass (llama2.c style), batched prompt vs token-by-token decode (KV
 * cache), heterogeneous (pruned) layers, quantized weights, and packages that
 * do not fit the architecture.
 */
#include <errno.h>
#include <math.h>

#include "kernels/cpu/cpu_kernels.h"
#include "loader/adapter.h"
#include "runtime/adapter_merge.h"
#include "runtime/generate.h"
#include "runtime/model.h"
#include "scheduler/packed_weights.h"
#include "testutil.h"
#include "tiny_model.h"

static char *tmpdir;

static char *tpath(const char *name)
{
    char *p;
    ck_assert_int_ge(asprintf(&p, "%s/%s", tmpdir, name), 0);
    return p;
}

static void setup(void) { tmpdir = aik_test_tmpdir(); }
static void teardown(void)
{
    aik_test_rmtree(tmpdir);
    free(tmpdir);
}

/* ---------- reference forward pass: plain loops, f32, nothing shared with the executor ---------- */

static float *deq(const aik_slm *pkg, const char *name, uint64_t *ret_ne)
{
    const aik_slm_tensor *t = aik_slm_find(pkg, name);
    ck_assert_msg(t != NULL, "reference: tensor %s missing", name);
    uint64_t ne = aik_slm_tensor_nelems(t);
    float *f = malloc(ne * sizeof(float));
    aik_dequantize_row(t->dtype, t->data, f, (int64_t)ne);
    if (ret_ne)
        *ret_ne = ne;
    return f;
}

/* y[out] = sum_in x[in] * W[out*in_dim + in]  (W shape [in, out], in contiguous) */
static void ref_linear(const float *x, const float *W, float *y, int in, int out)
{
    for (int o = 0; o < out; o++) {
        double s = 0;
        for (int i = 0; i < in; i++)
            s += (double)x[i] * W[(size_t)o * in + i];
        y[o] = (float)s;
    }
}

static void ref_rmsnorm(const float *x, const float *w, float *y, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float r = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++)
        y[i] = x[i] * r * w[i];
}

static void ref_rope(float *v, int heads, int hd, int pos, float theta, bool neox)
{
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < hd / 2; i++) {
            double ang = pos * pow(theta, -2.0 * i / hd);
            int a = neox ? i : 2 * i, b = neox ? i + hd / 2 : 2 * i + 1;
            float x0 = v[h * hd + a], x1 = v[h * hd + b];
            v[h * hd + a] = (float)(x0 * cos(ang) - x1 * sin(ang));
            v[h * hd + b] = (float)(x0 * sin(ang) + x1 * cos(ang));
        }
}

/* logits for every position of toks[0..n) */
static void ref_forward(const aik_slm *pkg, const int32_t *toks, int n, float *logits)
{
    const aik_slm_header *H = &pkg->hdr;
    int dim = (int)H->dim, hd = (int)H->head_dim, V = (int)H->n_vocab;
    bool neox = H->flags & AIK_SLM_FLAG_ROPE_NEOX;
    float *x = calloc((size_t)n * dim, sizeof(float));
    float *emb = deq(pkg, "token_embd.weight", NULL);
    char name[64];

    for (int t = 0; t < n; t++)
        memcpy(x + (size_t)t * dim, emb + (size_t)toks[t] * dim, dim * sizeof(float));
    for (uint32_t l = 0; l < H->n_layers; l++) {
        int nh = (int)pkg->layers[l].n_heads, nkv = (int)pkg->layers[l].n_kv_heads, ff = (int)pkg->layers[l].ffn_dim;
        int qc = nh * hd, kc = nkv * hd;
#define W(what) (snprintf(name, sizeof(name), "blk.%u.%s", l, what), deq(pkg, name, NULL))
        float *an = W("attn_norm.weight"), *wq = W("attn_q.weight"), *wk = W("attn_k.weight"),
              *wv = W("attn_v.weight"), *wo = W("attn_output.weight"), *fn = W("ffn_norm.weight"),
              *wg = W("ffn_gate.weight"), *wu = W("ffn_up.weight"), *wd = W("ffn_down.weight");
        float *bq = NULL, *bk = NULL, *bv = NULL;
        if (H->flags & AIK_SLM_FLAG_QKV_BIAS) {
            bq = W("attn_q.bias");
            bk = W("attn_k.bias");
            bv = W("attn_v.bias");
        }
#undef W
        float *q = malloc((size_t)n * qc * 4), *k = malloc((size_t)n * kc * 4), *v = malloc((size_t)n * kc * 4);
        float *h = malloc((size_t)dim * 4), *att = malloc((size_t)qc * 4), *o = malloc((size_t)dim * 4);
        float *g = malloc((size_t)ff * 4), *u = malloc((size_t)ff * 4), *sc = malloc((size_t)n * 4);
        for (int t = 0; t < n; t++) {
            ref_rmsnorm(x + (size_t)t * dim, an, h, dim, H->norm_eps);
            ref_linear(h, wq, q + (size_t)t * qc, dim, qc);
            ref_linear(h, wk, k + (size_t)t * kc, dim, kc);
            ref_linear(h, wv, v + (size_t)t * kc, dim, kc);
            if (bq)
                for (int i = 0; i < qc; i++)
                    q[(size_t)t * qc + i] += bq[i];
            if (bk)
                for (int i = 0; i < kc; i++) {
                    k[(size_t)t * kc + i] += bk[i];
                    v[(size_t)t * kc + i] += bv[i];
                }
            ref_rope(q + (size_t)t * qc, nh, hd, t, H->rope_theta, neox);
            ref_rope(k + (size_t)t * kc, nkv, hd, t, H->rope_theta, neox);
        }
        for (int t = 0; t < n; t++) {
            for (int hh = 0; hh < nh; hh++) {
                int kvh = hh / (nh / nkv);
                double mx = -1e30, sum = 0;
                for (int p = 0; p <= t; p++) {
                    double s = 0;
                    for (int i = 0; i < hd; i++)
                        s += (double)q[(size_t)t * qc + hh * hd + i] * k[(size_t)p * kc + kvh * hd + i];
                    sc[p] = (float)(s / sqrt((double)hd));
                    if (sc[p] > mx)
                        mx = sc[p];
                }
                for (int p = 0; p <= t; p++) {
                    sc[p] = (float)exp(sc[p] - mx);
                    sum += sc[p];
                }
                for (int i = 0; i < hd; i++) {
                    double a = 0;
                    for (int p = 0; p <= t; p++)
                        a += sc[p] / sum * v[(size_t)p * kc + kvh * hd + i];
                    att[hh * hd + i] = (float)a;
                }
            }
            ref_linear(att, wo, o, qc, dim);
            for (int i = 0; i < dim; i++)
                x[(size_t)t * dim + i] += o[i];
            ref_rmsnorm(x + (size_t)t * dim, fn, h, dim, H->norm_eps);
            ref_linear(h, wg, g, dim, ff);
            ref_linear(h, wu, u, dim, ff);
            for (int i = 0; i < ff; i++)
                g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
            ref_linear(g, wd, o, ff, dim);
            for (int i = 0; i < dim; i++)
                x[(size_t)t * dim + i] += o[i];
        }
        free(an); free(wq); free(wk); free(wv); free(wo); free(fn); free(wg); free(wu); free(wd);
        free(bq); free(bk); free(bv);
        free(q); free(k); free(v); free(h); free(att); free(o); free(g); free(u); free(sc);
    }
    float *on = deq(pkg, "output_norm.weight", NULL);
    float *wout = (H->flags & AIK_SLM_FLAG_TIED_EMBEDDINGS) ? emb : deq(pkg, "output.weight", NULL);
    float *h = malloc((size_t)dim * 4);
    for (int t = 0; t < n; t++) {
        ref_rmsnorm(x + (size_t)t * dim, on, h, dim, H->norm_eps);
        ref_linear(h, wout, logits + (size_t)t * V, dim, V);
    }
    if (wout != emb)
        free(wout);
    free(emb); free(on); free(h); free(x);
}

static double nmse(const float *a, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

static const int32_t prompt[] = { 256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100 };
#define N_PROMPT ((int)(sizeof(prompt) / sizeof(prompt[0])))

/* Executor (batched, all outputs) vs reference; then token-by-token. */
static void check_against_reference(const char *path, double tol_batch)
{
    aik_model *m;
    aik_session *s;
    aik_session_config sc = { .n_threads = 2, .batch = 8 };
    aik_error err;
    const float *lg;
    uint32_t V;
    float *ref, *ours;
    int r = aik_model_open(path, AIK_SLM_VERIFY_CHECKSUMS, NULL, &m, &err);

    ck_assert_msg(r == 0, "open: %s: %s", err.where, err.message);
    V = m->hp.n_vocab;
    ref = malloc((size_t)N_PROMPT * V * sizeof(float));
    ours = malloc((size_t)N_PROMPT * V * sizeof(float));
    ref_forward(m->pkg, prompt, N_PROMPT, ref);

    /* batch 8 < 13 prompt tokens: two chunks; last chunk all outputs */
    ck_assert_int_eq(aik_session_new(m, &sc, &s, &err), 0);
    ck_assert_int_eq(aik_session_eval(s, prompt, 8, 8, &lg, &err), 0);
    memcpy(ours, lg, (size_t)8 * V * sizeof(float));
    ck_assert_int_eq(aik_session_eval(s, prompt + 8, N_PROMPT - 8, N_PROMPT - 8, &lg, &err), 0);
    memcpy(ours + (size_t)8 * V, lg, (size_t)(N_PROMPT - 8) * V * sizeof(float));
    double e = nmse(ours, ref, (size_t)N_PROMPT * V);
    ck_assert_msg(e < tol_batch, "batched executor vs reference NMSE %g >= %g", e, tol_batch);

    /* token by token through the KV cache gives the same last logits */
    aik_session_reset(s);
    for (int t = 0; t < N_PROMPT; t++)
        ck_assert_int_eq(aik_session_eval(s, prompt + t, 1, 1, &lg, &err), 0);
    e = nmse(lg, ref + (size_t)(N_PROMPT - 1) * V, V);
    ck_assert_msg(e < tol_batch, "decode vs reference NMSE %g", e);
    ck_assert_uint_eq(aik_cpu_exec_n_past(aik_session_exec(s)), N_PROMPT);

    aik_session_free(s);
    aik_model_free(m);
    free(ref);
    free(ours);
}

START_TEST(test_f32_matches_reference)
{
    char *p = tpath("f32.slm");
    aik_slm_header h;
    tiny_header(&h);
    ck_assert_int_eq(tiny_model_write(p, &h, NULL, AIK_DTYPE_F32, 1), 0);
    check_against_reference(p, 1e-9);
    free(p);
}
END_TEST

START_TEST(test_variants_match_reference)
{
    /* tied embeddings + qkv bias + NeoX rope + heterogeneous (pruned) layers */
    char *p = tpath("variant.slm");
    aik_slm_header h;
    aik_slm_layer layers[3] = { { 4, 2, 96, 0 }, { 2, 1, 40, 0 }, { 3, 3, 64, 0 } };
    tiny_header(&h);
    h.n_layers = 3;
    h.flags = AIK_SLM_FLAG_TIED_EMBEDDINGS | AIK_SLM_FLAG_QKV_BIAS | AIK_SLM_FLAG_ROPE_NEOX;
    ck_assert_int_eq(tiny_model_write(p, &h, layers, AIK_DTYPE_F32, 2), 0);
    check_against_reference(p, 1e-9);
    free(p);
}
END_TEST

START_TEST(test_dtypes_match_reference)
{
    /* Reference uses the dequantized weights with f32 activations; the
     * executor quantizes activations to q8_0 for quantized weights. */
    static const struct { aik_dtype t; double tol; } cases[] = {
        { AIK_DTYPE_F16, 1e-9 }, { AIK_DTYPE_BF16, 1e-9 }, { AIK_DTYPE_Q8_0, 1e-3 }, { AIK_DTYPE_Q4_0, 1e-3 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[32], *p;
        aik_slm_header h;
        snprintf(name, sizeof(name), "m_%s.slm", aik_dtype_name(cases[i].t));
        p = tpath(name);
        tiny_header(&h);
        ck_assert_int_eq(tiny_model_write(p, &h, NULL, cases[i].t, 3), 0);
        check_against_reference(p, cases[i].tol);
        free(p);
    }
}
END_TEST

/* Sessions on the model's packed q8_0/q4_0 weights (where this CPU has the
 * packed kernels) against sessions on the file layout: a batched prompt
 * and then decode give the same logits up to rounding and the same greedy
 * tokens, on the plain model and on tied embeddings + q/k/v biases +
 * heterogeneous layers (FFN widths 40 and 96: a 16-row group plus tail
 * rows; biases keep q, k, v in separate dispatches). */
START_TEST(test_packed_matches_file_layout)
{
    aik_slm_layer layers[3] = { { 4, 2, 96, 0 }, { 2, 1, 40, 0 }, { 3, 3, 64, 0 } };
    for (int c = 0; c < 4; c++) {
        const aik_dtype t = c % 2 ? AIK_DTYPE_Q4_0 : AIK_DTYPE_Q8_0;
        char name[32], *p;
        aik_slm_header h;
        snprintf(name, sizeof(name), "packed_%d.slm", c);
        p = tpath(name);
        tiny_header(&h);
        if (c >= 2) {
            h.n_layers = 3;
            h.flags = AIK_SLM_FLAG_TIED_EMBEDDINGS | AIK_SLM_FLAG_QKV_BIAS | AIK_SLM_FLAG_ROPE_NEOX;
        }
        ck_assert_int_eq(tiny_model_write(p, &h, c >= 2 ? layers : NULL, t, 40 + (uint64_t)c), 0);

        aik_model *m;
        aik_error err;
        ck_assert_int_eq(aik_model_open(p, 0, NULL, &m, &err), 0);
        const uint32_t V = m->hp.n_vocab;
        aik_session *s[2];
        for (int k = 0; k < 2; k++) {
            aik_session_config sc = { .n_threads = 2, .batch = 8, .file_layout = k == 1 };
            ck_assert_int_eq(aik_session_new(m, &sc, &s[k], &err), 0);
        }
        const bool packs = aik_matmul_pack_size(t, 64, 64) > 0;
        ck_assert_int_eq(aik_packed_weights_bytes(m->packed) > 0, packs);
        if (!packs)
            printf("%s: this CPU has no packed kernel: both sessions use the file layout\n", __func__);

        float *lg[2];
        const float *out;
        for (int k = 0; k < 2; k++) {
            lg[k] = malloc((size_t)8 * V * sizeof(float));
            ck_assert_int_eq(aik_session_eval(s[k], prompt, 8, 8, &out, &err), 0);
            memcpy(lg[k], out, (size_t)8 * V * sizeof(float));
        }
        double e = nmse(lg[0], lg[1], (size_t)8 * V);
        ck_assert_msg(e < 1e-9, "%s case %d: batched packed vs file layout NMSE %g", aik_dtype_name(t), c, e);
        /* decode 12 greedy tokens on each */
        int32_t tok[2] = { prompt[8], prompt[8] };
        for (int step = 0; step < 12; step++) {
            float *last[2];
            for (int k = 0; k < 2; k++) {
                ck_assert_int_eq(aik_session_eval(s[k], &tok[k], 1, 1, &out, &err), 0);
                memcpy(lg[k], out, (size_t)V * sizeof(float));
                last[k] = lg[k];
                int32_t best = 0;
                for (uint32_t v = 1; v < V; v++)
                    if (out[v] > out[best])
                        best = (int32_t)v;
                tok[k] = best;
            }
            e = nmse(last[0], last[1], V);
            ck_assert_msg(e < 1e-9, "%s case %d step %d: decode NMSE %g", aik_dtype_name(t), c, step, e);
            ck_assert_int_eq(tok[0], tok[1]);
        }
        for (int k = 0; k < 2; k++) {
            free(lg[k]);
            aik_session_free(s[k]);
        }
        aik_model_free(m);
        free(p);
    }
}
END_TEST

START_TEST(test_context_and_token_limits)
{
    char *p = tpath("ctx.slm");
    aik_slm_header h;
    aik_model *m;
    aik_session *s;
    aik_session_config sc = { .n_threads = 1, .ctx_len = 16, .batch = 16 };
    aik_error err;
    const float *lg;
    int32_t toks[17] = { 0 }, bad = 258;

    tiny_header(&h);
    ck_assert_int_eq(tiny_model_write(p, &h, NULL, AIK_DTYPE_F32, 4), 0);
    ck_assert_int_eq(aik_model_open(p, 0, NULL, &m, &err), 0);
    ck_assert_int_eq(aik_session_new(m, &sc, &s, &err), 0);
    ck_assert_int_eq(aik_session_eval(s, toks, 10, 1, &lg, &err), 0);
    ck_assert_int_eq(aik_session_eval(s, toks, 7, 1, &lg, &err), -ENOSPC);
    ck_assert_ptr_nonnull(strstr(err.message, "context full"));
    ck_assert_uint_eq(aik_cpu_exec_n_past(aik_session_exec(s)), 10); /* cache untouched */
    ck_assert_int_eq(aik_session_eval(s, &bad, 1, 1, &lg, &err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.message, "outside vocabulary"));
    ck_assert_int_eq(aik_session_eval(s, toks, 6, 1, &lg, &err), 0);
    ck_assert_uint_eq(aik_cpu_exec_n_past(aik_session_exec(s)), 16);
    /* a session cannot ask for more context than the model has */
    sc.ctx_len = 65;
    aik_session *s2 = NULL;
    ck_assert_int_eq(aik_session_new(m, &sc, &s2, &err), -EINVAL);
    aik_session_free(s);
    aik_model_free(m);
    free(p);
}
END_TEST

/* ---------- packages that do not fit the architecture ---------- */

typedef enum { MUT_DROP, MUT_SHAPE, MUT_DTYPE, MUT_LAYER_TABLE } mutation;

/* Copy src into dst through the writer, changing one thing. */
static void rewrite(const char *src, const char *dst, mutation mut, const char *target)
{
    aik_slm *in;
    aik_slm_writer *w;
    aik_error err;
    aik_slm_layer layers[8];

    ck_assert_int_eq(aik_slm_open(src, 0, &in, &err), 0);
    memcpy(layers, in->layers, in->hdr.n_layers * sizeof(aik_slm_layer));
    if (mut == MUT_LAYER_TABLE)
        layers[1].ffn_dim = 48; /* tensors still say 96 */
    ck_assert_int_eq(aik_slm_writer_begin(dst, &in->hdr, layers, in->tokenizer, in->hdr.tokenizer_size, &w, &err), 0);
    for (uint32_t i = 0; i < in->hdr.tensor_count; i++) {
        const aik_slm_tensor *t = &in->tensors[i];
        bool hit = target && strcmp(t->name, target) == 0;
        uint64_t shape[4] = { t->shape[0], t->shape[1], t->shape[2], t->shape[3] };
        if (hit && mut == MUT_DROP)
            continue;
        if (hit && mut == MUT_SHAPE) {
            uint64_t tmp = shape[0];
            shape[0] = shape[1];
            shape[1] = tmp;
        }
        if (hit && mut == MUT_DTYPE) {
            /* same values, stored as f16 */
            uint64_t ne = aik_slm_tensor_nelems(t);
            uint16_t *h16 = malloc(ne * 2);
            aik_f32_to_fp16_row(t->data, h16, (int64_t)ne);
            ck_assert_int_eq(aik_slm_writer_add_tensor(w, t->name, AIK_DTYPE_F16, t->n_dims, shape, h16, &err), 0);
            free(h16);
            continue;
        }
        ck_assert_int_eq(aik_slm_writer_add_tensor(w, t->name, t->dtype, t->n_dims, shape, t->data, &err), 0);
    }
    ck_assert_int_eq(aik_slm_writer_finish(w, &err), 0);
    aik_slm_close(in);
}

static void expect_refused(const char *path, int code, const char *where, const char *msg_part)
{
    aik_model *m = NULL;
    aik_error err;
    int r = aik_model_open(path, 0, NULL, &m, &err);
    ck_assert_msg(r == code, "expected %d, got %d (%s: %s)", code, r, err.where, err.message);
    ck_assert_str_eq(err.where, where);
    ck_assert_msg(strstr(err.message, msg_part), "message '%s' lacks '%s'", err.message, msg_part);
    ck_assert_ptr_null(m);
}

START_TEST(test_bad_packages_refused)
{
    char *good = tpath("good.slm"), *bad = tpath("bad.slm");
    aik_slm_header h;

    tiny_header(&h);
    ck_assert_int_eq(tiny_model_write(good, &h, NULL, AIK_DTYPE_F32, 5), 0);

    rewrite(good, bad, MUT_DROP, "blk.1.ffn_up.weight");
    expect_refused(bad, -ENOENT, "blk.1.ffn_up.weight", "missing from package (the architecture needs shape [64, 96])");
    rewrite(good, bad, MUT_DROP, "output.weight");
    expect_refused(bad, -ENOENT, "output.weight", "missing");
    rewrite(good, bad, MUT_SHAPE, "blk.0.attn_k.weight");
    expect_refused(bad, -EINVAL, "blk.0.attn_k.weight", "has shape [32, 64], the architecture expects [64, 32]");
    rewrite(good, bad, MUT_DTYPE, "blk.0.attn_norm.weight");
    expect_refused(bad, -EINVAL, "blk.0.attn_norm.weight", "dtype f16 not supported as rms_norm operand");
    rewrite(good, bad, MUT_LAYER_TABLE, NULL);
    expect_refused(bad, -EINVAL, "blk.1.ffn_gate.weight", "has shape [64, 96], the architecture expects [64, 48]");
    free(good);
    free(bad);
}
END_TEST

/* ---------- generation ---------- */

typedef struct stream_acc {
    char buf[4096];
    size_t len;
    int calls;
} stream_acc;

static int on_text(void *user, const char *text, size_t len)
{
    stream_acc *a = user;
    ck_assert_uint_lt(a->len + len, sizeof(a->buf));
    memcpy(a->buf + a->len, text, len);
    a->len += len;
    a->calls++;
    return 0;
}

START_TEST(test_generation)
{
    char *p = tpath("gen.slm");
    aik_slm_header h;
    aik_model *m;
    aik_session *s;
    aik_session_config sc = { .n_threads = 2 };
    aik_generate_params gp;
    aik_generate_result r1, r2;
    aik_error err;
    stream_acc acc = { .len = 0 };

    tiny_header(&h);
    ck_assert_int_eq(tiny_model_write(p, &h, NULL, AIK_DTYPE_Q8_0, 6), 0);
    ck_assert_int_eq(aik_model_open(p, 0, NULL, &m, &err), 0);
    ck_assert_int_eq(aik_session_new(m, &sc, &s, &err), 0);

    /* greedy is deterministic and independent of the seed; streaming == result */
    aik_generate_params_default(&gp);
    gp.n_predict = 20;
    gp.sampling.temperature = 0;
    gp.ignore_eos = true;
    gp.on_text = on_text;
    gp.user = &acc;
    ck_assert_int_eq(aik_generate(s, "Hello", 5, &gp, &r1, &err), 0);
    ck_assert_uint_eq(r1.n_tokens, 20);
    ck_assert_int_eq(r1.stop, AIK_STOP_LENGTH);
    ck_assert_uint_eq(r1.n_prompt, 6); /* BOS + 5 bytes */
    ck_assert_uint_eq(acc.len, r1.text_len);
    ck_assert_mem_eq(acc.buf, r1.text, r1.text_len);
    gp.sampling.seed = 99;
    gp.on_text = NULL;
    ck_assert_int_eq(aik_generate(s, "Hello", 5, &gp, &r2, &err), 0);
    ck_assert_mem_eq(r1.tokens, r2.tokens, 20 * sizeof(int32_t));
    aik_generate_result_clear(&r2);

    /* sampled: same seed, same tokens */
    gp.sampling.temperature = 1.0f;
    gp.sampling.seed = 7;
    ck_assert_int_eq(aik_generate(s, "Hello", 5, &gp, &r2, &err), 0);
    aik_generate_result r3;
    ck_assert_int_eq(aik_generate(s, "Hello", 5, &gp, &r3, &err), 0);
    ck_assert_mem_eq(r2.tokens, r3.tokens, r2.n_tokens * sizeof(int32_t));
    aik_generate_result_clear(&r2);
    aik_generate_result_clear(&r3);

    /* stop string: text ends right before it; a stop token stops too */
    if (r1.text_len >= 4) {
        char stop[3] = { r1.text[2], r1.text[3], 0 };
        const char *stops[] = { stop };
        gp.sampling.temperature = 0;
        gp.stop_strings = stops;
        gp.n_stop_strings = 1;
        ck_assert_int_eq(aik_generate(s, "Hello", 5, &gp, &r2, &err), 0);
        ck_assert_int_eq(r2.stop, AIK_STOP_STRING);
        ck_assert_ptr_null(strstr(r2.text, stop));
        ck_assert_uint_le(r2.text_len, 3);
        ck_assert_mem_eq(r2.text, r1.text, r2.text_len);
        aik_generate_result_clear(&r2);
        gp.n_stop_strings = 0;
    }
    gp.sampling.temperature = 0;
    gp.stop_tokens = &r1.tokens[3];
    gp.n_stop_tokens = 1;
    ck_assert_int_eq(aik_generate(s, "Hello", 5, &gp, &r2, &err), 0);
    ck_assert_int_eq(r2.stop, AIK_STOP_TOKEN);
    ck_assert_uint_le(r2.n_tokens, 4);
    aik_generate_result_clear(&r2);
    gp.n_stop_tokens = 0;

    /* a prompt longer than the context: refused by default, truncated on request */
    char longp[200];
    memset(longp, 'a', sizeof(longp));
    ck_assert_int_eq(aik_generate(s, longp, sizeof(longp), &gp, &r2, &err), -E2BIG);
    ck_assert_str_eq(err.where, "prompt");
    gp.prompt_policy = AIK_PROMPT_TRUNCATE;
    gp.n_predict = 10;
    ck_assert_int_eq(aik_generate(s, longp, sizeof(longp), &gp, &r2, &err), 0);
    /* ctx 64, reserve min(10, 32) = 10, BOS kept: 53 prompt tokens kept, 201 - 1 - 53 dropped */
    ck_assert_uint_eq(r2.n_prompt, 54);
    ck_assert_uint_eq(r2.n_prompt_dropped, 147);
    ck_assert_uint_eq(r2.n_tokens, 10);
    aik_generate_result_clear(&r2);

    /* reaching the end of the context stops cleanly */
    gp.n_predict = 100;
    ck_assert_int_eq(aik_generate(s, longp, 50, &gp, &r2, &err), 0);
    ck_assert_int_eq(r2.stop, AIK_STOP_CONTEXT);
    ck_assert_uint_eq(r2.n_prompt + r2.n_tokens, 64 + 1); /* the last sampled token is not evaluated */
    aik_generate_result_clear(&r2);

    aik_generate_result_clear(&r1);
    aik_session_free(s);
    aik_model_free(m);
    free(p);
}
END_TEST

/* Unmerged LoRA in the executor = the same adapter merged into the weights. */
START_TEST(test_unmerged_lora_matches_merged)
{
    /* Merging re-quantizes W + ΔW, so a quantized merge carries the
     * rounding of its dtype: the tolerance and how far the adapter must
     * move the output beyond that error follow the dtype's step. */
    static const struct { aik_dtype t; double tol, effect; } cases[] = {
        { AIK_DTYPE_F32, 1e-9, 100 }, { AIK_DTYPE_Q8_0, 2e-3, 100 }, { AIK_DTYPE_Q4_0, 3e-2, 3 } };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char *base = tpath("lbase.slm"), *merged = tpath("lmerged.slm");
        aik_slm_header h;
        aik_slm *pkg;
        aik_adapter *ad;
        aik_adapter_identity id;
        aik_error err;
        enum { R = 4 };
        static float A1[R * 64], B1[64 * R], A2[R * 96], B2[64 * R];
        tiny_header(&h);
        ck_assert_int_eq(tiny_model_write(base, &h, NULL, cases[c].t, 11), 0);
        ck_assert_int_eq(aik_slm_open(base, 0, &pkg, &err), 0);
        for (int k = 0; k < R * 64; k++) {
            A1[k] = 0.1f * (float)((k * 37) % 17 - 8) / 8.0f;
            B1[k] = 0.1f * (float)((k * 11) % 13 - 6) / 6.0f;
        }
        for (int k = 0; k < R * 96; k++)
            A2[k] = 0.1f * (float)((k * 7) % 19 - 9) / 9.0f;
        for (int k = 0; k < 64 * R; k++)
            B2[k] = 0.1f * (float)((k * 5) % 11 - 5) / 5.0f;
        aik_adapter_identity_from_slm(pkg, &id);
        ck_assert_int_eq(aik_adapter_new(AIK_ADAPTER_LOWRANK, &id, &ad), 0);
        ck_assert_int_eq(aik_adapter_add_lowrank(ad, "blk.0.attn_q.weight", 64, 64, R, 8.0f, A1, B1, &err), 0);
        ck_assert_int_eq(aik_adapter_add_lowrank(ad, "blk.1.ffn_down.weight", 96, 64, R, 8.0f, A2, B2, &err), 0);
        const aik_adapter *ads[1] = { ad };
        ck_assert_msg(aik_adapter_merge(pkg, ads, 1, merged, &err) == 0, "%s: %s", err.where, err.message);

        aik_model *mb, *mm;
        aik_session *sb, *sm;
        aik_session_config sc = { .n_threads = 2, .batch = 16 };
        const float *lg;
        uint32_t V = 258;
        float *want = malloc((size_t)N_PROMPT * V * sizeof(float)), *plain = malloc((size_t)N_PROMPT * V * sizeof(float));
        ck_assert_int_eq(aik_model_open(merged, 0, NULL, &mm, &err), 0);
        ck_assert_int_eq(aik_session_new(mm, &sc, &sm, &err), 0);
        ck_assert_int_eq(aik_session_eval(sm, prompt, N_PROMPT, N_PROMPT, &lg, &err), 0);
        memcpy(want, lg, (size_t)N_PROMPT * V * sizeof(float));
        ck_assert_int_eq(aik_model_open(base, 0, NULL, &mb, &err), 0);
        ck_assert_int_eq(aik_session_new(mb, &sc, &sb, &err), 0);
        ck_assert_int_eq(aik_session_eval(sb, prompt, N_PROMPT, N_PROMPT, &lg, &err), 0);
        memcpy(plain, lg, (size_t)N_PROMPT * V * sizeof(float));
        aik_lora_ref refs[2] = { { "blk.0.attn_q.weight", R, 8.0f / R, A1, B1 },
                                 { "blk.1.ffn_down.weight", R, 8.0f / R, A2, B2 } };
        ck_assert_int_eq(aik_cpu_exec_set_lora(aik_session_exec(sb), refs, 2, &err), 0);
        aik_session_reset(sb);
        ck_assert_int_eq(aik_session_eval(sb, prompt, N_PROMPT, N_PROMPT, &lg, &err), 0);
        double e = nmse(lg, want, (size_t)N_PROMPT * V);
        ck_assert_msg(e < cases[c].tol, "%s: unmerged vs merged NMSE %g", aik_dtype_name(cases[c].t), e);
        ck_assert_msg(nmse(plain, want, (size_t)N_PROMPT * V) > cases[c].effect * e,
                      "%s: the adapter must change the output (effect %g, error %g)", aik_dtype_name(cases[c].t),
                      nmse(plain, want, (size_t)N_PROMPT * V), e);
        /* switching back to no adapter restores the base exactly, no reload */
        ck_assert_int_eq(aik_cpu_exec_set_lora(aik_session_exec(sb), NULL, 0, &err), 0);
        aik_session_reset(sb);
        ck_assert_int_eq(aik_session_eval(sb, prompt, N_PROMPT, N_PROMPT, &lg, &err), 0);
        ck_assert_mem_eq(lg, plain, (size_t)N_PROMPT * V * sizeof(float));
        /* an unknown weight is refused and the previous set stays */
        aik_lora_ref bad = { "blk.9.attn_q.weight", R, 1.0f, A1, B1 };
        ck_assert_int_eq(aik_cpu_exec_set_lora(aik_session_exec(sb), &bad, 1, &err), -ENOENT);
        ck_assert_str_eq(err.where, "blk.9.attn_q.weight");
        free(want);
        free(plain);
        aik_session_free(sb);
        aik_session_free(sm);
        aik_model_free(mb);
        aik_model_free(mm);
        aik_adapter_free(ad);
        aik_slm_close(pkg);
        free(base);
        free(merged);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("engine");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_f32_matches_reference);
    tcase_add_test(tc, test_variants_match_reference);
    tcase_add_test(tc, test_dtypes_match_reference);
    tcase_add_test(tc, test_packed_matches_file_layout);
    tcase_add_test(tc, test_context_and_token_limits);
    tcase_add_test(tc, test_bad_packages_refused);
    tcase_add_test(tc, test_generation);
    tcase_add_test(tc, test_unmerged_lora_matches_merged);
    suite_add_tcase(s, tc);
    return aik_test_run(s);
}
