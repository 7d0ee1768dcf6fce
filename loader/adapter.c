/* SPDX-License-Identifier: MIT */
/* ADP1 / ASP1 / ALR1 adapter and ASG1 segment fragment reader, writer and
 * model compatibility check. */
#include "loader/adapter.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/checked.h"
#include "common/digest.h"
#include "common/error.h"

static const char *const kind_magic[] = { [AIK_ADAPTER_DENSE] = "ADP1", [AIK_ADAPTER_SPARSE] = "ASP1",
                                          [AIK_ADAPTER_LOWRANK] = "ALR1", [AIK_ADAPTER_SEGMENT] = "ASG1" };
static const char *const kind_name[] = { [AIK_ADAPTER_DENSE] = "dense", [AIK_ADAPTER_SPARSE] = "sparse",
                                         [AIK_ADAPTER_LOWRANK] = "lowrank", [AIK_ADAPTER_SEGMENT] = "segment" };

static bool kind_valid(uint32_t k) { return k >= AIK_ADAPTER_DENSE && k <= AIK_ADAPTER_SEGMENT; }

/* Fixed header bytes of a kind: ASG1 appends its layer range. */
static uint32_t kind_header_size(uint32_t k)
{
    return k == AIK_ADAPTER_SEGMENT ? AIK_SEGMENT_HEADER_SIZE : AIK_ADAPTER_HEADER_SIZE;
}

/* Which kinds a parse entry point takes. */
typedef enum parse_mode {
    PARSE_DELTAS,  /* ADP1, ASP1, ALR1 */
    PARSE_SEGMENT, /* ASG1 */
    PARSE_ANY,
} parse_mode;

const char *aik_adapter_kind_magic(aik_adapter_kind k) { return kind_valid(k) ? kind_magic[k] : "?"; }
const char *aik_adapter_kind_name(aik_adapter_kind k) { return kind_valid(k) ? kind_name[k] : "?"; }

void aik_adapter_identity_from_slm(const aik_slm *pkg, aik_adapter_identity *ret_id)
{
    aik_adapter_identity id;

    memset(&id, 0, sizeof(id));
    id.tensor_count = pkg->hdr.tensor_count;
    id.flags = pkg->hdr.flags;
    id.parameter_count = pkg->hdr.parameter_count;
    memcpy(id.layout_checksum, pkg->hdr.layout_checksum, 32);
    memcpy(id.tokenizer_checksum, pkg->hdr.tokenizer_sha256, 32);
    *ret_id = id;
}

/* ---------------------------------------------------------------- bytes --- */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }
static float rdf32(const uint8_t *p)
{
    uint32_t u = rd32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void wrf32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    wr32(p, u);
}

