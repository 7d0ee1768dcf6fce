/* SPDX-License-Identifier: MIT */
/* GGUF reader (validate everything on open) and writer. See gguf.h. */
#include "interop/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/checked.h"
#include "common/error.h"

/* ---- ggml type table ---------------------------------------------------- */

static const struct {
    const char *name;
    uint32_t blck;
    uint32_t bytes;
} ggml_types[AIK_GGML_TYPE_MAX] = {
    [0] = { "f32", 1, 4 },       [1] = { "f16", 1, 2 },       [2] = { "q4_0", 32, 18 },
    [3] = { "q4_1", 32, 20 },    [6] = { "q5_0", 32, 22 },    [7] = { "q5_1", 32, 24 },
    [8] = { "q8_0", 32, 34 },    [9] = { "q8_1", 32, 36 },    [10] = { "q2_K", 256, 84 },
    [11] = { "q3_K", 256, 110 }, [12] = { "q4_K", 256, 144 }, [13] = { "q5_K", 256, 176 },
    [14] = { "q6_K", 256, 210 }, [15] = { "q8_K", 256, 292 }, [16] = { "iq2_xxs", 256, 66 },
    [17] = { "iq2_xs", 256, 74 }, [18] = { "iq3_xxs", 256, 98 }, [19] = { "iq1_s", 256, 50 },
    [20] = { "iq4_nl", 32, 18 }, [21] = { "iq3_s", 256, 110 }, [22] = { "iq2_s", 256, 82 },
    [23] = { "iq4_xs", 256, 136 }, [24] = { "i8", 1, 1 },     [25] = { "i16", 1, 2 },
    [26] = { "i32", 1, 4 },      [27] = { "i64", 1, 8 },      [28] = { "f64", 1, 8 },
    [29] = { "iq1_m", 256, 56 }, [30] = { "bf16", 1, 2 },     [34] = { "tq1_0", 256, 54 },
    [35] = { "tq2_0", 256, 66 },
};

bool aik_ggml_type_info(uint32_t type, uint32_t *ret_block_elems, uint32_t *ret_block_bytes)
{
    if (type >= AIK_GGML_TYPE_MAX || !ggml_types[type].name)
        return false;
    if (ret_block_elems)
        *ret_block_elems = ggml_types[type].blck;
    if (ret_block_bytes)
        *ret_block_bytes = ggml_types[type].bytes;
    return true;
}

const char *aik_ggml_type_name(uint32_t type)
{
    return (type < AIK_GGML_TYPE_MAX && ggml_types[type].name) ? ggml_types[type].name : "?";
}

int aik_ggml_nbytes(uint32_t type, uint32_t n_dims, const uint64_t ne[], uint64_t *ret_bytes)
{
    uint32_t blck, bsz;
    uint64_t rows = 1, row_bytes, total;

    if (!aik_ggml_type_info(type, &blck, &bsz) || n_dims < 1 || n_dims > AIK_GGUF_MAX_DIMS)
        return -EINVAL;
    if (ne[0] % blck != 0)
        return -EINVAL;
    for (uint32_t d = 1; d < n_dims; d++)
        if (aik_mul_overflow(rows, ne[d], &rows))
            return -EOVERFLOW;
    if (aik_mul_overflow(ne[0] / blck, bsz, &row_bytes) || aik_mul_overflow(row_bytes, rows, &total))
        return -EOVERFLOW;
    *ret_bytes = total;
    return 0;
}

