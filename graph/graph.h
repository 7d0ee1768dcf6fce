/* SPDX-License-Identifier: MIT */
/*
 * Host side of the graph IR (abi/aik/graph.h): the node table that the
 * executor, the trainer and the rewriter read. Modules only ever see the
 * builder vtable; everything here is internal.
 */
#ifndef AIK_GRAPH_INTERNAL_H
#define AIK_GRAPH_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "aik/graph.h"
#include "loader/slm.h"

/* Which run-time row count an activation is measured against. */
typedef enum aik_row_base {
    AIK_ROWS_BATCH = 0, /* rows = tokens in the batch */
    AIK_ROWS_OUTPUT = 1, /* rows = tokens whose outputs are wanted */
} aik_row_base;

typedef struct aik_gnode {
    aik_op op;
    aik_node src[3];      /* inputs, -1 when unused */

    /* Activations: n_cols per row; `width` floats per base row (== n_cols
     * except after RESHAPE), so rows = base_rows * width / n_cols. */
    uint32_t n_cols;
    uint32_t width;
    aik_row_base base;

    /* Weights: declared name and shape, bound package tensor. */
    char name[AIK_SLM_NAME_MAX + 1];
    uint32_t n_dims;
    uint64_t shape[AIK_MAX_DIMS];
    aik_dtype dtype;
    const void *data;    /* bound storage (mapping or trainer-owned) */

    /* Op parameters. */
    float eps;           /* RMS_NORM */
    float theta;         /* ROPE */
    float scale;         /* ATTENTION */
    uint32_t n_heads, n_kv_heads, head_dim; /* ROPE (n_heads, head_dim), ATTENTION */
    uint32_t layer;      /* ATTENTION: KV-cache slot */
    aik_rope_mode rope_mode;

    int32_t last_use;    /* index of the last node reading this one (-1: none; logits: n_nodes) */
} aik_gnode;

struct aik_graph {
    aik_gnode *nodes;
    int32_t n_nodes;
    int32_t cap;
    aik_node tokens;     /* the TOKENS node, -1 until asked for */
    aik_node logits;     /* set_logits target */
    int sticky;          /* first error (negative) or 0 */
    aik_error err;       /* its explanation */
    const aik_slm *pkg;  /* package the weights bind to (may be NULL: unbound graph) */
    aik_model_hparams hp;
    aik_layer_hparams *layers; /* copy of hp.layers */
    uint32_t n_kv_layers; /* 1 + highest attention layer slot */
    uint32_t *kv_cols;    /* per KV slot: n_kv_heads * head_dim */
};

/* Fill hyper-parameters from a package header and layer table. The layer
 * array is allocated (hp->layers == *ret_layers); the caller frees it. */
int aik_graph_hparams_from_slm(const aik_slm *pkg, aik_model_hparams *hp, aik_layer_hparams **ret_layers);

/* Build a graph with an architecture module's ops. pkg may be NULL for an
 * unbound graph (weights then must be bound by the caller). On failure err
 * explains (tensor name, expected vs found) and nothing is returned. */
int aik_graph_build(const aik_arch_ops *ops, const aik_model_hparams *hp, const aik_slm *pkg,
                    aik_graph **ret_graph, aik_error *err);

void aik_graph_free(aik_graph *g);

/* The builder vtable the host hands to modules. */
const aik_graph_api *aik_graph_builder_api(void);

/* Rows of node n for a batch of n_batch tokens of which n_out are outputs
 * (0 for weights, which have no rows). */
static inline uint64_t aik_gnode_rows(const aik_gnode *n, uint32_t n_batch, uint32_t n_out)
{
    uint64_t base = n->base == AIK_ROWS_BATCH ? n_batch : n_out;
    return n->n_cols ? base * n->width / n->n_cols : 0;
}

/* True for nodes that hold an activation buffer (not weights). */
static inline bool aik_gnode_is_activation(const aik_gnode *n)
{
    return n->op != AIK_OP_WEIGHT;
}

const char *aik_op_name(aik_op op);

/* Count of nodes per op and total weight bytes, for inspection. */
uint64_t aik_graph_weight_bytes(const aik_graph *g);

#endif
