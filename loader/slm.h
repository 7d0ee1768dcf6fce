/* SPDX-License-Identifier: MIT */
/*
 * The .slm package: one file holding a model's architecture dimensions
 * (global and per layer), its tokenizer blob and its named tensors.
 * Byte layout, checksum definitions and versioning rules: docs/slm-format.md.
 *
 * File layout (all integers little-endian, offsets absolute from byte 0).
 * The header is first; the other regions may come in any order but must lie
 * inside the file and must not overlap. The writer emits them in this order
 * (the directory last, so tensors can be streamed):
 *
 *   [0, header_size)      fixed header (struct below, >= AIK_SLM_HEADER_SIZE)
 *   layer_table_offset    n_layers × 16-byte per-layer records
 *   tokenizer_offset      tokenizer blob (format owned by runtime/tokenizer)
 *   data_offset           tensor data (64-byte aligned), each tensor 64-byte
 *                         aligned; entry offsets are relative to data_offset
 *   tensor_dir_offset     tensor_count × 128-byte directory entries
 *
 * Checksums:
 *   tokenizer_sha256: SHA-256 of the tokenizer blob bytes.
 *   layout_checksum:  SHA-256 over, for each directory entry in order:
 *                     name bytes (name_len of them), then name_len (u16 LE),
 *                     dtype (u16 LE), n_dims (u32 LE), shape[0..3] (u64 LE
 *                     each, unused dims = 1). Offsets/sizes are not included:
 *                     two packages with the same layout accept the same
 *                     adapters.
 *   model_checksum:   SHA-256 of the whole file [0, file_size) with the 32
 *                     bytes of the model_checksum field replaced by zeros.
 */
#ifndef AIK_LOADER_SLM_H
#define AIK_LOADER_SLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"
#include "aik/tensor.h"

#define AIK_SLM_MAGIC "AIKSLM\x00\x01" /* 8 bytes */
#define AIK_SLM_VERSION_MAJOR 1
#define AIK_SLM_VERSION_MINOR 0
#define AIK_SLM_HEADER_SIZE 256
#define AIK_SLM_LAYER_RECORD_SIZE 16
#define AIK_SLM_DIR_ENTRY_SIZE 128
#define AIK_SLM_NAME_MAX 64 /* name bytes in a directory entry (NUL padded) */
#define AIK_SLM_ALIGN 64    /* alignment of data_offset and of every tensor */

/* Limits a reader enforces before trusting counts (every user-controllable
 * resource has a limit). */
#define AIK_SLM_MAX_LAYERS 1024
#define AIK_SLM_MAX_TENSORS 65536
#define AIK_SLM_MAX_VOCAB (1u << 24)
#define AIK_SLM_MAX_DIM (1u << 20)
#define AIK_SLM_MAX_CTX (1u << 24)

/* model_type values (append-only). */
enum {
    AIK_SLM_MODEL_LLAMA = 1, /* llama family: RMSNorm, RoPE, GQA, SwiGLU */
};

/* header.flags bits. Unknown bits in a file of the same major version are an
 * error (they would change how the model computes). */
enum {
    AIK_SLM_FLAG_TIED_EMBEDDINGS = 1u << 0, /* output head reuses token_embd */
    AIK_SLM_FLAG_QKV_BIAS = 1u << 1,        /* attn q/k/v have bias vectors */
    AIK_SLM_FLAG_ROPE_NEOX = 1u << 2,       /* rotate halves (NeoX/HF) instead of adjacent pairs */
    AIK_SLM_FLAGS_KNOWN = 0x7u,
};

/* Per-layer dimensions: pruned models have different shapes per layer. */
typedef struct aik_slm_layer {
    uint32_t n_heads;    /* query heads kept in this layer (>= 1) */
    uint32_t n_kv_heads; /* key/value heads (>= 1, divides n_heads) */
    uint32_t ffn_dim;    /* FFN hidden width kept (>= 1) */
    uint32_t reserved;   /* 0 */
} aik_slm_layer;

