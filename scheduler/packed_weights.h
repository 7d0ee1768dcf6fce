/* SPDX-License-Identifier: MIT */
/*
 * Packed copies of a graph's quantized matmul weights (kernels/cpu/packed.c
 * has the layout and why), made once per model and shared by every
 * executor over that graph.
 *
 * A set starts empty; aik_packed_weights_fill packs every q8_0/q4_0 matmul
 * weight the active ISA level has a packed kernel for, once, whoever calls
 * it first (sessions may be opened from several threads). The graph's
 * weights must not change afterwards: the copies would go stale.
 */
#ifndef AIK_SCHEDULER_PACKED_WEIGHTS_H
#define AIK_SCHEDULER_PACKED_WEIGHTS_H

#include <stdint.h>

#include "graph/graph.h"
#include "scheduler/threadpool.h"

typedef struct aik_packed_weights aik_packed_weights;

/* An empty set for g (which must outlive it). 0 or -ENOMEM. */
int aik_packed_weights_new(const aik_graph *g, aik_packed_weights **ret);

/* Pack, the first time only (later calls return the first call's result
 * at once). pool (may be NULL) splits the work. 0, or -ENOMEM: then
 * nothing is packed and executors keep the file layout. */
int aik_packed_weights_fill(aik_packed_weights *pw, aik_threadpool *pool);

/* The packed copy of weight node w, or NULL (not packed: use w->data). */
const void *aik_packed_weights_get(const aik_packed_weights *pw, aik_node w);

/* Bytes held by the packed copies. */
uint64_t aik_packed_weights_bytes(const aik_packed_weights *pw);

/* Accepts NULL. */
void aik_packed_weights_free(aik_packed_weights *pw);

#endif /* AIK_SCHEDULER_PACKED_WEIGHTS_H */
