/* SPDX-License-Identifier: MIT */
/* Fuzz target: the GGUF reader, its typed accessors and dequantization of
 * whatever tensors a file that validates declares. */
#include <stdint.h>
#include <stdlib.h>

#include "interop/ggml_quant.h"
#include "interop/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aik_gguf *g = NULL;
    aik_error err;
    float *buf;

    if (aik_gguf_open_buffer(data, size, &g, &err) < 0)
        return 0;
    for (uint32_t i = 0; i < aik_gguf_kv_count(g); i++) {
        const char *key = aik_gguf_kv_key(g, i), *s;
        size_t len;
        uint32_t u, per[4];
        int64_t i64;
        float f;
        bool b;
        aik_gguf_type et;
        uint64_t n;
        int k;

        (void)aik_gguf_get_u32(g, key, &u, &err);
        (void)aik_gguf_get_i64(g, key, &i64, &err);
        (void)aik_gguf_get_f32(g, key, &f, &err);
        (void)aik_gguf_get_bool(g, key, &b, &err);
        (void)aik_gguf_get_str(g, key, &s, &len, &err);
        (void)aik_gguf_get_u32_per_layer(g, key, 4, per, &err);
        k = aik_gguf_get_arr(g, key, &et, &n, &err);
        if (k >= 0)
            for (uint64_t j = 0; j < n && j < 64; j++) {
                double d;
                (void)aik_gguf_arr_str(g, k, j, &s, &len);
                (void)aik_gguf_arr_int(g, k, j, &i64);
                (void)aik_gguf_arr_f64(g, k, j, &d);
            }
    }
    buf = malloc(4096 * sizeof(float));
    for (uint32_t i = 0; buf && i < aik_gguf_tensor_count(g); i++) {
        const aik_gguf_tensor *t = aik_gguf_tensor_at(g, i);
        uint32_t blck, bsz;
        uint64_t n;
        if (aik_gguf_find_tensor(g, t->name) != t || !aik_ggml_type_info(t->type, &blck, &bsz))
            abort(); /* the index must find every tensor it holds */
        n = t->ne[0] < 4096 ? t->ne[0] : 4096;
        n -= n % blck;
        if (n && aik_ggml_can_dequantize(t->type))
            (void)aik_ggml_dequantize(t->type, t->data, buf, n);
    }
    free(buf);
    aik_gguf_close(g);
    return 0;
}