static bool name_char_ok(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

static int check_name(const char *name, size_t len, aik_error *err, const char *where)
{
    if (len == 0 || len > AIK_SLM_NAME_MAX)
        return aik_fail(err, -EINVAL, where, "name length %zu not in 1..%d", len, AIK_SLM_NAME_MAX);
    for (size_t i = 0; i < len; i++)
        if (!name_char_ok((uint8_t)name[i]))
            return aik_fail(err, -EINVAL, where, "byte %zu of the name is not in [A-Za-z0-9._-]", i);
    return 0;
}

/* --------------------------------------------------------------- reader --- */

typedef struct cursor {
    const uint8_t *p;
    uint64_t off, size;
} cursor;

/* Claim len bytes at the cursor, or fail naming the field (NULL, *ret_r set). */
static const uint8_t *take(cursor *c, uint64_t len, int *ret_r, aik_error *err, const char *where)
{
    const uint8_t *p;

    if (!aik_range_ok(c->off, len, c->size)) {
        *ret_r = aik_fail(err, -EINVAL, where, "needs %llu bytes at offset %llu, file has %llu",
                          (unsigned long long)len, (unsigned long long)c->off, (unsigned long long)c->size);
        return NULL;
    }
    p = c->p + c->off;
    c->off += len;
    return p;
}

static void tensor_free(aik_adapter_tensor *t)
{
    free(t->dense);
    free(t->indices);
    free(t->deltas);
    free(t->A);
    free(t->B);
    free(t->data);
}

void aik_adapter_free(aik_adapter *a)
{
    if (!a)
        return;
    for (uint32_t i = 0; i < a->n_tensors; i++)
        tensor_free(&a->tensors[i]);
    free(a->tensors);
    free(a);
}

/* count f32 values at the cursor into a fresh array. */
static int take_floats(cursor *c, uint64_t count, float **ret, aik_error *err, const char *where)
{
    const uint8_t *p = NULL;
    uint64_t bytes;
    float *v;
    int r = -EINVAL;

    if (aik_mul_overflow(count, 4, &bytes))
        return aik_fail(err, -EINVAL, where, "count %llu overflows", (unsigned long long)count);
    p = take(c, bytes, &r, err, where);
    if (!p)
        return r;
    v = malloc(count ? count * sizeof(float) : 1);
    if (!v)
        return aik_fail(err, -ENOMEM, where, "out of memory");
    for (uint64_t i = 0; i < count; i++)
        v[i] = rdf32(p + 4 * i);
    *ret = v;
    return 0;
}

static int parse_tensor(cursor *c, aik_adapter_kind kind, uint32_t idx, aik_adapter_tensor *t, aik_error *err)
{
    char where[96];
    const uint8_t *p = NULL;
    uint16_t name_len, n_dims;
    int r = -EINVAL;

    snprintf(where, sizeof(where), "tensor[%u]", idx);
    p = take(c, 8, &r, err, where);
    if (!p)
        return r;
    name_len = rd16(p);
    n_dims = rd16(p + 2);
    if (rd32(p + 4) != 0) {
        snprintf(where, sizeof(where), "tensor[%u].reserved", idx);
        return aik_fail(err, -EINVAL, where, "is %u, must be 0", rd32(p + 4));
    }
    if (n_dims < 1 || n_dims > AIK_MAX_DIMS) {
        snprintf(where, sizeof(where), "tensor[%u].n_dims", idx);
        return aik_fail(err, -EINVAL, where, "is %u, must be 1..%d", n_dims, AIK_MAX_DIMS);
    }
    if (name_len < 1 || name_len > AIK_SLM_NAME_MAX) {
        snprintf(where, sizeof(where), "tensor[%u].name_len", idx);
        return aik_fail(err, -EINVAL, where, "is %u, must be 1..%d", name_len, AIK_SLM_NAME_MAX);
    }
    snprintf(where, sizeof(where), "tensor[%u].shape", idx);
    p = take(c, 8u * n_dims, &r, err, where);
    if (!p)
        return r;
    t->n_dims = n_dims;
    t->nelems = 1;
    for (uint32_t d = 0; d < AIK_MAX_DIMS; d++)
        t->shape[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        t->shape[d] = rd64(p + 8 * d);
        snprintf(where, sizeof(where), "tensor[%u].shape[%u]", idx, d);
        if (t->shape[d] == 0)
            return aik_fail(err, -EINVAL, where, "is 0");
        if (aik_mul_overflow(t->nelems, t->shape[d], &t->nelems))
            return aik_fail(err, -EINVAL, where, "element count overflows");
    }
    snprintf(where, sizeof(where), "tensor[%u].name", idx);
    p = take(c, name_len, &r, err, where);
    if (!p)
        return r;
    memcpy(t->name, p, name_len);
    t->name[name_len] = '\0';
    r = check_name(t->name, name_len, err, where);
    if (r < 0)
        return r;

    switch (kind) {
    case AIK_ADAPTER_DENSE:
        snprintf(where, sizeof(where), "tensor[%u].delta", idx);
        return take_floats(c, t->nelems, &t->dense, err, where);
    case AIK_ADAPTER_SPARSE: {
        uint64_t bytes;

        snprintf(where, sizeof(where), "tensor[%u].count", idx);
        p = take(c, 8, &r, err, where);
        if (!p)
            return r;
        t->count = rd64(p);
        /* A valid sparse payload never has more pairs than elements; this
         * also bounds the allocation below by something the file vouches for. */
        if (t->count > t->nelems)
            return aik_fail(err, -EINVAL, where, "%llu pairs for %llu elements", (unsigned long long)t->count,
                            (unsigned long long)t->nelems);
        snprintf(where, sizeof(where), "tensor[%u].indices", idx);
        if (aik_mul_overflow(t->count, 8, &bytes))
            return aik_fail(err, -EINVAL, where, "count overflows");
        p = take(c, bytes, &r, err, where);
        if (!p)
            return r;
        t->indices = malloc(t->count ? t->count * sizeof(uint64_t) : 1);
        if (!t->indices)
            return aik_fail(err, -ENOMEM, where, "out of memory");
        for (uint64_t i = 0; i < t->count; i++)
            t->indices[i] = rd64(p + 8 * i);
        snprintf(where, sizeof(where), "tensor[%u].deltas", idx);
        return take_floats(c, t->count, &t->deltas, err, where);
    }
    case AIK_ADAPTER_LOWRANK: {
        uint64_t na, nb;

        if (n_dims != 2) {
            snprintf(where, sizeof(where), "tensor[%u].n_dims", idx);
            return aik_fail(err, -EINVAL, where, "is %u, low-rank payloads are 2-D", n_dims);
        }
        t->in = t->shape[0];
        t->out = t->shape[1];
        snprintf(where, sizeof(where), "tensor[%u].rank", idx);
        p = take(c, 8, &r, err, where);
        if (!p)
            return r;
        t->rank = rd32(p);
        t->alpha = rdf32(p + 4);
        if (t->rank < 1 || t->rank > AIK_ADAPTER_MAX_RANK)
            return aik_fail(err, -EINVAL, where, "is %u, must be 1..%d", t->rank, AIK_ADAPTER_MAX_RANK);
        if (aik_mul_overflow(t->rank, t->in, &na) || aik_mul_overflow(t->rank, t->out, &nb))
            return aik_fail(err, -EINVAL, where, "factor size overflows");
        snprintf(where, sizeof(where), "tensor[%u].A", idx);
        r = take_floats(c, na, &t->A, err, where);
        if (r < 0)
            return r;
        snprintf(where, sizeof(where), "tensor[%u].B", idx);
        return take_floats(c, nb, &t->B, err, where);
    }
    case AIK_ADAPTER_SEGMENT: {
        uint32_t dtype;
        uint64_t want;

        snprintf(where, sizeof(where), "tensor[%u].dtype", idx);
        p = take(c, 16, &r, err, where);
        if (!p)
            return r;
        dtype = rd32(p);
        if (!aik_dtype_valid(dtype))
            return aik_fail(err, -EINVAL, where, "unknown dtype %u", dtype);
        t->dtype = (aik_dtype)dtype;
        if (rd32(p + 4) != 0) {
            snprintf(where, sizeof(where), "tensor[%u].reserved2", idx);
            return aik_fail(err, -EINVAL, where, "is %u, must be 0", rd32(p + 4));
        }
        t->data_size = rd64(p + 8);
        /* Rows of block dtypes are whole blocks (as in a .slm), and the size
         * follows from dtype and shape: a mismatch is a damaged record. */
        snprintf(where, sizeof(where), "tensor[%u].shape[0]", idx);
        if (t->shape[0] % aik_dtype_block_elems(t->dtype) != 0)
            return aik_fail(err, -EINVAL, where, "row length %llu is not a multiple of the %s block size %u",
                            (unsigned long long)t->shape[0], aik_dtype_name(t->dtype),
                            aik_dtype_block_elems(t->dtype));
        snprintf(where, sizeof(where), "tensor[%u].data_size", idx);
        if (aik_dtype_bytes(t->dtype, t->nelems, &want) < 0)
            return aik_fail(err, -EINVAL, where, "%llu %s elements overflow", (unsigned long long)t->nelems,
                            aik_dtype_name(t->dtype));
        if (t->data_size != want)
            return aik_fail(err, -EINVAL, where, "is %llu, %llu %s elements take %llu",
                            (unsigned long long)t->data_size, (unsigned long long)t->nelems,
                            aik_dtype_name(t->dtype), (unsigned long long)want);
        snprintf(where, sizeof(where), "tensor[%u].data", idx);
        p = take(c, t->data_size, &r, err, where);
        if (!p)
            return r;
        /* take() bounded data_size by the input, so it fits in size_t. */
        t->data = malloc(t->data_size ? (size_t)t->data_size : 1);
        if (!t->data)
            return aik_fail(err, -ENOMEM, where, "out of memory");
        memcpy(t->data, p, (size_t)t->data_size);
        return 0;
    }
    }
    return aik_fail(err, -EINVAL, "header.kind", "unknown kind");
}

static int parse_family(const void *data, size_t size, parse_mode mode, aik_adapter **ret_adapter, aik_error *err)
{
    const uint8_t *p = data;
    aik_adapter *a = NULL;
    uint32_t header_size, kind, count, min_header, layer_first = 0, layer_end = 0;
    uint64_t payload_size;
    uint8_t digest[32];
    cursor c;
    int r;

    if (!data && size)
        return aik_fail(err, -EINVAL, NULL, "no data");
    if (size < AIK_ADAPTER_HEADER_SIZE)
        return aik_fail(err, -EINVAL, "header", "file is %zu bytes, header needs %d", size,
                        AIK_ADAPTER_HEADER_SIZE);
    if ((uint64_t)size > AIK_ADAPTER_MAX_FILE_SIZE)
        return aik_fail(err, -EFBIG, "file_size", "exceeds the limit of %llu bytes",
                        (unsigned long long)AIK_ADAPTER_MAX_FILE_SIZE);
    kind = 0;
    for (uint32_t k = AIK_ADAPTER_DENSE; k <= AIK_ADAPTER_SEGMENT; k++)
        if (memcmp(p, kind_magic[k], 4) == 0)
            kind = k;
    if (mode == PARSE_DELTAS && kind == AIK_ADAPTER_SEGMENT)
        return aik_fail(err, -EINVAL, "header.magic",
                        "ASG1 is a segment fragment, not a delta (apply it with aikctl adapter segment apply)");
    if (mode == PARSE_SEGMENT && kind != AIK_ADAPTER_SEGMENT)
        return aik_fail(err, -EINVAL, "header.magic", "not ASG1");
    if (!kind)
        return aik_fail(err, -EINVAL, "header.magic",
                        mode == PARSE_ANY ? "not ADP1, ASP1, ALR1 or ASG1" : "not ADP1, ASP1 or ALR1");
    if (rd16(p + 4) != AIK_ADAPTER_VERSION_MAJOR)
        return aik_fail(err, -EPROTONOSUPPORT, "header.version_major", "is %u, this reader knows %d",
                        rd16(p + 4), AIK_ADAPTER_VERSION_MAJOR);
    min_header = kind_header_size(kind);
    header_size = rd32(p + 8);
    if (header_size < min_header || header_size > AIK_ADAPTER_MAX_HEADER_SIZE || header_size > size)
        return aik_fail(err, -EINVAL, "header.header_size", "is %u, must be %u..min(%d, file size %zu)",
                        header_size, min_header, AIK_ADAPTER_MAX_HEADER_SIZE, size);
    if (rd32(p + 12) != kind)
        return aik_fail(err, -EINVAL, "header.kind", "is %u, the magic says %u", rd32(p + 12), kind);
    count = rd32(p + 96);
    if (count > AIK_ADAPTER_MAX_TENSORS)
        return aik_fail(err, -EINVAL, "header.payload_count", "is %u, limit %d", count, AIK_ADAPTER_MAX_TENSORS);
    if (rd32(p + 100) != 0)
        return aik_fail(err, -EINVAL, "header.reserved", "is %u, must be 0", rd32(p + 100));
    if (kind == AIK_ADAPTER_SEGMENT) {
        /* header_size >= 152 was checked against size above. */
        layer_first = rd32(p + 144);
        layer_end = rd32(p + 148);
        if (layer_end > AIK_SLM_MAX_LAYERS)
            return aik_fail(err, -EINVAL, "header.layer_end", "is %u, limit %d", layer_end, AIK_SLM_MAX_LAYERS);
        if (layer_first >= layer_end)
            return aik_fail(err, -EINVAL, "header.layer_first", "is %u, must be below layer_end %u", layer_first,
                            layer_end);
    }
    for (uint32_t i = min_header; i < header_size; i++)
        if (p[i] != 0)
            return aik_fail(err, -EINVAL, "header.reserved", "byte %u of the header extension is not 0", i);
    payload_size = rd64(p + 104);
    if (payload_size != (uint64_t)size - header_size)
        return aik_fail(err, -EINVAL, "header.payload_size", "is %llu, file has %llu bytes after the header",
                        (unsigned long long)payload_size, (unsigned long long)(size - header_size));
    r = aik_sha256_buf(p + header_size, size - header_size, digest);
    if (r < 0)
        return aik_fail(err, r, "header.payload_sha256", "cannot hash");
    if (memcmp(digest, p + 112, 32) != 0)
        return aik_fail(err, -EBADMSG, "header.payload_sha256", "does not match the payload bytes");

    a = calloc(1, sizeof(*a));
    if (!a)
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    a->kind = (aik_adapter_kind)kind;
    a->layer_first = layer_first;
    a->layer_end = layer_end;
    a->version_major = rd16(p + 4);
    a->version_minor = rd16(p + 6);
    a->id.tensor_count = rd32(p + 16);
    a->id.flags = rd32(p + 20);
    a->id.parameter_count = rd64(p + 24);
    memcpy(a->id.layout_checksum, p + 32, 32);
    memcpy(a->id.tokenizer_checksum, p + 64, 32);
    memcpy(a->payload_sha256, p + 112, 32);
    /* A record is at least 8 + 8 + 1 bytes: bound the table by the payload
     * before allocating it. */
    if ((uint64_t)count * 17 > payload_size) {
        r = aik_fail(err, -EINVAL, "header.payload_count", "%u records cannot fit in %llu payload bytes", count,
                     (unsigned long long)payload_size);
        goto fail;
    }
    a->tensors = calloc(count ? count : 1, sizeof(*a->tensors));
    if (!a->tensors) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto fail;
    }
    c.p = p;
    c.off = header_size;
    c.size = size;
    for (uint32_t i = 0; i < count; i++) {
        a->n_tensors = i + 1; /* so aik_adapter_free releases a partly parsed record */
        r = parse_tensor(&c, a->kind, i, &a->tensors[i], err);
        if (r < 0)
            goto fail;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(a->tensors[j].name, a->tensors[i].name) == 0) {
                char where[48];
                snprintf(where, sizeof(where), "tensor[%u].name", i);
                r = aik_fail(err, -EINVAL, where, "'%s' repeats tensor[%u]", a->tensors[i].name, j);
                goto fail;
            }
    }
    if (c.off != c.size) {
        r = aik_fail(err, -EINVAL, "payload", "%llu trailing bytes after the last record",
                     (unsigned long long)(c.size - c.off));
        goto fail;
    }
    *ret_adapter = a;
    return 0;