/* Decoded fixed header; field order == byte order in the file. */
typedef struct aik_slm_header {
    uint8_t magic[8];          /*   0 */
    uint16_t version_major;    /*   8 */
    uint16_t version_minor;    /*  10 */
    uint32_t header_size;      /*  12: bytes of fixed header, >= 256 */
    uint32_t model_type;       /*  16 */
    uint32_t flags;            /*  20 */
    uint32_t n_vocab;          /*  24 */
    uint32_t dim;              /*  28: model width */
    uint32_t n_layers;         /*  32 */
    uint32_t n_heads;          /*  36: maximum over layers (as trained) */
    uint32_t n_kv_heads;       /*  40 */
    uint32_t head_dim;         /*  44 */
    uint32_t ffn_dim;          /*  48: maximum over layers */
    uint32_t ctx_len;          /*  52 */
    float rope_theta;          /*  56 */
    float norm_eps;            /*  60 */
    uint64_t layer_table_offset; /* 64 */
    uint64_t tokenizer_offset; /*  72 */
    uint64_t tokenizer_size;   /*  80 */
    uint8_t tokenizer_sha256[32]; /* 88 */
    uint64_t tensor_dir_offset; /* 120 */
    uint32_t tensor_count;     /* 128 */
    uint32_t reserved0;        /* 132: 0 */
    uint64_t data_offset;      /* 136 */
    uint64_t data_size;        /* 144 */
    uint8_t layout_checksum[32]; /* 152 */
    uint8_t model_checksum[32];  /* 184 */
    uint64_t file_size;        /* 216 */
    uint64_t parameter_count;  /* 224: sum of element counts of all tensors */
    /* 232..256 reserved, zero */
} aik_slm_header;

#define AIK_SLM_MODEL_CHECKSUM_OFFSET 184

/* Decoded directory entry. */
typedef struct aik_slm_tensor {
    char name[AIK_SLM_NAME_MAX + 1]; /* NUL-terminated */
    aik_dtype dtype;
    uint32_t n_dims;               /* 1..4 */
    uint64_t shape[AIK_MAX_DIMS];  /* shape[0] is the contiguous (row) dim; unused = 1 */
    uint64_t offset;               /* relative to data_offset, multiple of 64 */
    uint64_t size;                 /* bytes == aik_dtype_bytes(dtype, n_elems) */
    uint32_t block_size;           /* == aik_dtype_block_elems(dtype) */
    const void *data;              /* points into the mapping (reader only) */
} aik_slm_tensor;

/* An opened package: read-only mapping plus decoded header and directory. */
typedef struct aik_slm {
    aik_slm_header hdr;
    aik_slm_layer *layers;     /* hdr.n_layers entries */
    aik_slm_tensor *tensors;   /* hdr.tensor_count entries, directory order */
    const uint8_t *tokenizer;  /* hdr.tokenizer_size bytes inside the mapping */
    const uint8_t *map;        /* whole file */
    uint64_t map_size;
    bool owns_map;             /* munmap on close (false for aik_slm_open_buffer) */
} aik_slm;

/* Structural validation is always done on open: magic, versions, every
 * offset/length/count against the file size with overflow-safe arithmetic,
 * alignment, names (printable [A-Za-z0-9._-], unique), dtypes, shapes vs byte
 * sizes, tensors inside the data region and not overlapping, per-layer dims
 * consistent with the global ones. A failure names the field
 * ("header.tensor_dir_offset", "tensor[3].shape") in err->where.
 *
 * Checksums are verified only when AIK_SLM_VERIFY_CHECKSUMS is given (it
 * reads the whole file; the loader does it once from the verified fd). */
enum {
    AIK_SLM_VERIFY_CHECKSUMS = 1u << 0,
};

