/* SPDX-License-Identifier: MIT */
/* GGUF -> .slm. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/checked.h"
#include "common/error.h"
#include "interop/ggml_quant.h"
#include "interop/internal.h"

static void key(char *buf, size_t len, const char *arch, const char *suffix)
{
    snprintf(buf, len, "%s.%s", arch, suffix);
}

/* ggml type -> the .slm dtype kept as is, or -1 when it must be converted. */
static int kept_dtype(uint32_t type)
{
    switch (type) {
    case AIK_GGML_F32: return AIK_DTYPE_F32;
    case AIK_GGML_F16: return AIK_DTYPE_F16;
    case AIK_GGML_BF16: return AIK_DTYPE_BF16;
    case AIK_GGML_Q8_0: return AIK_DTYPE_Q8_0;
    case AIK_GGML_Q4_0: return AIK_DTYPE_Q4_0;
    default: return -1;
    }
}

/* Element size of an unquantized dtype (0 for block types). */
static uint32_t elem_size(aik_dtype t)
{
    return t == AIK_DTYPE_F32 ? 4 : (t == AIK_DTYPE_F16 || t == AIK_DTYPE_BF16) ? 2 : 0;
}

/* Convert one GGUF tensor to what the package stores: ret_data is either
 * the mapping (ret_owned = NULL) or a malloc'ed buffer (ret_owned set). */
static int convert_tensor(const aik_gguf_tensor *gt, const llama_tensor *lt, bool unpermute, uint32_t head_dim,
                          const aik_interop_opts *opts, aik_dtype *ret_dtype, const void **ret_data, void **ret_owned,
                          aik_error *err)
{
    uint64_t n = gt->ne[0] * gt->ne[1], bytes, row_bytes;
    int kd = kept_dtype(gt->type);
    aik_dtype dt;
    const void *data = gt->data;
    void *owned = NULL;
    float *f = NULL;

    /* Permuting elements of a 1-D quantized vector would split blocks. */
    if (kd < 0 || (unpermute && lt->n_dims == 1 && elem_size((aik_dtype)kd) == 0)) {
        if (!aik_ggml_can_dequantize(gt->type))
            return aik_fail(err, -ENOTSUP, gt->name, "ggml type %s cannot be converted (supported: f32, f16, bf16, "
                            "q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, q4_K, q5_K, q6_K, q8_K)", aik_ggml_type_name(gt->type));
        if (n > SIZE_MAX / sizeof(float) || !(f = malloc(n * sizeof(float))))
            return aik_fail(err, -ENOMEM, gt->name, "out of memory");
        aik_ggml_dequantize(gt->type, gt->data, f, n);
        if (lt->n_dims == 1 || gt->ne[0] % AIK_QK8_0 != 0) {
            dt = AIK_DTYPE_F32;
            owned = f;
            f = NULL;
        } else {
            dt = AIK_DTYPE_Q8_0;
            aik_dtype_bytes(dt, n, &bytes);
            if (!(owned = malloc(bytes))) {
                free(f);
                return aik_fail(err, -ENOMEM, gt->name, "out of memory");
            }
            aik_quantize_q8_0(f, owned, n);
            free(f);
            f = NULL;
        }
        interop_warn(opts, gt->name, "converted %s -> %s (%s)", aik_ggml_type_name(gt->type), aik_dtype_name(dt),
                     dt == AIK_DTYPE_Q8_0 ? "dequantized to f32, re-quantized to q8_0" : "dequantized");
        data = owned;
    } else {
        dt = (aik_dtype)kd;
    }
    if (unpermute) {
        void *p;
        aik_dtype_bytes(dt, n, &bytes);
        row_bytes = lt->n_dims == 1 ? elem_size(dt) : bytes / gt->ne[1];
        if (!(p = malloc(bytes))) {
            free(owned);
            return aik_fail(err, -ENOMEM, gt->name, "out of memory");
        }
        qk_permute_rows(p, data, row_bytes, lt->n_dims == 1 ? gt->ne[0] : gt->ne[1], head_dim, false);
        free(owned);
        owned = p;
        data = p;
    }
    *ret_dtype = dt;
    *ret_data = data;
    *ret_owned = owned;
    return 0;
}

