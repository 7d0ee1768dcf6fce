/* SPDX-License-Identifier: MIT */
/* Merge adapter deltas into a new package (see runtime/adapter_merge.h). */
#include "runtime/adapter_merge.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "kernels/cpu/cpu_kernels.h"

int aik_adapter_merge(const aik_slm *base, const aik_adapter *const *adapters, size_t n_adapters,
                      const char *out_path, aik_error *err)
{
    aik_slm_writer *w = NULL;
    float *buf = NULL;
    void *packed = NULL;
    int r;

    if (!base || !out_path || (n_adapters && !adapters))
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    /* Check everything before writing anything: a merge either produces a
     * package from compatible inputs or leaves no file behind. */
    for (size_t k = 0; k < n_adapters; k++) {
        if (adapters[k] && adapters[k]->kind == AIK_ADAPTER_SEGMENT) {
            char where[32];
            snprintf(where, sizeof(where), "adapter[%zu]", k);
            /* A fragment replaces tensors; summing it as a delta would be wrong. */
            return aik_fail(err, -EINVAL, where, "is a segment fragment (ASG1), not a delta: use aik_segment_apply");
        }
        if (aik_adapter_check(adapters[k], base, err) != AIK_ADAPTER_COMPATIBLE) {
            char pre[32];
            snprintf(pre, sizeof(pre), "adapter[%zu]", k);
            aik_error_prefix(err, pre);
            return -EINVAL;
        }
    }
    r = aik_slm_writer_begin(out_path, &base->hdr, base->layers, base->tokenizer, base->hdr.tokenizer_size, &w,
                             err);
    if (r < 0)
        return r;
    for (uint32_t i = 0; i < base->hdr.tensor_count; i++) {
        const aik_slm_tensor *t = &base->tensors[i];
        const uint64_t n = aik_slm_tensor_nelems(t);
        bool touched = false;
        const void *data = t->data;

        for (size_t k = 0; k < n_adapters && !touched; k++)
            touched = aik_adapter_find(adapters[k], t->name) != NULL;
        if (touched) {
            if (n > SIZE_MAX / sizeof(float) || (int64_t)n < 0) {
                r = aik_fail(err, -EFBIG, t->name, "too many elements");
                goto fail;
            }
            free(buf);
            free(packed);
            buf = malloc((size_t)n * sizeof(float));
            packed = malloc(t->size ? (size_t)t->size : 1);
            if (!buf || !packed) {
                r = aik_fail(err, -ENOMEM, t->name, "out of memory");
                goto fail;
            }
            /* Quantized rows are whole blocks and the tensor's blocks are
             * contiguous, so the whole tensor converts as one row. */
            aik_dequantize_row(t->dtype, t->data, buf, (int64_t)n);
            for (size_t k = 0; k < n_adapters; k++) {
                const aik_adapter_tensor *at = aik_adapter_find(adapters[k], t->name);
                if (at)
                    aik_adapter_tensor_apply(adapters[k]->kind, at, buf);
            }
            for (uint64_t j = 0; j < n; j++)
                if (!isfinite(buf[j])) {
                    r = aik_fail(err, -ERANGE, t->name, "merged value [%llu] is not finite",
                                 (unsigned long long)j);
                    goto fail;
                }
            aik_quantize_row(t->dtype, buf, packed, (int64_t)n);
            data = packed;
        }
        r = aik_slm_writer_add_tensor_sized(w, t->name, t->dtype, t->n_dims, t->shape, data, t->size, err);
        if (r < 0)
            goto fail;
    }
    free(buf);
    free(packed);
    return aik_slm_writer_finish(w, err);

fail:
    free(buf);
    free(packed);
    aik_slm_writer_abort(w);
    return r;
}
