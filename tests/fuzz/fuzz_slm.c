/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the .slm reader: open the input with checksum
 * verification, and whether or not the checksums match, walk every layer and
 * tensor the way a loader would (names, shapes, the data bytes themselves) so
 * that any region the validator let through is actually touched.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "loader/slm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

static void walk(const aik_slm *pkg)
{
    uint8_t acc = 0;

    for (uint32_t i = 0; i < pkg->hdr.n_layers; i++)
        acc ^= (uint8_t)(pkg->layers[i].n_heads + pkg->layers[i].n_kv_heads + pkg->layers[i].ffn_dim);
    if (pkg->hdr.tokenizer_size)
        acc ^= pkg->tokenizer[0] ^ pkg->tokenizer[pkg->hdr.tokenizer_size - 1];
    for (uint32_t i = 0; i < pkg->hdr.tensor_count; i++) {
        const aik_slm_tensor *t = &pkg->tensors[i];
        const uint8_t *p = t->data;

        /* Every accepted tensor must be findable by its name, and its size
         * must be what its shape says. */
        if (aik_slm_find(pkg, t->name) != t)
            __builtin_trap();
        if (aik_slm_tensor_nelems(t) == 0 || t->size == 0)
            __builtin_trap();
        acc ^= p[0] ^ p[t->size - 1] ^ p[t->size / 2];
    }
    sink = acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aik_slm *pkg = NULL;
    aik_error err;
    int r;

    r = aik_slm_open_buffer(data, size, AIK_SLM_VERIFY_CHECKSUMS, &pkg, &err);
    if (r == 0) {
        walk(pkg);
        aik_slm_close(pkg);
        return 0;
    }
    /* Mutated inputs rarely keep their checksums: walk the structurally
     * valid ones anyway, and the failure must have named its field. */
    if (err.where[0] == '\0' && r != -ENOMEM)
        __builtin_trap();
    if (r == -EBADMSG && aik_slm_open_buffer(data, size, 0, &pkg, &err) == 0) {
        uint8_t a[32], b[32], c[32];
        walk(pkg);
        if (aik_slm_verify_checksums(pkg, a, b, c, &err) != -EBADMSG)
            __builtin_trap();
        aik_slm_close(pkg);
    }
    return 0;
}
