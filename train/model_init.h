/* SPDX-License-Identifier: MIT */
/*
 * Fresh models: write a package with randomly initialised weights for an
 * architecture. The tensor list is not written down here: it comes from the
 * architecture module's own graph, built unbound, so initialisation can never
 * disagree with what the executor and the trainer use.
 */
#ifndef AIK_TRAIN_MODEL_INIT_H
#define AIK_TRAIN_MODEL_INIT_H

#include <stddef.h>
#include <stdint.h>

#include "aik/graph.h"
#include "loader/slm.h"

typedef struct aik_model_init {
    const aik_arch_ops *arch;    /* NULL: built-in architecture for hdr.model_type */
    aik_slm_header hdr;          /* model_type, flags, dims, rope_theta, norm_eps, ctx_len */
    const aik_slm_layer *layers; /* hdr.n_layers entries; NULL: every layer gets the global dims */
    aik_dtype weight_dtype;      /* dtype of 2-D weights; 1-D tensors are always f32 */
    float init_std;              /* std of matrix weights (0: 0.02); output projections are scaled by 1/sqrt(2·n_layers) */
    uint64_t seed;
    const void *tokenizer;       /* tokenizer blob */
    size_t tokenizer_len;
} aik_model_init;

/* Write the package atomically. Norm weights start at 1, biases at 0,
 * matrices ~ N(0, init_std²) from a seeded generator: same seed, same bytes. */
int aik_model_init_write(const char *path, const aik_model_init *cfg, aik_error *err);

#endif
