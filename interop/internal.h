/* SPDX-License-Identifier: MIT */
/* Shared by the interop importers/exporter (not installed). */
#ifndef AIK_INTEROP_INTERNAL_H
#define AIK_INTEROP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "interop/gguf.h"
#include "interop/interop.h"
#include "loader/slm.h"
#include "runtime/tokenizer.h"

/* One tensor the llama layout expects, in .slm directory order. */
typedef struct llama_tensor {
    char name[AIK_SLM_NAME_MAX + 1];
    uint32_t n_dims;     /* 1 or 2 */
    uint64_t ne[2];      /* ne[0] contiguous */
    int layer;           /* -1 for global tensors */
    int qk;              /* 0 none, 1 = attn_q (heads = n_heads), 2 = attn_k (n_kv_heads) */
} llama_tensor;

/* The tensors a llama-family package with these dims/flags must contain.
 * Returns the count (> 0) and a malloc'ed array, or -ENOMEM/-EINVAL. */
int llama_expected_tensors(const aik_slm_header *h, const aik_slm_layer *layers, llama_tensor **ret);

/* Fill the global maxima of h (n_heads, n_kv_heads, ffn_dim) from layers
 * and check per-layer consistency; err names the layer field. */
int llama_check_dims(aik_slm_header *h, const aik_slm_layer *layers, aik_error *err);

/* Permute the rows of a [row_bytes x n_rows] tensor between Hugging Face's
 * NEOX (rotate-half) order and llama.cpp's adjacent-pair order. Rows are
 * grouped in heads of head_dim rows. to_llama: true = HF -> llama.cpp,
 * false = the inverse. dst and src must not overlap. */
void qk_permute_rows(void *dst, const void *src, uint64_t row_bytes, uint64_t n_rows, uint32_t head_dim,
                     bool to_llama);

void interop_warn(const aik_interop_opts *o, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* GGUF tokenizer.ggml.* keys -> a tokenizer blob. */
int gguf_tokenizer_blob(const aik_gguf *g, uint8_t **ret_blob, size_t *ret_len, aik_error *err);

/* A tokenizer blob -> tokenizer.ggml.* keys on a GGUF writer. */
int gguf_tokenizer_write(aik_gguf_writer *w, const void *blob, size_t len, aik_error *err);

/* Pre-tokenizer regex for a llama.cpp tokenizer.ggml.pre name (NULL =
 * GPT-2 default) and whether that pre-tokenizer ignores merges. false when
 * the name is unknown. */
bool pre_regex_for_name(const char *name, const char **ret_regex, bool *ret_ignore_merges);
/* Reverse: the llama.cpp name for a regex ("default" when unknown). */
const char *pre_name_for_regex(const char *regex, bool ignore_merges);

#endif
