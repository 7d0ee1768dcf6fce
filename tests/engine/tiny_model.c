/* SPDX-License-Identifier: MIT */
#include "tiny_model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/tokenizer.h"
#include "train/model_init.h"

int tiny_tokenizer_blob(uint8_t **ret_blob, size_t *ret_len)
{
    static char texts[258][8];
    const char *tokens[258];
    aik_tokenizer_spec spec;

    for (int b = 0; b < 256; b++) {
        aik_tokenizer_byte_token((uint8_t)b, texts[b]);
        tokens[b] = texts[b];
    }
    tokens[256] = "<|bos|>";
    tokens[257] = "<|eos|>";
    memset(&spec, 0, sizeof(spec));
    spec.kind = AIK_TOKENIZER_BYTE_BPE;
    spec.n_vocab = 258;
    spec.tokens = tokens;
    spec.bos_id = 256;
    spec.eos_id = 257;
    spec.unk_id = -1;
    spec.pad_id = -1;
    spec.add_bos = true;
    return aik_tokenizer_blob_build(&spec, ret_blob, ret_len, NULL);
}

void tiny_header(aik_slm_header *hdr)
{
    memset(hdr, 0, sizeof(*hdr));
    hdr->model_type = AIK_SLM_MODEL_LLAMA;
    hdr->n_vocab = 258;
    hdr->dim = 64;
    hdr->n_layers = 2;
    hdr->n_heads = 4;
    hdr->n_kv_heads = 2;
    hdr->head_dim = 16;
    hdr->ffn_dim = 96;
    hdr->ctx_len = 64;
    hdr->rope_theta = 10000.0f;
    hdr->norm_eps = 1e-5f;
}

int tiny_model_write(const char *path, const aik_slm_header *hdr, const aik_slm_layer *layers, aik_dtype dtype,
                     uint64_t seed)
{
    aik_model_init cfg;
    uint8_t *blob = NULL;
    size_t len = 0;
    int r = tiny_tokenizer_blob(&blob, &len);

    if (r < 0)
        return r;
    memset(&cfg, 0, sizeof(cfg));
    cfg.hdr = *hdr;
    cfg.layers = layers;
    cfg.weight_dtype = dtype;
    cfg.init_std = 0.08f; /* larger than training init: makes outputs depend visibly on every weight */
    cfg.seed = seed;
    cfg.tokenizer = blob;
    cfg.tokenizer_len = len;
    r = aik_model_init_write(path, &cfg, NULL);
    free(blob);
    return r;
}
