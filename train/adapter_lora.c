/* SPDX-License-Identifier: MIT */
/* LoRA pairs -> ALR1 (the distillation pipeline's adapter output). */
#include "train/adapter_lora.h"

#include <errno.h>

#include "common/error.h"

int aik_trainer_lora_adapter(const aik_trainer *tr, const aik_slm *base, aik_adapter **ret_adapter,
                             aik_error *err)
{
    aik_adapter_identity id;
    aik_adapter *a = NULL;
    size_t n;
    int r;

    if (!tr || !base || !ret_adapter)
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    n = aik_trainer_lora_count(tr);
    if (n == 0)
        return aik_fail(err, -EINVAL, "trainer", "has no LoRA pairs (not in LoRA mode?)");
    aik_adapter_identity_from_slm(base, &id);
    r = aik_adapter_new(AIK_ADAPTER_LOWRANK, &id, &a);
    if (r < 0)
        return aik_fail(err, r, NULL, "cannot create the adapter");
    for (size_t i = 0; i < n; i++) {
        const char *name;
        uint32_t rank;
        float alpha;
        const float *A, *B;
        uint64_t in, out;

        r = aik_trainer_lora_get(tr, i, &name, &rank, &alpha, &A, &B, &in, &out);
        if (r < 0) {
            r = aik_fail(err, r, "trainer", "cannot read LoRA pair %zu", i);
            goto fail;
        }
        r = aik_adapter_add_lowrank(a, name, in, out, rank, alpha, A, B, err);
        if (r < 0)
            goto fail;
    }
    /* Catch a pair whose shape does not match the base before it is saved. */
    if (aik_adapter_check(a, base, err) != AIK_ADAPTER_COMPATIBLE) {
        r = -EINVAL;
        goto fail;
    }
    *ret_adapter = a;
    return 0;
fail:
    aik_adapter_free(a);
    return r;
}

int aik_trainer_write_alr1(const aik_trainer *tr, const aik_slm *base, const char *path, aik_error *err)
{
    aik_adapter *a = NULL;
    int r = aik_trainer_lora_adapter(tr, base, &a, err);

    if (r < 0)
        return r;
    r = aik_adapter_write(a, path, err);
    aik_adapter_free(a);
    return r;
}
