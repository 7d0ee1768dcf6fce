/* SPDX-License-Identifier: MIT */
/* safetensors reader: see safetensors.h. */
#include "interop/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/checked.h"
#include "common/error.h"

static const struct {
    const char *name;
    uint32_t size;
} st_types[AIK_ST_DTYPE_COUNT] = {
    [AIK_ST_BOOL] = { "BOOL", 1 }, [AIK_ST_U8] = { "U8", 1 },   [AIK_ST_I8] = { "I8", 1 },
    [AIK_ST_F8_E5M2] = { "F8_E5M2", 1 }, [AIK_ST_F8_E4M3] = { "F8_E4M3", 1 },
    [AIK_ST_I16] = { "I16", 2 },   [AIK_ST_U16] = { "U16", 2 }, [AIK_ST_F16] = { "F16", 2 },
    [AIK_ST_BF16] = { "BF16", 2 }, [AIK_ST_I32] = { "I32", 4 }, [AIK_ST_U32] = { "U32", 4 },
    [AIK_ST_F32] = { "F32", 4 },   [AIK_ST_I64] = { "I64", 8 }, [AIK_ST_U64] = { "U64", 8 },
    [AIK_ST_F64] = { "F64", 8 },
};

const char *aik_st_dtype_name(aik_st_dtype t) { return (unsigned)t < AIK_ST_DTYPE_COUNT ? st_types[t].name : "?"; }
uint32_t aik_st_dtype_size(aik_st_dtype t) { return (unsigned)t < AIK_ST_DTYPE_COUNT ? st_types[t].size : 0; }

struct aik_safetensors {
    const uint8_t *map;
    uint64_t map_size;
    bool owns_map;
    json_t *root;          /* the parsed header; names point into it */
    aik_st_tensor *tensors; /* sorted by offset */
    uint32_t *by_name;      /* indexes sorted by name */
    uint32_t n;
};

static _Thread_local const aik_safetensors *tl_st;
static int cmp_off(const void *a, const void *b)
{
    const aik_st_tensor *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}
static int cmp_name(const void *a, const void *b)
{
    return strcmp(tl_st->tensors[*(const uint32_t *)a].name, tl_st->tensors[*(const uint32_t *)b].name);
}

/* A JSON integer in [0, INT64_MAX]. */
static bool json_u64(const json_t *v, uint64_t *ret)
{
    json_int_t i;
    if (!json_is_integer(v))
        return false;
    i = json_integer_value(v);
    if (i < 0)
        return false;
    *ret = (uint64_t)i;
    return true;
}

