/* SPDX-License-Identifier: MIT */
/*
 * A loaded model: the mapped package, its tokenizer and the graph its
 * architecture builds. Immutable once open, so any number of sessions (each
 * with its own KV cache) can share it across threads.
 */
#ifndef AIK_RUNTIME_MODEL_H
#define AIK_RUNTIME_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "aik/graph.h"
#include "graph/graph.h"
#include "loader/slm.h"
#include "runtime/tokenizer.h"

typedef struct aik_model {
    aik_slm *pkg;
    aik_tokenizer *tok;
    aik_graph *graph;
    aik_layer_hparams *layers;
    aik_model_hparams hp;
    bool owns_pkg;        /* false: the package belongs to a verified module */
    /* packed copies of the quantized matmul weights, filled by the first
     * session that wants them (scheduler/packed_weights.h) */
    struct aik_packed_weights *packed;
} aik_model;

/* Open a package and build its graph. arch is the architecture module's ops
 * (from a verified module); NULL selects the built-in copy of the in-tree
 * architecture for the package's model_type (for bare packages: aikctl
 * generate/bench/perplexity). slm_flags: AIK_SLM_VERIFY_CHECKSUMS etc. */
int aik_model_open(const char *path, unsigned slm_flags, const aik_arch_ops *arch, aik_model **ret_model,
                   aik_error *err);

/* Same, from an already verified descriptor (the loader's path). */
int aik_model_open_fd(int fd, unsigned slm_flags, const aik_arch_ops *arch, aik_model **ret_model,
                      aik_error *err);

/* Build a model over a package someone else owns (a verified module's
 * payload); pkg must outlive the model. */
int aik_model_from_slm(const aik_slm *pkg, const aik_arch_ops *arch, aik_model **ret_model, aik_error *err);

void aik_model_free(aik_model *m);

/* The built-in architecture for a model_type, or NULL. */
const aik_arch_ops *aik_builtin_arch(uint32_t model_type);

#endif
