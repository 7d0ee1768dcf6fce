/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the ADP1 / ASP1 / ALR1 reader: parse the input; when it is
 * accepted, touch every value the reader claims to hold, apply each payload
 * to a scratch tensor of its shape (the merge path) when small enough, and
 * re-serialize it, which must reproduce the input byte for byte.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/digest.h"
#include "loader/adapter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile float sink;

static int one(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aik_error err;
    aik_adapter *a = NULL;
    int r = aik_adapter_parse(data, size, &a, &err);

    if (r == 0) {
        aik_adapter_free(a);
        return one(data, size);
    }
    if (err.where[0] == '\0' && r != -ENOMEM)
        __builtin_trap(); /* every rejection names its field */
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

static int one(const uint8_t *data, size_t size)
{
    aik_adapter *a = NULL;
    aik_error err;
    uint8_t *out = NULL;
    size_t out_len = 0;
    int r;

    r = aik_adapter_parse(data, size, &a, &err);
    if (r < 0) {
        if (err.where[0] == '\0' && r != -ENOMEM)
            __builtin_trap();
        return 0;
    }
    for (uint32_t i = 0; i < a->n_tensors; i++) {
        const aik_adapter_tensor *t = &a->tensors[i];
        float acc = 0;

        if (aik_adapter_find(a, t->name) != t)
            __builtin_trap();
        if (a->kind == AIK_ADAPTER_DENSE)
            acc += t->dense[0] + t->dense[t->nelems - 1];
        if (a->kind == AIK_ADAPTER_SPARSE && t->count)
            acc += t->deltas[t->count - 1] + (float)t->indices[t->count - 1];
        if (a->kind == AIK_ADAPTER_LOWRANK)
            acc += t->A[(uint64_t)t->rank * t->in - 1] + t->B[(uint64_t)t->rank * t->out - 1];
        sink = acc;
        /* The merge path, with the in-range/sorted guarantees that
         * aik_adapter_check gives (checked here by hand: no model). */
        if (t->nelems <= (1u << 16) && (a->kind != AIK_ADAPTER_LOWRANK || t->nelems * t->rank <= (1u << 20))) {
            bool ok = true;
            for (uint64_t k = 0; a->kind == AIK_ADAPTER_SPARSE && k < t->count; k++)
                ok &= t->indices[k] < t->nelems;
            if (ok) {
                float *dst = calloc(t->nelems, sizeof(float));
                if (dst) {
                    aik_adapter_tensor_apply(a->kind, t, dst);
                    sink = dst[t->nelems - 1];
                    free(dst);
                }
            }
        }
    }
    if (aik_adapter_serialize(a, &out, &out_len, &err) == 0) {
        /* header_size > 144 (zero extension) is the one legal difference. */
        if (data[8] == 144 && data[9] == 0 && data[10] == 0 && data[11] == 0 &&
            (out_len != size || memcmp(out + 8, data + 8, size - 8) != 0))
            __builtin_trap();
        free(out);
    }
    aik_adapter_free(a);
    return 0;
}
