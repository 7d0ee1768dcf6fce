/* SPDX-License-Identifier: MIT */
/*
 * GGUF (llama.cpp / ggml model files): a bounds-checked reader and a writer.
 *
 * File layout (little-endian; versions 2 and 3 are accepted, 1 is refused
 * because its counts are 32-bit):
 *   u32 magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
 *   kv_count × { string key, u32 type, value },
 *   tensor_count × { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type,
 *                    u64 offset (relative to the data section) },
 *   padding to general.alignment (default 32), then the data section.
 * A string is u64 length + bytes (no NUL). An array value is u32 element
 * type, u64 count, elements; arrays of arrays are refused (llama.cpp refuses
 * them too).
 *
 * The reader validates everything when the file is opened: magic, version,
 * counts against limits and against the bytes left, every length, key and
 * tensor name (non-empty, no NUL, unique), value types, general.alignment
 * (power of two), dims, ggml types, data sizes (overflow-safe), alignment of
 * each tensor offset, every tensor inside the file and no two overlapping.
 * A failure names the field in err->where ("header.version", "kv[3].key",
 * "tensor[7].offset") and the check in err->message. Nothing is printed.
 */
#ifndef AIK_INTEROP_GGUF_H
#define AIK_INTEROP_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aik/common.h"

#define AIK_GGUF_MAGIC 0x46554747u /* "GGUF" read as u32 LE */
#define AIK_GGUF_DEFAULT_ALIGNMENT 32
#define AIK_GGUF_MAX_DIMS 4

/* Limits the reader enforces before trusting a count or a length. */
#define AIK_GGUF_MAX_TENSORS 65536
#define AIK_GGUF_MAX_KV 65536
#define AIK_GGUF_MAX_KEY_LEN 65535
#define AIK_GGUF_MAX_NAME_LEN 63           /* ggml's GGML_MAX_NAME - 1 */
#define AIK_GGUF_MAX_STRING_LEN (64u << 20) /* one string value */
#define AIK_GGUF_MAX_ALIGNMENT (1u << 20)

/* GGUF value types (numbers as in the file). */
typedef enum aik_gguf_type {
    AIK_GGUF_UINT8 = 0,
    AIK_GGUF_INT8 = 1,
    AIK_GGUF_UINT16 = 2,
    AIK_GGUF_INT16 = 3,
    AIK_GGUF_UINT32 = 4,
    AIK_GGUF_INT32 = 5,
    AIK_GGUF_FLOAT32 = 6,
    AIK_GGUF_BOOL = 7,
    AIK_GGUF_STRING = 8,
    AIK_GGUF_ARRAY = 9,
    AIK_GGUF_UINT64 = 10,
    AIK_GGUF_INT64 = 11,
    AIK_GGUF_FLOAT64 = 12,
    AIK_GGUF_TYPE_COUNT
} aik_gguf_type;

/* ggml tensor types used by this code (numbers as in ggml.h). The reader
 * knows the block geometry of every ggml type up to TQ2_0 so that files with
 * types we cannot convert still validate structurally. */
enum {
    AIK_GGML_F32 = 0,
    AIK_GGML_F16 = 1,
    AIK_GGML_Q4_0 = 2,
    AIK_GGML_Q4_1 = 3,
    AIK_GGML_Q5_0 = 6,
    AIK_GGML_Q5_1 = 7,
    AIK_GGML_Q8_0 = 8,
    AIK_GGML_Q8_1 = 9,
    AIK_GGML_Q2_K = 10,
    AIK_GGML_Q3_K = 11,
    AIK_GGML_Q4_K = 12,
    AIK_GGML_Q5_K = 13,
    AIK_GGML_Q6_K = 14,
    AIK_GGML_Q8_K = 15,
    AIK_GGML_BF16 = 30,
    AIK_GGML_TYPE_MAX = 36 /* not a type: one past the highest known number */
};

/* Block geometry of a ggml type: false for unknown/removed numbers. */
bool aik_ggml_type_info(uint32_t type, uint32_t *ret_block_elems, uint32_t *ret_block_bytes);

/* Lower-case name of a ggml type ("q4_K"), "?" when unknown. */
const char *aik_ggml_type_name(uint32_t type);

/* Bytes of a tensor of type with ne[0..n_dims). -EINVAL when ne[0] is not a
 * whole number of blocks or the type is unknown, -EOVERFLOW on overflow. */
int aik_ggml_nbytes(uint32_t type, uint32_t n_dims, const uint64_t ne[], uint64_t *ret_bytes);

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */

typedef struct aik_gguf aik_gguf;

/* One tensor of an opened file. */
typedef struct aik_gguf_tensor {
    const char *name;   /* NUL-terminated copy */
    uint32_t type;      /* ggml type */
    uint32_t n_dims;    /* 1..4 */
    uint64_t ne[AIK_GGUF_MAX_DIMS]; /* ne[0] contiguous; unused dims = 1 */
    uint64_t offset;    /* relative to the data section */
    uint64_t size;      /* bytes */
    const void *data;   /* inside the mapping / buffer */
} aik_gguf_tensor;

/* mmap a file read-only and validate it. */
int aik_gguf_open(const char *path, aik_gguf **ret_gguf, aik_error *err);

/* Validate a file held in memory; the buffer is not copied and must outlive
 * the handle (tests, fuzzing). */