int aik_import_gguf(const char *gguf_path, const char *slm_path, const aik_interop_opts *opts, aik_error *err)
{
    aik_gguf *g = NULL;
    aik_slm_header h;
    aik_slm_layer *layers = NULL;
    uint32_t *nh = NULL, *nkv = NULL, *ffn = NULL;
    llama_tensor *lt = NULL;
    uint8_t *tok = NULL;
    size_t tok_len = 0;
    aik_slm_writer *w = NULL;
    const char *arch_s;
    size_t arch_len;
    char arch[32], k[128];
    bool unpermute = false, qwen2;
    uint32_t rope_dims, n_blocks;
    int n_lt = 0, r;

    if (!gguf_path || !slm_path)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    memset(&h, 0, sizeof(h));
    if ((r = aik_gguf_open(gguf_path, &g, err)) < 0)
        return r;
    if ((r = aik_gguf_get_str(g, "general.architecture", &arch_s, &arch_len, err)) < 0)
        goto out;
    snprintf(arch, sizeof(arch), "%.*s", (int)(arch_len < 31 ? arch_len : 31), arch_s);
    /* deci: llama with per-layer head counts / FFN widths (what export
     * writes for pruned packages) */
    if (strcmp(arch, "llama") != 0 && strcmp(arch, "qwen2") != 0 && strcmp(arch, "mistral") != 0 &&
        strcmp(arch, "deci") != 0) {
        r = aik_fail(err, -ENOTSUP, "general.architecture",
                     "'%s' is not a supported architecture (llama, mistral, qwen2, deci)", arch);
        goto out;
    }
    qwen2 = strcmp(arch, "qwen2") == 0;

    key(k, sizeof(k), arch, "block_count");
    if ((r = aik_gguf_get_u32(g, k, &n_blocks, err)) < 0)
        goto out;
    if (n_blocks == 0 || n_blocks > AIK_SLM_MAX_LAYERS) {
        r = aik_fail(err, -EINVAL, k, "is %u, must be 1..%d", n_blocks, AIK_SLM_MAX_LAYERS);
        goto out;
    }
    h.n_layers = n_blocks;
    layers = calloc(n_blocks, sizeof(*layers));
    nh = calloc(n_blocks, sizeof(uint32_t));
    nkv = calloc(n_blocks, sizeof(uint32_t));
    ffn = calloc(n_blocks, sizeof(uint32_t));
    if (!layers || !nh || !nkv || !ffn) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    key(k, sizeof(k), arch, "embedding_length");
    if ((r = aik_gguf_get_u32(g, k, &h.dim, err)) < 0)
        goto out;
    key(k, sizeof(k), arch, "attention.head_count");
    if ((r = aik_gguf_get_u32_per_layer(g, k, n_blocks, nh, err)) < 0)
        goto out;
    key(k, sizeof(k), arch, "attention.head_count_kv");
    if (aik_gguf_find_kv(g, k) >= 0) {
        if ((r = aik_gguf_get_u32_per_layer(g, k, n_blocks, nkv, err)) < 0)
            goto out;
    } else {
        memcpy(nkv, nh, n_blocks * sizeof(uint32_t));
    }
    key(k, sizeof(k), arch, "feed_forward_length");
    if ((r = aik_gguf_get_u32_per_layer(g, k, n_blocks, ffn, err)) < 0)
        goto out;
    for (uint32_t i = 0; i < n_blocks; i++) {
        layers[i].n_heads = nh[i];
        layers[i].n_kv_heads = nkv[i];
        layers[i].ffn_dim = ffn[i];
        if (nh[i] == 0 || nkv[i] == 0 || ffn[i] == 0) {
            /* llama.cpp allows 0 heads for attention-free layers; we don't */
            r = aik_fail(err, -ENOTSUP, "attention.head_count", "layer %u has no heads or no FFN", i);
            goto out;
        }
    }
    if ((r = llama_check_dims(&h, layers, err)) < 0)
        goto out;
    /* Our own exports record the header maxima "as trained". */
    {
        uint32_t v;
        if (aik_gguf_get_u32(g, "aikernel.slm.n_heads", &v, NULL) == 0 && v >= h.n_heads)
            h.n_heads = v;
        if (aik_gguf_get_u32(g, "aikernel.slm.n_kv_heads", &v, NULL) == 0 && v >= h.n_kv_heads)
            h.n_kv_heads = v;
        if (aik_gguf_get_u32(g, "aikernel.slm.ffn_dim", &v, NULL) == 0 && v >= h.ffn_dim)
            h.ffn_dim = v;
    }
    key(k, sizeof(k), arch, "attention.key_length");
    if (aik_gguf_find_kv(g, k) >= 0) {
        uint32_t vlen;
        if ((r = aik_gguf_get_u32(g, k, &h.head_dim, err)) < 0)
            goto out;
        key(k, sizeof(k), arch, "attention.value_length");
        if (aik_gguf_get_u32(g, k, &vlen, NULL) == 0 && vlen != h.head_dim) {
            r = aik_fail(err, -ENOTSUP, k, "value head size %u differs from key head size %u", vlen, h.head_dim);
            goto out;
        }
    } else {
        if (h.dim % nh[0] != 0) {
            r = aik_fail(err, -EINVAL, "embedding_length", "%u is not a multiple of head_count %u", h.dim, nh[0]);
            goto out;
        }
        h.head_dim = h.dim / nh[0];
    }
    if (h.head_dim == 0 || h.head_dim % 2 != 0) {
        r = aik_fail(err, -EINVAL, "attention.key_length", "head size %u must be even and > 0", h.head_dim);
        goto out;
    }
    key(k, sizeof(k), arch, "rope.dimension_count");
    if (aik_gguf_get_u32(g, k, &rope_dims, NULL) == 0 && rope_dims != h.head_dim) {
        r = aik_fail(err, -ENOTSUP, k, "partial rotary embedding (%u of %u dims) is not supported", rope_dims, h.head_dim);
        goto out;
    }
    key(k, sizeof(k), arch, "rope.scaling.type");
    {
        const char *s;
        size_t len;
        if (aik_gguf_get_str(g, k, &s, &len, NULL) == 0 && !(len == 4 && memcmp(s, "none", 4) == 0)) {
            r = aik_fail(err, -ENOTSUP, k, "rope scaling '%.*s' is not supported", (int)(len > 32 ? 32 : len), s);
            goto out;
        }
    }
    key(k, sizeof(k), arch, "context_length");
    if ((r = aik_gguf_get_u32(g, k, &h.ctx_len, err)) < 0)
        goto out;
    h.rope_theta = 10000.0f;
    key(k, sizeof(k), arch, "rope.freq_base");
    if (aik_gguf_find_kv(g, k) >= 0 && (r = aik_gguf_get_f32(g, k, &h.rope_theta, err)) < 0)
        goto out;
    key(k, sizeof(k), arch, "attention.layer_norm_rms_epsilon");
    if ((r = aik_gguf_get_f32(g, k, &h.norm_eps, err)) < 0)
        goto out;

    h.model_type = AIK_SLM_MODEL_LLAMA;
    if (qwen2)
        h.flags |= AIK_SLM_FLAG_ROPE_NEOX;
    if (aik_gguf_find_tensor(g, "blk.0.attn_q.bias"))
        h.flags |= AIK_SLM_FLAG_QKV_BIAS;
    if (!aik_gguf_find_tensor(g, "output.weight"))
        h.flags |= AIK_SLM_FLAG_TIED_EMBEDDINGS;
    {
        bool b = false;
        if (aik_gguf_get_bool(g, "aikernel.qk_permuted_from_neox", &b, NULL) == 0 && b && !qwen2) {
            unpermute = true;
            h.flags |= AIK_SLM_FLAG_ROPE_NEOX;
        }
    }
    {
        const aik_gguf_tensor *emb = aik_gguf_find_tensor(g, "token_embd.weight");
        uint64_t nv = 0;
        if (!emb) {
            r = aik_fail(err, -EINVAL, "token_embd.weight", "missing");
            goto out;
        }
        if (aik_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &nv, NULL) >= 0 && nv != emb->ne[1]) {
            r = aik_fail(err, -EINVAL, "token_embd.weight", "has %" PRIu64 " rows, the vocabulary %" PRIu64 " tokens",
                         emb->ne[1], nv);
            goto out;
        }
        if (emb->ne[1] == 0 || emb->ne[1] > AIK_SLM_MAX_VOCAB) {
            r = aik_fail(err, -EINVAL, "token_embd.weight", "vocabulary of %" PRIu64 " rows is out of range", emb->ne[1]);
            goto out;
        }
        h.n_vocab = (uint32_t)emb->ne[1];
    }

    n_lt = llama_expected_tensors(&h, layers, &lt);
    if (n_lt < 0) {
        r = aik_fail(err, n_lt, NULL, "out of memory");
        goto out;
    }
    /* Every tensor of the file must be one we place, with its shape. */
    for (uint32_t i = 0; i < aik_gguf_tensor_count(g); i++) {
        const aik_gguf_tensor *gt = aik_gguf_tensor_at(g, i);
        int j;
        for (j = 0; j < n_lt; j++)
            if (strcmp(lt[j].name, gt->name) == 0)
                break;
        if (j == n_lt) {
            r = aik_fail(err, -ENOTSUP, gt->name, "tensor is not part of the llama layout this importer supports%s",
                         strcmp(gt->name, "rope_freqs.weight") == 0 ? " (rope frequency factors)" : "");
            goto out;
        }
        if (gt->n_dims > 2 || gt->ne[0] != lt[j].ne[0] || gt->ne[1] != lt[j].ne[1]) {
            r = aik_fail(err, -EINVAL, gt->name, "shape [%" PRIu64 ", %" PRIu64 "] does not match the hyper-parameters "
                         "([%" PRIu64 ", %" PRIu64 "])", gt->ne[0], gt->ne[1], lt[j].ne[0], lt[j].ne[1]);
            goto out;
        }
    }
    for (int j = 0; j < n_lt; j++)
        if (!aik_gguf_find_tensor(g, lt[j].name)) {
            r = aik_fail(err, -EINVAL, lt[j].name, "missing");
            goto out;
        }

    if ((r = gguf_tokenizer_blob(g, &tok, &tok_len, err)) < 0)
        goto out;
    if ((r = aik_slm_writer_begin(slm_path, &h, layers, tok, tok_len, &w, err)) < 0)
        goto out;
    for (int j = 0; j < n_lt; j++) {
        const aik_gguf_tensor *gt = aik_gguf_find_tensor(g, lt[j].name);
        uint64_t shape[AIK_MAX_DIMS] = { lt[j].ne[0], lt[j].ne[1], 1, 1 };
        const void *data = NULL;
        void *owned = NULL;
        aik_dtype dt = AIK_DTYPE_F32;

        if ((r = convert_tensor(gt, &lt[j], unpermute && lt[j].qk, h.head_dim, opts, &dt, &data, &owned, err)) < 0)
            goto out;
        r = aik_slm_writer_add_tensor(w, lt[j].name, dt, lt[j].n_dims, shape, data, err);
        free(owned);
        if (r < 0)
            goto out;
    }
    r = aik_slm_writer_finish(w, err);
    w = NULL;
out:
    aik_slm_writer_abort(w);
    free(lt);
    free(tok);
    free(layers);
    free(nh);
    free(nkv);
    free(ffn);
    aik_gguf_close(g);
    return r;
}
