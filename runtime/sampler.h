/* SPDX-License-Identifier: MIT */
/*
 * Token sampling. The chain, in llama.cpp's order: repetition penalty over the
 * last repeat_last_n tokens → top-k → top-p → min-p → temperature → draw with
 * a seeded RNG. temperature <= 0 means greedy (argmax after the penalty;
 * ties go to the lowest id), so greedy output never depends on the seed.
 */
#ifndef AIK_RUNTIME_SAMPLER_H
#define AIK_RUNTIME_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"

typedef struct aik_sampler_config {
    float temperature;     /* <= 0: greedy */
    int32_t top_k;         /* <= 0: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off; keep tokens with p >= min_p * p_max */
    float repeat_penalty;  /* 1: off; > 1 discourages repeats (logit / p if > 0, * p if < 0) */
    uint32_t repeat_last_n; /* window for the penalty */
    uint64_t seed;
} aik_sampler_config;

/* Defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, no penalty,
 * repeat_last_n 64, seed 0. */
void aik_sampler_config_default(aik_sampler_config *cfg);

typedef struct aik_sampler aik_sampler;

/* Check the configuration (-EINVAL with err naming the field) and allocate
 * work space for n_vocab candidates. */
int aik_sampler_new(const aik_sampler_config *cfg, uint32_t n_vocab, aik_sampler **ret_sampler, aik_error *err);
void aik_sampler_free(aik_sampler *s);

/* Choose the next token from logits[n_vocab]. history holds the tokens seen
 * so far (prompt and generated) for the repetition penalty. */
int32_t aik_sampler_sample(aik_sampler *s, const float *logits, const int32_t *history, size_t n_history);

/* Reseed (a request that wants reproducible output sets its own seed). */
void aik_sampler_reseed(aik_sampler *s, uint64_t seed);

#endif
