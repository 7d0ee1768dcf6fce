/* SPDX-License-Identifier: MIT */
/*
 * aik/tensor.h — element types and their storage layout.
 *
 * Quantized blocks are bit-identical to GGUF's (ggml's) Q8_0 and Q4_0 so
 * imported models need no re-quantization:
 *   Q8_0: 32 weights per block: fp16 scale d, then 32 int8 q; w = d * q.
 *   Q4_0: 32 weights per block: fp16 scale d, then 16 bytes; byte j holds
 *         weight j in its low nibble and weight j+16 in its high nibble;
 *         w = d * (nibble - 8).
 * Rows of quantized tensors are whole blocks: ne[0] % 32 == 0.
 */
#ifndef AIK_TENSOR_H
#define AIK_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types. Append-only: values are stored in files; a removed type
 * keeps its number as a comment. */
typedef enum aik_dtype {
    AIK_DTYPE_F32 = 0,
    AIK_DTYPE_F16 = 1,
    AIK_DTYPE_BF16 = 2,
    AIK_DTYPE_Q8_0 = 3,
    AIK_DTYPE_Q4_0 = 4,
    AIK_DTYPE_COUNT /* not a type: number of known types */
} aik_dtype;

#define AIK_QK8_0 32
#define AIK_QK4_0 32
#define AIK_MAX_DIMS 4

/* GGUF-compatible quantized blocks (fp16 scale stored as raw bits). */
typedef struct aik_block_q8_0 {
    uint16_t d;
    int8_t qs[AIK_QK8_0];
} aik_block_q8_0;

typedef struct aik_block_q4_0 {
    uint16_t d;
    uint8_t qs[AIK_QK4_0 / 2];
} aik_block_q4_0;

_Static_assert(sizeof(aik_block_q8_0) == 34, "q8_0 block must be 34 bytes");
_Static_assert(sizeof(aik_block_q4_0) == 18, "q4_0 block must be 18 bytes");

/* True when t is one of the known aik_dtype values. */
AIK_EXPORT bool aik_dtype_valid(uint32_t t);

/* Short lower-case name ("f32", "q8_0"), or "?" for an unknown value. */
AIK_EXPORT const char *aik_dtype_name(aik_dtype t);

/* Parse a name as printed by aik_dtype_name. Returns 0 or -EINVAL. */
AIK_EXPORT int aik_dtype_from_name(const char *name, aik_dtype *ret_type);

/* Number of elements per storage block: 1 for float types, 32 for q8_0/q4_0. */
AIK_EXPORT uint32_t aik_dtype_block_elems(aik_dtype t);

/* Bytes per storage block: 4, 2, 2, 34, 18. */
AIK_EXPORT uint32_t aik_dtype_block_bytes(aik_dtype t);

/* Bytes taken by n elements of type t, written to *ret_bytes. Returns
 * -EINVAL when n is not a whole number of blocks or t is unknown, and
 * -EOVERFLOW when the size does not fit in 64 bits. */
AIK_EXPORT int aik_dtype_bytes(aik_dtype t, uint64_t n, uint64_t *ret_bytes);

#ifdef __cplusplus
}
#endif
#endif /* AIK_TENSOR_H */