fail:
    aik_adapter_free(a);
    return r;
}

int aik_adapter_parse(const void *data, size_t size, aik_adapter **ret_adapter, aik_error *err)
{
    return parse_family(data, size, PARSE_DELTAS, ret_adapter, err);
}

int aik_segment_parse(const void *data, size_t size, aik_adapter **ret_fragment, aik_error *err)
{
    return parse_family(data, size, PARSE_SEGMENT, ret_fragment, err);
}

static int load_family(const char *path, parse_mode mode, aik_adapter **ret_adapter, uint8_t ret_file_sha256[32],
                       aik_error *err)
{
    char *data = NULL;
    size_t len = 0;
    uint8_t d[32];
    aik_adapter *a = NULL;
    int r;

    if (!path || !ret_adapter)
        return aik_fail(err, -EINVAL, NULL, "no path");
    r = aik_read_file(path, (size_t)AIK_ADAPTER_MAX_FILE_SIZE, &data, &len);
    if (r < 0)
        return aik_fail(err, r, path, "cannot read: %s", strerror(-r));
    r = parse_family(data, len, mode, &a, err);
    if (r < 0) {
        aik_error_prefix(err, path);
        goto out;
    }
    if (ret_file_sha256) {
        r = aik_sha256_buf(data, len, d);
        if (r < 0) {
            aik_adapter_free(a);
            r = aik_fail(err, r, path, "cannot hash");
            goto out;
        }
        memcpy(ret_file_sha256, d, 32);
    }
    *ret_adapter = a;
out:
    free(data);
    return r;
}

