/* SPDX-License-Identifier: MIT */
/*
 * aik/backend.h — the compute-backend vtable (compare ggml-backend).
 *
 * A backend is one device that can hold buffers and execute a *segment*: a
 * contiguous range of nodes of a model graph (aik/graph.h). The scheduler
 * splits a graph into segments per device, moves activations between
 * devices at segment boundaries and calls execute() on each.
 *
 * In-tree backends (the CPU executor, the Vulkan compute backend) fill this
 * table inside libaik. Out-of-tree backends (NPU drivers) are modules of kind
 * AIK_MODULE_BACKEND (aik/module.h): their descriptor's `ops` points to an
 * aik_backend_ops table, ops_size == aik_backend_ops.struct_size. The host
 * refuses a table whose abi_major differs from its own AIK_BACKEND_ABI_MAJOR
 * and reads only the first struct_size bytes: members appended later are
 * treated as absent (NULL) for an older plug-in.
 *
 * Conventions: every function returns 0 or a negative errno and, where an
 * aik_error is passed, explains a failure in it (may be NULL). ret_* outputs
 * are written only on success. Functions of one backend instance are called
 * from one thread at a time (the scheduler serialises them); different
 * instances are independent.
 */
#ifndef AIK_BACKEND_H
#define AIK_BACKEND_H

#include <stdint.h>

#include "aik/common.h"
#include "aik/graph.h"
#include "aik/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of aik_backend_ops and the structs below. Major: incompatible
 * change (the host refuses the plug-in). Minor: members appended. */
#define AIK_BACKEND_ABI_MAJOR 1
#define AIK_BACKEND_ABI_MINOR 0

typedef struct aik_backend aik_backend;               /* opaque: one open device */
typedef struct aik_backend_buffer aik_backend_buffer; /* opaque: device memory */

/* Device kinds (append-only). */
typedef enum aik_backend_kind {
    AIK_BACKEND_CPU = 0,
    AIK_BACKEND_GPU = 1, /* includes software rasterisers such as Mesa lavapipe */
    AIK_BACKEND_NPU = 2,
} aik_backend_kind;

#define AIK_BACKEND_NAME_MAX 128

/*
 * What a device is and can do. Filled by get_info(); the placement step
 * reads it to decide which segments a device may take and what they cost.
 */
typedef struct aik_backend_info {
    uint32_t struct_size;   /* sizeof(aik_backend_info) of the caller; the backend fills at most this */
    uint32_t kind;          /* aik_backend_kind */
    char name[AIK_BACKEND_NAME_MAX]; /* human-readable device name, NUL-terminated */
    char driver[AIK_BACKEND_NAME_MAX]; /* driver / API version, NUL-terminated ("" if unknown) */
    uint64_t memory_bytes;  /* memory usable for buffers (0: shares host memory, unknown limit) */
    /* Supported ops × dtypes: bit d of op_dtypes[op] is set when the device
     * executes op `op` (aik_op) with weights (or, for ops without weights,
     * activations) of dtype d (aik_dtype). Activations are always f32. An op
     * whose entry is 0 must be placed on another device. */
    uint32_t op_dtypes[32];
    /* Throughput for the placement cost model, 0 when unknown. "declared"
     * comes from the driver or a device profile, "measured" from a run of
     * the backend's own micro-benchmark. */
    double declared_gflops;
    double declared_gbps;
    double measured_gflops;
    double measured_gbps;
} aik_backend_info;

/* Where a tensor lives: a buffer and a byte offset into it. */
typedef struct aik_backend_tensor {
    aik_backend_buffer *buffer; /* NULL: none (unused input) */
    uint64_t offset;            /* bytes from the start of buffer */
} aik_backend_tensor;

/*
 * One graph node as a backend sees it: a flat copy of the host's node table
 * entry with its storage resolved. Activations are f32 row-major matrices of
 * rows × n_cols; rows = (row_base == 0 ? n_batch : n_out) * width / n_cols.
 * Semantics of every op are those of the CPU reference (kernels/cpu/ref.c).
 */
