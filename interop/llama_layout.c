/* SPDX-License-Identifier: MIT */
/* The llama-family tensor layout shared by import and export. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "interop/internal.h"

void interop_warn(const aik_interop_opts *o, const char *where, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!o || !o->warn)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    o->warn(o->warn_ctx, where, msg);
}

int llama_check_dims(aik_slm_header *h, const aik_slm_layer *layers, aik_error *err)
{
    uint32_t nh = 0, nkv = 0, ffn = 0;

    if (h->n_layers == 0 || h->n_layers > AIK_SLM_MAX_LAYERS)
        return aik_fail(err, -EINVAL, "block_count", "is %u, must be 1..%d", h->n_layers, AIK_SLM_MAX_LAYERS);
    for (uint32_t i = 0; i < h->n_layers; i++) {
        char where[64];
        snprintf(where, sizeof(where), "layer[%u]", i);
        if (layers[i].n_heads == 0 || layers[i].n_kv_heads == 0 || layers[i].ffn_dim == 0)
            return aik_fail(err, -EINVAL, where, "head counts and FFN width must be >= 1");
        if (layers[i].n_heads % layers[i].n_kv_heads != 0)
            return aik_fail(err, -EINVAL, where, "n_kv_heads %u does not divide n_heads %u", layers[i].n_kv_heads,
                            layers[i].n_heads);
        if (layers[i].n_heads > nh)
            nh = layers[i].n_heads;
        if (layers[i].n_kv_heads > nkv)
            nkv = layers[i].n_kv_heads;
        if (layers[i].ffn_dim > ffn)
            ffn = layers[i].ffn_dim;
    }
    h->n_heads = nh;
    h->n_kv_heads = nkv;
    h->ffn_dim = ffn;
    if (nh % nkv != 0) {
        /* The header's maxima must divide too (loader/slm.c checks it);
         * pick the smallest kv maximum that does. */
        uint32_t k = nkv;
        while (k <= nh && nh % k != 0)
            k++;
        h->n_kv_heads = k;
    }
    return 0;
}

static void set(llama_tensor *t, const char *name, uint32_t n_dims, uint64_t ne0, uint64_t ne1, int layer, int qk)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = n_dims > 1 ? ne1 : 1;
    t->layer = layer;
    t->qk = qk;
}

int llama_expected_tensors(const aik_slm_header *h, const aik_slm_layer *layers, llama_tensor **ret)
{
    bool tied = h->flags & AIK_SLM_FLAG_TIED_EMBEDDINGS, bias = h->flags & AIK_SLM_FLAG_QKV_BIAS;
    uint32_t per = 9 + (bias ? 3 : 0), n = 0;
    llama_tensor *t;
    uint64_t dim = h->dim, hd = h->head_dim;

    if (h->n_layers == 0 || h->n_layers > AIK_SLM_MAX_LAYERS)
        return -EINVAL;
    t = calloc(3 + (size_t)per * h->n_layers, sizeof(*t));
    if (!t)
        return -ENOMEM;
    set(&t[n++], "token_embd.weight", 2, dim, h->n_vocab, -1, 0);
    for (uint32_t i = 0; i < h->n_layers; i++) {
        uint64_t q = hd * layers[i].n_heads, kv = hd * layers[i].n_kv_heads, f = layers[i].ffn_dim;
        char nm[80];
        int L = (int)i;
#define T(suffix, nd, a, b, qk)                                  \
    do {                                                         \
        snprintf(nm, sizeof(nm), "blk.%u.%s", i, suffix);        \
        set(&t[n++], nm, nd, a, b, L, qk);                       \
    } while (0)
        T("attn_norm.weight", 1, dim, 1, 0);
        T("attn_q.weight", 2, dim, q, 1);
        T("attn_k.weight", 2, dim, kv, 2);
        T("attn_v.weight", 2, dim, kv, 0);
        if (bias) {
            T("attn_q.bias", 1, q, 1, 1);
            T("attn_k.bias", 1, kv, 1, 2);
            T("attn_v.bias", 1, kv, 1, 0);
        }
        T("attn_output.weight", 2, q, dim, 0);
        T("ffn_norm.weight", 1, dim, 1, 0);
        T("ffn_gate.weight", 2, dim, f, 0);
        T("ffn_up.weight", 2, dim, f, 0);
        T("ffn_down.weight", 2, f, dim, 0);
#undef T
    }
    set(&t[n++], "output_norm.weight", 1, dim, 1, -1, 0);
    if (!tied)
        set(&t[n++], "output.weight", 2, dim, h->n_vocab, -1, 0);
    *ret = t;
    return (int)n;
}

void qk_permute_rows(void *dst, const void *src, uint64_t row_bytes, uint64_t n_rows, uint32_t head_dim,
                     bool to_llama)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    uint64_t half = head_dim / 2;

    /* convert_hf_to_gguf.py permute(): llama row h*hd + 2i + k comes from
     * HF row h*hd + k*hd/2 + i. */
    for (uint64_t h = 0; h < n_rows / head_dim; h++)
        for (uint64_t i = 0; i < half; i++)
            for (uint64_t k = 0; k < 2; k++) {
                uint64_t llama = h * head_dim + 2 * i + k, hf = h * head_dim + k * half + i;
                if (to_llama)
                    memcpy(d + llama * row_bytes, s + hf * row_bytes, row_bytes);
                else
                    memcpy(d + hf * row_bytes, s + llama * row_bytes, row_bytes);
            }
}