int aik_adapter_load(const char *path, aik_adapter **ret_adapter, uint8_t ret_file_sha256[32], aik_error *err)
{
    return load_family(path, PARSE_DELTAS, ret_adapter, ret_file_sha256, err);
}

int aik_segment_load(const char *path, aik_adapter **ret_fragment, uint8_t ret_file_sha256[32], aik_error *err)
{
    return load_family(path, PARSE_SEGMENT, ret_fragment, ret_file_sha256, err);
}

int aik_adapter_load_any(const char *path, aik_adapter **ret_adapter, uint8_t ret_file_sha256[32], aik_error *err)
{
    return load_family(path, PARSE_ANY, ret_adapter, ret_file_sha256, err);
}

const aik_adapter_tensor *aik_adapter_find(const aik_adapter *a, const char *name)
{
    for (uint32_t i = 0; a && name && i < a->n_tensors; i++)
        if (strcmp(a->tensors[i].name, name) == 0)
            return &a->tensors[i];
    return NULL;
}

/* -------------------------------------------------------- compatibility --- */

static const char *const check_names[] = {
    [AIK_ADAPTER_COMPATIBLE] = "compatible",
    [AIK_ADAPTER_ERR_TENSOR_COUNT] = "tensor_count_mismatch",
    [AIK_ADAPTER_ERR_FLAGS] = "flags_mismatch",
    [AIK_ADAPTER_ERR_PARAMETER_COUNT] = "parameter_count_mismatch",
    [AIK_ADAPTER_ERR_LAYOUT_CHECKSUM] = "layout_checksum_mismatch",
    [AIK_ADAPTER_ERR_TOKENIZER_CHECKSUM] = "tokenizer_checksum_mismatch",
    [AIK_ADAPTER_ERR_UNKNOWN_TENSOR] = "unknown_tensor",
    [AIK_ADAPTER_ERR_SHAPE_MISMATCH] = "shape_mismatch",
    [AIK_ADAPTER_ERR_NON_FINITE] = "non_finite_value",
    [AIK_ADAPTER_ERR_INDEX_RANGE] = "index_out_of_range",
    [AIK_ADAPTER_ERR_INDEX_ORDER] = "index_not_sorted",
    [AIK_ADAPTER_ERR_INDEX_DUPLICATE] = "index_duplicate",
    [AIK_ADAPTER_ERR_RANK] = "invalid_rank",
    [AIK_ADAPTER_ERR_ARGUMENT] = "invalid_argument",
    [AIK_ADAPTER_ERR_LAYER_RANGE] = "layer_range_invalid",
    [AIK_ADAPTER_ERR_OUTSIDE_RANGE] = "tensor_outside_range",
    [AIK_ADAPTER_ERR_DTYPE_MISMATCH] = "dtype_mismatch",
    [AIK_ADAPTER_ERR_MISSING_TENSOR] = "missing_tensor",
};

const char *aik_adapter_check_name(aik_adapter_check_result r)
{
    if ((unsigned)r >= sizeof(check_names) / sizeof(check_names[0]))
        return "?";
    return check_names[r];
}

#define REJECT(res, where, ...)                                                                              \
    do {                                                                                                   \
        char msg_[256];                                                                                    \
        snprintf(msg_, sizeof(msg_), __VA_ARGS__);                                                         \
        aik_fail(err, -EINVAL, where, "%s: %s", aik_adapter_check_name(res), msg_);                        \
        return res;                                                                                        \
    } while (0)

static bool all_finite(const float *v, uint64_t n, uint64_t *ret_at)
{
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            *ret_at = i;
            return false;
        }
    return true;
}

