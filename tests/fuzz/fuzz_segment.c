/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the ASG1 segment fragment reader: parse the input; when it
 * is accepted, touch every byte range the reader claims to hold, check it
 * against a model made to match it (its own names, dtypes and shapes: only
 * the range and finiteness checks can then fail), and re-serialize it, which
 * must reproduce the input byte for byte.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "loader/adapter.h"
#include "loader/slm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint32_t sink;

/* aik_adapter_check against a hand-made package whose directory is the
 * fragment's own records and whose identity is the fragment's. */
static void check_against_self(aik_adapter *a)
{
    aik_slm pkg;
    aik_error err;
    aik_adapter_check_result res;

    memset(&pkg, 0, sizeof(pkg));
    pkg.tensors = calloc(a->n_tensors ? a->n_tensors : 1, sizeof(*pkg.tensors));
    if (!pkg.tensors)
        return;
    for (uint32_t i = 0; i < a->n_tensors; i++) {
        memcpy(pkg.tensors[i].name, a->tensors[i].name, sizeof(pkg.tensors[i].name));
        pkg.tensors[i].dtype = a->tensors[i].dtype;
        pkg.tensors[i].n_dims = a->tensors[i].n_dims;
        memcpy(pkg.tensors[i].shape, a->tensors[i].shape, sizeof(pkg.tensors[i].shape));
    }
    a->id.tensor_count = a->n_tensors;
    pkg.hdr.tensor_count = a->n_tensors;
    pkg.hdr.flags = a->id.flags;
    pkg.hdr.parameter_count = a->id.parameter_count;
    memcpy(pkg.hdr.layout_checksum, a->id.layout_checksum, 32);
    memcpy(pkg.hdr.tokenizer_sha256, a->id.tokenizer_checksum, 32);
    pkg.hdr.n_layers = a->layer_end;
    res = aik_adapter_check(a, &pkg, &err);
    if (res != AIK_ADAPTER_COMPATIBLE && res != AIK_ADAPTER_ERR_OUTSIDE_RANGE && res != AIK_ADAPTER_ERR_NON_FINITE)
        __builtin_trap();
    if (res != AIK_ADAPTER_COMPATIBLE && err.where[0] == '\0')
        __builtin_trap();
    free(pkg.tensors);
}

static int one(const uint8_t *data, size_t size)
{
    aik_adapter *a = NULL;
    aik_error err;
    uint8_t *out = NULL;
    size_t out_len = 0;
    uint32_t layer;
    int r;

    r = aik_segment_parse(data, size, &a, &err);
    if (r < 0) {
        if (err.where[0] == '\0' && r != -ENOMEM)
            __builtin_trap(); /* every rejection names its field */
        return 0;
    }
    if (a->kind != AIK_ADAPTER_SEGMENT || a->layer_first >= a->layer_end)
        __builtin_trap();
    for (uint32_t i = 0; i < a->n_tensors; i++) {
        const aik_adapter_tensor *t = &a->tensors[i];
        uint64_t want;

        if (aik_adapter_find(a, t->name) != t)
            __builtin_trap();
        if (aik_dtype_bytes(t->dtype, t->nelems, &want) < 0 || want != t->data_size)
            __builtin_trap();
        sink = t->data[0] + t->data[t->data_size - 1];
        if (aik_segment_layer_of(t->name, &layer) == 0)
            sink += layer;
    }
    {
        uint32_t saved = a->id.tensor_count;
        check_against_self(a);
        a->id.tensor_count = saved; /* for the byte-for-byte re-serialization */
    }
    if (aik_adapter_serialize(a, &out, &out_len, &err) == 0) {
        /* The writer writes version 1.0 and a 152-byte header: a newer minor
         * and a zero header extension are the legal differences. */
        if (data[8] == 152 && data[9] == 0 && data[10] == 0 && data[11] == 0 &&
            (out_len != size || memcmp(out + 8, data + 8, size - 8) != 0))
            __builtin_trap();
        free(out);
    }
    aik_adapter_free(a);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aik_error err;
    aik_adapter *a = NULL;
    int r = aik_segment_parse(data, size, &a, &err);

    if (r == 0) {
        aik_adapter_free(a);
        return one(data, size);
    }
    if (err.where[0] == '\0' && r != -ENOMEM)
        __builtin_trap();
    /* Mutations rarely keep the payload checksum: re-seal a copy so that the
     * record parser behind it gets fuzzed too. The header was accepted up to
     * the checksum, so header_size is in range. */
    if (r == -EBADMSG && strcmp(err.where, "header.payload_sha256") == 0) {
        uint8_t *copy = malloc(size);
        uint32_t hs;
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        hs = (uint32_t)copy[8] | (uint32_t)copy[9] << 8 | (uint32_t)copy[10] << 16 | (uint32_t)copy[11] << 24;
        if (aik_sha256_buf(copy + hs, size - hs, copy + 112) == 0)
            one(copy, size);
        free(copy);
    }
    return 0;
}