int aik_gguf_open_buffer(const void *data, size_t size, aik_gguf **ret_gguf, aik_error *err);

/* Unmap and free. Accepts NULL. */
void aik_gguf_close(aik_gguf *g);

uint32_t aik_gguf_version(const aik_gguf *g);
uint32_t aik_gguf_alignment(const aik_gguf *g);
uint64_t aik_gguf_data_offset(const aik_gguf *g);
uint32_t aik_gguf_kv_count(const aik_gguf *g);
uint32_t aik_gguf_tensor_count(const aik_gguf *g);

/* Key-value pairs by index (file order). */
const char *aik_gguf_kv_key(const aik_gguf *g, uint32_t i);
aik_gguf_type aik_gguf_kv_type(const aik_gguf *g, uint32_t i);

/* Index of a key, or -ENOENT. */
int aik_gguf_find_kv(const aik_gguf *g, const char *key);

/* Typed access by key. Each returns 0, -ENOENT when the key is absent (err
 * where = key, message "missing"), -EBADMSG when the stored type cannot be
 * represented as asked (err names stored type), -ERANGE when the value does
 * not fit. Integers accept any integer type whose value fits. */
int aik_gguf_get_u32(const aik_gguf *g, const char *key, uint32_t *ret, aik_error *err);
int aik_gguf_get_i64(const aik_gguf *g, const char *key, int64_t *ret, aik_error *err);
int aik_gguf_get_f32(const aik_gguf *g, const char *key, float *ret, aik_error *err); /* f32 or f64 */
int aik_gguf_get_bool(const aik_gguf *g, const char *key, bool *ret, aik_error *err);
/* A string value: pointer into the file (not NUL-terminated) and length. */
int aik_gguf_get_str(const aik_gguf *g, const char *key, const char **ret, size_t *ret_len, aik_error *err);

/* An array: element type and count; returns the kv index (>= 0) for the
 * element accessors below. */
int aik_gguf_get_arr(const aik_gguf *g, const char *key, aik_gguf_type *ret_type, uint64_t *ret_n, aik_error *err);
/* Element i of array kv `kv`: -EINVAL for a bad index or type mismatch. */
int aik_gguf_arr_str(const aik_gguf *g, int kv, uint64_t i, const char **ret, size_t *ret_len);
int aik_gguf_arr_int(const aik_gguf *g, int kv, uint64_t i, int64_t *ret);  /* integer/bool elements; -ERANGE for u64 > INT64_MAX */
int aik_gguf_arr_f64(const aik_gguf *g, int kv, uint64_t i, double *ret);   /* float or integer elements */

/* A per-layer u32: either a scalar (copied to all n entries) or an integer
 * array of exactly n entries (llama.cpp's per-layer head counts / ffn
 * widths). */
int aik_gguf_get_u32_per_layer(const aik_gguf *g, const char *key, uint32_t n, uint32_t *ret, aik_error *err);

const aik_gguf_tensor *aik_gguf_tensor_at(const aik_gguf *g, uint32_t i);
const aik_gguf_tensor *aik_gguf_find_tensor(const aik_gguf *g, const char *name);

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */

typedef struct aik_gguf_writer aik_gguf_writer;

/* A writer producing version 3 files with the given alignment (power of two,
 * 0 = default 32; a non-default one is also written as general.alignment). */
int aik_gguf_writer_new(uint32_t alignment, aik_gguf_writer **ret_w);
void aik_gguf_writer_free(aik_gguf_writer *w);

/* Scalar and string values. Keys must be unique and non-empty. */
int aik_gguf_writer_add_u32(aik_gguf_writer *w, const char *key, uint32_t v, aik_error *err);
int aik_gguf_writer_add_i32(aik_gguf_writer *w, const char *key, int32_t v, aik_error *err);
int aik_gguf_writer_add_f32(aik_gguf_writer *w, const char *key, float v, aik_error *err);
int aik_gguf_writer_add_bool(aik_gguf_writer *w, const char *key, bool v, aik_error *err);
int aik_gguf_writer_add_str(aik_gguf_writer *w, const char *key, const char *s, size_t len, aik_error *err);
/* An array of n fixed-size elements of type (not STRING/ARRAY), data packed
 * little-endian as in the file. */
int aik_gguf_writer_add_arr(aik_gguf_writer *w, const char *key, aik_gguf_type type, const void *data,
                            uint64_t n, aik_error *err);
/* An array of n strings; lens may be NULL (then strlen). */
int aik_gguf_writer_add_arr_str(aik_gguf_writer *w, const char *key, const char *const *strs,
                                const size_t *lens, uint64_t n, aik_error *err);

/* A tensor: data (nbytes == aik_ggml_nbytes) is borrowed, not copied, and
 * must stay valid until write_file/write_buffer returns. */
int aik_gguf_writer_add_tensor(aik_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                               const uint64_t ne[], const void *data, uint64_t nbytes, aik_error *err);

/* Write everything atomically (temp file + fsync + rename). */
int aik_gguf_writer_write_file(aik_gguf_writer *w, const char *path, aik_error *err);
/* Write everything to a malloc'ed buffer (tests). */
int aik_gguf_writer_write_buffer(aik_gguf_writer *w, void **ret_data, size_t *ret_len, aik_error *err);

#endif