int aik_segment_layer_of(const char *name, uint32_t *ret_layer)
{
    uint64_t n = 0;
    size_t i = 4;

    if (!name || strncmp(name, "blk.", 4) != 0)
        return -EINVAL;
    /* One spelling per layer: "blk.01." is not layer 1 (a model would never
     * have both, but the range check must not be fooled by either). */
    if (name[i] == '0' && name[i + 1] != '.')
        return -EINVAL;
    for (; name[i] >= '0' && name[i] <= '9'; i++) {
        n = n * 10 + (uint64_t)(name[i] - '0');
        if (n > INT32_MAX)
            return -EINVAL;
    }
    if (i == 4 || name[i] != '.')
        return -EINVAL;
    if (ret_layer)
        *ret_layer = (uint32_t)n;
    return 0;
}

/* Index of the first non-finite value of n elements of a float dtype, or of
 * the first block of a quantized dtype whose fp16 scale is not finite
 * (every value of the block is then d · q = NaN/Inf). The test is on the bit
 * patterns (all-ones exponent), so the loader needs no conversion kernels. */
static bool data_finite(aik_dtype dt, const uint8_t *d, uint64_t n, uint64_t *ret_at)
{
    uint64_t stride = aik_dtype_block_bytes(dt), blocks = n / aik_dtype_block_elems(dt);

    for (uint64_t i = 0; i < blocks; i++) {
        const uint8_t *e = d + i * stride;
        bool bad;

        switch (dt) {
        case AIK_DTYPE_F32: bad = (rd32(e) & 0x7f800000u) == 0x7f800000u; break;
        case AIK_DTYPE_BF16: bad = (rd16(e) & 0x7f80u) == 0x7f80u; break;
        default: /* f16 values and the f16 scale at the start of q8_0/q4_0 blocks */
            bad = (rd16(e) & 0x7c00u) == 0x7c00u;
            break;
        }
        if (bad) {
            *ret_at = i;
            return false;
        }
    }
    return true;
}

/* The ASG1 part of aik_adapter_check, after the identity fields. */
static aik_adapter_check_result check_segment(const aik_adapter *a, const aik_slm *pkg, aik_error *err)
{
    char where[128];
    uint64_t at;
    uint32_t layer;

    if (a->layer_first >= a->layer_end || a->layer_end > pkg->hdr.n_layers)
        REJECT(AIK_ADAPTER_ERR_LAYER_RANGE, "header.layer_end", "layers [%u, %u) are not within the model's %u",
               a->layer_first, a->layer_end, pkg->hdr.n_layers);
    for (uint32_t i = 0; i < a->n_tensors; i++) {
        const aik_adapter_tensor *t = &a->tensors[i];
        const aik_slm_tensor *mt = aik_slm_find(pkg, t->name);

        snprintf(where, sizeof(where), "tensor[%u] '%s'", i, t->name);
        if (!mt)
            REJECT(AIK_ADAPTER_ERR_UNKNOWN_TENSOR, where, "the model has no such tensor");
        if (aik_segment_layer_of(t->name, &layer) < 0 || layer < a->layer_first || layer >= a->layer_end)
            REJECT(AIK_ADAPTER_ERR_OUTSIDE_RANGE, where, "not a tensor of layers [%u, %u)", a->layer_first,
                   a->layer_end);
        if (t->n_dims != mt->n_dims)
            REJECT(AIK_ADAPTER_ERR_SHAPE_MISMATCH, where, "fragment has %u dims, model %u", t->n_dims, mt->n_dims);
        for (uint32_t d = 0; d < AIK_MAX_DIMS; d++)
            if (t->shape[d] != mt->shape[d])
                REJECT(AIK_ADAPTER_ERR_SHAPE_MISMATCH, where, "shape[%u] is %llu, model's is %llu", d,
                       (unsigned long long)t->shape[d], (unsigned long long)mt->shape[d]);
        if (t->dtype != mt->dtype)
            REJECT(AIK_ADAPTER_ERR_DTYPE_MISMATCH, where, "fragment has %s, model %s", aik_dtype_name(t->dtype),
                   aik_dtype_name(mt->dtype));
        if (!data_finite(t->dtype, t->data, t->nelems, &at))
            REJECT(AIK_ADAPTER_ERR_NON_FINITE, where, "%s %llu is not finite",
                   aik_dtype_block_elems(t->dtype) > 1 ? "scale of block" : "value", (unsigned long long)at);
    }
    /* Coverage last: a fragment replaces whole layers, never part of one. */
    for (uint32_t i = 0; i < pkg->hdr.tensor_count; i++) {
        const aik_slm_tensor *mt = &pkg->tensors[i];

        if (aik_segment_layer_of(mt->name, &layer) < 0 || layer < a->layer_first || layer >= a->layer_end)
            continue;
        if (!aik_adapter_find(a, mt->name)) {
            snprintf(where, sizeof(where), "tensor '%s'", mt->name);
            REJECT(AIK_ADAPTER_ERR_MISSING_TENSOR, where, "layer %u is replaced but the fragment lacks this tensor",
                   layer);
        }
    }
    return AIK_ADAPTER_COMPATIBLE;
}