/* Fixed byte size of a scalar GGUF value type; 0 for STRING/ARRAY/unknown. */
static uint32_t scalar_size(uint32_t t)
{
    switch (t) {
    case AIK_GGUF_UINT8: case AIK_GGUF_INT8: case AIK_GGUF_BOOL: return 1;
    case AIK_GGUF_UINT16: case AIK_GGUF_INT16: return 2;
    case AIK_GGUF_UINT32: case AIK_GGUF_INT32: case AIK_GGUF_FLOAT32: return 4;
    case AIK_GGUF_UINT64: case AIK_GGUF_INT64: case AIK_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static const char *type_name(uint32_t t)
{
    static const char *const names[] = { "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                         "bool", "string", "array", "uint64", "int64", "float64" };
    return t < AIK_GGUF_TYPE_COUNT ? names[t] : "?";
}

/* ---- reader ------------------------------------------------------------- */

typedef struct gguf_kv {
    char *key;
    uint32_t type;
    uint32_t arr_type;   /* ARRAY only */
    uint64_t arr_n;      /* ARRAY only */
    uint64_t val_off;    /* file offset of the value (for ARRAY: of the first element) */
    uint64_t *str_offs;  /* ARRAY of STRING: file offset of each element's length */
} gguf_kv;

struct aik_gguf {
    const uint8_t *data;
    uint64_t size;
    bool owns_map;
    uint32_t version;
    uint32_t alignment;
    uint32_t n_kv;
    uint32_t n_tensors;
    uint64_t data_offset;
    gguf_kv *kvs;
    aik_gguf_tensor *tensors;
    uint32_t *kv_sorted;     /* kv indexes sorted by key */
    uint32_t *tensor_sorted; /* tensor indexes sorted by name */
};

typedef struct cursor {
    const uint8_t *p;
    uint64_t size;
    uint64_t pos;
    aik_error *err;
} cursor;

static int cur_read(cursor *c, void *out, uint64_t n, const char *where)
{
    if (!aik_range_ok(c->pos, n, c->size))
        return aik_fail(c->err, -EBADMSG, where, "truncated: needs %" PRIu64 " bytes at offset %" PRIu64
                        ", file has %" PRIu64, n, c->pos, c->size);
    memcpy(out, c->p + c->pos, n);
    c->pos += n;
    return 0;
}

static int cur_skip(cursor *c, uint64_t n, const char *where)
{
    if (!aik_range_ok(c->pos, n, c->size))
        return aik_fail(c->err, -EBADMSG, where, "truncated: needs %" PRIu64 " bytes at offset %" PRIu64
                        ", file has %" PRIu64, n, c->pos, c->size);
    c->pos += n;
    return 0;
}

/* Read a string header and check its bytes are present; returns its offset
 * and length. */
static int cur_string(cursor *c, uint64_t max_len, const char *where, uint64_t *ret_off, uint64_t *ret_len)
{
    uint64_t len = 0;
    int r = cur_read(c, &len, 8, where);
    if (r < 0)
        return r;
    if (len > max_len)
        return aik_fail(c->err, -E2BIG, where, "string length %" PRIu64 " exceeds limit %" PRIu64, len, max_len);
    if (!aik_range_ok(c->pos, len, c->size))
        return aik_fail(c->err, -EBADMSG, where, "string of %" PRIu64 " bytes at offset %" PRIu64
                        " runs past end of file (%" PRIu64 ")", len, c->pos, c->size);
    *ret_off = c->pos;
    *ret_len = len;
    c->pos += len;
    return 0;
}

/* A C string copy of a key or tensor name: non-empty and without NUL bytes
 * (they are used as C strings everywhere). */
static int dup_name(cursor *c, uint64_t off, uint64_t len, const char *where, char **ret)
{
    char *s;
    if (len == 0)
        return aik_fail(c->err, -EBADMSG, where, "empty name");
    if (memchr(c->p + off, 0, len))
        return aik_fail(c->err, -EBADMSG, where, "name contains a NUL byte");
    s = malloc(len + 1);
    if (!s)
        return aik_fail(c->err, -ENOMEM, where, "out of memory");
    memcpy(s, c->p + off, len);
    s[len] = '\0';
    *ret = s;
    return 0;
}

/* qsort() has no context argument in C11 and opens may run concurrently in
 * several threads, so the comparators read a thread-local handle. */
static _Thread_local const aik_gguf *tl_g;

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(tl_g->kvs[*(const uint32_t *)a].key, tl_g->kvs[*(const uint32_t *)b].key);
}
static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp(tl_g->tensors[*(const uint32_t *)a].name, tl_g->tensors[*(const uint32_t *)b].name);
}
static int cmp_tensor_off(const void *a, const void *b)
{
    uint64_t x = tl_g->tensors[*(const uint32_t *)a].offset;
    uint64_t y = tl_g->tensors[*(const uint32_t *)b].offset;
    return x < y ? -1 : x > y;
}

static void sort_indexes(aik_gguf *g, uint32_t *idx, uint32_t n, int (*cmp)(const void *, const void *))
{
    for (uint32_t i = 0; i < n; i++)
        idx[i] = i;
    tl_g = g;
    qsort(idx, n, sizeof(*idx), cmp);
    tl_g = NULL;
}

static int parse_kv(aik_gguf *g, cursor *c, uint32_t i)
{
    gguf_kv *kv = &g->kvs[i];
    char where[64];
    uint64_t off, len;
    int r;

    snprintf(where, sizeof(where), "kv[%u].key", i);
    if ((r = cur_string(c, AIK_GGUF_MAX_KEY_LEN, where, &off, &len)) < 0)
        return r;
    if ((r = dup_name(c, off, len, where, &kv->key)) < 0)
        return r;
    snprintf(where, sizeof(where), "kv[%u].type", i);
    if ((r = cur_read(c, &kv->type, 4, where)) < 0)
        return r;
    if (kv->type >= AIK_GGUF_TYPE_COUNT)
        return aik_fail(c->err, -EBADMSG, where, "unknown value type %u for key '%s'", kv->type, kv->key);
    kv->val_off = c->pos;
    snprintf(where, sizeof(where), "kv[%u].value", i);
    if (kv->type == AIK_GGUF_STRING)
        return cur_string(c, AIK_GGUF_MAX_STRING_LEN, where, &off, &len);
    if (kv->type != AIK_GGUF_ARRAY)
        return cur_skip(c, scalar_size(kv->type), where);

    snprintf(where, sizeof(where), "kv[%u].array.type", i);
    if ((r = cur_read(c, &kv->arr_type, 4, where)) < 0)
        return r;
    if (kv->arr_type >= AIK_GGUF_TYPE_COUNT || kv->arr_type == AIK_GGUF_ARRAY)
        return aik_fail(c->err, -EBADMSG, where, "%s element type %u for key '%s'",
                        kv->arr_type == AIK_GGUF_ARRAY ? "nested array" : "unknown", kv->arr_type, kv->key);
    snprintf(where, sizeof(where), "kv[%u].array.count", i);
    if ((r = cur_read(c, &kv->arr_n, 8, where)) < 0)
        return r;
    kv->val_off = c->pos;
    if (kv->arr_type != AIK_GGUF_STRING) {
        uint64_t bytes;
        if (aik_mul_overflow(kv->arr_n, scalar_size(kv->arr_type), &bytes))
            return aik_fail(c->err, -EOVERFLOW, where, "%" PRIu64 " elements of %s overflow", kv->arr_n,
                            type_name(kv->arr_type));
        snprintf(where, sizeof(where), "kv[%u].value", i);
        return cur_skip(c, bytes, where);
    }
    /* Every string takes at least its 8-byte length: bound the count by the
     * bytes left before allocating the offset table. */
    if (kv->arr_n > (c->size - c->pos) / 8)
        return aik_fail(c->err, -EBADMSG, where, "%" PRIu64 " strings cannot fit in the %" PRIu64
                        " bytes left", kv->arr_n, c->size - c->pos);
    kv->str_offs = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof(uint64_t));
    if (!kv->str_offs)
        return aik_fail(c->err, -ENOMEM, where, "out of memory");
    for (uint64_t k = 0; k < kv->arr_n; k++) {
        snprintf(where, sizeof(where), "kv[%u].value[%" PRIu64 "]", i, k);
        kv->str_offs[k] = c->pos;
        if ((r = cur_string(c, AIK_GGUF_MAX_STRING_LEN, where, &off, &len)) < 0)
            return r;
    }
    return 0;
}

