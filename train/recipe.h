/* SPDX-License-Identifier: MIT */
/*
 * A training recipe: one JSON file that says everything a run needs, so a
 * model can be reproduced with one command (aikctl train RECIPE). Parsed
 * strictly (jansson; unknown keys, wrong types and missing files are refused
 * with the key path) and checked completely before any work starts.
 * Schema: docs/training.md.
 */
#ifndef AIK_TRAIN_RECIPE_H
#define AIK_TRAIN_RECIPE_H

#include <stdbool.h>
#include <stdint.h>

#include "aik/common.h"
#include "loader/slm.h"
#include "train/trainer.h"

typedef struct aik_recipe {
    char *dir;              /* directory of the recipe: relative paths resolve here */
    char *train_path, *valid_path, *test_path;
    /* tokenizer: trained (vocab_size > 0) or taken from the base package */
    uint32_t tok_vocab;
    uint64_t tok_train_bytes; /* 0: all of the training text */
    /* model: new (hdr) or continued from base_path */
    char *base_path;
    aik_slm_header hdr;
    aik_train_config train;
    char *teacher_path;
    char **lora_targets;
    size_t n_lora_targets;
    uint32_t eval_every, eval_sequences;
    char *checkpoint_path;
    uint32_t checkpoint_every;
    char *output_path;
    aik_dtype output_dtype;
} aik_recipe;

/* Parse and validate. err->where is the JSON key path ("train.lr"). */
int aik_recipe_load(const char *path, aik_recipe **ret_recipe, aik_error *err);
void aik_recipe_free(aik_recipe *r);

/* Progress of a run, reported to the caller (the CLI draws the bar). */
typedef struct aik_recipe_progress {
    const char *phase;       /* "tokenizer", "data", "train", "eval", "checkpoint", "done" */
    uint32_t step, steps;
    double loss, val_loss, grad_norm, tokens_per_s, eta_s;
    double gflops;           /* achieved model GFLOP/s (aik_trainer_flops_per_token × tokens/s) */
    float lr;
    double test_loss;        /* "done": mean CE on the test split (nats), < 0 when absent */
} aik_recipe_progress;

typedef void (*aik_recipe_progress_fn)(void *user, const aik_recipe_progress *p);

/* Run the recipe: tokenizer, data, initial model, training (resuming from
 * the checkpoint when resume is set and it exists), final package. */
int aik_recipe_run(const aik_recipe *r, bool resume, aik_recipe_progress_fn fn, void *user, aik_error *err);

/* Split documents (blank-line separated) into a token stream:
 * BOS doc EOS BOS doc EOS ... Caller frees *ret_ids. */
int aik_corpus_tokenize(const aik_tokenizer *tok, const char *text, size_t len, int32_t **ret_ids, size_t *ret_n,
                        aik_error *err);

#endif