aik_adapter_check_result aik_adapter_check(const aik_adapter *a, const aik_slm *pkg, aik_error *err)
{
    char where[128];
    uint64_t at;

    if (!a || !pkg) {
        aik_fail(err, -EINVAL, NULL, "invalid_argument: no adapter or package");
        return AIK_ADAPTER_ERR_ARGUMENT;
    }
    if (a->id.tensor_count != pkg->hdr.tensor_count)
        REJECT(AIK_ADAPTER_ERR_TENSOR_COUNT, "header.tensor_count", "adapter %u, model %u", a->id.tensor_count,
               pkg->hdr.tensor_count);
    if (a->id.flags != pkg->hdr.flags)
        REJECT(AIK_ADAPTER_ERR_FLAGS, "header.flags", "adapter 0x%x, model 0x%x", a->id.flags, pkg->hdr.flags);
    if (a->id.parameter_count != pkg->hdr.parameter_count)
        REJECT(AIK_ADAPTER_ERR_PARAMETER_COUNT, "header.parameter_count", "adapter %llu, model %llu",
               (unsigned long long)a->id.parameter_count, (unsigned long long)pkg->hdr.parameter_count);
    if (memcmp(a->id.layout_checksum, pkg->hdr.layout_checksum, 32) != 0)
        REJECT(AIK_ADAPTER_ERR_LAYOUT_CHECKSUM, "header.layout_checksum", "differs from the model's");
    if (memcmp(a->id.tokenizer_checksum, pkg->hdr.tokenizer_sha256, 32) != 0)
        REJECT(AIK_ADAPTER_ERR_TOKENIZER_CHECKSUM, "header.tokenizer_checksum", "differs from the model's");
    if (a->kind == AIK_ADAPTER_SEGMENT)
        return check_segment(a, pkg, err);

    for (uint32_t i = 0; i < a->n_tensors; i++) {
        const aik_adapter_tensor *t = &a->tensors[i];
        const aik_slm_tensor *mt = aik_slm_find(pkg, t->name);

        snprintf(where, sizeof(where), "tensor[%u] '%s'", i, t->name);
        if (!mt)
            REJECT(AIK_ADAPTER_ERR_UNKNOWN_TENSOR, where, "the model has no such tensor");
        if (a->kind == AIK_ADAPTER_LOWRANK && (mt->n_dims != 2 || t->n_dims != 2))
            REJECT(AIK_ADAPTER_ERR_RANK, where, "low-rank deltas need a 2-D tensor, model's has %u dims",
                   mt->n_dims);
        if (t->n_dims != mt->n_dims)
            REJECT(AIK_ADAPTER_ERR_SHAPE_MISMATCH, where, "adapter has %u dims, model %u", t->n_dims, mt->n_dims);
        for (uint32_t d = 0; d < AIK_MAX_DIMS; d++)
            if (t->shape[d] != mt->shape[d])
                REJECT(AIK_ADAPTER_ERR_SHAPE_MISMATCH, where, "shape[%u] is %llu, model's is %llu", d,
                       (unsigned long long)t->shape[d], (unsigned long long)mt->shape[d]);
        switch (a->kind) {
        case AIK_ADAPTER_DENSE:
            if (!all_finite(t->dense, t->nelems, &at))
                REJECT(AIK_ADAPTER_ERR_NON_FINITE, where, "delta[%llu] is not finite", (unsigned long long)at);
            break;
        case AIK_ADAPTER_SPARSE:
            if (!all_finite(t->deltas, t->count, &at))
                REJECT(AIK_ADAPTER_ERR_NON_FINITE, where, "deltas[%llu] is not finite", (unsigned long long)at);
            for (uint64_t k = 0; k < t->count; k++) {
                if (t->indices[k] >= t->nelems)
                    REJECT(AIK_ADAPTER_ERR_INDEX_RANGE, where, "indices[%llu] = %llu, tensor has %llu elements",
                           (unsigned long long)k, (unsigned long long)t->indices[k],
                           (unsigned long long)t->nelems);
                if (k > 0 && t->indices[k] == t->indices[k - 1])
                    REJECT(AIK_ADAPTER_ERR_INDEX_DUPLICATE, where, "indices[%llu] = %llu repeats",
                           (unsigned long long)k, (unsigned long long)t->indices[k]);
                if (k > 0 && t->indices[k] < t->indices[k - 1])
                    REJECT(AIK_ADAPTER_ERR_INDEX_ORDER, where, "indices[%llu] = %llu is below indices[%llu]",
                           (unsigned long long)k, (unsigned long long)t->indices[k], (unsigned long long)(k - 1));
            }
            break;
        case AIK_ADAPTER_LOWRANK:
            if (t->rank < 1 || t->rank > t->in || t->rank > t->out)
                REJECT(AIK_ADAPTER_ERR_RANK, where, "rank %u not in 1..min(%llu, %llu)", t->rank,
                       (unsigned long long)t->in, (unsigned long long)t->out);
            if (!isfinite(t->alpha))
                REJECT(AIK_ADAPTER_ERR_NON_FINITE, where, "alpha is not finite");
            if (!all_finite(t->A, (uint64_t)t->rank * t->in, &at))
                REJECT(AIK_ADAPTER_ERR_NON_FINITE, where, "A[%llu] is not finite", (unsigned long long)at);
            if (!all_finite(t->B, (uint64_t)t->rank * t->out, &at))
                REJECT(AIK_ADAPTER_ERR_NON_FINITE, where, "B[%llu] is not finite", (unsigned long long)at);
            break;
        case AIK_ADAPTER_SEGMENT: /* handled by check_segment */
            break;
        }
    }
    return AIK_ADAPTER_COMPATIBLE;
}

int aik_adapter_validate(const aik_adapter *a, const aik_slm *pkg, aik_error *err)
{
    return aik_adapter_check(a, pkg, err) == AIK_ADAPTER_COMPATIBLE ? 0 : -EINVAL;
}

void aik_adapter_tensor_apply(aik_adapter_kind kind, const aik_adapter_tensor *t, float *dst)
{
    switch (kind) {
    case AIK_ADAPTER_DENSE:
        for (uint64_t i = 0; i < t->nelems; i++)
            dst[i] += t->dense[i];
        break;
    case AIK_ADAPTER_SPARSE:
        for (uint64_t k = 0; k < t->count; k++)
            dst[t->indices[k]] += t->deltas[k];
        break;
    case AIK_ADAPTER_LOWRANK: {
        const float scale = t->alpha / (float)t->rank;

        /* ΔW[o][i] = scale · Σ_r B[o][r] · A[r][i]; row o of the tensor is
         * the in-long contiguous run at o * in. */
        for (uint64_t o = 0; o < t->out; o++) {
            float *row = dst + o * t->in;
            for (uint64_t i = 0; i < t->in; i++) {
                float acc = 0.0f;
                for (uint32_t r = 0; r < t->rank; r++)
                    acc += t->B[o * t->rank + r] * t->A[(uint64_t)r * t->in + i];
                row[i] += scale * acc;
            }
        }
        break;
    }
    case AIK_ADAPTER_SEGMENT: /* a replacement, not a delta: runtime/segment_apply.h */
        break;
    }
}

/* --------------------------------------------------------------- writer --- */

int aik_adapter_new(aik_adapter_kind kind, const aik_adapter_identity *id, aik_adapter **ret_adapter)
{
    aik_adapter *a;

    if (!kind_valid(kind) || !id || !ret_adapter)
        return -EINVAL;
    a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->kind = kind;
    a->version_major = AIK_ADAPTER_VERSION_MAJOR;
    a->version_minor = AIK_ADAPTER_VERSION_MINOR;
    a->id = *id;
    *ret_adapter = a;
    return 0;
}

