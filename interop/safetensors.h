/* SPDX-License-Identifier: MIT */
/*
 * safetensors (Hugging Face) reader, bounds-checked.
 *
 * Layout: u64 LE header length N, N bytes of UTF-8 JSON, then the data
 * buffer. The JSON is an object mapping tensor names to
 *   { "dtype": "F32"|"F16"|"BF16"|..., "shape": [d0, d1, ...],
 *     "data_offsets": [begin, end] }   (offsets relative to the buffer)
 * plus an optional "__metadata__" object of string values.
 *
 * Validated on open (JSON through jansson with duplicate keys rejected):
 * header length against a limit and the file, the JSON being an object of
 * objects, known dtypes, shapes (non-negative integers, at most 8 dims,
 * element count without overflow), data_offsets (two integers, begin <= end,
 * end - begin == bytes of the shape, inside the buffer), no two tensors
 * overlapping and the tensors covering the buffer with no gaps (as the
 * reference implementation requires). err->where names the field:
 * "header.length", "header" (JSON syntax, with line:column),
 * "tensors['name'].dtype" / ".shape" / ".data_offsets", "__metadata__".
 */
#ifndef AIK_INTEROP_SAFETENSORS_H
#define AIK_INTEROP_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"

#define AIK_ST_MAX_HEADER (100u << 20) /* the reference implementation's limit */
#define AIK_ST_MAX_DIMS 8
#define AIK_ST_MAX_TENSORS 65536

typedef enum aik_st_dtype {
    AIK_ST_BOOL, AIK_ST_U8, AIK_ST_I8, AIK_ST_F8_E5M2, AIK_ST_F8_E4M3, AIK_ST_I16, AIK_ST_U16, AIK_ST_F16,
    AIK_ST_BF16, AIK_ST_I32, AIK_ST_U32, AIK_ST_F32, AIK_ST_I64, AIK_ST_U64, AIK_ST_F64, AIK_ST_DTYPE_COUNT
} aik_st_dtype;

/* "F32" etc.; bytes per element. */
const char *aik_st_dtype_name(aik_st_dtype t);
uint32_t aik_st_dtype_size(aik_st_dtype t);

typedef struct aik_st_tensor {
    const char *name;
    aik_st_dtype dtype;
    uint32_t n_dims;                 /* 0..8 (0 = scalar) */
    uint64_t shape[AIK_ST_MAX_DIMS]; /* row-major as in the file: shape[n_dims-1] is contiguous */
    uint64_t nelems;
    uint64_t offset;                 /* data_offsets[0], relative to the data buffer */
    uint64_t size;                   /* bytes */
    const void *data;
} aik_st_tensor;

typedef struct aik_safetensors aik_safetensors;

/* mmap and validate a file. */
int aik_safetensors_open(const char *path, aik_safetensors **ret_st, aik_error *err);
/* Validate a buffer (not copied; must outlive the handle). */
int aik_safetensors_open_buffer(const void *data, size_t size, aik_safetensors **ret_st, aik_error *err);
void aik_safetensors_close(aik_safetensors *st);

uint32_t aik_safetensors_count(const aik_safetensors *st);
/* Tensors sorted by data offset. */
const aik_st_tensor *aik_safetensors_at(const aik_safetensors *st, uint32_t i);
const aik_st_tensor *aik_safetensors_find(const aik_safetensors *st, const char *name);
/* A __metadata__ value, NULL when absent. */
const char *aik_safetensors_metadata(const aik_safetensors *st, const char *key);

#endif