/* Map and validate a package from an open fd (the fd may be closed after). */
int aik_slm_open_fd(int fd, unsigned flags, aik_slm **ret_pkg, aik_error *err);

/* Open by path (O_RDONLY|O_CLOEXEC) and call aik_slm_open_fd. */
int aik_slm_open(const char *path, unsigned flags, aik_slm **ret_pkg, aik_error *err);

/* Validate a package held in memory (not copied; must outlive the handle).
 * Used by the fuzz target and tests. Tensor data pointers are 64-byte
 * aligned only when data is (mappings are; malloc'ed buffers may not be). */
int aik_slm_open_buffer(const void *data, size_t size, unsigned flags, aik_slm **ret_pkg, aik_error *err);

/* Unmap and free. Accepts NULL. */
void aik_slm_close(aik_slm *pkg);

/* Find a tensor by name; NULL if absent. */
const aik_slm_tensor *aik_slm_find(const aik_slm *pkg, const char *name);

/* Number of elements of a tensor (product of its shape). */
uint64_t aik_slm_tensor_nelems(const aik_slm_tensor *t);

/* Recompute all three checksums and compare. Returns 0 when all match, else
 * -EBADMSG with err naming the first mismatch. ret_* may be NULL; when given
 * they receive the recomputed values whether or not they match. */
int aik_slm_verify_checksums(const aik_slm *pkg, uint8_t ret_tokenizer[32],
                             uint8_t ret_layout[32], uint8_t ret_model[32], aik_error *err);

/* Layout checksum of a directory (see definition above). */
int aik_slm_layout_checksum(const aik_slm_tensor *tensors, uint32_t count, uint8_t out[32]);

/* ---- Writer: streaming and atomic (temp file, fsync, rename). ----
 *
 *   aik_slm_writer *w;
 *   aik_slm_writer_begin(path, &hdr_template, layers, tokenizer, tok_len, &w, err);
 *   for each tensor: aik_slm_writer_add_tensor(w, name, dtype, n_dims, shape, data, err);
 *   aik_slm_writer_finish(w, err);    // or aik_slm_writer_abort(w)
 *
 * The template supplies model_type, flags and dimensions; the writer fills
 * magic, versions, offsets, sizes, counts, checksums and parameter_count.
 * The directory is written after the data, so tensors stream in one at a time
 * and never need to be in memory together. */
typedef struct aik_slm_writer aik_slm_writer;

int aik_slm_writer_begin(const char *path, const aik_slm_header *tmpl, const aik_slm_layer *layers,
                         const void *tokenizer, size_t tokenizer_len, aik_slm_writer **ret_w,
                         aik_error *err);

/* Append one tensor. shape[0] is the contiguous dimension. data holds exactly
 * aik_dtype_bytes(dtype, nelems) bytes, already in the stored dtype. */
int aik_slm_writer_add_tensor(aik_slm_writer *w, const char *name, aik_dtype dtype, uint32_t n_dims,
                              const uint64_t shape[], const void *data, aik_error *err);

/* Same, with the caller's byte count of data: a data_len that differs from
 * aik_dtype_bytes(dtype, nelems) is an error ("tensor[i].size"), so callers
 * that size their buffer independently of the shape are caught here. */
int aik_slm_writer_add_tensor_sized(aik_slm_writer *w, const char *name, aik_dtype dtype, uint32_t n_dims,
                                    const uint64_t shape[], const void *data, uint64_t data_len,
                                    aik_error *err);

/* Any failed add_tensor leaves the writer failed: later calls return the
 * same error, finish() returns it and removes the temporary file. */

/* Write the directory, patch the header, compute checksums, fsync, rename.
 * Frees w whatever the outcome. */
int aik_slm_writer_finish(aik_slm_writer *w, aik_error *err);

/* Discard the temporary file and free w. Accepts NULL. */
void aik_slm_writer_abort(aik_slm_writer *w);

#endif