static int parse_tensor_info(aik_gguf *g, cursor *c, uint32_t i)
{
    aik_gguf_tensor *t = &g->tensors[i];
    char where[64];
    uint64_t off, len;
    char *name = NULL;
    int r;

    snprintf(where, sizeof(where), "tensor[%u].name", i);
    if ((r = cur_string(c, UINT64_MAX, where, &off, &len)) < 0)
        return r;
    if (len > AIK_GGUF_MAX_NAME_LEN)
        return aik_fail(c->err, -EBADMSG, where, "name of %" PRIu64 " bytes exceeds %d", len, AIK_GGUF_MAX_NAME_LEN);
    if ((r = dup_name(c, off, len, where, &name)) < 0)
        return r;
    t->name = name;
    snprintf(where, sizeof(where), "tensor[%u].n_dims", i);
    if ((r = cur_read(c, &t->n_dims, 4, where)) < 0)
        return r;
    if (t->n_dims < 1 || t->n_dims > AIK_GGUF_MAX_DIMS)
        return aik_fail(c->err, -EBADMSG, where, "%u dims for '%s', must be 1..%d", t->n_dims, name, AIK_GGUF_MAX_DIMS);
    snprintf(where, sizeof(where), "tensor[%u].ne", i);
    for (uint32_t d = 0; d < AIK_GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    if ((r = cur_read(c, t->ne, 8ull * t->n_dims, where)) < 0)
        return r;
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (t->ne[d] == 0 || t->ne[d] > INT64_MAX)
            return aik_fail(c->err, -EBADMSG, where, "ne[%u] = %" PRIu64 " for '%s' is out of range", d, t->ne[d], name);
    snprintf(where, sizeof(where), "tensor[%u].type", i);
    if ((r = cur_read(c, &t->type, 4, where)) < 0)
        return r;
    if (!aik_ggml_type_info(t->type, NULL, NULL))
        return aik_fail(c->err, -EBADMSG, where, "unknown ggml type %u for '%s'", t->type, name);
    r = aik_ggml_nbytes(t->type, t->n_dims, t->ne, &t->size);
    if (r == -EINVAL) {
        uint32_t blck;
        aik_ggml_type_info(t->type, &blck, NULL);
        return aik_fail(c->err, -EBADMSG, where, "ne[0] = %" PRIu64 " of '%s' is not a multiple of the %s block size %u",
                        t->ne[0], name, aik_ggml_type_name(t->type), blck);
    }
    if (r < 0) {
        snprintf(where, sizeof(where), "tensor[%u].ne", i);
        return aik_fail(c->err, -EOVERFLOW, where, "size of '%s' overflows 64 bits", name);
    }
    snprintf(where, sizeof(where), "tensor[%u].offset", i);
    return cur_read(c, &t->offset, 8, where);
}

static int find_alignment(aik_gguf *g, aik_error *err)
{
    int k = aik_gguf_find_kv(g, "general.alignment");
    uint32_t a;

    g->alignment = AIK_GGUF_DEFAULT_ALIGNMENT;
    if (k < 0)
        return 0;
    if (g->kvs[k].type != AIK_GGUF_UINT32)
        return aik_fail(err, -EBADMSG, "general.alignment", "has type %s, must be uint32", type_name(g->kvs[k].type));
    memcpy(&a, g->data + g->kvs[k].val_off, 4);
    if (a == 0 || (a & (a - 1)) != 0 || a > AIK_GGUF_MAX_ALIGNMENT)
        return aik_fail(err, -EBADMSG, "general.alignment", "is %u, must be a power of two <= %u", a,
                        AIK_GGUF_MAX_ALIGNMENT);
    g->alignment = a;
    return 0;
}

static int parse(aik_gguf *g, aik_error *err)
{
    cursor c = { .p = g->data, .size = g->size, .pos = 0, .err = err };
    uint32_t magic;
    uint64_t n_tensors, n_kv, data_size;
    uint32_t *by_off = NULL;
    int r;

    if ((r = cur_read(&c, &magic, 4, "header.magic")) < 0)
        return r;
    if (magic != AIK_GGUF_MAGIC)
        return aik_fail(err, -EBADMSG, "header.magic", "is 0x%08x, not \"GGUF\"", magic);
    if ((r = cur_read(&c, &g->version, 4, "header.version")) < 0)
        return r;
    if (g->version != 2 && g->version != 3)
        return aik_fail(err, -ENOTSUP, "header.version", "is %u, only 2 and 3 are supported", g->version);
    if ((r = cur_read(&c, &n_tensors, 8, "header.tensor_count")) < 0)
        return r;
    if ((r = cur_read(&c, &n_kv, 8, "header.kv_count")) < 0)
        return r;
    if (n_tensors > AIK_GGUF_MAX_TENSORS)
        return aik_fail(err, -E2BIG, "header.tensor_count", "is %" PRIu64 ", limit %d", n_tensors, AIK_GGUF_MAX_TENSORS);
    if (n_kv > AIK_GGUF_MAX_KV)
        return aik_fail(err, -E2BIG, "header.kv_count", "is %" PRIu64 ", limit %d", n_kv, AIK_GGUF_MAX_KV);
    /* Minimum encoded sizes (key 8 + type 4 + 1; name 8 + dims 4 + ne 8 +
     * type 4 + offset 8) bound the counts by the file before allocation. */
    if (n_kv * 13 > g->size - c.pos)
        return aik_fail(err, -EBADMSG, "header.kv_count", "%" PRIu64 " pairs cannot fit in %" PRIu64 " bytes",
                        n_kv, g->size - c.pos);
    if (n_tensors * 32 > g->size - c.pos)
        return aik_fail(err, -EBADMSG, "header.tensor_count", "%" PRIu64 " tensors cannot fit in %" PRIu64 " bytes",
                        n_tensors, g->size - c.pos);
    g->n_kv = (uint32_t)n_kv;
    g->n_tensors = (uint32_t)n_tensors;
    g->kvs = calloc(n_kv ? n_kv : 1, sizeof(*g->kvs));
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof(*g->tensors));
    g->kv_sorted = calloc(n_kv ? n_kv : 1, sizeof(uint32_t));
    g->tensor_sorted = calloc(n_tensors ? n_tensors : 1, sizeof(uint32_t));
    if (!g->kvs || !g->tensors || !g->kv_sorted || !g->tensor_sorted)
        return aik_fail(err, -ENOMEM, NULL, "out of memory");

    for (uint32_t i = 0; i < g->n_kv; i++)
        if ((r = parse_kv(g, &c, i)) < 0)
            return r;
    sort_indexes(g, g->kv_sorted, g->n_kv, cmp_kv);
    for (uint32_t i = 1; i < g->n_kv; i++) {
        uint32_t a = g->kv_sorted[i - 1], b = g->kv_sorted[i];
        if (strcmp(g->kvs[a].key, g->kvs[b].key) == 0) {
            char where[64];
            snprintf(where, sizeof(where), "kv[%u].key", a > b ? a : b);
            return aik_fail(err, -EBADMSG, where, "duplicate key '%s' (also kv[%u])", g->kvs[a].key, a < b ? a : b);
        }
    }
    if ((r = find_alignment(g, err)) < 0)
        return r;

    for (uint32_t i = 0; i < g->n_tensors; i++)
        if ((r = parse_tensor_info(g, &c, i)) < 0)
            return r;
    sort_indexes(g, g->tensor_sorted, g->n_tensors, cmp_tensor_name);
    for (uint32_t i = 1; i < g->n_tensors; i++) {
        uint32_t a = g->tensor_sorted[i - 1], b = g->tensor_sorted[i];
        if (strcmp(g->tensors[a].name, g->tensors[b].name) == 0) {
            char where[64];
            snprintf(where, sizeof(where), "tensor[%u].name", a > b ? a : b);
            return aik_fail(err, -EBADMSG, where, "duplicate tensor '%s' (also tensor[%u])", g->tensors[a].name,
                            a < b ? a : b);
        }
    }

    if (aik_align_up(c.pos, g->alignment, &g->data_offset))
        return aik_fail(err, -EOVERFLOW, "header.data_offset", "overflows");
    if (g->n_tensors == 0) {
        /* Nothing to address: a file may end right after the infos. */
        if (g->data_offset > g->size)
            g->data_offset = g->size;
        return 0;
    }
    if (g->data_offset > g->size)
        return aik_fail(err, -EBADMSG, "header.data_offset", "data section at %" PRIu64 " starts past end of file (%" PRIu64 ")",
                        g->data_offset, g->size);
    data_size = g->size - g->data_offset;
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        aik_gguf_tensor *t = &g->tensors[i];
        char where[64];
        snprintf(where, sizeof(where), "tensor[%u].offset", i);
        if (t->offset % g->alignment != 0)
            return aik_fail(err, -EBADMSG, where, "%" PRIu64 " of '%s' is not a multiple of the alignment %u",
                            t->offset, t->name, g->alignment);
        if (!aik_range_ok(t->offset, t->size, data_size))
            return aik_fail(err, -EBADMSG, where, "'%s' [%" PRIu64 ", +%" PRIu64 ") lies outside the %" PRIu64
                            "-byte data section", t->name, t->offset, t->size, data_size);
        t->data = g->data + g->data_offset + t->offset;
    }
    by_off = malloc(g->n_tensors * sizeof(uint32_t));
    if (!by_off)
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    sort_indexes(g, by_off, g->n_tensors, cmp_tensor_off);
    for (uint32_t i = 1; i < g->n_tensors; i++) {
        const aik_gguf_tensor *a = &g->tensors[by_off[i - 1]], *b = &g->tensors[by_off[i]];
        /* a->offset + a->size cannot overflow: checked against data_size above */
        if (a->offset + a->size > b->offset) {
            char where[64];
            snprintf(where, sizeof(where), "tensor[%u].offset", by_off[i]);
            r = aik_fail(err, -EBADMSG, where, "'%s' overlaps '%s'", b->name, a->name);
            free(by_off);
            return r;
        }
    }
    free(by_off);
    return 0;
}

