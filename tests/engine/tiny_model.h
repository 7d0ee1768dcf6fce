/* SPDX-License-Identifier: MIT */
/* Tiny random llama packages for engine tests (real files, real loader). */
#ifndef AIK_TEST_TINY_MODEL_H
#define AIK_TEST_TINY_MODEL_H

#include <stdint.h>

#include "loader/slm.h"

/* A byte-level tokenizer blob: 256 byte tokens (GPT-2 mapping), n_extra
 * merged tokens are NOT added; BOS/EOS are two control tokens at 256, 257.
 * Vocabulary 258. Caller frees *ret_blob. */
int tiny_tokenizer_blob(uint8_t **ret_blob, size_t *ret_len);

/* Header template for a tiny llama: vocab 258, dim 64, 2 layers, 4 heads,
 * 2 kv heads, head_dim 16, ffn 96, ctx 64. */
void tiny_header(aik_slm_header *hdr);

/* Write a random tiny model to path (weights in dtype, 1-D in f32). layers
 * may be NULL (uniform). Returns 0 or a negative errno. */
int tiny_model_write(const char *path, const aik_slm_header *hdr, const aik_slm_layer *layers, aik_dtype dtype,
                     uint64_t seed);

#endif
