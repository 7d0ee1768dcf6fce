/* SPDX-License-Identifier: MIT */
/*
 * .slm package reader and writer. Byte layout: docs/slm-format.md.
 *
 * The reader never casts the mapping to a struct: every field is decoded
 * explicitly little-endian from bytes, and every offset, length and count is
 * checked against the file size with overflow-safe arithmetic before it is
 * used. A rejection names the field (err->where) and the check (err->message).
 */
#include "loader/slm.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/checked.h"
#include "common/digest.h"
#include "common/error.h"

/* Byte offsets of header fields (see aik_slm_header in slm.h). */
enum {
    H_MAGIC = 0,
    H_VERSION_MAJOR = 8,
    H_VERSION_MINOR = 10,
    H_HEADER_SIZE = 12,
    H_MODEL_TYPE = 16,
    H_FLAGS = 20,
    H_N_VOCAB = 24,
    H_DIM = 28,
    H_N_LAYERS = 32,
    H_N_HEADS = 36,
    H_N_KV_HEADS = 40,
    H_HEAD_DIM = 44,
    H_FFN_DIM = 48,
    H_CTX_LEN = 52,
    H_ROPE_THETA = 56,
    H_NORM_EPS = 60,
    H_LAYER_TABLE_OFFSET = 64,
    H_TOKENIZER_OFFSET = 72,
    H_TOKENIZER_SIZE = 80,
    H_TOKENIZER_SHA256 = 88,
    H_TENSOR_DIR_OFFSET = 120,
    H_TENSOR_COUNT = 128,
    H_RESERVED0 = 132,
    H_DATA_OFFSET = 136,
    H_DATA_SIZE = 144,
    H_LAYOUT_CHECKSUM = 152,
    H_MODEL_CHECKSUM = 184,
    H_FILE_SIZE = 216,
    H_PARAMETER_COUNT = 224,
    H_RESERVED = 232, /* ..256 */
};

_Static_assert(H_MODEL_CHECKSUM == AIK_SLM_MODEL_CHECKSUM_OFFSET, "model checksum offset");

/* Byte offsets inside a layer record. */
enum { L_N_HEADS = 0, L_N_KV_HEADS = 4, L_FFN_DIM = 8, L_RESERVED = 12 };

/* Byte offsets inside a 128-byte directory entry. */
enum {
    D_NAME_LEN = 0,    /* u16 */
    D_DTYPE = 2,       /* u16 */
    D_N_DIMS = 4,      /* u32 */
    D_SHAPE = 8,       /* u64[4] */
    D_OFFSET = 40,     /* u64, relative to data_offset */
    D_SIZE = 48,       /* u64 */
    D_BLOCK_SIZE = 56, /* u32 */
    D_RESERVED = 60,   /* u32 */
    D_NAME = 64,       /* name[64], NUL padded */
};

/* A header larger than this is not a newer minor version but garbage. */
#define SLM_MAX_HEADER_SIZE 65536u

/* ---- little-endian codec ---- */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static float rdf32(const uint8_t *p)
{
    uint32_t u = rd32(p);
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

static void wrf32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    wr32(p, u);
}

/* ---- shared validation (reader and writer use the same rules) ---- */