static int open_common(const void *data, size_t size, bool owns, aik_gguf **ret, aik_error *err)
{
    aik_gguf *g = calloc(1, sizeof(*g));
    int r;

    if (!g) {
        if (owns)
            munmap((void *)data, size);
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    }
    g->data = data;
    g->size = size;
    g->owns_map = owns;
    r = parse(g, err);
    if (r < 0) {
        aik_gguf_close(g);
        return r;
    }
    *ret = g;
    return 0;
}

int aik_gguf_open_buffer(const void *data, size_t size, aik_gguf **ret_gguf, aik_error *err)
{
    static const uint8_t empty[1];
    if (!ret_gguf || (!data && size))
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    return open_common(data ? data : empty, size, false, ret_gguf, err);
}

int aik_gguf_open(const char *path, aik_gguf **ret_gguf, aik_error *err)
{
    struct stat st;
    void *map;
    int fd, r;

    if (!path || !ret_gguf)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return aik_fail(err, -errno, path, "cannot open: %s", strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        r = aik_fail(err, -EINVAL, path, "not a regular file");
        close(fd);
        return r;
    }
    if (st.st_size == 0) {
        close(fd);
        r = aik_gguf_open_buffer(NULL, 0, ret_gguf, err);
        aik_error_prefix(err, path);
        return r;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    r = -errno;
    close(fd);
    if (map == MAP_FAILED)
        return aik_fail(err, r, path, "mmap failed: %s", strerror(-r));
    r = open_common(map, (size_t)st.st_size, true, ret_gguf, err);
    if (r < 0)
        aik_error_prefix(err, path);
    return r;
}

void aik_gguf_close(aik_gguf *g)
{
    if (!g)
        return;
    if (g->kvs)
        for (uint32_t i = 0; i < g->n_kv; i++) {
            free(g->kvs[i].key);
            free(g->kvs[i].str_offs);
        }
    if (g->tensors)
        for (uint32_t i = 0; i < g->n_tensors; i++)
            free((char *)g->tensors[i].name);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_sorted);
    free(g->tensor_sorted);
    if (g->owns_map)
        munmap((void *)g->data, g->size);
    free(g);
}

