/* SPDX-License-Identifier: MIT */
/*
 * The training engine as a library: the evolution engine and the adapter
 * pipeline call it; aikctl train is a thin front end.
 *
 * Modes:
 *   full:  every weight is trained, from f32 master copies.
 *   lora:  the base stays frozen in its stored dtype (f32, f16, bf16, q8_0,
 *          q4_0: QLoRA-style) and rank-r pairs (A, B) on the chosen matmul
 *          weights are trained; y = x·Wᵀ + (alpha/r)·(x·Aᵀ)·Bᵀ. A starts
 *          random, B at zero, so training starts from the base model.
 *   Either mode may distil from a teacher: loss = ce_weight · CE +
 *   (1 − ce_weight) · T² · KL(teacher_T ‖ student_T).
 *
 * One optimizer step = micro_batches sequences of seq_len tokens (gradient
 * accumulation), AdamW with decoupled weight decay (2-D weights only),
 * linear warm-up then cosine decay to min_lr, global-norm clipping.
 * Deterministic for a given seed and thread count; a checkpoint restores
 * weights, optimizer moments, step and RNG so a resumed run is bit-exact.
 */
#ifndef AIK_TRAIN_TRAINER_H
#define AIK_TRAIN_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"
#include "runtime/model.h"

typedef enum aik_train_mode {
    AIK_TRAIN_FULL = 0,
    AIK_TRAIN_LORA = 1,
} aik_train_mode;

typedef struct aik_train_config {
    aik_train_mode mode;
    uint32_t seq_len;        /* tokens per sequence */
    uint32_t micro_batches;  /* sequences per optimizer step */
    uint32_t steps;          /* total optimizer steps (for the schedule) */
    uint32_t warmup_steps;
    float lr, min_lr;
    float weight_decay;
    float beta1, beta2, adam_eps;
    float grad_clip;         /* max global gradient norm; 0 = off */
    uint64_t seed;
    uint32_t n_threads;      /* 0: all cores */
    /* LoRA */
    uint32_t lora_rank;
    float lora_alpha;
    const char *const *lora_targets; /* tensor names without the "blk.N." prefix, e.g. "attn_q.weight" */
    size_t n_lora_targets;
    /* distillation (optional) */
    const aik_model *teacher;
    float distill_temp;      /* softening temperature (> 0) */
    float ce_weight;         /* 1 = plain cross-entropy, 0 = pure distillation */
} aik_train_config;

/* Sensible defaults: full mode, seq_len 128, 8 micro-batches, lr 1e-3 →
 * 1e-4, warm-up 100, wd 0.1, betas 0.9/0.95, eps 1e-8, clip 1.0, LoRA rank 8
 * alpha 16 on q/k/v/o, temperature 2, ce_weight 1. */
void aik_train_config_default(aik_train_config *cfg);

typedef struct aik_trainer aik_trainer;

typedef struct aik_train_stats {
    uint32_t step;        /* optimizer steps done after this one */
    double loss;          /* mean training loss per scored token (nats) */
    double grad_norm;     /* before clipping */
    float lr;
    uint64_t tokens;      /* tokens processed in this step */
} aik_train_stats;

/* The model's package supplies the initial weights (and the frozen base in
 * LoRA mode); it must outlive the trainer. Checks the configuration first
 * (-EINVAL naming the field). */
int aik_trainer_new(const aik_model *m, const aik_train_config *cfg, aik_trainer **ret_trainer, aik_error *err);
void aik_trainer_free(aik_trainer *tr);

/* One optimizer step over micro_batches sequences; seqs holds
 * micro_batches × (seq_len + 1) tokens (inputs and the shifted targets). */
int aik_trainer_step(aik_trainer *tr, const int32_t *seqs, aik_train_stats *ret_stats, aik_error *err);

/* Mean cross-entropy per token over n sequences of seq_len + 1 tokens,
 * without touching gradients. */
int aik_trainer_eval(aik_trainer *tr, const int32_t *seqs, size_t n, double *ret_loss, aik_error *err);

uint32_t aik_trainer_step_count(const aik_trainer *tr);

/* Floating-point operations one training token costs, from the graph: every
 * matmul (weights and LoRA factors) 2·in·out forward and 4·in·out backward,
 * and causal attention ≈ 2·2·(seq_len/2)·heads·head_dim forward, twice that
 * backward. Divide tokens/s × this by the machine's fp32 peak for the
 * fraction of peak the trainer achieves. */
double aik_trainer_flops_per_token(const aik_trainer *tr);

/* Where the wall time of aik_trainer_step went since the trainer was made
 * (evaluation is not counted), and the flops of the parts, for benchmarks
 * (benchmarks/train): GFLOP/s inside the mat-muls = matmul_flops_per_token
 * × tokens / matmul_s. */
typedef struct aik_train_profile {
    double matmul_s;      /* weight mat-muls (and LoRA pairs), forward and backward */
    double attention_s;   /* attention forward and backward */
    double other_ops_s;   /* every other op, forward and backward (norms, rope, swiglu, ...) */
    double loss_s;        /* cross-entropy / distillation and their gradient */
    double optimizer_s;   /* gradient zeroing, norm, clipping and AdamW */
    double total_s;       /* all of the above and the rest (teacher, input copies) */
    uint64_t tokens;      /* tokens through forward and backward (training steps only) */
    double matmul_flops_per_token;    /* the mat-mul part of aik_trainer_flops_per_token */
    double attention_flops_per_token; /* the attention part */
} aik_train_profile;

void aik_trainer_profile(const aik_trainer *tr, aik_train_profile *ret_profile);

/* Learning rate at a step (warm-up + cosine). */
float aik_trainer_lr_at(const aik_train_config *cfg, uint32_t step);

/* Checkpoint: weights/adapters, AdamW moments, step, plus caller state
 * (e.g. the data sampler's RNG) — SHA-256 protected, written atomically. */
int aik_trainer_save_checkpoint(const aik_trainer *tr, const char *path, const void *extra, size_t extra_len,
                                aik_error *err);
/* Restores into a trainer made with the same model and configuration.
 * *ret_extra (malloc'ed, may be NULL) receives the caller state. */
int aik_trainer_load_checkpoint(aik_trainer *tr, const char *path, void **ret_extra, size_t *ret_extra_len,
                                aik_error *err);

/* Full mode: write the trained model as a package (2-D weights in dtype,
 * 1-D in f32), same header and tokenizer as the starting package. */
int aik_trainer_write_package(const aik_trainer *tr, const char *path, aik_dtype dtype, aik_error *err);

/* LoRA mode: the trained pairs, for the ALR1 writer and for tests. */
size_t aik_trainer_lora_count(const aik_trainer *tr);
int aik_trainer_lora_get(const aik_trainer *tr, size_t i, const char **ret_name, uint32_t *ret_rank,
                         float *ret_alpha, const float **ret_A, const float **ret_B, uint64_t *ret_in,
                         uint64_t *ret_out);

/* Read-only view of a trained f32 weight by name (full mode), or NULL. */
const float *aik_trainer_weight(const aik_trainer *tr, const char *name, uint64_t *ret_nelems);

#endif
