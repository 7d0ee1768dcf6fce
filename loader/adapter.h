/* SPDX-License-Identifier: MIT */
/*
 * Adapter deltas for .slm packages: ADP1 (dense f32), ASP1 (sparse f32
 * index/delta pairs) and ALR1 (low-rank f32 factors), and the segment
 * fragment ASG1 (the replacement tensors of a range of layers, in their own
 * dtypes). Byte layout, checksum definitions and the compatibility rules:
 * docs/adapters.md.
 *
 * File layout (all integers little-endian, floats IEEE-754 binary32 LE):
 *
 *   [0, 144)  header
 *      0  magic[4]          "ADP1" | "ASP1" | "ALR1" | "ASG1"
 *      4  u16 version_major (1)     6  u16 version_minor (0)
 *      8  u32 header_size   (144, ASG1 152; a reader accepts larger, zero-filled)
 *     12  u32 kind          (1 dense, 2 sparse, 3 low-rank, 4 segment; must match magic)
 *     16  u32 tensor_count  \
 *     20  u32 flags          |  identity of the base model, copied from its
 *     24  u64 parameter_count|  .slm header
 *     32  [32] layout_checksum
 *     64  [32] tokenizer_sha256 /
 *     96  u32 payload_count (tensor payloads that follow)
 *    100  u32 reserved (0)
 *    104  u64 payload_size  (== file size - header_size)
 *    112  [32] payload_sha256: SHA-256 of bytes [header_size, file size)
 *    ASG1 only:
 *    144  u32 layer_first, 148 u32 layer_end: layers [first, end) are replaced
 *   then payload_count records, back to back:
 *      u16 name_len (1..64), u16 n_dims (1..4), u32 reserved (0),
 *      u64 shape[n_dims] (shape[0] contiguous), name bytes,
 *      ADP1: f32 delta[nelems]
 *      ASP1: u64 count, u64 index[count] (sorted, unique), f32 delta[count]
 *      ALR1: u32 rank, f32 alpha, f32 A[rank * in], f32 B[out * rank]
 *            (n_dims == 2, in = shape[0], out = shape[1];
 *             ΔW[o][i] = alpha / rank * Σ_r B[o][r] · A[r][i])
 *      ASG1: u32 dtype, u32 reserved (0), u64 data_size, data[data_size]
 *            (the tensor in its stored dtype, exactly the .slm bytes)
 */
#ifndef AIK_LOADER_ADAPTER_H
#define AIK_LOADER_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"
#include "loader/slm.h"

#define AIK_ADAPTER_VERSION_MAJOR 1
#define AIK_ADAPTER_VERSION_MINOR 0
#define AIK_ADAPTER_HEADER_SIZE 144
#define AIK_SEGMENT_HEADER_SIZE 152 /* ASG1: adds the layer range */
#define AIK_ADAPTER_MAX_HEADER_SIZE 4096
#define AIK_ADAPTER_MAX_TENSORS AIK_SLM_MAX_TENSORS
#define AIK_ADAPTER_MAX_RANK 4096
/* Largest adapter file a reader accepts (every resource has a limit). */
#define AIK_ADAPTER_MAX_FILE_SIZE (UINT64_C(8) << 30)

/* Kinds (append-only; the value is stored in the header). */
typedef enum aik_adapter_kind {
    AIK_ADAPTER_DENSE = 1,   /* ADP1 */
    AIK_ADAPTER_SPARSE = 2,  /* ASP1 */
    AIK_ADAPTER_LOWRANK = 3, /* ALR1 */
    /* ASG1: a segment fragment. Not a delta: it replaces every tensor of a
     * layer range. aik_adapter_parse/load refuse it so that no delta consumer
     * (merge, eval, the kernel) takes one by mistake; aik_segment_parse/load
     * read it and runtime/segment_apply.h applies it. */
    AIK_ADAPTER_SEGMENT = 4,
} aik_adapter_kind;

/* "ADP1", "ASP1", "ALR1", "ASG1" or "?". */
const char *aik_adapter_kind_magic(aik_adapter_kind k);
/* "dense", "sparse", "lowrank", "segment" or "?". */
const char *aik_adapter_kind_name(aik_adapter_kind k);

/* Identity of the base model an adapter was made for (from its .slm header). */
typedef struct aik_adapter_identity {
    uint32_t tensor_count;
    uint32_t flags;
    uint64_t parameter_count;
    uint8_t layout_checksum[32];
    uint8_t tokenizer_checksum[32];
} aik_adapter_identity;

/* Fill an identity from an opened package. */
void aik_adapter_identity_from_slm(const aik_slm *pkg, aik_adapter_identity *ret_id);

/* One tensor payload, decoded (values copied out of the file, so they are
 * aligned and outlive the input buffer). */