static bool name_char_ok(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static int check_u32_range(const char *where, uint32_t v, uint32_t max, aik_error *err)
{
    if (v == 0)
        return aik_fail(err, -EINVAL, where, "is 0, must be at least 1");
    if (v > max)
        return aik_fail(err, -EINVAL, where, "is %u, exceeds the limit %u", v, max);
    return 0;
}

/* Global dimensions, flags and model type (everything the writer's template
 * supplies). */
static int check_dims(const aik_slm_header *h, aik_error *err)
{
    int r;

    if (h->model_type != AIK_SLM_MODEL_LLAMA)
        return aik_fail(err, -EINVAL, "header.model_type", "unknown model type %u", h->model_type);
    if (h->flags & ~(uint32_t)AIK_SLM_FLAGS_KNOWN)
        return aik_fail(err, -EINVAL, "header.flags", "unknown flag bits 0x%x (known: 0x%x)",
                        h->flags & ~(uint32_t)AIK_SLM_FLAGS_KNOWN, (unsigned)AIK_SLM_FLAGS_KNOWN);
    if ((r = check_u32_range("header.n_vocab", h->n_vocab, AIK_SLM_MAX_VOCAB, err)) < 0 ||
        (r = check_u32_range("header.dim", h->dim, AIK_SLM_MAX_DIM, err)) < 0 ||
        (r = check_u32_range("header.n_layers", h->n_layers, AIK_SLM_MAX_LAYERS, err)) < 0 ||
        (r = check_u32_range("header.n_heads", h->n_heads, AIK_SLM_MAX_DIM, err)) < 0 ||
        (r = check_u32_range("header.n_kv_heads", h->n_kv_heads, h->n_heads, err)) < 0 ||
        (r = check_u32_range("header.head_dim", h->head_dim, AIK_SLM_MAX_DIM, err)) < 0 ||
        (r = check_u32_range("header.ffn_dim", h->ffn_dim, AIK_SLM_MAX_DIM, err)) < 0 ||
        (r = check_u32_range("header.ctx_len", h->ctx_len, AIK_SLM_MAX_CTX, err)) < 0)
        return r;
    /* n_heads * head_dim need not equal dim: pruned models drop heads. */
    if (h->n_heads % h->n_kv_heads != 0)
        return aik_fail(err, -EINVAL, "header.n_kv_heads", "%u does not divide n_heads %u", h->n_kv_heads,
                        h->n_heads);
    if (!isfinite(h->rope_theta) || !(h->rope_theta > 0.0f))
        return aik_fail(err, -EINVAL, "header.rope_theta", "is %g, must be finite and > 0",
                        (double)h->rope_theta);
    if (!isfinite(h->norm_eps) || !(h->norm_eps > 0.0f))
        return aik_fail(err, -EINVAL, "header.norm_eps", "is %g, must be finite and > 0", (double)h->norm_eps);
    return 0;
}

static int check_layer(const aik_slm_header *h, uint32_t i, const aik_slm_layer *l, aik_error *err)
{
    char where[48];

    snprintf(where, sizeof(where), "layer[%u].n_heads", i);
    if (l->n_heads < 1 || l->n_heads > h->n_heads)
        return aik_fail(err, -EINVAL, where, "is %u, must be in 1..n_heads (%u)", l->n_heads, h->n_heads);
    snprintf(where, sizeof(where), "layer[%u].n_kv_heads", i);
    if (l->n_kv_heads < 1)
        return aik_fail(err, -EINVAL, where, "is 0, must be at least 1");
    if (l->n_heads % l->n_kv_heads != 0)
        return aik_fail(err, -EINVAL, where, "%u does not divide the layer's n_heads %u", l->n_kv_heads,
                        l->n_heads);
    snprintf(where, sizeof(where), "layer[%u].ffn_dim", i);
    if (l->ffn_dim < 1 || l->ffn_dim > h->ffn_dim)
        return aik_fail(err, -EINVAL, where, "is %u, must be in 1..ffn_dim (%u)", l->ffn_dim, h->ffn_dim);
    snprintf(where, sizeof(where), "layer[%u].reserved", i);
    if (l->reserved != 0)
        return aik_fail(err, -EINVAL, where, "is 0x%x, must be 0", l->reserved);
    return 0;
}

/* Name (name_len bytes, not NUL terminated), dtype, shape and the byte size
 * they imply. `idx` names the entry in errors. */
static int check_tensor_desc(uint32_t idx, const uint8_t *name, size_t name_len, uint32_t dtype, uint32_t n_dims,
                             const uint64_t shape[AIK_MAX_DIMS], uint64_t *ret_nelems, uint64_t *ret_bytes,
                             aik_error *err)
{
    char where[48];
    uint64_t n = 1, bytes;
    int r;

    snprintf(where, sizeof(where), "tensor[%u].name", idx);
    if (name_len == 0)
        return aik_fail(err, -EINVAL, where, "is empty");
    if (name_len > AIK_SLM_NAME_MAX)
        return aik_fail(err, -EINVAL, where, "is %zu bytes long, the limit is %d", name_len, AIK_SLM_NAME_MAX);
    for (size_t k = 0; k < name_len; k++)
        if (!name_char_ok(name[k]))
            return aik_fail(err, -EINVAL, where, "byte %zu (0x%02x) is not in [A-Za-z0-9._-]", k, name[k]);

    snprintf(where, sizeof(where), "tensor[%u].dtype", idx);
    if (!aik_dtype_valid(dtype))
        return aik_fail(err, -EINVAL, where, "unknown dtype %u", dtype);

    snprintf(where, sizeof(where), "tensor[%u].n_dims", idx);
    if (n_dims < 1 || n_dims > AIK_MAX_DIMS)
        return aik_fail(err, -EINVAL, where, "is %u, must be 1..%d", n_dims, AIK_MAX_DIMS);

    snprintf(where, sizeof(where), "tensor[%u].shape", idx);
    for (uint32_t d = 0; d < AIK_MAX_DIMS; d++) {
        if (d >= n_dims && shape[d] != 1)
            return aik_fail(err, -EINVAL, where, "unused dimension %u is %llu, must be 1", d,
                            (unsigned long long)shape[d]);
        if (shape[d] == 0)
            return aik_fail(err, -EINVAL, where, "dimension %u is 0", d);
        if (aik_mul_overflow(n, shape[d], &n))
            return aik_fail(err, -EOVERFLOW, where, "element count overflows 64 bits");
    }
    if (shape[0] % aik_dtype_block_elems((aik_dtype)dtype) != 0)
        return aik_fail(err, -EINVAL, where, "row length %llu is not a multiple of the %s block size %u",
                        (unsigned long long)shape[0], aik_dtype_name((aik_dtype)dtype),
                        aik_dtype_block_elems((aik_dtype)dtype));
    r = aik_dtype_bytes((aik_dtype)dtype, n, &bytes);
    if (r < 0)
        return aik_fail(err, r, where, "byte size of %llu %s elements overflows 64 bits", (unsigned long long)n,
                        aik_dtype_name((aik_dtype)dtype));
    *ret_nelems = n;
    *ret_bytes = bytes;
    return 0;
}

/* ---- reader ---- */

static void decode_header(const uint8_t *p, aik_slm_header *h)
{
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, p + H_MAGIC, 8);
    h->version_major = rd16(p + H_VERSION_MAJOR);
    h->version_minor = rd16(p + H_VERSION_MINOR);
    h->header_size = rd32(p + H_HEADER_SIZE);
    h->model_type = rd32(p + H_MODEL_TYPE);
    h->flags = rd32(p + H_FLAGS);
    h->n_vocab = rd32(p + H_N_VOCAB);
    h->dim = rd32(p + H_DIM);
    h->n_layers = rd32(p + H_N_LAYERS);
    h->n_heads = rd32(p + H_N_HEADS);
    h->n_kv_heads = rd32(p + H_N_KV_HEADS);
    h->head_dim = rd32(p + H_HEAD_DIM);
    h->ffn_dim = rd32(p + H_FFN_DIM);
    h->ctx_len = rd32(p + H_CTX_LEN);
    h->rope_theta = rdf32(p + H_ROPE_THETA);
    h->norm_eps = rdf32(p + H_NORM_EPS);
    h->layer_table_offset = rd64(p + H_LAYER_TABLE_OFFSET);
    h->tokenizer_offset = rd64(p + H_TOKENIZER_OFFSET);
    h->tokenizer_size = rd64(p + H_TOKENIZER_SIZE);
    memcpy(h->tokenizer_sha256, p + H_TOKENIZER_SHA256, 32);
    h->tensor_dir_offset = rd64(p + H_TENSOR_DIR_OFFSET);
    h->tensor_count = rd32(p + H_TENSOR_COUNT);
    h->reserved0 = rd32(p + H_RESERVED0);
    h->data_offset = rd64(p + H_DATA_OFFSET);
    h->data_size = rd64(p + H_DATA_SIZE);
    memcpy(h->layout_checksum, p + H_LAYOUT_CHECKSUM, 32);
    memcpy(h->model_checksum, p + H_MODEL_CHECKSUM, 32);
    h->file_size = rd64(p + H_FILE_SIZE);
    h->parameter_count = rd64(p + H_PARAMETER_COUNT);
}