typedef struct aik_backend_node {
    uint32_t op;            /* aik_op */
    int32_t src[3];         /* indices into the segment's node array, -1 when unused */
    aik_backend_tensor data; /* output (activation), weight storage (WEIGHT), token ids (TOKENS, int32) */
    uint32_t n_cols;        /* activation columns */
    uint32_t width;         /* floats per base row (== n_cols except after RESHAPE) */
    uint32_t row_base;      /* 0: rows follow n_batch, 1: rows follow n_out */
    uint32_t dtype;         /* WEIGHT: aik_dtype of the storage */
    uint32_t n_dims;        /* WEIGHT: dimensions used in shape */
    uint64_t shape[AIK_MAX_DIMS]; /* WEIGHT: shape[0] contiguous */
    float eps;              /* RMS_NORM */
    float theta;            /* ROPE */
    float scale;            /* ATTENTION */
    uint32_t n_heads, n_kv_heads, head_dim; /* ROPE (n_heads, head_dim), ATTENTION */
    uint32_t layer;         /* ATTENTION: KV-cache slot */
    uint32_t rope_mode;     /* ROPE: aik_rope_mode */
} aik_backend_node;

/*
 * A segment to execute: nodes [first, end) of `nodes`. Nodes before `first`
 * (and weights/tokens anywhere) are inputs whose data is already on this
 * device (the scheduler copied them at the boundary).
 */
typedef struct aik_backend_segment {
    uint32_t struct_size;          /* sizeof(aik_backend_segment) of the host */
    const aik_backend_node *nodes; /* the whole graph's nodes */
    uint32_t n_nodes;
    uint32_t first, end;           /* range to execute, first < end <= n_nodes */
    uint32_t n_batch;              /* tokens in this run */
    uint32_t n_out;                /* tokens whose outputs are wanted (OUTPUT_ROWS) */
    uint32_t n_past;               /* positions already in the KV cache (RoPE, attention) */
    uint32_t ctx_len;              /* KV-cache capacity in positions */
    uint32_t n_kv;                 /* KV slots in k_cache / v_cache */
    /* Per KV slot: ctx_len × (n_kv_heads × head_dim) f32, on this device.
     * ATTENTION appends the batch's k and v at row n_past first. */
    const aik_backend_tensor *k_cache;
    const aik_backend_tensor *v_cache;
} aik_backend_segment;

/*
 * The vtable. Required members must be non-NULL.
 */
typedef struct aik_backend_ops {
    uint32_t struct_size; /* sizeof(aik_backend_ops) the backend was built with */
    uint32_t abi_major;   /* AIK_BACKEND_ABI_MAJOR the backend was built with */
    uint32_t abi_minor;   /* AIK_BACKEND_ABI_MINOR the backend was built with */
    const char *name;     /* backend family: "cpu", "vulkan", "<vendor>-npu" */

    /* Number of devices this backend can open (0 is a valid answer: no
     * hardware); a negative errno when probing itself failed (no driver). */
    int (*device_count)(aik_error *err);

    /* Open device `index`. The backend allocates; close() frees. */
    int (*open)(uint32_t index, aik_backend **ret_backend, aik_error *err);

    /* Release a device and everything allocated on it. Accepts NULL. */
    void (*close)(aik_backend *b);

    /* Describe the device (see aik_backend_info: fill at most
     * info->struct_size bytes, the caller zeroes the rest). */
    int (*get_info)(aik_backend *b, aik_backend_info *info);

    /* Device memory of `bytes` bytes (> 0), aligned for any tensor. */
    int (*buffer_alloc)(aik_backend *b, uint64_t bytes, aik_backend_buffer **ret_buffer, aik_error *err);

    /* Free a buffer. Accepts NULL. The buffer must not be in use by a
     * segment that has not been synchronised. */
    void (*buffer_free)(aik_backend *b, aik_backend_buffer *buf);

    /* Copy bytes between host memory and a buffer. -ERANGE when
     * offset + bytes exceeds the buffer. Complete on return. */
    int (*buffer_upload)(aik_backend *b, aik_backend_buffer *buf, uint64_t offset, const void *src,
                         uint64_t bytes, aik_error *err);
    int (*buffer_download)(aik_backend *b, aik_backend_buffer *buf, uint64_t offset, void *dst,
                           uint64_t bytes, aik_error *err);

    /* Execute a segment. May return before the device has finished; the
     * results are only visible to download after synchronize(). -ENOTSUP
     * when the segment holds an op/dtype the device lacks (op_dtypes). */
    int (*execute)(aik_backend *b, const aik_backend_segment *seg, aik_error *err);

    /* Wait until every submitted segment has finished. (optional) Default:
     * execute() is synchronous, nothing to wait for. */
    int (*synchronize)(aik_backend *b, aik_error *err);

    /* Measure throughput and store it in the info's measured_* fields.
     * (optional) Default: measured_* stay 0 and placement uses declared_*
     * or a device profile. */
    int (*benchmark)(aik_backend *b, aik_error *err);
} aik_backend_ops;

#ifdef __cplusplus
}
#endif
#endif /* AIK_BACKEND_H */
