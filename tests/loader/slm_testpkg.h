/* SPDX-License-Identifier: MIT */
/*
 * A small but complete .slm package for the loader tests, the aikctl
 * integration test and the fuzz seed corpus: two heterogeneous layers (as
 * after pruning), a tokenizer blob and one tensor of every dtype with 1- to
 * 4-dimensional shapes. Tensor bytes are a deterministic function of the
 * tensor index, so readers can check them byte for byte.
 */
#ifndef AIK_TESTS_SLM_TESTPKG_H
#define AIK_TESTS_SLM_TESTPKG_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loader/slm.h"

typedef struct {
    const char *name;
    aik_dtype dtype;
    uint32_t n_dims;
    uint64_t shape[AIK_MAX_DIMS];
} testpkg_tensor;

static const testpkg_tensor testpkg_tensors[] = {
    { "token_embd.weight", AIK_DTYPE_F32, 2, { 16, 8, 1, 1 } },
    { "blk.0.attn_norm.weight", AIK_DTYPE_F16, 3, { 8, 3, 2, 1 } },
    { "blk.0.ffn_up.weight", AIK_DTYPE_BF16, 4, { 4, 2, 2, 2 } },
    { "blk.1.attn_q.weight", AIK_DTYPE_Q8_0, 2, { 64, 2, 1, 1 } },
    { "output.weight", AIK_DTYPE_Q4_0, 3, { 32, 3, 1, 1 } },
    { "output_norm.weight", AIK_DTYPE_F32, 1, { 16, 1, 1, 1 } },
};
#define TESTPKG_N_TENSORS (sizeof(testpkg_tensors) / sizeof(testpkg_tensors[0]))

static const char testpkg_tokenizer[] = "AIKTOK test tokenizer blob: <s> </s> a b c d e f g h i j k l m n o p";

static inline void testpkg_template(aik_slm_header *h, aik_slm_layer layers[2])
{
    memset(h, 0, sizeof(*h));
    h->model_type = AIK_SLM_MODEL_LLAMA;
    h->flags = AIK_SLM_FLAG_TIED_EMBEDDINGS | AIK_SLM_FLAG_ROPE_NEOX;
    h->n_vocab = 64;
    h->dim = 64;
    h->n_layers = 2;
    h->n_heads = 4;
    h->n_kv_heads = 2;
    h->head_dim = 16;
    h->ffn_dim = 128;
    h->ctx_len = 256;
    h->rope_theta = 10000.0f;
    h->norm_eps = 1e-5f;
    layers[0] = (aik_slm_layer){ 4, 2, 128, 0 };
    layers[1] = (aik_slm_layer){ 2, 1, 96, 0 }; /* pruned: fewer heads, narrower FFN */
}

/* Bytes of tensor i (malloc'ed, *ret_len bytes). */
static inline uint8_t *testpkg_tensor_data(size_t i, uint64_t *ret_len)
{
    const testpkg_tensor *t = &testpkg_tensors[i];
    uint64_t n = t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3], bytes = 0;
    uint8_t *p;

    if (aik_dtype_bytes(t->dtype, n, &bytes) < 0)
        return NULL;
    p = malloc((size_t)bytes);
    if (!p)
        return NULL;
    for (uint64_t k = 0; k < bytes; k++)
        p[k] = (uint8_t)(k * 31u + i * 101u + 7u);
    *ret_len = bytes;
    return p;
}

/* Write the package to path. Returns 0 or the writer's error. */
static inline int testpkg_write(const char *path, aik_error *err)
{
    aik_slm_header h;
    aik_slm_layer layers[2];
    aik_slm_writer *w;
    int r;

    testpkg_template(&h, layers);
    r = aik_slm_writer_begin(path, &h, layers, testpkg_tokenizer, sizeof(testpkg_tokenizer), &w, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < TESTPKG_N_TENSORS; i++) {
        const testpkg_tensor *t = &testpkg_tensors[i];
        uint64_t len;
        uint8_t *data = testpkg_tensor_data(i, &len);

        if (!data) {
            aik_slm_writer_abort(w);
            return -ENOMEM;
        }
        r = aik_slm_writer_add_tensor(w, t->name, t->dtype, t->n_dims, t->shape, data, err);
        free(data);
        if (r < 0) {
            aik_slm_writer_abort(w);
            return r;
        }
    }
    return aik_slm_writer_finish(w, err);
}

#endif
