/* SPDX-License-Identifier: MIT */
/*
 * aik/graph.h — the graph IR that architecture modules build.
 *
 * An architecture module never computes anything. Given a package's
 * hyper-parameters (per layer, so pruned models just work) it *describes* the
 * model as a graph of operations over named weights, through the builder
 * vtable below. The host owns the graph; the same graph is then consumed by
 * the executor (inference), the trainer (backward pass) and the rewriter
 * (evolution). Modules reach the builder only through the function pointers
 * they are handed, so a module .so has no link-time dependency on libaik.
 *
 * Tensors in the graph:
 *   - weights: named tensors of the package, shape[0] contiguous (GGUF
 *     convention). A linear layer's weight has shape [in, out].
 *   - activations: f32 matrices of n_rows × n_cols, row-major. The number of
 *     rows is the number of tokens in the batch being executed and is decided
 *     at run time (the same graph serves prompt batches and single-token
 *     decode); n_cols is fixed when the node is built.
 *
 * Errors: builder functions return a node id >= 0, or a negative errno. The
 * first error is sticky: every later call on the same graph returns it, so a
 * module can build the whole graph and check only build()'s result. The host
 * keeps the explanation (which tensor, which expectation).
 */
#ifndef AIK_GRAPH_H
#define AIK_GRAPH_H

#include <stdint.h>

#include "aik/common.h"
#include "aik/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the builder vtable and hyper-parameter structs. */
#define AIK_GRAPH_ABI_MAJOR 1
#define AIK_GRAPH_ABI_MINOR 0

typedef struct aik_graph aik_graph; /* opaque; owned by the host */
typedef int32_t aik_node;           /* node id (>= 0) or negative errno */

/* Operations (append-only: the trainer and serialized plans refer to them). */
typedef enum aik_op {
    AIK_OP_NONE = 0,
    AIK_OP_TOKENS = 1,      /* input: the batch's token ids (n_cols = 1) */
    AIK_OP_WEIGHT = 2,      /* a named package tensor (not an activation) */
    AIK_OP_GET_ROWS = 3,    /* embedding lookup: rows of a [cols, vocab] weight by token id */
    AIK_OP_MATMUL = 4,      /* x[rows, in] · W[in, out] -> [rows, out], any weight dtype */
    AIK_OP_ADD = 5,         /* a + b; b is an activation of the same shape or a 1-D weight broadcast over rows */
    AIK_OP_MUL = 6,         /* a * b, same broadcasting as ADD */
    AIK_OP_RMS_NORM = 7,    /* x / rms(x) * w, per row */
    AIK_OP_ROPE = 8,        /* rotary position embedding of n_heads × head_dim columns, by the row's position */
    AIK_OP_ATTENTION = 9,   /* causal grouped-query attention over the layer's KV cache (appends k, v) */
    AIK_OP_SILU = 10,       /* x * sigmoid(x) */
    AIK_OP_SWIGLU = 11,     /* silu(gate) * up */
    AIK_OP_SOFTMAX = 12,    /* softmax of each row */
    AIK_OP_RESHAPE = 13,    /* same data viewed with another n_cols (rows scale accordingly) */
    AIK_OP_OUTPUT_ROWS = 14, /* keep only the rows whose outputs are wanted (run-time choice: last token for decode, all for scoring/training) */
    AIK_OP_COUNT
} aik_op;

/* RoPE variants. */
typedef enum aik_rope_mode {
    AIK_ROPE_NORMAL = 0, /* rotate adjacent pairs (2i, 2i+1): GGUF llama */
    AIK_ROPE_NEOX = 1,   /* rotate (i, i + head_dim/2): Hugging Face, qwen2 */
} aik_rope_mode;

/* weight() flags. */
enum {
    AIK_WEIGHT_OPTIONAL = 1u << 0, /* absent tensor -> returns -ENOENT without making the graph fail */
};

/* Per-layer dimensions (from the package's layer table). */
typedef struct aik_layer_hparams {
    uint32_t n_heads;
    uint32_t n_kv_heads;
    uint32_t ffn_dim;
} aik_layer_hparams;

/* A package's hyper-parameters as handed to an architecture module. */
typedef struct aik_model_hparams {
    uint32_t struct_size;  /* sizeof(aik_model_hparams) of the host */
    uint32_t model_type;   /* .slm model_type */
    uint32_t flags;        /* .slm header flags (AIK_SLM_FLAG_*: tied embeddings, qkv bias, NeoX rope) */
    uint32_t n_vocab;
    uint32_t dim;
    uint32_t n_layers;
    uint32_t head_dim;
    uint32_t ctx_len;
    float rope_theta;
    float norm_eps;
    const aik_layer_hparams *layers; /* n_layers entries */
} aik_model_hparams;