static int parse_entry(aik_safetensors *st, const char *name, json_t *e, uint64_t buf_size, aik_st_tensor *t,
                       aik_error *err)
{
    char where[160];
    json_t *dt, *shape, *offs;
    const char *dts;
    uint64_t begin, end, bytes;
    size_t i;

    snprintf(where, sizeof(where), "tensors['%.100s']", name);
    if (!json_is_object(e))
        return aik_fail(err, -EBADMSG, where, "is not an object");
    if (json_object_size(e) != 3 || !(dt = json_object_get(e, "dtype")) || !(shape = json_object_get(e, "shape")) ||
        !(offs = json_object_get(e, "data_offsets")))
        return aik_fail(err, -EBADMSG, where, "must have exactly dtype, shape and data_offsets");
    t->name = name;

    snprintf(where, sizeof(where), "tensors['%.100s'].dtype", name);
    if (!json_is_string(dt))
        return aik_fail(err, -EBADMSG, where, "is not a string");
    dts = json_string_value(dt);
    for (i = 0; i < AIK_ST_DTYPE_COUNT; i++)
        if (strcmp(dts, st_types[i].name) == 0)
            break;
    if (i == AIK_ST_DTYPE_COUNT)
        return aik_fail(err, -EBADMSG, where, "unknown dtype '%.60s'", dts);
    t->dtype = (aik_st_dtype)i;

    snprintf(where, sizeof(where), "tensors['%.100s'].shape", name);
    if (!json_is_array(shape))
        return aik_fail(err, -EBADMSG, where, "is not an array");
    if (json_array_size(shape) > AIK_ST_MAX_DIMS)
        return aik_fail(err, -EBADMSG, where, "%zu dims, at most %d", json_array_size(shape), AIK_ST_MAX_DIMS);
    t->n_dims = (uint32_t)json_array_size(shape);
    t->nelems = 1;
    for (i = 0; i < t->n_dims; i++) {
        if (!json_u64(json_array_get(shape, i), &t->shape[i]))
            return aik_fail(err, -EBADMSG, where, "dim %zu is not a non-negative integer", i);
        if (aik_mul_overflow(t->nelems, t->shape[i], &t->nelems))
            return aik_fail(err, -EOVERFLOW, where, "element count overflows");
    }
    if (aik_mul_overflow(t->nelems, st_types[t->dtype].size, &t->size))
        return aik_fail(err, -EOVERFLOW, where, "byte size overflows");

    snprintf(where, sizeof(where), "tensors['%.100s'].data_offsets", name);
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_u64(json_array_get(offs, 0), &begin) ||
        !json_u64(json_array_get(offs, 1), &end))
        return aik_fail(err, -EBADMSG, where, "must be two non-negative integers");
    if (begin > end)
        return aik_fail(err, -EBADMSG, where, "begin %" PRIu64 " > end %" PRIu64, begin, end);
    bytes = end - begin;
    if (bytes != t->size)
        return aik_fail(err, -EBADMSG, where, "span of %" PRIu64 " bytes, the %s shape needs %" PRIu64, bytes,
                        st_types[t->dtype].name, t->size);
    if (end > buf_size)
        return aik_fail(err, -EBADMSG, where, "end %" PRIu64 " past the %" PRIu64 "-byte data buffer", end, buf_size);
    (void)st;
    t->offset = begin;
    return 0;
}

static int parse(aik_safetensors *st, aik_error *err)
{
    uint64_t hlen, buf_off, buf_size, expect;
    json_error_t jerr;
    const char *key;
    json_t *v;
    uint32_t k = 0;
    int r;

    if (st->map_size < 8)
        return aik_fail(err, -EBADMSG, "header.length", "file of %" PRIu64 " bytes is too short", st->map_size);
    memcpy(&hlen, st->map, 8);
    if (hlen > AIK_ST_MAX_HEADER)
        return aik_fail(err, -E2BIG, "header.length", "%" PRIu64 " exceeds the limit %u", hlen, AIK_ST_MAX_HEADER);
    if (!aik_range_ok(8, hlen, st->map_size))
        return aik_fail(err, -EBADMSG, "header.length", "%" PRIu64 " runs past end of file (%" PRIu64 ")", hlen,
                        st->map_size);
    if (hlen < 2 || st->map[8] != '{')
        return aik_fail(err, -EBADMSG, "header", "does not start with '{'");
    buf_off = 8 + hlen;
    buf_size = st->map_size - buf_off;
    st->root = json_loadb((const char *)st->map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!st->root)
        return aik_fail(err, -EBADMSG, "header", "JSON error at %d:%d: %s", jerr.line, jerr.column, jerr.text);
    if (!json_is_object(st->root))
        return aik_fail(err, -EBADMSG, "header", "is not a JSON object");
    if (json_object_size(st->root) > AIK_ST_MAX_TENSORS + 1)
        return aik_fail(err, -E2BIG, "header", "%zu entries, limit %d", json_object_size(st->root), AIK_ST_MAX_TENSORS);
    st->tensors = calloc(json_object_size(st->root) + 1, sizeof(*st->tensors));
    st->by_name = calloc(json_object_size(st->root) + 1, sizeof(uint32_t));
    if (!st->tensors || !st->by_name)
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    json_object_foreach(st->root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(v))
                return aik_fail(err, -EBADMSG, "__metadata__", "is not an object");
            json_object_foreach(v, mk, mv) if (!json_is_string(mv))
                return aik_fail(err, -EBADMSG, "__metadata__", "value of '%.100s' is not a string", mk);
            continue;
        }
        if (key[0] == '\0')
            return aik_fail(err, -EBADMSG, "tensors['']", "empty tensor name");
        if ((r = parse_entry(st, key, v, buf_size, &st->tensors[k], err)) < 0)
            return r;
        k++;
    }
    st->n = k;
    /* Sort by offset, then check that the spans tile the buffer exactly:
     * no overlap, no gap, nothing after. */
    qsort(st->tensors, st->n, sizeof(*st->tensors), cmp_off);
    expect = 0;
    for (uint32_t i = 0; i < st->n; i++) {
        aik_st_tensor *t = &st->tensors[i];
        uint64_t begin = t->offset;
        char where[160];
        snprintf(where, sizeof(where), "tensors['%.100s'].data_offsets", t->name);
        if (begin < expect)
            return aik_fail(err, -EBADMSG, where, "begins at %" PRIu64 ", overlapping the tensor before (ends at %" PRIu64 ")",
                            begin, expect);
        if (begin > expect)
            return aik_fail(err, -EBADMSG, where, "begins at %" PRIu64 ", leaving a gap after %" PRIu64, begin, expect);
        expect = begin + t->size; /* <= buf_size: checked in parse_entry */
        t->data = st->map + buf_off + begin;
    }
    if (expect != buf_size)
        return aik_fail(err, -EBADMSG, "header.length", "tensors cover %" PRIu64 " of the %" PRIu64 " data bytes",
                        expect, buf_size);
    for (uint32_t i = 0; i < st->n; i++)
        st->by_name[i] = i;
    tl_st = st;
    qsort(st->by_name, st->n, sizeof(uint32_t), cmp_name);
    tl_st = NULL;
    return 0;
}