uint32_t aik_gguf_version(const aik_gguf *g) { return g->version; }
uint32_t aik_gguf_alignment(const aik_gguf *g) { return g->alignment; }
uint64_t aik_gguf_data_offset(const aik_gguf *g) { return g->data_offset; }
uint32_t aik_gguf_kv_count(const aik_gguf *g) { return g->n_kv; }
uint32_t aik_gguf_tensor_count(const aik_gguf *g) { return g->n_tensors; }

const char *aik_gguf_kv_key(const aik_gguf *g, uint32_t i) { return i < g->n_kv ? g->kvs[i].key : NULL; }

aik_gguf_type aik_gguf_kv_type(const aik_gguf *g, uint32_t i)
{
    return i < g->n_kv ? (aik_gguf_type)g->kvs[i].type : AIK_GGUF_TYPE_COUNT;
}

int aik_gguf_find_kv(const aik_gguf *g, const char *key)
{
    size_t lo = 0, hi = g->n_kv;
    /* Binary search over kv_sorted (parse() sorts it before its first
     * lookup, general.alignment). */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(key, g->kvs[g->kv_sorted[mid]].key);
        if (c == 0)
            return (int)g->kv_sorted[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -ENOENT;
}

const aik_gguf_tensor *aik_gguf_tensor_at(const aik_gguf *g, uint32_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const aik_gguf_tensor *aik_gguf_find_tensor(const aik_gguf *g, const char *name)
{
    size_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, g->tensors[g->tensor_sorted[mid]].name);
        if (c == 0)
            return &g->tensors[g->tensor_sorted[mid]];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Decode an integer/bool scalar of type t at p. false when not integer. */
static bool load_int(uint32_t t, const uint8_t *p, int64_t *ret_s, uint64_t *ret_u, bool *ret_neg)
{
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64; int64_t i64; } v;
    int64_t s = 0;
    uint64_t u = 0;
    bool neg = false;

    memcpy(&v, p, scalar_size(t) ? scalar_size(t) : 1);
    switch (t) {
    case AIK_GGUF_UINT8: case AIK_GGUF_BOOL: u = v.u8; break;
    case AIK_GGUF_INT8: s = v.i8; neg = s < 0; u = (uint64_t)s; break;
    case AIK_GGUF_UINT16: u = v.u16; break;
    case AIK_GGUF_INT16: s = v.i16; neg = s < 0; u = (uint64_t)s; break;
    case AIK_GGUF_UINT32: u = v.u32; break;
    case AIK_GGUF_INT32: s = v.i32; neg = s < 0; u = (uint64_t)s; break;
    case AIK_GGUF_UINT64: u = v.u64; break;
    case AIK_GGUF_INT64: s = v.i64; neg = s < 0; u = (uint64_t)s; break;
    default: return false;
    }
    if (!neg && t != AIK_GGUF_INT8 && t != AIK_GGUF_INT16 && t != AIK_GGUF_INT32 && t != AIK_GGUF_INT64)
        s = (int64_t)u; /* may wrap for u64 > INT64_MAX; callers check ret_u */
    *ret_s = s;
    *ret_u = u;
    *ret_neg = neg;
    return true;
}

static int get_kv(const aik_gguf *g, const char *key, aik_error *err)
{
    int k;
    if (!g || !key)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    k = aik_gguf_find_kv(g, key);
    if (k < 0)
        return aik_fail(err, -ENOENT, key, "missing");
    return k;
}

int aik_gguf_get_i64(const aik_gguf *g, const char *key, int64_t *ret, aik_error *err)
{
    int k = get_kv(g, key, err);
    int64_t s;
    uint64_t u;
    bool neg;

    if (k < 0)
        return k;
    if (g->kvs[k].type == AIK_GGUF_BOOL || !load_int(g->kvs[k].type, g->data + g->kvs[k].val_off, &s, &u, &neg))
        return aik_fail(err, -EBADMSG, key, "has type %s, expected an integer", type_name(g->kvs[k].type));
    if (!neg && u > INT64_MAX)
        return aik_fail(err, -ERANGE, key, "value %" PRIu64 " out of range", u);
    *ret = s;
    return 0;
}

int aik_gguf_get_u32(const aik_gguf *g, const char *key, uint32_t *ret, aik_error *err)
{
    int k = get_kv(g, key, err);
    int64_t s;
    uint64_t u;
    bool neg;

    if (k < 0)
        return k;
    if (g->kvs[k].type == AIK_GGUF_BOOL || !load_int(g->kvs[k].type, g->data + g->kvs[k].val_off, &s, &u, &neg))
        return aik_fail(err, -EBADMSG, key, "has type %s, expected an integer", type_name(g->kvs[k].type));
    if (neg || u > UINT32_MAX)
        return aik_fail(err, -ERANGE, key, "value %" PRId64 " does not fit in uint32", s);
    *ret = (uint32_t)u;
    return 0;
}

int aik_gguf_get_f32(const aik_gguf *g, const char *key, float *ret, aik_error *err)
{
    int k = get_kv(g, key, err);
    if (k < 0)
        return k;
    if (g->kvs[k].type == AIK_GGUF_FLOAT32) {
        memcpy(ret, g->data + g->kvs[k].val_off, 4);
    } else if (g->kvs[k].type == AIK_GGUF_FLOAT64) {
        double d;
        memcpy(&d, g->data + g->kvs[k].val_off, 8);
        *ret = (float)d;
    } else {
        return aik_fail(err, -EBADMSG, key, "has type %s, expected float32", type_name(g->kvs[k].type));
    }
    return 0;
}

int aik_gguf_get_bool(const aik_gguf *g, const char *key, bool *ret, aik_error *err)
{
    int k = get_kv(g, key, err);
    if (k < 0)
        return k;
    if (g->kvs[k].type != AIK_GGUF_BOOL)
        return aik_fail(err, -EBADMSG, key, "has type %s, expected bool", type_name(g->kvs[k].type));
    *ret = g->data[g->kvs[k].val_off] != 0;
    return 0;
}

int aik_gguf_get_str(const aik_gguf *g, const char *key, const char **ret, size_t *ret_len, aik_error *err)
{
    int k = get_kv(g, key, err);
    uint64_t len;
    if (k < 0)
        return k;
    if (g->kvs[k].type != AIK_GGUF_STRING)
        return aik_fail(err, -EBADMSG, key, "has type %s, expected string", type_name(g->kvs[k].type));
    memcpy(&len, g->data + g->kvs[k].val_off, 8);
    *ret = (const char *)g->data + g->kvs[k].val_off + 8;
    *ret_len = (size_t)len;
    return 0;
}

int aik_gguf_get_arr(const aik_gguf *g, const char *key, aik_gguf_type *ret_type, uint64_t *ret_n, aik_error *err)
{
    int k = get_kv(g, key, err);
    if (k < 0)
        return k;
    if (g->kvs[k].type != AIK_GGUF_ARRAY)
        return aik_fail(err, -EBADMSG, key, "has type %s, expected array", type_name(g->kvs[k].type));
    if (ret_type)
        *ret_type = (aik_gguf_type)g->kvs[k].arr_type;
    if (ret_n)
        *ret_n = g->kvs[k].arr_n;
    return k;
}

int aik_gguf_arr_str(const aik_gguf *g, int kv, uint64_t i, const char **ret, size_t *ret_len)
{
    const gguf_kv *a;
    uint64_t len;
    if (!g || kv < 0 || (uint32_t)kv >= g->n_kv)
        return -EINVAL;
    a = &g->kvs[kv];
    if (a->type != AIK_GGUF_ARRAY || a->arr_type != AIK_GGUF_STRING || i >= a->arr_n)
        return -EINVAL;
    memcpy(&len, g->data + a->str_offs[i], 8);
    *ret = (const char *)g->data + a->str_offs[i] + 8;
    *ret_len = (size_t)len;
    return 0;
}

int aik_gguf_arr_int(const aik_gguf *g, int kv, uint64_t i, int64_t *ret)
{
    const gguf_kv *a;
    int64_t s;
    uint64_t u;
    bool neg;
    if (!g || kv < 0 || (uint32_t)kv >= g->n_kv)
        return -EINVAL;
    a = &g->kvs[kv];
    if (a->type != AIK_GGUF_ARRAY || i >= a->arr_n || !scalar_size(a->arr_type))
        return -EINVAL;
    if (!load_int(a->arr_type, g->data + a->val_off + i * scalar_size(a->arr_type), &s, &u, &neg))
        return -EINVAL;
    if (!neg && u > INT64_MAX)
        return -ERANGE;
    *ret = s;
    return 0;
}

int aik_gguf_arr_f64(const aik_gguf *g, int kv, uint64_t i, double *ret)
{
    const gguf_kv *a;
    const uint8_t *p;
    if (!g || kv < 0 || (uint32_t)kv >= g->n_kv)
        return -EINVAL;
    a = &g->kvs[kv];
    if (a->type != AIK_GGUF_ARRAY || i >= a->arr_n || !scalar_size(a->arr_type))
        return -EINVAL;
    p = g->data + a->val_off + i * scalar_size(a->arr_type);
    if (a->arr_type == AIK_GGUF_FLOAT32) {
        float f;
        memcpy(&f, p, 4);
        *ret = f;
    } else if (a->arr_type == AIK_GGUF_FLOAT64) {
        memcpy(ret, p, 8);
    } else {
        int64_t s;
        uint64_t u;
        bool neg;
        if (!load_int(a->arr_type, p, &s, &u, &neg))
            return -EINVAL;
        *ret = neg ? (double)s : (double)u;
    }
    return 0;
}

int aik_gguf_get_u32_per_layer(const aik_gguf *g, const char *key, uint32_t n, uint32_t *ret, aik_error *err)
{
    int k = get_kv(g, key, err);
    uint32_t v;
    int r;

    if (k < 0)
        return k;
    if (g->kvs[k].type != AIK_GGUF_ARRAY) {
        if ((r = aik_gguf_get_u32(g, key, &v, err)) < 0)
            return r;
        for (uint32_t i = 0; i < n; i++)
            ret[i] = v;
        return 0;
    }
    if (g->kvs[k].arr_n != n)
        return aik_fail(err, -EBADMSG, key, "array has %" PRIu64 " entries, expected one per layer (%u)",
                        g->kvs[k].arr_n, n);
    for (uint32_t i = 0; i < n; i++) {
        int64_t s;
        if (aik_gguf_arr_int(g, k, i, &s) < 0 || g->kvs[k].arr_type == AIK_GGUF_BOOL)
            return aik_fail(err, -EBADMSG, key, "array of %s, expected integers", type_name(g->kvs[k].arr_type));
        if (s < 0 || s > UINT32_MAX)
            return aik_fail(err, -ERANGE, key, "entry %u = %" PRId64 " out of range", i, s);
        ret[i] = (uint32_t)s;
    }
    return 0;
}

/* ---- writer ------------------------------------------------------------- */

typedef struct wtensor {
    char *name;
    uint32_t type;
    uint32_t n_dims;
    uint64_t ne[AIK_GGUF_MAX_DIMS];
    const void *data;
    uint64_t size;
    uint64_t offset;
} wtensor;

struct aik_gguf_writer {
    uint32_t alignment;
    uint8_t *kvbuf; /* serialized kv pairs */
    size_t kvlen, kvcap;
    uint64_t n_kv;
    char **keys;
    wtensor *tensors;
    uint32_t n_tensors, cap_tensors;
};

static int wbuf_put(aik_gguf_writer *w, const void *p, size_t n)
{
    if (w->kvlen + n > w->kvcap) {
        size_t cap = w->kvcap ? w->kvcap : 4096;
        uint8_t *nb;
        while (cap < w->kvlen + n)
            cap *= 2;
        nb = realloc(w->kvbuf, cap);
        if (!nb)
            return -ENOMEM;
        w->kvbuf = nb;
        w->kvcap = cap;
    }
    memcpy(w->kvbuf + w->kvlen, p, n);
    w->kvlen += n;
    return 0;
}

static int wbuf_str(aik_gguf_writer *w, const char *s, uint64_t len)
{
    int r = wbuf_put(w, &len, 8);
    return r < 0 ? r : wbuf_put(w, s, (size_t)len);
}

int aik_gguf_writer_new(uint32_t alignment, aik_gguf_writer **ret_w)
{
    aik_gguf_writer *w;
    if (!ret_w || (alignment & (alignment - 1)) != 0 || alignment > AIK_GGUF_MAX_ALIGNMENT)
        return -EINVAL;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->alignment = alignment ? alignment : AIK_GGUF_DEFAULT_ALIGNMENT;
    if (w->alignment != AIK_GGUF_DEFAULT_ALIGNMENT && aik_gguf_writer_add_u32(w, "general.alignment", w->alignment, NULL) < 0) {
        aik_gguf_writer_free(w);
        return -ENOMEM;
    }
    *ret_w = w;
    return 0;
}

void aik_gguf_writer_free(aik_gguf_writer *w)
{
    if (!w)
        return;
    for (uint64_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    for (uint32_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->keys);
    free(w->tensors);
    free(w->kvbuf);
    free(w);
}

/* Register a key (unique) and write its header: key string + type. */
static int begin_kv(aik_gguf_writer *w, const char *key, uint32_t type, aik_error *err)
{
    char **nk, *copy;
    size_t len;

    if (!w || !key || !key[0])
        return aik_fail(err, -EINVAL, "key", "empty key");
    len = strlen(key);
    if (len > AIK_GGUF_MAX_KEY_LEN)
        return aik_fail(err, -EINVAL, key, "key too long");
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return aik_fail(err, -EEXIST, key, "duplicate key");
    if (w->n_kv >= AIK_GGUF_MAX_KV)
        return aik_fail(err, -E2BIG, key, "too many keys");
    nk = realloc(w->keys, (w->n_kv + 1) * sizeof(*nk));
    if (!nk)
        return aik_fail(err, -ENOMEM, key, "out of memory");
    w->keys = nk;
    copy = strdup(key);
    if (!copy || wbuf_str(w, key, len) < 0 || wbuf_put(w, &type, 4) < 0) {
        free(copy);
        return aik_fail(err, -ENOMEM, key, "out of memory");
    }
    w->keys[w->n_kv++] = copy;
    return 0;
}

static int add_scalar(aik_gguf_writer *w, const char *key, uint32_t type, const void *v, aik_error *err)
{
    int r = begin_kv(w, key, type, err);
    if (r < 0)
        return r;
    if (wbuf_put(w, v, scalar_size(type)) < 0)
        return aik_fail(err, -ENOMEM, key, "out of memory");
    return 0;
}

int aik_gguf_writer_add_u32(aik_gguf_writer *w, const char *key, uint32_t v, aik_error *err)
{
    return add_scalar(w, key, AIK_GGUF_UINT32, &v, err);
}
int aik_gguf_writer_add_i32(aik_gguf_writer *w, const char *key, int32_t v, aik_error *err)
{
    return add_scalar(w, key, AIK_GGUF_INT32, &v, err);
}
int aik_gguf_writer_add_f32(aik_gguf_writer *w, const char *key, float v, aik_error *err)
{
    return add_scalar(w, key, AIK_GGUF_FLOAT32, &v, err);
}
int aik_gguf_writer_add_bool(aik_gguf_writer *w, const char *key, bool v, aik_error *err)
{
    uint8_t b = v ? 1 : 0;
    return add_scalar(w, key, AIK_GGUF_BOOL, &b, err);
}

int aik_gguf_writer_add_str(aik_gguf_writer *w, const char *key, const char *s, size_t len, aik_error *err)
{
    int r;
    if (!s && len)
        return aik_fail(err, -EINVAL, key, "NULL string");
    if ((r = begin_kv(w, key, AIK_GGUF_STRING, err)) < 0)
        return r;
    if (wbuf_str(w, s ? s : "", len) < 0)
        return aik_fail(err, -ENOMEM, key, "out of memory");
    return 0;
}

int aik_gguf_writer_add_arr(aik_gguf_writer *w, const char *key, aik_gguf_type type, const void *data, uint64_t n,
                            aik_error *err)
{
    uint32_t t = type;
    uint64_t bytes;
    int r;
    if (!scalar_size(type) || (!data && n) || aik_mul_overflow(n, scalar_size(type), &bytes) || bytes > SIZE_MAX / 2)
        return aik_fail(err, -EINVAL, key, "invalid array");
    if ((r = begin_kv(w, key, AIK_GGUF_ARRAY, err)) < 0)
        return r;
    if (wbuf_put(w, &t, 4) < 0 || wbuf_put(w, &n, 8) < 0 || (bytes && wbuf_put(w, data, (size_t)bytes) < 0))
        return aik_fail(err, -ENOMEM, key, "out of memory");
    return 0;
}

int aik_gguf_writer_add_arr_str(aik_gguf_writer *w, const char *key, const char *const *strs, const size_t *lens,
                                uint64_t n, aik_error *err)
{
    uint32_t t = AIK_GGUF_STRING;
    int r;
    if (!strs && n)
        return aik_fail(err, -EINVAL, key, "invalid array");
    if ((r = begin_kv(w, key, AIK_GGUF_ARRAY, err)) < 0)
        return r;
    if (wbuf_put(w, &t, 4) < 0 || wbuf_put(w, &n, 8) < 0)
        return aik_fail(err, -ENOMEM, key, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strlen(strs[i]);
        if (len > AIK_GGUF_MAX_STRING_LEN)
            return aik_fail(err, -E2BIG, key, "element %" PRIu64 " too long", i);
        if (wbuf_str(w, strs[i], len) < 0)
            return aik_fail(err, -ENOMEM, key, "out of memory");
    }
    return 0;
}

int aik_gguf_writer_add_tensor(aik_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                               const uint64_t ne[], const void *data, uint64_t nbytes, aik_error *err)
{
    wtensor *t;
    uint64_t size;
    size_t len;

    if (!w || !name || !ne || !data)
        return aik_fail(err, -EINVAL, name, "invalid argument");
    len = strlen(name);
    if (len == 0 || len > AIK_GGUF_MAX_NAME_LEN)
        return aik_fail(err, -EINVAL, name, "tensor name must be 1..%d bytes", AIK_GGUF_MAX_NAME_LEN);
    for (uint32_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return aik_fail(err, -EEXIST, name, "duplicate tensor");
    if (w->n_tensors >= AIK_GGUF_MAX_TENSORS)
        return aik_fail(err, -E2BIG, name, "too many tensors");
    if (n_dims < 1 || n_dims > AIK_GGUF_MAX_DIMS)
        return aik_fail(err, -EINVAL, name, "n_dims %u", n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] == 0 || ne[d] > INT64_MAX)
            return aik_fail(err, -EINVAL, name, "ne[%u] = %" PRIu64 " out of range", d, ne[d]);
    if (aik_ggml_nbytes(type, n_dims, ne, &size) < 0 || size != nbytes)
        return aik_fail(err, -EINVAL, name, "%" PRIu64 " bytes do not match type %s and shape", nbytes,
                        aik_ggml_type_name(type));
    if (w->n_tensors == w->cap_tensors) {
        uint32_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        wtensor *nt = realloc(w->tensors, cap * sizeof(*nt));
        if (!nt)
            return aik_fail(err, -ENOMEM, name, "out of memory");
        w->tensors = nt;
        w->cap_tensors = cap;
    }
    t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof(*t));
    t->name = strdup(name);
    if (!t->name)
        return aik_fail(err, -ENOMEM, name, "out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < AIK_GGUF_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->size = size;
    w->n_tensors++;
    return 0;
}

/* Output sink: a file or a growing buffer. */
typedef struct sink {
    aik_atomic_file *f;
    uint8_t *buf;
    size_t len, cap;
} sink;

static int sink_put(sink *s, const void *p, size_t n)
{
    if (s->f)
        return aik_atomic_file_write(s->f, p, n);
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 65536;
        uint8_t *nb;
        while (cap < s->len + n)
            cap *= 2;
        nb = realloc(s->buf, cap);
        if (!nb)
            return -ENOMEM;
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

static int sink_pad(sink *s, uint64_t pos, uint32_t align)
{
    static const uint8_t zeros[64];
    uint64_t target = pos;
    if (aik_align_up(pos, align, &target))
        return -EOVERFLOW;
    while (pos < target) {
        size_t n = target - pos > sizeof(zeros) ? sizeof(zeros) : (size_t)(target - pos);
        int r = sink_put(s, zeros, n);
        if (r < 0)
            return r;
        pos += n;
    }
    return 0;
}

static int emit(aik_gguf_writer *w, sink *s, aik_error *err)
{
    uint32_t hdr[2] = { AIK_GGUF_MAGIC, 3 };
    uint64_t counts[2] = { w->n_tensors, w->n_kv };
    uint64_t pos, off = 0;
    int r;

    /* Offsets first: each tensor aligned inside the data section. */
    for (uint32_t i = 0; i < w->n_tensors; i++) {
        if (aik_align_up(off, w->alignment, &off))
            return aik_fail(err, -EOVERFLOW, w->tensors[i].name, "offset overflow");
        w->tensors[i].offset = off;
        if (aik_add_overflow(off, w->tensors[i].size, &off))
            return aik_fail(err, -EOVERFLOW, w->tensors[i].name, "offset overflow");
    }
    if ((r = sink_put(s, hdr, 8)) < 0 || (r = sink_put(s, counts, 16)) < 0 || (r = sink_put(s, w->kvbuf, w->kvlen)) < 0)
        goto io;
    pos = 24 + w->kvlen;
    for (uint32_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        uint64_t len = strlen(t->name);
        if ((r = sink_put(s, &len, 8)) < 0 || (r = sink_put(s, t->name, len)) < 0 ||
            (r = sink_put(s, &t->n_dims, 4)) < 0 || (r = sink_put(s, t->ne, 8ull * t->n_dims)) < 0 ||
            (r = sink_put(s, &t->type, 4)) < 0 || (r = sink_put(s, &t->offset, 8)) < 0)
            goto io;
        pos += 8 + len + 4 + 8ull * t->n_dims + 4 + 8;
    }
    if (w->n_tensors == 0)
        return 0;
    if ((r = sink_pad(s, pos, w->alignment)) < 0)
        goto io;
    pos = 0;
    for (uint32_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        if ((r = sink_pad(s, pos, w->alignment)) < 0)
            goto io;
        pos = t->offset;
        /* write in bounded chunks (size_t may be narrower than the size) */
        for (uint64_t done = 0; done < t->size;) {
            size_t n = t->size - done > (1u << 30) ? (1u << 30) : (size_t)(t->size - done);
            if ((r = sink_put(s, (const uint8_t *)t->data + done, n)) < 0)
                goto io;
            done += n;
        }
        pos += t->size;
    }
    return 0;
io:
    return aik_fail(err, r, NULL, "write failed: %s", strerror(-r));
}

int aik_gguf_writer_write_file(aik_gguf_writer *w, const char *path, aik_error *err)
{
    aik_atomic_file f;
    sink s = { .f = &f };
    int r;

    if (!w || !path)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    if ((r = aik_atomic_file_open(&f, path, 0644)) < 0)
        return aik_fail(err, r, path, "cannot create: %s", strerror(-r));
    r = emit(w, &s, err);
    if (r < 0) {
        aik_atomic_file_abort(&f);
        aik_error_prefix(err, path);
        return r;
    }
    r = aik_atomic_file_commit(&f);
    aik_atomic_file_abort(&f);
    if (r < 0)
        return aik_fail(err, r, path, "commit failed: %s", strerror(-r));
    return 0;
}

int aik_gguf_writer_write_buffer(aik_gguf_writer *w, void **ret_data, size_t *ret_len, aik_error *err)
{
    sink s = { 0 };
    int r;
    if (!w || !ret_data || !ret_len)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    r = emit(w, &s, err);
    if (r < 0) {
        free(s.buf);
        return r;
    }
    *ret_data = s.buf ? (void *)s.buf : malloc(1);
    if (!*ret_data)
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    *ret_len = s.len;
    return 0;
}
