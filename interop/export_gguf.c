/* SPDX-License-Identifier: MIT */
/* .slm -> GGUF for llama.cpp. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "interop/internal.h"

static uint32_t ggml_type_of(aik_dtype t)
{
    switch (t) {
    case AIK_DTYPE_F32: return AIK_GGML_F32;
    case AIK_DTYPE_F16: return AIK_GGML_F16;
    case AIK_DTYPE_BF16: return AIK_GGML_BF16;
    case AIK_DTYPE_Q8_0: return AIK_GGML_Q8_0;
    case AIK_DTYPE_Q4_0: return AIK_GGML_Q4_0;
    default: return UINT32_MAX;
    }
}

/* One scalar or, when the layers differ, a per-layer array (llama.cpp reads
 * either for head_count, head_count_kv and feed_forward_length; its arrays
 * must be int32, it refuses uint32 ones). */
static int add_per_layer(aik_gguf_writer *w, const char *key, const aik_slm_layer *L, uint32_t n, size_t field,
                         aik_error *err)
{
    uint32_t first;
    int32_t *v;
    bool uniform = true;
    int r;

    memcpy(&first, (const uint8_t *)&L[0] + field, 4);
    for (uint32_t i = 1; i < n; i++) {
        uint32_t x;
        memcpy(&x, (const uint8_t *)&L[i] + field, 4);
        uniform &= x == first;
    }
    if (uniform)
        return aik_gguf_writer_add_u32(w, key, first, err);
    v = malloc(n * sizeof(*v));
    if (!v)
        return aik_fail(err, -ENOMEM, key, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        uint32_t x;
        memcpy(&x, (const uint8_t *)&L[i] + field, 4);
        if (x > INT32_MAX) {
            free(v);
            return aik_fail(err, -ERANGE, key, "layer %u value %u does not fit in int32", i, x);
        }
        v[i] = (int32_t)x;
    }
    r = aik_gguf_writer_add_arr(w, key, AIK_GGUF_INT32, v, n, err);
    free(v);
    return r;
}