static int open_common(const void *data, size_t size, bool owns, aik_safetensors **ret, aik_error *err)
{
    aik_safetensors *st = calloc(1, sizeof(*st));
    int r;
    if (!st) {
        if (owns)
            munmap((void *)data, size);
        return aik_fail(err, -ENOMEM, NULL, "out of memory");
    }
    st->map = data;
    st->map_size = size;
    st->owns_map = owns;
    if ((r = parse(st, err)) < 0) {
        aik_safetensors_close(st);
        return r;
    }
    *ret = st;
    return 0;
}

int aik_safetensors_open_buffer(const void *data, size_t size, aik_safetensors **ret_st, aik_error *err)
{
    static const uint8_t empty[1];
    if (!ret_st || (!data && size))
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    return open_common(data ? data : empty, size, false, ret_st, err);
}

int aik_safetensors_open(const char *path, aik_safetensors **ret_st, aik_error *err)
{
    struct stat st;
    void *map;
    int fd, r;

    if (!path || !ret_st)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return aik_fail(err, -errno, path, "cannot open: %s", strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return aik_fail(err, -EINVAL, path, "not a regular file");
    }
    if (st.st_size == 0) {
        close(fd);
        r = aik_safetensors_open_buffer(NULL, 0, ret_st, err);
        aik_error_prefix(err, path);
        return r;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    r = -errno;
    close(fd);
    if (map == MAP_FAILED)
        return aik_fail(err, r, path, "mmap failed: %s", strerror(-r));
    r = open_common(map, (size_t)st.st_size, true, ret_st, err);
    if (r < 0)
        aik_error_prefix(err, path);
    return r;
}

void aik_safetensors_close(aik_safetensors *st)
{
    if (!st)
        return;
    json_decref(st->root);
    free(st->tensors);
    free(st->by_name);
    if (st->owns_map)
        munmap((void *)st->map, st->map_size);
    free(st);
}

uint32_t aik_safetensors_count(const aik_safetensors *st) { return st->n; }

const aik_st_tensor *aik_safetensors_at(const aik_safetensors *st, uint32_t i)
{
    return i < st->n ? &st->tensors[i] : NULL;
}

const aik_st_tensor *aik_safetensors_find(const aik_safetensors *st, const char *name)
{
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, st->tensors[st->by_name[mid]].name);
        if (c == 0)
            return &st->tensors[st->by_name[mid]];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *aik_safetensors_metadata(const aik_safetensors *st, const char *key)
{
    json_t *m = json_object_get(st->root, "__metadata__");
    return m ? json_string_value(json_object_get(m, key)) : NULL;
}
