/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "aik/tensor.h"
#include "common/checked.h"

static const struct {
    const char *name;
    uint32_t block_elems;
    uint32_t block_bytes;
} dtype_info[AIK_DTYPE_COUNT] = {
    [AIK_DTYPE_F32] = { "f32", 1, 4 },
    [AIK_DTYPE_F16] = { "f16", 1, 2 },
    [AIK_DTYPE_BF16] = { "bf16", 1, 2 },
    [AIK_DTYPE_Q8_0] = { "q8_0", AIK_QK8_0, sizeof(aik_block_q8_0) },
    [AIK_DTYPE_Q4_0] = { "q4_0", AIK_QK4_0, sizeof(aik_block_q4_0) },
};

AIK_EXPORT bool aik_dtype_valid(uint32_t t) { return t < AIK_DTYPE_COUNT; }

AIK_EXPORT const char *aik_dtype_name(aik_dtype t)
{
    return aik_dtype_valid(t) ? dtype_info[t].name : "?";
}

AIK_EXPORT int aik_dtype_from_name(const char *name, aik_dtype *ret_type)
{
    if (!name || !ret_type)
        return -EINVAL;
    for (int t = 0; t < AIK_DTYPE_COUNT; t++)
        if (strcmp(name, dtype_info[t].name) == 0) {
            *ret_type = (aik_dtype)t;
            return 0;
        }
    return -EINVAL;
}

AIK_EXPORT uint32_t aik_dtype_block_elems(aik_dtype t)
{
    return aik_dtype_valid(t) ? dtype_info[t].block_elems : 0;
}

AIK_EXPORT uint32_t aik_dtype_block_bytes(aik_dtype t)
{
    return aik_dtype_valid(t) ? dtype_info[t].block_bytes : 0;
}

AIK_EXPORT int aik_dtype_bytes(aik_dtype t, uint64_t n, uint64_t *ret_bytes)
{
    uint64_t bytes;

    if (!aik_dtype_valid(t) || !ret_bytes || n % dtype_info[t].block_elems != 0)
        return -EINVAL;
    if (aik_mul_overflow(n / dtype_info[t].block_elems, dtype_info[t].block_bytes, &bytes))
        return -EOVERFLOW;
    *ret_bytes = bytes;
    return 0;
}