int aik_segment_new(const aik_adapter_identity *id, uint32_t layer_first, uint32_t layer_end,
                    aik_adapter **ret_fragment)
{
    aik_adapter *a = NULL;
    int r;

    if (layer_first >= layer_end || layer_end > AIK_SLM_MAX_LAYERS)
        return -EINVAL;
    r = aik_adapter_new(AIK_ADAPTER_SEGMENT, id, &a);
    if (r < 0)
        return r;
    a->layer_first = layer_first;
    a->layer_end = layer_end;
    *ret_fragment = a;
    return 0;
}

/* Append a zeroed record with a checked name and shape. */
static int add_record(aik_adapter *a, aik_adapter_kind kind, const char *name, uint32_t n_dims,
                      const uint64_t shape[], aik_adapter_tensor **ret_t, aik_error *err)
{
    aik_adapter_tensor *t, *grown;
    uint64_t n = 1;
    int r;

    if (!a || !name || !shape)
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    if (a->kind != kind)
        return aik_fail(err, -EINVAL, name, "adapter is %s, payload is %s", aik_adapter_kind_name(a->kind),
                        aik_adapter_kind_name(kind));
    r = check_name(name, strlen(name), err, name);
    if (r < 0)
        return r;
    if (aik_adapter_find(a, name))
        return aik_fail(err, -EEXIST, name, "tensor already in the adapter");
    if (a->n_tensors >= AIK_ADAPTER_MAX_TENSORS)
        return aik_fail(err, -E2BIG, name, "more than %d tensors", AIK_ADAPTER_MAX_TENSORS);
    if (n_dims < 1 || n_dims > AIK_MAX_DIMS)
        return aik_fail(err, -EINVAL, name, "n_dims %u not in 1..%d", n_dims, AIK_MAX_DIMS);
    for (uint32_t d = 0; d < n_dims; d++)
        if (shape[d] == 0 || aik_mul_overflow(n, shape[d], &n) || n > SIZE_MAX / sizeof(float))
            return aik_fail(err, -EINVAL, name, "shape[%u] is 0 or the element count overflows", d);
    grown = realloc(a->tensors, (a->n_tensors + 1) * sizeof(*grown));
    if (!grown)
        return aik_fail(err, -ENOMEM, name, "out of memory");
    a->tensors = grown;
    t = &a->tensors[a->n_tensors];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < AIK_MAX_DIMS; d++)
        t->shape[d] = d < n_dims ? shape[d] : 1;
    t->nelems = n;
    *ret_t = t;
    return 0;
}

int aik_segment_add(aik_adapter *f, const char *name, aik_dtype dtype, uint32_t n_dims, const uint64_t shape[],
                    const void *data, uint64_t data_size, aik_error *err)
{
    aik_adapter_tensor *t;
    uint64_t want;
    int r;

    if (!data || !aik_dtype_valid(dtype))
        return aik_fail(err, -EINVAL, name, "no data or unknown dtype");
    r = add_record(f, AIK_ADAPTER_SEGMENT, name, n_dims, shape, &t, err);
    if (r < 0)
        return r;
    if (t->shape[0] % aik_dtype_block_elems(dtype) != 0 || aik_dtype_bytes(dtype, t->nelems, &want) < 0 ||
        want != data_size || data_size > SIZE_MAX)
        return aik_fail(err, -EINVAL, name, "%llu bytes of %s do not hold its shape", (unsigned long long)data_size,
                        aik_dtype_name(dtype));
    t->dtype = dtype;
    t->data_size = data_size;
    t->data = malloc(data_size ? (size_t)data_size : 1);
    if (!t->data)
        return aik_fail(err, -ENOMEM, name, "out of memory");
    memcpy(t->data, data, (size_t)data_size);
    f->n_tensors++;
    return 0;
}

static float *dup_floats(const float *src, uint64_t n)
{
    float *v = malloc(n ? n * sizeof(float) : 1);
    if (v && n)
        memcpy(v, src, n * sizeof(float));
    return v;
}

int aik_adapter_add_dense(aik_adapter *a, const char *name, uint32_t n_dims, const uint64_t shape[],
                          const float *delta, aik_error *err)
{
    aik_adapter_tensor *t;
    int r;

    if (!delta)
        return aik_fail(err, -EINVAL, name, "no delta");
    r = add_record(a, AIK_ADAPTER_DENSE, name, n_dims, shape, &t, err);
    if (r < 0)
        return r;
    t->dense = dup_floats(delta, t->nelems);
    if (!t->dense)
        return aik_fail(err, -ENOMEM, name, "out of memory");
    a->n_tensors++;
    return 0;
}

int aik_adapter_add_sparse(aik_adapter *a, const char *name, uint32_t n_dims, const uint64_t shape[],
                           uint64_t count, const uint64_t *indices, const float *deltas, aik_error *err)
{
    aik_adapter_tensor *t;
    int r;

    if (count && (!indices || !deltas))
        return aik_fail(err, -EINVAL, name, "no indices or deltas");
    r = add_record(a, AIK_ADAPTER_SPARSE, name, n_dims, shape, &t, err);
    if (r < 0)
        return r;
    if (count > t->nelems)
        return aik_fail(err, -EINVAL, name, "%llu pairs for %llu elements", (unsigned long long)count,
                        (unsigned long long)t->nelems);
    t->count = count;
    t->indices = malloc(count ? count * sizeof(uint64_t) : 1);
    t->deltas = dup_floats(deltas, count);
    if (!t->indices || !t->deltas) {
        free(t->indices);
        free(t->deltas);
        return aik_fail(err, -ENOMEM, name, "out of memory");
    }
    if (count)
        memcpy(t->indices, indices, count * sizeof(uint64_t));
    a->n_tensors++;
    return 0;
}

