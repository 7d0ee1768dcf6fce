/* SPDX-License-Identifier: MIT */
/*
 * Executing a graph on the CPU: activation buffers planned once from the
 * graph's liveness (a handful of buffers reused across nodes, sized for the
 * largest batch), a KV cache per attention slot, matmuls and attention
 * threaded over the pool.
 */
#ifndef AIK_SCHEDULER_CPU_EXEC_H
#define AIK_SCHEDULER_CPU_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include "aik/common.h"
#include "graph/graph.h"
#include "scheduler/threadpool.h"

typedef struct aik_cpu_exec aik_cpu_exec;

typedef struct aik_cpu_exec_config {
    uint32_t max_batch; /* most tokens per run() call (prompt chunk size) */
    uint32_t ctx_len;   /* KV-cache positions; 0 = the model's ctx_len */
    bool profile;       /* accumulate time per op (aik_cpu_exec_op_times) */
    /* Packed copies of the graph's quantized matmul weights
     * (scheduler/packed_weights.h), already filled, outliving the
     * executor; matmuls whose weight has one run on it. NULL: the file
     * layout everywhere. */
    const struct aik_packed_weights *packed;
} aik_cpu_exec_config;

/* Plan buffers and allocate the KV cache. The graph and the pool must outlive
 * the executor (pool may be NULL: single-threaded). */
int aik_cpu_exec_new(const aik_graph *g, const aik_cpu_exec_config *cfg, aik_threadpool *pool,
                     aik_cpu_exec **ret_exec, aik_error *err);

void aik_cpu_exec_free(aik_cpu_exec *e);

/* Run n_tokens tokens at positions n_past .. n_past+n_tokens-1 and append
 * them to the KV cache. Logits are produced for the last n_out tokens
 * (1 for generation, n_tokens to score every position) into *ret_logits
 * (n_out × n_vocab floats, valid until the next call). Fails with -ENOSPC
 * when the context would overflow and -EINVAL on a token id outside the
 * vocabulary; the KV cache is left as it was in both cases. */
int aik_cpu_exec_run(aik_cpu_exec *e, const int32_t *tokens, uint32_t n_tokens, uint32_t n_out,
                     const float **ret_logits, aik_error *err);

/* An unmerged low-rank adapter on one matmul weight: the matmul computes
 * y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ, with A [rank × in] and B [out × rank]
 * row-major (ALR1 layout; scale = alpha / rank). */
typedef struct aik_lora_ref {
    const char *weight;   /* the weight's tensor name */
    uint32_t rank;
    float scale;
    const float *A;
    const float *B;
} aik_lora_ref;

/* Choose the adapters the next runs apply (n = 0: none). No weight is
 * touched and nothing is reloaded: switching adapters between requests
 * costs a table update. The arrays must outlive the runs that use them.
 * -ENOENT names a weight that is not a matmul weight of this graph; -EINVAL
 * a rank of 0. On failure the previous set stays in force. */
int aik_cpu_exec_set_lora(aik_cpu_exec *e, const aik_lora_ref *refs, size_t n, aik_error *err);

/* Positions already in the KV cache. */
uint32_t aik_cpu_exec_n_past(const aik_cpu_exec *e);

/* Context capacity (positions). */
uint32_t aik_cpu_exec_ctx_len(const aik_cpu_exec *e);

/* Forget positions >= n_past (n_past = 0: start a new sequence). */
void aik_cpu_exec_truncate(aik_cpu_exec *e, uint32_t n_past);

/* Bytes allocated for activations and for the KV cache. */
uint64_t aik_cpu_exec_activation_bytes(const aik_cpu_exec *e);
uint64_t aik_cpu_exec_kv_bytes(const aik_cpu_exec *e);

/* Nanoseconds spent per op since creation (profile mode), AIK_OP_COUNT
 * entries; NULL when profiling is off. */
const uint64_t *aik_cpu_exec_op_times(const aik_cpu_exec *e);

#endif
