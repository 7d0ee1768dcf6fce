/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the reference backend plug-in's execute() over arbitrary
 * segments (modules/backend-ref/backend_ref.c is compiled into this
 * target and reached through its module descriptor, as the host would).
 * A plug-in receives node tables from the host; its validation must refuse
 * every inconsistent one (sources, shapes, dtypes, buffer sizes, KV cache,
 * positions) before computing, so no input may read or write outside the
 * buffers it was handed. The bytes choose the run's sizes, up to 8 nodes and
 * their parameters, 6 buffers of fuzz-chosen sizes (filled from the input)
 * and the KV-cache slots.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aik/backend.h"
#include "aik/module.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern const aik_module_desc aik_module_descriptor;

typedef struct cursor {
    const uint8_t *p;
    size_t n;
} cursor;

static uint32_t take(cursor *c)
{
    if (!c->n)
        return 0;
    c->n--;
    return *c->p++;
}

enum { N_BUF = 6, MAX_NODES = 8 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const aik_backend_ops *ops = aik_module_descriptor.ops;
    cursor c = { data, size };
    aik_backend *b = NULL;
    aik_backend_buffer *buf[N_BUF] = { 0 };
    aik_backend_node nodes[MAX_NODES];
    aik_backend_tensor kc[2], vc[2];
    aik_error err;

    if (ops->open(0, &b, &err) < 0)
        abort();
    uint64_t bytes[N_BUF];
    for (int i = 0; i < N_BUF; i++) {
        bytes[i] = 4 * (1 + take(&c) + 256 * (take(&c) & 3)); /* 4 .. 4096 bytes */
        if (ops->buffer_alloc(b, bytes[i], &buf[i], &err) < 0)
            abort();
    }
    /* one field per statement: the order of evaluation inside an
     * initializer list is unspecified, the order of reading bytes is not */
    aik_backend_segment seg = { .struct_size = sizeof(seg), .nodes = nodes, .k_cache = kc, .v_cache = vc };
    seg.n_batch = 1 + take(&c) % 8;
    seg.n_past = take(&c) % 16;
    seg.ctx_len = take(&c) % 33;
    seg.n_kv = take(&c) % 3;
    seg.n_out = 1 + take(&c) % seg.n_batch;
    for (int i = 0; i < 2; i++) {
        uint32_t k = take(&c), v = take(&c), ko = take(&c), vo = take(&c);
        kc[i] = (aik_backend_tensor){ k % 7 < N_BUF ? buf[k % 7] : NULL, 4 * (ko % 8) };
        vc[i] = (aik_backend_tensor){ v % 7 < N_BUF ? buf[v % 7] : NULL, 4 * (vo % 8) };
    }
    seg.n_nodes = 1 + take(&c) % MAX_NODES;
    seg.first = take(&c) % seg.n_nodes;
    seg.end = seg.first + 1 + take(&c) % (seg.n_nodes - seg.first);
    for (uint32_t i = 0; i < seg.n_nodes; i++) {
        aik_backend_node *n = &nodes[i];
        uint32_t bi = take(&c) % 7;
        memset(n, 0, sizeof(*n));
        n->op = take(&c) % 17; /* a few unknown ops too */
        for (int s = 0; s < 3; s++)
            n->src[s] = (int32_t)(take(&c) % (MAX_NODES + 1)) - 1;
        uint32_t off = take(&c);
        n->data = (aik_backend_tensor){ bi < N_BUF ? buf[bi] : NULL, 4 * (off % 16) };
        n->n_cols = take(&c) % 70;
        n->width = take(&c) & 1 ? n->n_cols : take(&c) % 140;
        n->row_base = take(&c) & 1;
        n->dtype = take(&c) % 6;
        n->n_dims = take(&c) % 5;
        n->shape[0] = take(&c) % 2 ? 32 * (take(&c) % 3) : take(&c) % 70;
        n->shape[1] = take(&c) % 20;
        n->shape[2] = 1 + take(&c) % 2;
        n->shape[3] = 1;
        n->eps = 1e-5f;
        n->theta = 10000.0f;
        n->scale = 0.25f;
        n->n_heads = take(&c) % 9;
        n->n_kv_heads = take(&c) % 5;
        n->head_dim = take(&c) % 34;
        n->layer = take(&c) % 3;
        n->rope_mode = take(&c) % 3;
    }
    /* Buffer contents: the rest of the input, cycled, as small floats
     * (arbitrary float bytes would mostly be NaN or huge) and small ints
     * (token ids read by GET_ROWS, in and out of range). */
    for (int i = 0; i < N_BUF; i++) {
        float *fill = malloc(bytes[i]);
        if (!fill)
            abort();
        for (uint64_t j = 0; j < bytes[i] / 4; j++) {
            uint8_t v = c.n ? c.p[j % c.n] : (uint8_t)j;
            if (i == 0)
                ((int32_t *)fill)[j] = (int32_t)v - 8;
            else
                fill[j] = ((float)v - 128.0f) / 32.0f;
        }
        if (ops->buffer_upload(b, buf[i], 0, fill, bytes[i], &err) < 0)
            abort();
        free(fill);
    }
    (void)ops->execute(b, &seg, &err);
    for (int i = 0; i < N_BUF; i++)
        ops->buffer_free(b, buf[i]);
    ops->close(b);
    return 0;
}
