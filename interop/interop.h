/* SPDX-License-Identifier: MIT */
/*
 * Import community model formats into .slm packages and export .slm
 * packages to GGUF. Architectures: the llama family (llama, mistral-style,
 * SmolLM, qwen2 with q/k/v biases). Tensor names and shapes follow GGUF's
 * llama names (see loader/slm.h and docs/interop.md).
 *
 * Rotary embeddings: GGUF "llama" weights are already permuted for
 * adjacent-pair rope, so they import unchanged without AIK_SLM_FLAG_ROPE_NEOX;
 * "qwen2" GGUF and every Hugging Face checkpoint import with ROPE_NEOX and
 * unpermuted weights. Export writes "qwen2" for NEOX models with q/k/v
 * biases, "deci" (llama.cpp's llama with per-layer head counts and FFN
 * widths) for pruned models, otherwise "llama"; pruned models with biases
 * are refused (no llama.cpp graph has that shape). NEOX models written as
 * llama/deci get their Q/K rows
 * permuted into llama.cpp's order (as convert_hf_to_gguf.py does) and a key
 * aikernel.qk_permuted_from_neox = true, which a later import uses to undo
 * the permutation, so .slm -> GGUF -> .slm is exact.
 *
 * Nothing here prints: conversions that change a tensor's dtype are
 * reported through the optional warn callback, failures through aik_error.
 */
#ifndef AIK_INTEROP_INTEROP_H
#define AIK_INTEROP_INTEROP_H

#include "aik/common.h"

/* Called once per notable conversion: where is a tensor or key name. */
typedef void (*aik_interop_warn_fn)(void *ctx, const char *where, const char *message);

typedef struct aik_interop_opts {
    aik_interop_warn_fn warn; /* optional; NULL = conversions are silent */
    void *warn_ctx;
} aik_interop_opts;

/*
 * GGUF file -> .slm package (written atomically). f32, f16, bf16, q8_0 and
 * q4_0 tensors keep their dtype; q4_1, q5_0, q5_1, q8_1, q4_K, q5_K, q6_K and
 * q8_K are dequantized and re-quantized to q8_0 (1-D tensors become f32),
 * with a warning per tensor; other types (q2_K, q3_K, i-quants) are refused
 * naming the tensor and the type. Refused too: unknown architectures, rope
 * scaling, partial rotary dims, tensors outside the llama layout, a token
 * embedding whose row count differs from the vocabulary.
 * Returns 0 or -errno with err naming the key/tensor.
 */
int aik_import_gguf(const char *gguf_path, const char *slm_path, const aik_interop_opts *opts, aik_error *err);

/*
 * Hugging Face checkpoint directory -> .slm: config.json (LlamaForCausalLM,
 * MistralForCausalLM, Qwen2ForCausalLM), model.safetensors or the shards
 * listed by model.safetensors.index.json, tokenizer.json (+ optional
 * tokenizer_config.json for bos/eos/add_bos/chat_template). Tensors must be
 * f32, f16 or bf16 and keep their dtype.
 */
int aik_import_hf(const char *dir, const char *slm_path, const aik_interop_opts *opts, aik_error *err);

/*
 * .slm package -> GGUF v3 that llama.cpp loads: architecture keys (per-layer
 * head counts / FFN widths as arrays when layers differ), tokenizer keys
 * (tokenizer.ggml.*), tensors in their dtype (f32/f16/bf16/q8_0/q4_0 are all
 * ggml types). The package's checksums are verified first.
 */
int aik_export_gguf(const char *slm_path, const char *gguf_path, const aik_interop_opts *opts, aik_error *err);

/*
 * Write a semantic-profile skeleton (YAML) describing an imported package:
 * its digest, architecture and dimensions, with the capability list left for
 * a person to fill in. source is recorded as provenance (the input path).
 */
int aik_import_write_profile(const char *slm_path, const char *profile_path, const char *source, aik_error *err);

#endif