typedef struct aik_adapter_tensor {
    char name[AIK_SLM_NAME_MAX + 1];
    uint32_t n_dims;
    uint64_t shape[AIK_MAX_DIMS]; /* unused dims = 1 */
    uint64_t nelems;              /* product of shape */
    /* ADP1 */
    float *dense;                 /* nelems values */
    /* ASP1 */
    uint64_t count;
    uint64_t *indices;            /* count, into the flattened tensor */
    float *deltas;                /* count */
    /* ALR1 */
    uint32_t rank;
    float alpha;
    uint64_t in, out;             /* shape[0], shape[1] */
    float *A;                     /* rank × in, row-major */
    float *B;                     /* out × rank, row-major */
    /* ASG1 */
    aik_dtype dtype;              /* stored dtype of data */
    uint64_t data_size;           /* == aik_dtype_bytes(dtype, nelems) */
    uint8_t *data;                /* data_size bytes, exactly as in a .slm */
} aik_adapter_tensor;

typedef struct aik_adapter {
    aik_adapter_kind kind;
    uint16_t version_major, version_minor;
    aik_adapter_identity id;
    uint32_t layer_first, layer_end; /* ASG1: layers [first, end) replaced */
    uint8_t payload_sha256[32];
    uint32_t n_tensors;
    aik_adapter_tensor *tensors;
} aik_adapter;

/* Parse an adapter held in memory. Every offset, count and length is checked
 * against the buffer with overflow-safe arithmetic, the payload checksum is
 * verified, names must be printable [A-Za-z0-9._-] and unique. Failures name
 * the field in err->where ("header.payload_count", "tensor[2].shape[1]").
 * Value checks that need the model (finite values, index order and range,
 * shapes) are aik_adapter_check's. Returns 0, -EINVAL, -EBADMSG (checksum),
 * -EPROTONOSUPPORT (major version), -ENOMEM. An ASG1 segment fragment is
 * refused (-EINVAL, "header.magic"): it is not a delta. */
int aik_adapter_parse(const void *data, size_t size, aik_adapter **ret_adapter, aik_error *err);

/* Read a file (at most AIK_ADAPTER_MAX_FILE_SIZE bytes) and parse it. When
 * ret_file_sha256 is given it receives the SHA-256 of the whole file (the
 * adapter digest that eval sidecars and lineage name). */
int aik_adapter_load(const char *path, aik_adapter **ret_adapter, uint8_t ret_file_sha256[32], aik_error *err);

/* The same for ASG1 segment fragments only (any other magic is -EINVAL,
 * "header.magic"). Beyond the shared checks: layer_first < layer_end <=
 * AIK_SLM_MAX_LAYERS; per record a known dtype, whole blocks along shape[0]
 * for block dtypes, and data_size == aik_dtype_bytes(dtype, nelems). */
int aik_segment_parse(const void *data, size_t size, aik_adapter **ret_fragment, aik_error *err);
int aik_segment_load(const char *path, aik_adapter **ret_fragment, uint8_t ret_file_sha256[32], aik_error *err);

/* Read any member of the family (ADP1, ASP1, ALR1 or ASG1), for tools that
 * show or validate a file whatever it is. Callers that apply deltas use
 * aik_adapter_load. */
int aik_adapter_load_any(const char *path, aik_adapter **ret_adapter, uint8_t ret_file_sha256[32], aik_error *err);

/* Free. Accepts NULL. */
void aik_adapter_free(aik_adapter *a);

/* ---- Compatibility with a model (the seed's validate_adapter_against_model) ---- */

/* Every distinct reason an adapter does not fit a model (append-only). */
typedef enum aik_adapter_check_result {
    AIK_ADAPTER_COMPATIBLE = 0,
    AIK_ADAPTER_ERR_TENSOR_COUNT = 1,       /* header.tensor_count != model's */
    AIK_ADAPTER_ERR_FLAGS = 2,              /* header.flags != model's */
    AIK_ADAPTER_ERR_PARAMETER_COUNT = 3,    /* header.parameter_count != model's */
    AIK_ADAPTER_ERR_LAYOUT_CHECKSUM = 4,    /* tensor layout checksum differs */
    AIK_ADAPTER_ERR_TOKENIZER_CHECKSUM = 5, /* tokenizer checksum differs */
    AIK_ADAPTER_ERR_UNKNOWN_TENSOR = 6,     /* payload names a tensor the model lacks */
    AIK_ADAPTER_ERR_SHAPE_MISMATCH = 7,     /* payload shape != model tensor shape */
    AIK_ADAPTER_ERR_NON_FINITE = 8,         /* NaN or infinity in a value */
    AIK_ADAPTER_ERR_INDEX_RANGE = 9,        /* ASP1 index >= tensor elements */
    AIK_ADAPTER_ERR_INDEX_ORDER = 10,       /* ASP1 indices not ascending */
    AIK_ADAPTER_ERR_INDEX_DUPLICATE = 11,   /* ASP1 index repeated */
    AIK_ADAPTER_ERR_RANK = 12,              /* ALR1 rank 0 or > min(in, out), or not 2-D */
    AIK_ADAPTER_ERR_ARGUMENT = 13,          /* NULL adapter or package */
    /* ASG1 segment fragments */
    AIK_ADAPTER_ERR_LAYER_RANGE = 14,       /* header layer_end > the model's n_layers */
    AIK_ADAPTER_ERR_OUTSIDE_RANGE = 15,     /* payload is not a "blk.N." tensor with first <= N < end */
    AIK_ADAPTER_ERR_DTYPE_MISMATCH = 16,    /* payload dtype != model tensor dtype */
    AIK_ADAPTER_ERR_MISSING_TENSOR = 17,    /* a model tensor of the range has no payload */
} aik_adapter_check_result;