int aik_export_gguf(const char *slm_path, const char *gguf_path, const aik_interop_opts *opts, aik_error *err)
{
    aik_slm *pkg = NULL;
    aik_gguf_writer *w = NULL;
    llama_tensor *lt = NULL;
    void **owned = NULL;
    const aik_slm_header *h;
    const char *arch;
    char k[128];
    bool neox, bias, permute, uniform;
    int n_lt = 0, r;

    if (!slm_path || !gguf_path)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    if ((r = aik_slm_open(slm_path, AIK_SLM_VERIFY_CHECKSUMS, &pkg, err)) < 0)
        return r;
    h = &pkg->hdr;
    if (h->model_type != AIK_SLM_MODEL_LLAMA) {
        r = aik_fail(err, -ENOTSUP, "header.model_type", "only llama-family packages can be exported");
        goto out;
    }
    neox = h->flags & AIK_SLM_FLAG_ROPE_NEOX;
    bias = h->flags & AIK_SLM_FLAG_QKV_BIAS;
    uniform = true;
    for (uint32_t i = 1; i < h->n_layers; i++)
        uniform &= memcmp(&pkg->layers[i], &pkg->layers[0], sizeof(aik_slm_layer)) == 0;
    /* llama.cpp's graphs: "qwen2" computes NEOX rope and needs q/k/v biases
     * of width dim; "llama" computes adjacent-pair rope, biases optional but
     * of width dim; both read one head count and FFN width for all layers.
     * "deci" is llama with per-layer head counts and FFN widths. */
    if (bias && (!uniform || pkg->layers[0].n_heads * h->head_dim != h->dim)) {
        r = aik_fail(err, -ENOTSUP, "header.flags",
                     "q/k/v biases with %s: no llama.cpp architecture has that shape",
                     uniform ? "n_heads * head_dim != dim" : "per-layer head counts or FFN widths");
        goto out;
    }
    if (neox && bias && uniform) {
        arch = "qwen2";
        permute = false;
    } else {
        arch = uniform ? "llama" : "deci";
        permute = neox;
    }
    if (h->head_dim % 2 != 0) {
        r = aik_fail(err, -ENOTSUP, "header.head_dim", "odd head size %u cannot be exported", h->head_dim);
        goto out;
    }
    n_lt = llama_expected_tensors(h, pkg->layers, &lt);
    if (n_lt < 0) {
        r = aik_fail(err, n_lt, NULL, "out of memory");
        goto out;
    }
    /* The package must hold exactly the llama layout (llama.cpp refuses
     * unknown tensors and would misread wrong shapes). */
    if ((uint32_t)n_lt != h->tensor_count) {
        r = aik_fail(err, -EINVAL, "header.tensor_count", "%u tensors, the llama layout of this package has %d",
                     h->tensor_count, n_lt);
        goto out;
    }
    for (int j = 0; j < n_lt; j++) {
        const aik_slm_tensor *t = aik_slm_find(pkg, lt[j].name);
        if (!t) {
            r = aik_fail(err, -EINVAL, lt[j].name, "missing");
            goto out;
        }
        if (t->n_dims != lt[j].n_dims || t->shape[0] != lt[j].ne[0] || t->shape[1] != lt[j].ne[1]) {
            r = aik_fail(err, -EINVAL, lt[j].name, "shape does not match the package's dimensions");
            goto out;
        }
    }
    owned = calloc((size_t)n_lt, sizeof(*owned));
    if (!owned || aik_gguf_writer_new(0, &w) < 0) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
#define CK(x)              \
    do {                   \
        if ((r = (x)) < 0) \
            goto out;      \
    } while (0)
#define KEY(suffix) (snprintf(k, sizeof(k), "%s.%s", arch, suffix), k)
    CK(aik_gguf_writer_add_str(w, "general.architecture", arch, strlen(arch), err));
    CK(aik_gguf_writer_add_str(w, "general.name", "aikernel export", 15, err));
    CK(aik_gguf_writer_add_u32(w, "general.quantization_version", 2, err));
    CK(aik_gguf_writer_add_u32(w, KEY("block_count"), h->n_layers, err));
    CK(aik_gguf_writer_add_u32(w, KEY("context_length"), h->ctx_len, err));
    CK(aik_gguf_writer_add_u32(w, KEY("embedding_length"), h->dim, err));
    CK(add_per_layer(w, KEY("feed_forward_length"), pkg->layers, h->n_layers, offsetof(aik_slm_layer, ffn_dim), err));
    CK(add_per_layer(w, KEY("attention.head_count"), pkg->layers, h->n_layers, offsetof(aik_slm_layer, n_heads), err));
    CK(add_per_layer(w, KEY("attention.head_count_kv"), pkg->layers, h->n_layers,
                     offsetof(aik_slm_layer, n_kv_heads), err));
    CK(aik_gguf_writer_add_u32(w, KEY("attention.key_length"), h->head_dim, err));
    CK(aik_gguf_writer_add_u32(w, KEY("attention.value_length"), h->head_dim, err));
    CK(aik_gguf_writer_add_u32(w, KEY("rope.dimension_count"), h->head_dim, err));
    CK(aik_gguf_writer_add_f32(w, KEY("rope.freq_base"), h->rope_theta, err));
    CK(aik_gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), h->norm_eps, err));
    CK(aik_gguf_writer_add_u32(w, KEY("vocab_size"), h->n_vocab, err));
    /* For an exact re-import (llama.cpp ignores unknown keys). */
    CK(aik_gguf_writer_add_u32(w, "aikernel.slm.n_heads", h->n_heads, err));
    CK(aik_gguf_writer_add_u32(w, "aikernel.slm.n_kv_heads", h->n_kv_heads, err));
    CK(aik_gguf_writer_add_u32(w, "aikernel.slm.ffn_dim", h->ffn_dim, err));
    if (permute)
        CK(aik_gguf_writer_add_bool(w, "aikernel.qk_permuted_from_neox", true, err));
#undef KEY
    CK(gguf_tokenizer_write(w, pkg->tokenizer, pkg->hdr.tokenizer_size, err));

    for (int j = 0; j < n_lt; j++) {
        const aik_slm_tensor *t = aik_slm_find(pkg, lt[j].name);
        uint32_t gt = ggml_type_of(t->dtype);
        const void *data = t->data;

        if (gt == UINT32_MAX) {
            r = aik_fail(err, -ENOTSUP, t->name, "dtype %s has no ggml equivalent", aik_dtype_name(t->dtype));
            goto out;
        }
        if (permute && lt[j].qk) {
            uint64_t rows = t->n_dims == 1 ? t->shape[0] : t->shape[1];
            uint64_t row_bytes = t->size / rows;
            if (t->n_dims == 1 && aik_dtype_block_elems(t->dtype) != 1) {
                r = aik_fail(err, -ENOTSUP, t->name, "a quantized bias cannot be permuted for llama.cpp's rope order");
                goto out;
            }
            if (!(owned[j] = malloc(t->size))) {
                r = aik_fail(err, -ENOMEM, t->name, "out of memory");
                goto out;
            }
            qk_permute_rows(owned[j], t->data, row_bytes, rows, h->head_dim, true);
            data = owned[j];
        }
        CK(aik_gguf_writer_add_tensor(w, t->name, gt, t->n_dims, t->shape, data, t->size, err));
    }
#undef CK
    if (permute)
        interop_warn(opts, "attn_q/attn_k", "rows permuted from NEOX (rotate-half) to llama.cpp's adjacent-pair order");
    r = aik_gguf_writer_write_file(w, gguf_path, err);
out:
    if (owned)
        for (int j = 0; j < n_lt; j++)
            free(owned[j]);
    free(owned);
    free(lt);
    aik_gguf_writer_free(w);
    aik_slm_close(pkg);
    return r;
}