static void encode_header(const aik_slm_header *h, uint8_t p[AIK_SLM_HEADER_SIZE])
{
    memset(p, 0, AIK_SLM_HEADER_SIZE);
    memcpy(p + H_MAGIC, h->magic, 8);
    wr16(p + H_VERSION_MAJOR, h->version_major);
    wr16(p + H_VERSION_MINOR, h->version_minor);
    wr32(p + H_HEADER_SIZE, h->header_size);
    wr32(p + H_MODEL_TYPE, h->model_type);
    wr32(p + H_FLAGS, h->flags);
    wr32(p + H_N_VOCAB, h->n_vocab);
    wr32(p + H_DIM, h->dim);
    wr32(p + H_N_LAYERS, h->n_layers);
    wr32(p + H_N_HEADS, h->n_heads);
    wr32(p + H_N_KV_HEADS, h->n_kv_heads);
    wr32(p + H_HEAD_DIM, h->head_dim);
    wr32(p + H_FFN_DIM, h->ffn_dim);
    wr32(p + H_CTX_LEN, h->ctx_len);
    wrf32(p + H_ROPE_THETA, h->rope_theta);
    wrf32(p + H_NORM_EPS, h->norm_eps);
    wr64(p + H_LAYER_TABLE_OFFSET, h->layer_table_offset);
    wr64(p + H_TOKENIZER_OFFSET, h->tokenizer_offset);
    wr64(p + H_TOKENIZER_SIZE, h->tokenizer_size);
    memcpy(p + H_TOKENIZER_SHA256, h->tokenizer_sha256, 32);
    wr64(p + H_TENSOR_DIR_OFFSET, h->tensor_dir_offset);
    wr32(p + H_TENSOR_COUNT, h->tensor_count);
    wr32(p + H_RESERVED0, h->reserved0);
    wr64(p + H_DATA_OFFSET, h->data_offset);
    wr64(p + H_DATA_SIZE, h->data_size);
    memcpy(p + H_LAYOUT_CHECKSUM, h->layout_checksum, 32);
    memcpy(p + H_MODEL_CHECKSUM, h->model_checksum, 32);
    wr64(p + H_FILE_SIZE, h->file_size);
    wr64(p + H_PARAMETER_COUNT, h->parameter_count);
}

typedef struct {
    const char *name; /* for messages */
    const char *where;
    uint64_t off, len;
} region;

/* Place a region: inside the file, not overlapping any earlier one. */
static int check_region(region *regs, int n, const region *r, uint64_t file_size, aik_error *err)
{
    if (r->off > file_size)
        return aik_fail(err, -EINVAL, r->where, "%s offset %llu is beyond the end of the file (%llu bytes)", r->name,
                        (unsigned long long)r->off, (unsigned long long)file_size);
    if (!aik_range_ok(r->off, r->len, file_size))
        return aik_fail(err, -EINVAL, r->where, "%s [%llu, +%llu) extends beyond the end of the file (%llu bytes)",
                        r->name, (unsigned long long)r->off, (unsigned long long)r->len,
                        (unsigned long long)file_size);
    for (int i = 0; i < n && r->len > 0; i++) {
        /* Both ranges are inside the file, so off + len cannot overflow. */
        if (regs[i].len > 0 && r->off < regs[i].off + regs[i].len && regs[i].off < r->off + r->len)
            return aik_fail(err, -EINVAL, r->where, "%s [%llu, %llu) overlaps the %s [%llu, %llu)", r->name,
                            (unsigned long long)r->off, (unsigned long long)(r->off + r->len), regs[i].name,
                            (unsigned long long)regs[i].off, (unsigned long long)(regs[i].off + regs[i].len));
    }
    regs[n] = *r;
    return 0;
}

static int check_header(const aik_slm_header *h, const uint8_t *p, uint64_t size, aik_error *err)
{
    region regs[5];
    region r;
    uint64_t len;
    int ret;

    if (memcmp(h->magic, AIK_SLM_MAGIC, 8) != 0)
        return aik_fail(err, -EBADMSG, "header.magic", "not an .slm package (bad magic)");
    if (h->version_major > AIK_SLM_VERSION_MAJOR)
        return aik_fail(err, -EPROTONOSUPPORT, "header.version_major",
                        "format version %u.%u is newer than this reader's %d.%d; a newer AIKernel is needed",
                        h->version_major, h->version_minor, AIK_SLM_VERSION_MAJOR, AIK_SLM_VERSION_MINOR);
    if (h->version_major != AIK_SLM_VERSION_MAJOR)
        return aik_fail(err, -EPROTONOSUPPORT, "header.version_major", "unknown format version %u.%u",
                        h->version_major, h->version_minor);
    /* A newer minor version may grow the header; the extra bytes are
     * ignored. Our own (or older) minor versions have exactly 256 bytes. */
    if (h->header_size < AIK_SLM_HEADER_SIZE || h->header_size > SLM_MAX_HEADER_SIZE)
        return aik_fail(err, -EINVAL, "header.header_size", "is %u, must be %d..%u", h->header_size,
                        AIK_SLM_HEADER_SIZE, SLM_MAX_HEADER_SIZE);
    if (h->version_minor <= AIK_SLM_VERSION_MINOR && h->header_size != AIK_SLM_HEADER_SIZE)
        return aik_fail(err, -EINVAL, "header.header_size", "is %u, must be %d for version %u.%u", h->header_size,
                        AIK_SLM_HEADER_SIZE, h->version_major, h->version_minor);
    if (h->header_size > size)
        return aik_fail(err, -EINVAL, "header.header_size", "is %u, larger than the file (%llu bytes)",
                        h->header_size, (unsigned long long)size);
    if (h->file_size != size)
        return aik_fail(err, -EINVAL, "header.file_size", "says %llu bytes, the file has %llu (truncated or appended?)",
                        (unsigned long long)h->file_size, (unsigned long long)size);
    ret = check_dims(h, err);
    if (ret < 0)
        return ret;
    /* Reserved space belongs to future minor versions: it must be zero in
     * files of our minor version, and is ignored in newer ones. */
    if (h->version_minor <= AIK_SLM_VERSION_MINOR) {
        if (h->reserved0 != 0)
            return aik_fail(err, -EINVAL, "header.reserved0", "is 0x%x, must be 0", h->reserved0);
        for (int i = H_RESERVED; i < AIK_SLM_HEADER_SIZE; i++)
            if (p[i] != 0)
                return aik_fail(err, -EINVAL, "header.reserved", "byte %d is 0x%02x, must be 0", i, p[i]);
    }

    regs[0] = (region){ "header", "header.header_size", 0, h->header_size };
    /* n_layers and tensor_count are bounded (<= 2^16), so these products
     * cannot overflow. */
    r = (region){ "layer table", "header.layer_table_offset", h->layer_table_offset,
                  (uint64_t)h->n_layers * AIK_SLM_LAYER_RECORD_SIZE };
    if ((ret = check_region(regs, 1, &r, size, err)) < 0)
        return ret;
    if (h->tokenizer_size > size)
        return aik_fail(err, -EINVAL, "header.tokenizer_size", "is %llu, larger than the file (%llu bytes)",
                        (unsigned long long)h->tokenizer_size, (unsigned long long)size);
    r = (region){ "tokenizer", "header.tokenizer_offset", h->tokenizer_offset, h->tokenizer_size };
    if ((ret = check_region(regs, 2, &r, size, err)) < 0)
        return ret;
    if (h->data_offset % AIK_SLM_ALIGN != 0)
        return aik_fail(err, -EINVAL, "header.data_offset", "%llu is not a multiple of %d",
                        (unsigned long long)h->data_offset, AIK_SLM_ALIGN);
    if (h->data_size > size)
        return aik_fail(err, -EINVAL, "header.data_size", "is %llu, larger than the file (%llu bytes)",
                        (unsigned long long)h->data_size, (unsigned long long)size);
    r = (region){ "tensor data", "header.data_offset", h->data_offset, h->data_size };
    if ((ret = check_region(regs, 3, &r, size, err)) < 0)
        return ret;
    if (h->tensor_count > AIK_SLM_MAX_TENSORS)
        return aik_fail(err, -EINVAL, "header.tensor_count", "is %u, exceeds the limit %d", h->tensor_count,
                        AIK_SLM_MAX_TENSORS);
    len = (uint64_t)h->tensor_count * AIK_SLM_DIR_ENTRY_SIZE;
    r = (region){ "tensor directory", "header.tensor_dir_offset", h->tensor_dir_offset, len };
    if ((ret = check_region(regs, 4, &r, size, err)) < 0)
        return ret;
    return 0;
}

