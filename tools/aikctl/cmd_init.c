/* SPDX-License-Identifier: MIT */
/*
 * aikctl init-model OUT.slm --shape NAME [--dtype D] [--seed S]: a package of
 * the given shape with random weights and a byte-level tokenizer. For
 * benchmarks (smollm2-135m has SmolLM2-135M's exact shapes) and tests; it
 * generates gibberish by design.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/tokenizer.h"
#include "tools/aikctl/aikctl.h"
#include "train/model_init.h"

static const struct shape {
    const char *name;
    uint32_t vocab, dim, layers, heads, kv_heads, head_dim, ffn, ctx;
    float theta;
    uint32_t flags;
} shapes[] = {
    { "tiny", 257, 64, 2, 4, 2, 16, 96, 256, 10000.0f, 0 },
    { "wordnet-3m", 4096, 192, 6, 6, 2, 32, 512, 256, 10000.0f, AIK_SLM_FLAG_TIED_EMBEDDINGS },
    { "smollm2-135m", 49152, 576, 30, 9, 3, 64, 1536, 2048, 100000.0f, AIK_SLM_FLAG_TIED_EMBEDDINGS },
};

/* GPT-2 byte tokens (bytes_to_unicode) + <|endoftext|>: a real, tiny tokenizer. */
static int byte_tokenizer(uint8_t **blob, size_t *len, aik_error *err)
{
    static char text[256][4];
    const char *tokens[257];
    aik_tokenizer_spec spec = { 0 };
    for (int b = 0; b < 256; b++) {
        aik_tokenizer_byte_token((uint8_t)b, text[b]);
        tokens[b] = text[b];
    }
    tokens[256] = "<|endoftext|>";
    spec.kind = AIK_TOKENIZER_BYTE_BPE;
    spec.n_vocab = 257;
    spec.tokens = tokens;
    spec.bos_id = spec.eos_id = 256;
    spec.unk_id = spec.pad_id = -1;
    spec.add_bos = true;
    return aik_tokenizer_blob_build(&spec, blob, len, err);
}

int aikctl_cmd_init(int argc, char **argv)
{
    static const struct option opts[] = { { "shape", required_argument, 0, 'S' }, { "dtype", required_argument, 0, 'd' },
                                          { "seed", required_argument, 0, 's' }, { "help", no_argument, 0, 'h' },
                                          { 0, 0, 0, 0 } };
    const struct shape *sh = NULL;
    aik_model_init mi = { 0 };
    aik_error err;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    int c;

    mi.weight_dtype = AIK_DTYPE_F32;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'S':
            for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
                if (strcmp(optarg, shapes[i].name) == 0)
                    sh = &shapes[i];
            if (!sh) {
                fprintf(stderr, "aikctl init-model: unknown shape '%s' (tiny, wordnet-3m, smollm2-135m)\n", optarg);
                return 2;
            }
            break;
        case 'd':
            if (aik_dtype_from_name(optarg, &mi.weight_dtype) < 0) {
                fprintf(stderr, "aikctl init-model: unknown dtype '%s'\n", optarg);
                return 2;
            }
            break;
        case 's': mi.seed = strtoull(optarg, NULL, 10); break;
        case 'h':
            printf("usage: aikctl init-model OUT.slm --shape tiny|wordnet-3m|smollm2-135m [--dtype f32|f16|bf16|q8_0|q4_0] [--seed S]\n");
            return 0;
        default: return 2;
        }
    }
    if (optind + 1 != argc || !sh) {
        fprintf(stderr, "usage: aikctl init-model OUT.slm --shape NAME [--dtype D] [--seed S]\n");
        return 2;
    }
    if (byte_tokenizer(&blob, &blob_len, &err) < 0) {
        aikctl_print_error("tokenizer", &err);
        return 1;
    }
    mi.hdr.model_type = AIK_SLM_MODEL_LLAMA;
    mi.hdr.flags = sh->flags;
    mi.hdr.n_vocab = sh->vocab;
    mi.hdr.dim = sh->dim;
    mi.hdr.n_layers = sh->layers;
    mi.hdr.n_heads = sh->heads;
    mi.hdr.n_kv_heads = sh->kv_heads;
    mi.hdr.head_dim = sh->head_dim;
    mi.hdr.ffn_dim = sh->ffn;
    mi.hdr.ctx_len = sh->ctx;
    mi.hdr.rope_theta = sh->theta;
    mi.hdr.norm_eps = 1e-5f;
    mi.tokenizer = blob;
    mi.tokenizer_len = blob_len;
    int r = aik_model_init_write(argv[optind], &mi, &err);
    free(blob);
    if (r < 0) {
        aikctl_print_error(argv[optind], &err);
        return 1;
    }
    printf("wrote %s (%s, %s weights)\n", argv[optind], sh->name, aik_dtype_name(mi.weight_dtype));
    return 0;
}
