/* SPDX-License-Identifier: MIT */
/*
 * The llama-family architecture: token embedding, n_layers × (RMSNorm →
 * grouped-query attention with RoPE → residual → RMSNorm → SwiGLU FFN →
 * residual), final RMSNorm, output head (tied to the embedding or not).
 * Optional q/k/v biases (qwen2). Every layer reads its own head counts and
 * FFN width, so a pruned model with heterogeneous layers needs nothing more.
 *
 * Shapes (GGUF convention, shape[0] contiguous; W[in, out]):
 *   token_embd.weight        [dim, n_vocab]
 *   blk.L.attn_norm.weight   [dim]
 *   blk.L.attn_q.weight      [dim, n_heads_L * head_dim]     (+ .bias [n_heads_L * head_dim])
 *   blk.L.attn_k.weight      [dim, n_kv_heads_L * head_dim]  (+ .bias)
 *   blk.L.attn_v.weight      [dim, n_kv_heads_L * head_dim]  (+ .bias)
 *   blk.L.attn_output.weight [n_heads_L * head_dim, dim]
 *   blk.L.ffn_norm.weight    [dim]
 *   blk.L.ffn_gate.weight    [dim, ffn_L]
 *   blk.L.ffn_up.weight      [dim, ffn_L]
 *   blk.L.ffn_down.weight    [ffn_L, dim]
 *   output_norm.weight       [dim]
 *   output.weight            [dim, n_vocab]   (absent when tied)
 *
 * Built only against abi/: this file is compiled into the module .so and,
 * for tests, linked directly.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "aik/graph.h"
#include "modules/llama/llama_arch.h"

static aik_node w1(const aik_graph_api *api, aik_graph *g, const char *name, uint64_t a, uint32_t flags)
{
    uint64_t shape[1] = { a };
    return api->weight(g, name, 1, shape, flags);
}

static aik_node w2(const aik_graph_api *api, aik_graph *g, const char *name, uint64_t a, uint64_t b)
{
    uint64_t shape[2] = { a, b };
    return api->weight(g, name, 2, shape, 0);
}

/* y = x·W (+ b when the model has biases for this projection). */
static aik_node linear(const aik_graph_api *api, aik_graph *g, aik_node x, int layer, const char *what,
                       uint64_t in, uint64_t out, int with_bias)
{
    char name[64];
    aik_node y;

    snprintf(name, sizeof(name), "blk.%d.%s.weight", layer, what);
    y = api->matmul(g, x, w2(api, g, name, in, out));
    if (with_bias) {
        snprintf(name, sizeof(name), "blk.%d.%s.bias", layer, what);
        y = api->add(g, y, w1(api, g, name, out, 0));
    }
    return y;
}

int aik_llama_build(const aik_graph_api *api, aik_graph *g, const aik_model_hparams *hp)
{
    const int bias = (hp->flags & AIK_MODEL_QKV_BIAS) != 0;
    const aik_rope_mode rope = (hp->flags & AIK_MODEL_ROPE_NEOX) ? AIK_ROPE_NEOX : AIK_ROPE_NORMAL;
    const uint64_t dim = hp->dim, hd = hp->head_dim;
    char name[64];
    aik_node x, embd;

    if (api->struct_size < sizeof(aik_graph_api) || hp->struct_size < sizeof(aik_model_hparams))
        return api->fail(g, -EPROTO, "host graph API older than this module");
    if (hp->dim == 0 || hp->head_dim == 0 || hp->n_vocab == 0)
        return api->fail(g, -EINVAL, "llama: zero dimension in hyper-parameters");

    embd = w2(api, g, "token_embd.weight", dim, hp->n_vocab);
    x = api->get_rows(g, embd, api->tokens(g));

    for (uint32_t l = 0; l < hp->n_layers; l++) {
        const aik_layer_hparams *L = &hp->layers[l];
        const uint64_t q_cols = (uint64_t)L->n_heads * hd, kv_cols = (uint64_t)L->n_kv_heads * hd;
        aik_node h, q, k, v, att, gate, up;

        snprintf(name, sizeof(name), "blk.%u.attn_norm.weight", l);
        h = api->rms_norm(g, x, w1(api, g, name, dim, 0), hp->norm_eps);
        q = linear(api, g, h, (int)l, "attn_q", dim, q_cols, bias);
        k = linear(api, g, h, (int)l, "attn_k", dim, kv_cols, bias);
        v = linear(api, g, h, (int)l, "attn_v", dim, kv_cols, bias);
        q = api->rope(g, q, L->n_heads, (uint32_t)hd, hp->rope_theta, rope);
        k = api->rope(g, k, L->n_kv_heads, (uint32_t)hd, hp->rope_theta, rope);
        att = api->attention(g, q, k, v, l, L->n_heads, L->n_kv_heads, (uint32_t)hd, 1.0f / sqrtf((float)hd));
        x = api->add(g, x, linear(api, g, att, (int)l, "attn_output", q_cols, dim, 0));

        snprintf(name, sizeof(name), "blk.%u.ffn_norm.weight", l);
        h = api->rms_norm(g, x, w1(api, g, name, dim, 0), hp->norm_eps);
        gate = linear(api, g, h, (int)l, "ffn_gate", dim, L->ffn_dim, 0);
        up = linear(api, g, h, (int)l, "ffn_up", dim, L->ffn_dim, 0);
        x = api->add(g, x, linear(api, g, api->swiglu(g, gate, up), (int)l, "ffn_down", L->ffn_dim, dim, 0));
    }

    x = api->output_rows(g, x);
    x = api->rms_norm(g, x, w1(api, g, "output_norm.weight", dim, 0), hp->norm_eps);
    x = api->matmul(g, x, (hp->flags & AIK_MODEL_TIED_EMBEDDINGS) ? embd : w2(api, g, "output.weight", dim, hp->n_vocab));
    return api->set_logits(g, x);
}

const aik_arch_ops aik_llama_arch_ops = {
    .struct_size = sizeof(aik_arch_ops),
    .graph_abi_major = AIK_GRAPH_ABI_MAJOR,
    .model_type = 1, /* AIK_SLM_MODEL_LLAMA */
    .build = aik_llama_build,
};
