/* SPDX-License-Identifier: MIT */
/*
 * The trainer's view of a graph: a forward pass that keeps every activation
 * (the "tape") and the backward of every op, over the very graph the executor
 * runs — there is no second definition of the model.
 *
 * One sequence per pass: T tokens at positions 0..T-1, logits for all T.
 * Weights are read from the graph's bound package data (any dtype, frozen)
 * unless a parameter is bound: then the op reads an f32 master copy and the
 * backward accumulates its gradient. A LoRA pair may be attached to any
 * matmul weight: y = x·Wᵀ + scale · (x·Aᵀ)·Bᵀ with A [rank × in], B [out × rank].
 */
#ifndef AIK_TRAIN_AUTOGRAD_H
#define AIK_TRAIN_AUTOGRAD_H

#include <stdint.h>

#include "aik/common.h"
#include "graph/graph.h"
#include "scheduler/threadpool.h"

typedef struct aik_tape aik_tape;

/* Allocate activations and gradients for one sequence of up to max_tokens. */
int aik_tape_new(const aik_graph *g, uint32_t max_tokens, aik_threadpool *pool, aik_tape **ret_tape, aik_error *err);

/* Same, for passes of up to max_seqs sequences at once (batched: every
 * matmul then sees max_seqs × max_tokens rows). */
int aik_tape_new_batch(const aik_graph *g, uint32_t max_tokens, uint32_t max_seqs, aik_threadpool *pool,
                       aik_tape **ret_tape, aik_error *err);
void aik_tape_free(aik_tape *t);

/* Make weight node w trainable: value and grad hold as many f32 as the
 * weight has elements, in the package's layout. The tape does not own them. */
int aik_tape_bind_param(aik_tape *t, aik_node w, float *value, float *grad, aik_error *err);

/* Attach a LoRA pair to matmul weight w (A: rank × in, B: out × rank, and
 * their gradients; the tape does not own them). The base weight stays frozen
 * unless it is also bound as a parameter. */
int aik_tape_bind_lora(aik_tape *t, aik_node w, uint32_t rank, float scale, float *A, float *B, float *dA, float *dB,
                       aik_error *err);

/* Forward pass of one sequence. *ret_logits: T × n_vocab, valid until the
 * next forward. */
int aik_tape_forward(aik_tape *t, const int32_t *tokens, uint32_t T, const float **ret_logits, aik_error *err);

/* Forward pass of n_seq independent sequences of T tokens each, laid out one
 * after the other in tokens (n_seq × T); each starts at position 0 and
 * attends only within itself. *ret_logits: (n_seq·T) × n_vocab. */
int aik_tape_forward_batch(aik_tape *t, const int32_t *tokens, uint32_t T, uint32_t n_seq,
                           const float **ret_logits, aik_error *err);

/* Backward pass from d(loss)/d(logits) (rows × n_vocab) of the last forward:
 * accumulates into every bound gradient. */
int aik_tape_backward(aik_tape *t, const float *dlogits, aik_error *err);

/* Cross-entropy of logits (T × V) against targets (T entries; a target < 0 is
 * not scored). Returns the summed loss (nats) and, when dlogits is not NULL,
 * writes scale · d(sum loss)/d(logits) into it. *ret_count: scored positions. */
double aik_cross_entropy(const float *logits, const int32_t *targets, uint32_t T, uint32_t V, float scale,
                         float *dlogits, uint32_t *ret_count);

/* Distillation: temperature-softened KL(teacher ‖ student) · temp², summed
 * over T rows. dlogits receives scale · its gradient w.r.t. the student's
 * logits, ADDED to what is there (so it mixes with cross-entropy). */
/* Wall-clock seconds the passes of this tape spent, by kind of work, since
 * it was made (the calling thread's clock: pool tasks run inside these
 * spans). For benchmarks: what fraction of a step the mat-muls take. */
typedef struct aik_tape_times {
    double matmul;    /* weight mat-muls (with their LoRA pairs), forward and backward */
    double attention; /* attention forward and backward (strided GEMMs, causal softmax) */
    double other;     /* every other op forward and backward, and clearing activation gradients */
} aik_tape_times;

void aik_tape_times_get(const aik_tape *t, aik_tape_times *ret_times);

double aik_distill_kl(const float *student, const float *teacher, uint32_t T, uint32_t V, float temp, float scale,
                      float *dlogits);

#endif