/* Stable lower-case name ("tensor_count_mismatch", ...), "?" if unknown. */
const char *aik_adapter_check_name(aik_adapter_check_result r);

/* Check an adapter against a package, in the seed's order (identity fields,
 * then per payload: identity, shape, finite values, ASP1 indices). For an
 * ASG1 fragment: identity fields, the layer range against the model's
 * n_layers, then per payload: exists in the model, belongs to the range,
 * shape, dtype, finite values (every value of f32/f16/bf16 data, every block
 * scale of q8_0/q4_0 data), and last every model tensor of the range has a
 * payload. Returns
 * the first failure (AIK_ADAPTER_COMPATIBLE when it fits) and, on failure,
 * fills err (code -EINVAL, where = the field or tensor, message = which
 * check, starting with the result's name). */
aik_adapter_check_result aik_adapter_check(const aik_adapter *a, const aik_slm *pkg, aik_error *err);

/* Layer of a "blk.N.<rest>" tensor name (N decimal, no leading zeros, < 2^31):
 * 0 and *ret_layer, or -EINVAL for any other name. */
int aik_segment_layer_of(const char *name, uint32_t *ret_layer);

/* Same as a 0 / -EINVAL function. */
int aik_adapter_validate(const aik_adapter *a, const aik_slm *pkg, aik_error *err);

/* ---- Writer (atomic: temporary file, fsync, rename) ---- */

/* Build an adapter in memory, then write it. The builder copies the values. */
int aik_adapter_new(aik_adapter_kind kind, const aik_adapter_identity *id, aik_adapter **ret_adapter);

/* Add a dense delta (nelems = product of shape floats). */
int aik_adapter_add_dense(aik_adapter *a, const char *name, uint32_t n_dims, const uint64_t shape[],
                          const float *delta, aik_error *err);

/* Add count sparse pairs (indices sorted and unique is the caller's duty;
 * aik_adapter_check rejects them otherwise). */
int aik_adapter_add_sparse(aik_adapter *a, const char *name, uint32_t n_dims, const uint64_t shape[],
                           uint64_t count, const uint64_t *indices, const float *deltas, aik_error *err);

/* Add a low-rank pair for a 2-D tensor of shape {in, out}:
 * A is rank × in, B is out × rank. */
int aik_adapter_add_lowrank(aik_adapter *a, const char *name, uint64_t in, uint64_t out, uint32_t rank,
                            float alpha, const float *A, const float *B, aik_error *err);

/* An empty ASG1 fragment for layers [layer_first, layer_end) of the model
 * with identity id (layer_first < layer_end <= AIK_SLM_MAX_LAYERS). */
int aik_segment_new(const aik_adapter_identity *id, uint32_t layer_first, uint32_t layer_end,
                    aik_adapter **ret_fragment);

/* Add one replacement tensor: data holds data_size bytes in dtype, which must
 * be aik_dtype_bytes(dtype, product of shape) (whole blocks along shape[0]).
 * The name is not checked against the range here; aik_adapter_check does. */
int aik_segment_add(aik_adapter *f, const char *name, aik_dtype dtype, uint32_t n_dims, const uint64_t shape[],
                    const void *data, uint64_t data_size, aik_error *err);

/* Serialize (computes payload_sha256 and stores it in a). Caller frees
 * *ret_data. */
int aik_adapter_serialize(aik_adapter *a, uint8_t **ret_data, size_t *ret_len, aik_error *err);

/* Serialize and write atomically with mode 0644. */
int aik_adapter_write(aik_adapter *a, const char *path, aik_error *err);

/* Add the contribution of tensor t to dst (nelems f32 values of the tensor
 * t names, already dequantized). Does not check t against a model; call
 * aik_adapter_check first. A segment payload is not a delta and leaves dst
 * unchanged (apply fragments with runtime/segment_apply.h). */
void aik_adapter_tensor_apply(aik_adapter_kind kind, const aik_adapter_tensor *t, float *dst);

/* Find a payload by tensor name; NULL if absent. */
const aik_adapter_tensor *aik_adapter_find(const aik_adapter *a, const char *name);

#endif