int aik_adapter_add_lowrank(aik_adapter *a, const char *name, uint64_t in, uint64_t out, uint32_t rank,
                            float alpha, const float *A, const float *B, aik_error *err)
{
    const uint64_t shape[2] = { in, out };
    aik_adapter_tensor *t;
    int r;

    if (!A || !B)
        return aik_fail(err, -EINVAL, name, "no factors");
    if (rank < 1 || rank > AIK_ADAPTER_MAX_RANK)
        return aik_fail(err, -EINVAL, name, "rank %u not in 1..%d", rank, AIK_ADAPTER_MAX_RANK);
    r = add_record(a, AIK_ADAPTER_LOWRANK, name, 2, shape, &t, err);
    if (r < 0)
        return r;
    t->rank = rank;
    t->alpha = alpha;
    t->in = in;
    t->out = out;
    t->A = dup_floats(A, (uint64_t)rank * in);
    t->B = dup_floats(B, (uint64_t)rank * out);
    if (!t->A || !t->B) {
        free(t->A);
        free(t->B);
        return aik_fail(err, -ENOMEM, name, "out of memory");
    }
    a->n_tensors++;
    return 0;
}

/* Bytes of record t, or true on overflow. */
static bool record_size(aik_adapter_kind kind, const aik_adapter_tensor *t, uint64_t *ret)
{
    uint64_t n = 8 + 8ull * t->n_dims + strlen(t->name), v;

    switch (kind) {
    case AIK_ADAPTER_DENSE:
        if (aik_mul_overflow(t->nelems, 4, &v) || aik_add_overflow(n, v, &n))
            return true;
        break;
    case AIK_ADAPTER_SPARSE:
        if (aik_mul_overflow(t->count, 12, &v) || aik_add_overflow(n, 8 + v, &n))
            return true;
        break;
    case AIK_ADAPTER_LOWRANK:
        if (aik_mul_overflow((uint64_t)t->rank * 4, t->in + t->out, &v) || aik_add_overflow(n, 8 + v, &n))
            return true;
        break;
    case AIK_ADAPTER_SEGMENT:
        if (aik_add_overflow(n, 16, &n) || aik_add_overflow(n, t->data_size, &n))
            return true;
        break;
    }
    *ret = n;
    return false;
}

static uint8_t *put_floats(uint8_t *p, const float *v, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++, p += 4)
        wrf32(p, v[i]);
    return p;
}

int aik_adapter_serialize(aik_adapter *a, uint8_t **ret_data, size_t *ret_len, aik_error *err)
{
    uint64_t total, rs, hs;
    uint8_t *buf, *p;
    int r;

    if (!a || !ret_data || !ret_len || !kind_valid(a->kind))
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    hs = kind_header_size(a->kind);
    total = hs;
    for (uint32_t i = 0; i < a->n_tensors; i++)
        if (record_size(a->kind, &a->tensors[i], &rs) || aik_add_overflow(total, rs, &total))
            return aik_fail(err, -EOVERFLOW, a->tensors[i].name, "adapter size overflows");
    if (total > AIK_ADAPTER_MAX_FILE_SIZE || total > SIZE_MAX)
        return aik_fail(err, -EFBIG, NULL, "adapter would be %llu bytes", (unsigned long long)total);
    buf = calloc(1, (size_t)total);
    if (!buf)
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    memcpy(buf, kind_magic[a->kind], 4);
    wr16(buf + 4, AIK_ADAPTER_VERSION_MAJOR);
    wr16(buf + 6, AIK_ADAPTER_VERSION_MINOR);
    wr32(buf + 8, (uint32_t)hs);
    wr32(buf + 12, a->kind);
    wr32(buf + 16, a->id.tensor_count);
    wr32(buf + 20, a->id.flags);
    wr64(buf + 24, a->id.parameter_count);
    memcpy(buf + 32, a->id.layout_checksum, 32);
    memcpy(buf + 64, a->id.tokenizer_checksum, 32);
    wr32(buf + 96, a->n_tensors);
    wr64(buf + 104, total - hs);
    if (a->kind == AIK_ADAPTER_SEGMENT) {
        wr32(buf + 144, a->layer_first);
        wr32(buf + 148, a->layer_end);
    }
    p = buf + hs;
    for (uint32_t i = 0; i < a->n_tensors; i++) {
        const aik_adapter_tensor *t = &a->tensors[i];
        size_t nl = strlen(t->name);

        wr16(p, (uint16_t)nl);
        wr16(p + 2, (uint16_t)t->n_dims);
        p += 8;
        for (uint32_t d = 0; d < t->n_dims; d++, p += 8)
            wr64(p, t->shape[d]);
        memcpy(p, t->name, nl);
        p += nl;
        switch (a->kind) {
        case AIK_ADAPTER_DENSE:
            p = put_floats(p, t->dense, t->nelems);
            break;
        case AIK_ADAPTER_SPARSE:
            wr64(p, t->count);
            p += 8;
            for (uint64_t k = 0; k < t->count; k++, p += 8)
                wr64(p, t->indices[k]);
            p = put_floats(p, t->deltas, t->count);
            break;
        case AIK_ADAPTER_LOWRANK:
            wr32(p, t->rank);
            wrf32(p + 4, t->alpha);
            p = put_floats(p + 8, t->A, (uint64_t)t->rank * t->in);
            p = put_floats(p, t->B, (uint64_t)t->rank * t->out);
            break;
        case AIK_ADAPTER_SEGMENT:
            wr32(p, (uint32_t)t->dtype);
            wr64(p + 8, t->data_size);
            if (t->data_size)
                memcpy(p + 16, t->data, (size_t)t->data_size);
            p += 16 + t->data_size;
            break;
        }
    }
    r = aik_sha256_buf(buf + hs, (size_t)(total - hs), buf + 112);
    if (r < 0) {
        free(buf);
        return aik_fail(err, r, NULL, "cannot hash the payload");
    }
    memcpy(a->payload_sha256, buf + 112, 32);
    *ret_data = buf;
    *ret_len = (size_t)total;
    return 0;
}

int aik_adapter_write(aik_adapter *a, const char *path, aik_error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int r;

    if (!path)
        return aik_fail(err, -EINVAL, NULL, "no path");
    r = aik_adapter_serialize(a, &buf, &len, err);
    if (r < 0)
        return r;
    r = aik_write_file_atomic(path, buf, len, 0644);
    free(buf);
    if (r < 0)
        return aik_fail(err, r, path, "cannot write: %s", strerror(-r));
    return 0;
}