static int decode_layers(aik_slm *pkg, aik_error *err)
{
    const aik_slm_header *h = &pkg->hdr;

    pkg->layers = calloc(h->n_layers, sizeof(*pkg->layers));
    if (!pkg->layers)
        return aik_fail(err, -ENOMEM, "layer table", "out of memory");
    for (uint32_t i = 0; i < h->n_layers; i++) {
        const uint8_t *p = pkg->map + h->layer_table_offset + (uint64_t)i * AIK_SLM_LAYER_RECORD_SIZE;
        aik_slm_layer *l = &pkg->layers[i];
        int r;

        l->n_heads = rd32(p + L_N_HEADS);
        l->n_kv_heads = rd32(p + L_N_KV_HEADS);
        l->ffn_dim = rd32(p + L_FFN_DIM);
        l->reserved = rd32(p + L_RESERVED);
        if ((r = check_layer(h, i, l, err)) < 0)
            return r;
    }
    return 0;
}

static int cmp_tensor_name(const void *a, const void *b)
{
    const aik_slm_tensor *x = *(const aik_slm_tensor *const *)a, *y = *(const aik_slm_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    /* Ties by position so the later duplicate is reported. */
    return c ? c : (x < y ? -1 : x > y);
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const aik_slm_tensor *x = *(const aik_slm_tensor *const *)a, *y = *(const aik_slm_tensor *const *)b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int decode_tensors(aik_slm *pkg, aik_error *err)
{
    const aik_slm_header *h = &pkg->hdr;
    const aik_slm_tensor **order = NULL;
    uint64_t params = 0;
    char where[48];
    int r = 0;

    if (h->tensor_count == 0)
        goto check_params;
    pkg->tensors = calloc(h->tensor_count, sizeof(*pkg->tensors));
    order = calloc(h->tensor_count, sizeof(*order));
    if (!pkg->tensors || !order) {
        r = aik_fail(err, -ENOMEM, "tensor directory", "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < h->tensor_count; i++) {
        const uint8_t *e = pkg->map + h->tensor_dir_offset + (uint64_t)i * AIK_SLM_DIR_ENTRY_SIZE;
        aik_slm_tensor *t = &pkg->tensors[i];
        uint16_t name_len = rd16(e + D_NAME_LEN);
        uint32_t dtype = rd16(e + D_DTYPE), n_dims = rd32(e + D_N_DIMS), reserved = rd32(e + D_RESERVED);
        uint64_t shape[AIK_MAX_DIMS], nelems, bytes;

        snprintf(where, sizeof(where), "tensor[%u].name_len", i);
        if (name_len == 0 || name_len > AIK_SLM_NAME_MAX) {
            r = aik_fail(err, -EINVAL, where, "is %u, must be 1..%d", name_len, AIK_SLM_NAME_MAX);
            goto out;
        }
        snprintf(where, sizeof(where), "tensor[%u].name", i);
        for (int k = name_len; k < AIK_SLM_NAME_MAX; k++)
            if (e[D_NAME + k] != 0) {
                r = aik_fail(err, -EINVAL, where, "padding byte %d after the %u-byte name is 0x%02x, must be NUL", k,
                             name_len, e[D_NAME + k]);
                goto out;
            }
        for (int d = 0; d < AIK_MAX_DIMS; d++)
            shape[d] = rd64(e + D_SHAPE + 8 * d);
        r = check_tensor_desc(i, e + D_NAME, name_len, dtype, n_dims, shape, &nelems, &bytes, err);
        if (r < 0)
            goto out;

        memcpy(t->name, e + D_NAME, name_len);
        t->name[name_len] = '\0';
        t->dtype = (aik_dtype)dtype;
        t->n_dims = n_dims;
        memcpy(t->shape, shape, sizeof(shape));
        t->offset = rd64(e + D_OFFSET);
        t->size = rd64(e + D_SIZE);
        t->block_size = rd32(e + D_BLOCK_SIZE);

        snprintf(where, sizeof(where), "tensor[%u].block_size", i);
        if (t->block_size != aik_dtype_block_elems(t->dtype)) {
            r = aik_fail(err, -EINVAL, where, "is %u, %s has %u elements per block", t->block_size,
                         aik_dtype_name(t->dtype), aik_dtype_block_elems(t->dtype));
            goto out;
        }
        snprintf(where, sizeof(where), "tensor[%u].size", i);
        if (t->size != bytes) {
            r = aik_fail(err, -EINVAL, where, "is %llu bytes, %llu %s elements take %llu", (unsigned long long)t->size,
                         (unsigned long long)nelems, aik_dtype_name(t->dtype), (unsigned long long)bytes);
            goto out;
        }
        snprintf(where, sizeof(where), "tensor[%u].offset", i);
        if (t->offset % AIK_SLM_ALIGN != 0) {
            r = aik_fail(err, -EINVAL, where, "%llu is not a multiple of %d", (unsigned long long)t->offset,
                         AIK_SLM_ALIGN);
            goto out;
        }
        if (!aik_range_ok(t->offset, t->size, h->data_size)) {
            r = aik_fail(err, -EINVAL, where, "[%llu, +%llu) is outside the data region (%llu bytes)",
                         (unsigned long long)t->offset, (unsigned long long)t->size, (unsigned long long)h->data_size);
            goto out;
        }
        snprintf(where, sizeof(where), "tensor[%u].reserved", i);
        if (reserved != 0) {
            r = aik_fail(err, -EINVAL, where, "is 0x%x, must be 0", reserved);
            goto out;
        }
        if (aik_add_overflow(params, nelems, &params)) {
            r = aik_fail(err, -EOVERFLOW, "header.parameter_count", "sum of element counts overflows 64 bits");
            goto out;
        }
        t->data = pkg->map + h->data_offset + t->offset;
        order[i] = t;
    }

    /* Unique names and non-overlapping data, in O(n log n): sort and compare
     * neighbours. */
    qsort(order, h->tensor_count, sizeof(*order), cmp_tensor_name);
    for (uint32_t i = 1; i < h->tensor_count; i++)
        if (strcmp(order[i - 1]->name, order[i]->name) == 0) {
            snprintf(where, sizeof(where), "tensor[%td].name", order[i] - pkg->tensors);
            r = aik_fail(err, -EINVAL, where, "'%s' duplicates tensor[%td]", order[i]->name,
                         order[i - 1] - pkg->tensors);
            goto out;
        }
    qsort(order, h->tensor_count, sizeof(*order), cmp_tensor_offset);
    for (uint32_t i = 1; i < h->tensor_count; i++)
        if (order[i]->offset < order[i - 1]->offset + order[i - 1]->size) {
            snprintf(where, sizeof(where), "tensor[%td].offset", order[i] - pkg->tensors);
            r = aik_fail(err, -EINVAL, where, "data [%llu, %llu) overlaps tensor[%td] '%s'",
                         (unsigned long long)order[i]->offset,
                         (unsigned long long)(order[i]->offset + order[i]->size), order[i - 1] - pkg->tensors,
                         order[i - 1]->name);
            goto out;
        }

check_params:
    if (params != h->parameter_count)
        r = aik_fail(err, -EINVAL, "header.parameter_count", "is %llu, the tensors hold %llu elements",
                     (unsigned long long)h->parameter_count, (unsigned long long)params);
out:
    free(order);
    return r;
}

int aik_slm_open_buffer(const void *data, size_t size, unsigned flags, aik_slm **ret_pkg, aik_error *err)
{
    aik_slm *pkg;
    int r;

    if ((!data && size) || !ret_pkg || (flags & ~(unsigned)AIK_SLM_VERIFY_CHECKSUMS))
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    if (size < AIK_SLM_HEADER_SIZE)
        return aik_fail(err, -EBADMSG, "header", "file is %zu bytes, shorter than the %d-byte header", size,
                        AIK_SLM_HEADER_SIZE);
    pkg = calloc(1, sizeof(*pkg));
    if (!pkg)
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    pkg->map = data;
    pkg->map_size = size;
    decode_header(pkg->map, &pkg->hdr);
    if ((r = check_header(&pkg->hdr, pkg->map, size, err)) < 0 || (r = decode_layers(pkg, err)) < 0 ||
        (r = decode_tensors(pkg, err)) < 0)
        goto fail;
    pkg->tokenizer = pkg->map + pkg->hdr.tokenizer_offset;
    if (flags & AIK_SLM_VERIFY_CHECKSUMS) {
        r = aik_slm_verify_checksums(pkg, NULL, NULL, NULL, err);
        if (r < 0)
            goto fail;
    }
    *ret_pkg = pkg;
    return 0;
fail:
    aik_slm_close(pkg);
    return r;
}

int aik_slm_open_fd(int fd, unsigned flags, aik_slm **ret_pkg, aik_error *err)
{
    struct stat st;
    aik_slm *pkg = NULL;
    void *map;
    int r;

    if (fd < 0 || !ret_pkg)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    if (fstat(fd, &st) < 0)
        return aik_fail(err, -errno, NULL, "fstat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return aik_fail(err, -EINVAL, NULL, "not a regular file");
    if (st.st_size < AIK_SLM_HEADER_SIZE)
        return aik_fail(err, -EBADMSG, "header", "file is %lld bytes, shorter than the %d-byte header",
                        (long long)st.st_size, AIK_SLM_HEADER_SIZE);
    if ((uint64_t)st.st_size > SIZE_MAX)
        return aik_fail(err, -EFBIG, NULL, "file of %lld bytes cannot be mapped", (long long)st.st_size);
    /* Private read-only mapping: the tensors are used in place (zero copy).
     * The loader verifies digests on this same fd, so the bytes checked are
     * the bytes used (a writer truncating the file under us would raise
     * SIGBUS; registry files are immutable once published). */
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return aik_fail(err, -errno, NULL, "mmap: %s", strerror(errno));
    r = aik_slm_open_buffer(map, (size_t)st.st_size, flags, &pkg, err);
    if (r < 0) {
        munmap(map, (size_t)st.st_size);
        return r;
    }
    pkg->owns_map = true;
    *ret_pkg = pkg;
    return 0;
}

int aik_slm_open(const char *path, unsigned flags, aik_slm **ret_pkg, aik_error *err)
{
    int fd, r;

    if (!path || !ret_pkg)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return aik_fail(err, -errno, path, "open: %s", strerror(errno));
    r = aik_slm_open_fd(fd, flags, ret_pkg, err);
    close(fd);
    return r;
}

void aik_slm_close(aik_slm *pkg)
{
    if (!pkg)
        return;
    if (pkg->owns_map && pkg->map)
        munmap((void *)pkg->map, (size_t)pkg->map_size);
    free(pkg->layers);
    free(pkg->tensors);
    free(pkg);
}

const aik_slm_tensor *aik_slm_find(const aik_slm *pkg, const char *name)
{
    if (!pkg || !name)
        return NULL;
    for (uint32_t i = 0; i < pkg->hdr.tensor_count; i++)
        if (strcmp(pkg->tensors[i].name, name) == 0)
            return &pkg->tensors[i];
    return NULL;
}

uint64_t aik_slm_tensor_nelems(const aik_slm_tensor *t)
{
    uint64_t n = 1;

    if (!t)
        return 0;
    /* Validated on open: the product does not overflow. */
    for (uint32_t d = 0; d < AIK_MAX_DIMS; d++)
        n *= t->shape[d];
    return n;
}

/* ---- checksums ---- */

int aik_slm_layout_checksum(const aik_slm_tensor *tensors, uint32_t count, uint8_t out[32])
{
    aik_sha256 *h;
    int r = 0;

    if ((!tensors && count) || !out)
        return -EINVAL;
    h = aik_sha256_new();
    if (!h)
        return -ENOMEM;
    for (uint32_t i = 0; i < count && r == 0; i++) {
        const aik_slm_tensor *t = &tensors[i];
        size_t name_len = strnlen(t->name, sizeof(t->name));
        uint8_t rec[2 + 2 + 4 + 8 * AIK_MAX_DIMS];

        if (name_len > AIK_SLM_NAME_MAX) {
            r = -EINVAL;
            break;
        }
        wr16(rec, (uint16_t)name_len);
        wr16(rec + 2, (uint16_t)t->dtype);
        wr32(rec + 4, t->n_dims);
        for (int d = 0; d < AIK_MAX_DIMS; d++)
            wr64(rec + 8 + 8 * d, t->shape[d]);
        r = aik_sha256_update(h, t->name, name_len);
        if (r == 0)
            r = aik_sha256_update(h, rec, sizeof(rec));
    }
    if (r == 0)
        r = aik_sha256_final(h, out);
    aik_sha256_free(h);
    return r;
}

/* SHA-256 of bytes [0, size) with the model_checksum field read as zeros. */
static int model_checksum_buf(const uint8_t *p, uint64_t size, uint8_t out[32])
{
    static const uint8_t zeros[32];
    aik_sha256 *h = aik_sha256_new();
    int r;

    if (!h)
        return -ENOMEM;
    r = aik_sha256_update(h, p, H_MODEL_CHECKSUM);
    if (r == 0)
        r = aik_sha256_update(h, zeros, sizeof(zeros));
    if (r == 0)
        r = aik_sha256_update(h, p + H_MODEL_CHECKSUM + 32, (size_t)(size - H_MODEL_CHECKSUM - 32));
    if (r == 0)
        r = aik_sha256_final(h, out);
    aik_sha256_free(h);
    return r;
}

int aik_slm_verify_checksums(const aik_slm *pkg, uint8_t ret_tokenizer[32], uint8_t ret_layout[32],
                             uint8_t ret_model[32], aik_error *err)
{
    uint8_t tok[32], lay[32], mod[32];
    char hex_a[AIK_SHA256_HEX_LEN], hex_b[AIK_SHA256_HEX_LEN];
    int r;

    if (!pkg)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    /* Compute all three before comparing: callers (aikctl check) show each. */
    r = aik_sha256_buf(pkg->tokenizer, (size_t)pkg->hdr.tokenizer_size, tok);
    if (r == 0)
        r = aik_slm_layout_checksum(pkg->tensors, pkg->hdr.tensor_count, lay);
    if (r == 0)
        r = model_checksum_buf(pkg->map, pkg->map_size, mod);
    if (r < 0)
        return aik_fail(err, r, NULL, "computing checksums failed");
    if (ret_tokenizer)
        memcpy(ret_tokenizer, tok, 32);
    if (ret_layout)
        memcpy(ret_layout, lay, 32);
    if (ret_model)
        memcpy(ret_model, mod, 32);

    if (memcmp(tok, pkg->hdr.tokenizer_sha256, 32) != 0) {
        aik_sha256_hex(pkg->hdr.tokenizer_sha256, hex_a);
        aik_sha256_hex(tok, hex_b);
        return aik_fail(err, -EBADMSG, "header.tokenizer_sha256", "mismatch: header has %s, tokenizer blob hashes to %s",
                        hex_a, hex_b);
    }
    if (memcmp(lay, pkg->hdr.layout_checksum, 32) != 0) {
        aik_sha256_hex(pkg->hdr.layout_checksum, hex_a);
        aik_sha256_hex(lay, hex_b);
        return aik_fail(err, -EBADMSG, "header.layout_checksum", "mismatch: header has %s, directory hashes to %s",
                        hex_a, hex_b);
    }
    if (memcmp(mod, pkg->hdr.model_checksum, 32) != 0) {
        aik_sha256_hex(pkg->hdr.model_checksum, hex_a);
        aik_sha256_hex(mod, hex_b);
        return aik_fail(err, -EBADMSG, "header.model_checksum", "mismatch: header has %s, file hashes to %s", hex_a,
                        hex_b);
    }
    return 0;
}

/* ---- writer ---- */

struct aik_slm_writer {
    aik_atomic_file file;
    aik_slm_header hdr;
    aik_slm_tensor *tensors; /* directory so far (data pointers unused) */
    uint32_t n_tensors, cap_tensors;
    uint32_t *name_hash;     /* open-addressing set of tensor indices + 1 (0 = empty) */
    uint32_t hash_cap;       /* power of two, > 2 * n_tensors */
    uint64_t data_pos;       /* next free byte of the data region, relative */
    uint64_t params;
    int failed;              /* first error; the writer is dead once set */
};

static int writer_failed(aik_slm_writer *w, int r)
{
    if (w->failed == 0)
        w->failed = r;
    return r;
}

static int write_zeros(aik_atomic_file *f, uint64_t n)
{
    static const uint8_t zeros[AIK_SLM_ALIGN];

    while (n > 0) {
        size_t k = n > sizeof(zeros) ? sizeof(zeros) : (size_t)n;
        int r = aik_atomic_file_write(f, zeros, k);
        if (r < 0)
            return r;
        n -= k;
    }
    return 0;
}

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* Index of the tensor called name, or -1; *slot receives the free slot. */
static int64_t writer_lookup(const aik_slm_writer *w, const char *name, uint32_t *slot)
{
    uint32_t mask = w->hash_cap - 1, i = hash_name(name) & mask;

    while (w->name_hash[i]) {
        uint32_t idx = w->name_hash[i] - 1;
        if (strcmp(w->tensors[idx].name, name) == 0)
            return idx;
        i = (i + 1) & mask;
    }
    *slot = i;
    return -1;
}

static int writer_grow(aik_slm_writer *w)
{
    uint32_t ncap = w->cap_tensors ? w->cap_tensors * 2 : 64, nhash = ncap * 4;
    aik_slm_tensor *nt;
    uint32_t *nh;

    if (ncap > AIK_SLM_MAX_TENSORS)
        ncap = AIK_SLM_MAX_TENSORS, nhash = AIK_SLM_MAX_TENSORS * 4;
    nt = realloc(w->tensors, (size_t)ncap * sizeof(*nt));
    if (!nt)
        return -ENOMEM;
    w->tensors = nt;
    nh = calloc(nhash, sizeof(*nh));
    if (!nh)
        return -ENOMEM;
    free(w->name_hash);
    w->name_hash = nh;
    w->hash_cap = nhash;
    w->cap_tensors = ncap;
    for (uint32_t i = 0; i < w->n_tensors; i++) {
        uint32_t slot = 0;
        (void)writer_lookup(w, w->tensors[i].name, &slot);
        w->name_hash[slot] = i + 1;
    }
    return 0;
}

static void writer_free(aik_slm_writer *w)
{
    if (!w)
        return;
    aik_atomic_file_abort(&w->file);
    free(w->tensors);
    free(w->name_hash);
    free(w);
}

int aik_slm_writer_begin(const char *path, const aik_slm_header *tmpl, const aik_slm_layer *layers,
                         const void *tokenizer, size_t tokenizer_len, aik_slm_writer **ret_w, aik_error *err)
{
    aik_slm_writer *w = NULL;
    uint8_t rec[AIK_SLM_LAYER_RECORD_SIZE];
    uint64_t pos;
    int r;

    if (!path || !tmpl || !layers || (!tokenizer && tokenizer_len) || !ret_w)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    r = check_dims(tmpl, err);
    if (r < 0)
        return r;
    for (uint32_t i = 0; i < tmpl->n_layers; i++)
        if ((r = check_layer(tmpl, i, &layers[i], err)) < 0)
            return r;

    w = calloc(1, sizeof(*w));
    if (!w)
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    w->file.fd = -1;
    w->hdr = *tmpl;
    memcpy(w->hdr.magic, AIK_SLM_MAGIC, 8);
    w->hdr.version_major = AIK_SLM_VERSION_MAJOR;
    w->hdr.version_minor = AIK_SLM_VERSION_MINOR;
    w->hdr.header_size = AIK_SLM_HEADER_SIZE;
    w->hdr.reserved0 = 0;
    r = aik_sha256_buf(tokenizer_len ? tokenizer : "", tokenizer_len, w->hdr.tokenizer_sha256);
    if (r < 0) {
        aik_fail(err, r, "tokenizer", "hashing failed");
        goto fail;
    }
    r = writer_grow(w);
    if (r < 0) {
        aik_fail(err, r, NULL, "out of memory");
        goto fail;
    }

    r = aik_atomic_file_open(&w->file, path, 0644);
    if (r < 0) {
        aik_fail(err, r, path, "cannot create a temporary file next to it: %s", strerror(-r));
        goto fail;
    }
    /* Header placeholder, patched by finish(). */
    r = write_zeros(&w->file, AIK_SLM_HEADER_SIZE);
    w->hdr.layer_table_offset = AIK_SLM_HEADER_SIZE;
    for (uint32_t i = 0; i < tmpl->n_layers && r == 0; i++) {
        wr32(rec + L_N_HEADS, layers[i].n_heads);
        wr32(rec + L_N_KV_HEADS, layers[i].n_kv_heads);
        wr32(rec + L_FFN_DIM, layers[i].ffn_dim);
        wr32(rec + L_RESERVED, 0);
        r = aik_atomic_file_write(&w->file, rec, sizeof(rec));
    }
    w->hdr.tokenizer_offset = w->file.written;
    w->hdr.tokenizer_size = tokenizer_len;
    if (r == 0 && tokenizer_len)
        r = aik_atomic_file_write(&w->file, tokenizer, tokenizer_len);
    if (r == 0) {
        if (aik_align_up(w->file.written, AIK_SLM_ALIGN, &pos))
            r = -EOVERFLOW;
        else
            r = write_zeros(&w->file, pos - w->file.written);
    }
    if (r < 0) {
        aik_fail(err, r, path, "write failed: %s", strerror(-r));
        goto fail;
    }
    w->hdr.data_offset = w->file.written;
    *ret_w = w;
    return 0;
fail:
    writer_free(w);
    return r;
}

/* Like aik_slm_writer_add_tensor, but the caller states data_len and a
 * mismatch with the size implied by dtype and shape is an error (catches
 * callers that computed the shape and the buffer separately). */
int aik_slm_writer_add_tensor_sized(aik_slm_writer *w, const char *name, aik_dtype dtype, uint32_t n_dims,
                                    const uint64_t shape[], const void *data, uint64_t data_len, aik_error *err)
{
    uint64_t full[AIK_MAX_DIMS] = { 1, 1, 1, 1 }, nelems, bytes, pos;
    uint32_t idx, slot = 0;
    size_t name_len;
    aik_slm_tensor *t;
    int r;

    if (!w || !name || !shape || !data)
        return w ? writer_failed(w, aik_fail(err, -EINVAL, NULL, "invalid argument"))
                 : aik_fail(err, -EINVAL, NULL, "invalid argument");
    if (w->failed)
        return aik_fail(err, w->failed, NULL, "the writer failed earlier");
    idx = w->n_tensors;
    if (idx >= AIK_SLM_MAX_TENSORS)
        return writer_failed(w, aik_fail(err, -E2BIG, "header.tensor_count", "more than %d tensors",
                                         AIK_SLM_MAX_TENSORS));
    for (uint32_t d = 0; d < n_dims && d < AIK_MAX_DIMS; d++)
        full[d] = shape[d];
    name_len = strnlen(name, AIK_SLM_NAME_MAX + 1);
    r = check_tensor_desc(idx, (const uint8_t *)name, name_len, (uint32_t)dtype, n_dims, full, &nelems, &bytes, err);
    if (r < 0)
        return writer_failed(w, r);
    if (data_len != bytes) {
        char where[48];
        snprintf(where, sizeof(where), "tensor[%u].size", idx);
        return writer_failed(w, aik_fail(err, -EINVAL, where, "'%s': %llu bytes given, %llu %s elements take %llu",
                                         name, (unsigned long long)data_len, (unsigned long long)nelems,
                                         aik_dtype_name(dtype), (unsigned long long)bytes));
    }
    if (idx == w->cap_tensors && (r = writer_grow(w)) < 0)
        return writer_failed(w, aik_fail(err, r, NULL, "out of memory"));
    if (writer_lookup(w, name, &slot) >= 0) {
        char where[48];
        snprintf(where, sizeof(where), "tensor[%u].name", idx);
        return writer_failed(w, aik_fail(err, -EEXIST, where, "'%s' was already added", name));
    }
    if (aik_align_up(w->data_pos, AIK_SLM_ALIGN, &pos) || aik_add_overflow(w->params, nelems, &w->params) ||
        aik_add_overflow(pos, bytes, &w->data_pos) || bytes > SIZE_MAX)
        return writer_failed(w, aik_fail(err, -EOVERFLOW, name, "package size overflows 64 bits"));

    r = write_zeros(&w->file, pos - (w->file.written - w->hdr.data_offset));
    if (r == 0)
        r = aik_atomic_file_write(&w->file, data, (size_t)bytes);
    if (r < 0)
        return writer_failed(w, aik_fail(err, r, name, "write failed: %s", strerror(-r)));

    t = &w->tensors[idx];
    memset(t, 0, sizeof(*t));
    memcpy(t->name, name, name_len);
    t->dtype = dtype;
    t->n_dims = n_dims;
    memcpy(t->shape, full, sizeof(full));
    t->offset = pos;
    t->size = bytes;
    t->block_size = aik_dtype_block_elems(dtype);
    w->name_hash[slot] = idx + 1;
    w->n_tensors++;
    return 0;
}

int aik_slm_writer_add_tensor(aik_slm_writer *w, const char *name, aik_dtype dtype, uint32_t n_dims,
                              const uint64_t shape[], const void *data, aik_error *err)
{
    uint64_t full[AIK_MAX_DIMS] = { 1, 1, 1, 1 }, n = 1, bytes = 0;

    /* The size is implied: compute it leniently here and let the sized
     * variant do the real validation (it reports bad shapes precisely). */
    if (shape && n_dims >= 1 && n_dims <= AIK_MAX_DIMS) {
        for (uint32_t d = 0; d < n_dims; d++)
            full[d] = shape[d];
        for (uint32_t d = 0; d < AIK_MAX_DIMS; d++)
            if (aik_mul_overflow(n, full[d], &n))
                n = 0;
        if (aik_dtype_bytes(dtype, n, &bytes) < 0)
            bytes = 0;
    }
    return aik_slm_writer_add_tensor_sized(w, name, dtype, n_dims, shape, data, bytes, err);
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* Model checksum of the temporary file, read back with pread: the header is
 * patched last, so the bytes cannot be hashed in one streaming pass. */
static int model_checksum_fd(int fd, uint64_t size, uint8_t out[32])
{
    enum { CHUNK = 1 << 20 };
    aik_sha256 *h = aik_sha256_new();
    uint8_t *buf = malloc(CHUNK);
    uint64_t off = 0;
    int r = 0;

    if (!h || !buf) {
        r = -ENOMEM;
        goto out;
    }
    while (off < size) {
        size_t want = size - off > CHUNK ? CHUNK : (size_t)(size - off);
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : -EIO;
            goto out;
        }
        /* Blank the model_checksum field where this chunk covers it. */
        for (uint64_t k = H_MODEL_CHECKSUM; k < H_MODEL_CHECKSUM + 32; k++)
            if (k >= off && k < off + (uint64_t)n)
                buf[k - off] = 0;
        if ((r = aik_sha256_update(h, buf, (size_t)n)) < 0)
            goto out;
        off += (uint64_t)n;
    }
    r = aik_sha256_final(h, out);
out:
    free(buf);
    aik_sha256_free(h);
    return r;
}

int aik_slm_writer_finish(aik_slm_writer *w, aik_error *err)
{
    uint8_t hdr[AIK_SLM_HEADER_SIZE], e[AIK_SLM_DIR_ENTRY_SIZE];
    char path[sizeof(err->where)];
    aik_slm *check = NULL;
    uint64_t pos;
    int r;

    if (!w)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    /* A copy: commit() frees file.path on failure, and errors name it. */
    snprintf(path, sizeof(path), "%s", w->file.path ? w->file.path : "");
    if (w->failed) {
        r = aik_fail(err, w->failed, path, "not written: adding a tensor failed earlier");
        goto out;
    }
    /* Directory after the (64-byte padded) data region. */
    if (aik_align_up(w->data_pos, AIK_SLM_ALIGN, &pos)) {
        r = aik_fail(err, -EOVERFLOW, path, "package size overflows 64 bits");
        goto out;
    }
    r = write_zeros(&w->file, pos - (w->file.written - w->hdr.data_offset));
    w->hdr.data_size = pos;
    w->hdr.tensor_dir_offset = w->file.written;
    w->hdr.tensor_count = w->n_tensors;
    for (uint32_t i = 0; i < w->n_tensors && r == 0; i++) {
        const aik_slm_tensor *t = &w->tensors[i];
        size_t name_len = strlen(t->name);

        memset(e, 0, sizeof(e));
        wr16(e + D_NAME_LEN, (uint16_t)name_len);
        wr16(e + D_DTYPE, (uint16_t)t->dtype);
        wr32(e + D_N_DIMS, t->n_dims);
        for (int d = 0; d < AIK_MAX_DIMS; d++)
            wr64(e + D_SHAPE + 8 * d, t->shape[d]);
        wr64(e + D_OFFSET, t->offset);
        wr64(e + D_SIZE, t->size);
        wr32(e + D_BLOCK_SIZE, t->block_size);
        memcpy(e + D_NAME, t->name, name_len);
        r = aik_atomic_file_write(&w->file, e, sizeof(e));
    }
    if (r < 0) {
        aik_fail(err, r, path, "write failed: %s", strerror(-r));
        goto out;
    }
    w->hdr.file_size = w->file.written;
    w->hdr.parameter_count = w->params;
    r = aik_slm_layout_checksum(w->tensors, w->n_tensors, w->hdr.layout_checksum);
    if (r < 0) {
        aik_fail(err, r, "header.layout_checksum", "computing failed");
        goto out;
    }
    memset(w->hdr.model_checksum, 0, 32);
    encode_header(&w->hdr, hdr);
    r = pwrite_all(w->file.fd, hdr, sizeof(hdr), 0);
    if (r == 0)
        r = model_checksum_fd(w->file.fd, w->hdr.file_size, w->hdr.model_checksum);
    if (r == 0)
        r = pwrite_all(w->file.fd, w->hdr.model_checksum, 32, H_MODEL_CHECKSUM);
    if (r < 0) {
        aik_fail(err, r, path, "patching the header failed: %s", strerror(-r));
        goto out;
    }
    /* Never publish a file our own reader would refuse (cheap: structure
     * only, the checksums were computed from these very bytes). */
    r = aik_slm_open_fd(w->file.fd, 0, &check, err);
    aik_slm_close(check);
    if (r < 0) {
        aik_error_prefix(err, "writer self-check");
        goto out;
    }
    r = aik_atomic_file_commit(&w->file);
    if (r < 0)
        aik_fail(err, r, path, "committing failed: %s", strerror(-r));
out:
    writer_free(w);
    return r;
}

void aik_slm_writer_abort(aik_slm_writer *w)
{
    writer_free(w);
}