/* Flags mirrored from the package format so modules need no loader header. */
enum {
    AIK_MODEL_TIED_EMBEDDINGS = 1u << 0,
    AIK_MODEL_QKV_BIAS = 1u << 1,
    AIK_MODEL_ROPE_NEOX = 1u << 2,
};

/*
 * The builder vtable handed to a module's build(). Every function takes the
 * graph first. New members are only ever appended; a module must check
 * struct_size before using a member added after AIK_GRAPH_ABI_MINOR 0.
 */
typedef struct aik_graph_api {
    uint32_t struct_size; /* sizeof(aik_graph_api) of the host */
    uint32_t abi_major;   /* AIK_GRAPH_ABI_MAJOR of the host */
    uint32_t abi_minor;

    /* The batch's token ids. */
    aik_node (*tokens)(aik_graph *g);

    /* Declare a package tensor the model needs, with the shape it must have
     * (n_dims entries, shape[0] contiguous). The host checks that the tensor
     * exists with exactly this shape and a dtype the op consuming it supports,
     * and refuses the package otherwise, naming the tensor and the
     * expectation. flags: AIK_WEIGHT_OPTIONAL. */
    aik_node (*weight)(aik_graph *g, const char *name, uint32_t n_dims, const uint64_t *shape,
                       uint32_t flags);

    /* Embedding lookup: table is a weight of shape [n_cols, n_rows_table]. */
    aik_node (*get_rows)(aik_graph *g, aik_node table, aik_node ids);

    /* x[rows, in] times weight w of shape [in, out]. */
    aik_node (*matmul)(aik_graph *g, aik_node x, aik_node w);

    aik_node (*add)(aik_graph *g, aik_node a, aik_node b);
    aik_node (*mul)(aik_graph *g, aik_node a, aik_node b);

    /* Row-wise RMS normalisation with a 1-D weight of n_cols entries. */
    aik_node (*rms_norm)(aik_graph *g, aik_node x, aik_node w, float eps);

    /* Rotary embedding of x (n_cols == n_heads * head_dim). */
    aik_node (*rope)(aik_graph *g, aik_node x, uint32_t n_heads, uint32_t head_dim, float theta,
                     aik_rope_mode mode);

    /* Causal attention of layer `layer`: q has n_heads*head_dim columns, k and
     * v n_kv_heads*head_dim; query head h uses kv head h / (n_heads /
     * n_kv_heads). k and v of this batch are appended to the layer's cache
     * first. scale is usually 1/sqrt(head_dim). */
    aik_node (*attention)(aik_graph *g, aik_node q, aik_node k, aik_node v, uint32_t layer,
                          uint32_t n_heads, uint32_t n_kv_heads, uint32_t head_dim, float scale);

    aik_node (*silu)(aik_graph *g, aik_node x);
    aik_node (*swiglu)(aik_graph *g, aik_node gate, aik_node up);
    aik_node (*softmax)(aik_graph *g, aik_node x);
    aik_node (*reshape)(aik_graph *g, aik_node x, uint32_t n_cols);

    /* Keep only the rows whose result is wanted (decided at run time). */
    aik_node (*output_rows)(aik_graph *g, aik_node x);

    /* Mark the logits node ([rows, n_vocab]). Exactly one per graph. */
    int (*set_logits)(aik_graph *g, aik_node logits);

    /* Record a module-side failure with an explanation (sticky, like the
     * host's own). Returns code. */
    int (*fail)(aik_graph *g, int code, const char *message);
} aik_graph_api;

/*
 * Entry points of an architecture module (the `ops` of its module
 * descriptor, kind AIK_MODULE_ARCHITECTURE in aik/module.h).
 */
typedef struct aik_arch_ops {
    uint32_t struct_size; /* sizeof(aik_arch_ops) the module was built with */
    uint32_t graph_abi_major; /* AIK_GRAPH_ABI_MAJOR the module was built with */
    uint32_t model_type;  /* the .slm model_type this module builds */

    /* Build the model's graph. Returns 0 or a negative errno (usually the
     * sticky error of the builder). Must not keep pointers to hp or g. */
    int (*build)(const aik_graph_api *api, aik_graph *g, const aik_model_hparams *hp);
} aik_arch_ops;

#ifdef __cplusplus
}
#endif
#endif /* AIK_GRAPH_H */
