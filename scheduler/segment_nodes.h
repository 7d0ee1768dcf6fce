/* SPDX-License-Identifier: MIT */
/*
 * The host's graph as backends see it: flattening the node table into
 * aik_backend_node[] (abi/aik/backend.h) and the small shape helpers every
 * executor that hands segments to a backend needs (the Vulkan whole-graph
 * executor, the split executor, the CPU backend's checks).
 */
#ifndef AIK_SCHEDULER_SEGMENT_NODES_H
#define AIK_SCHEDULER_SEGMENT_NODES_H

#include <stdint.h>

#include "aik/backend.h"
#include "aik/common.h"
#include "graph/graph.h"

/* A malloc'd copy of g's nodes as aik_backend_node[g->n_nodes]: op, sources,
 * columns, weight dtype/shape and op parameters. Storage (data) is left
 * empty: each executor binds it to its own buffers. -ENOMEM, -EINVAL (no
 * graph). */
int aik_segment_nodes_from_graph(const aik_graph *g, aik_backend_node **ret_nodes, aik_error *err);

/* Rows of node n in a run of seg->n_batch tokens, seg->n_out of them
 * outputs (0 for nodes without columns: weights). */
uint64_t aik_segment_node_rows(const aik_backend_node *n, uint32_t n_batch, uint32_t n_out);

/* Elements of a weight node (product of its shape), UINT64_MAX on overflow. */
uint64_t aik_segment_weight_elems(const aik_backend_node *w);

/*
 * Check nodes [first, end) of a segment before a backend computes anything:
 * sources are earlier nodes, every node that is executed or read has a
 * buffer, each buffer holds what is read or written (room(t) = bytes
 * available from t's offset, from the backend), operand shapes agree, the
 * KV cache covers ctx_len positions and n_past + n_batch fits. Returns 0,
 * -EINVAL, -ERANGE (buffer too small), -ENOSPC (context), -ENOTSUP
 * (unknown op), with err naming the node. The CPU backend runs it on every
 * execute(); kernels do not bounds-check.
 */
int aik_segment_check(const aik_backend_segment *seg, uint64_t (*room)(const aik_backend_tensor *t),
                      const char *where, aik_error *err);

#endif
