/* SPDX-License-Identifier: MIT */
/* Fuzz target: the safetensors reader and its lookups. */
#include <stdint.h>
#include <stdlib.h>

#include "interop/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aik_safetensors *st = NULL;
    aik_error err;
    volatile uint8_t sink = 0;

    if (aik_safetensors_open_buffer(data, size, &st, &err) < 0)
        return 0;
    for (uint32_t i = 0; i < aik_safetensors_count(st); i++) {
        const aik_st_tensor *t = aik_safetensors_at(st, i);
        if (aik_safetensors_find(st, t->name) != t)
            abort(); /* names are unique: the index must find each one */
        if (t->size) /* first and last byte must be readable */
            sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[t->size - 1];
    }
    (void)aik_safetensors_metadata(st, "format");
    (void)sink;
    aik_safetensors_close(st);
    return 0;
}
