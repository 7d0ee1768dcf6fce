/* SPDX-License-Identifier: MIT */
/* Extracting and applying segment fragments (see runtime/segment_apply.h). */
#include "runtime/segment_apply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static bool in_range(const char *name, uint32_t first, uint32_t end)
{
    uint32_t layer;

    return aik_segment_layer_of(name, &layer) == 0 && layer >= first && layer < end;
}

int aik_segment_extract(const aik_slm *pkg, uint32_t layer_first, uint32_t layer_end, aik_adapter **ret_fragment,
                        aik_error *err)
{
    aik_adapter_identity id;
    aik_adapter *f = NULL;
    int r;

    if (!pkg || !ret_fragment)
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    if (layer_first >= layer_end || layer_end > pkg->hdr.n_layers)
        return aik_fail(err, -EINVAL, "layers", "[%u, %u) is not a non-empty range within the model's %u layers",
                        layer_first, layer_end, pkg->hdr.n_layers);
    aik_adapter_identity_from_slm(pkg, &id);
    r = aik_segment_new(&id, layer_first, layer_end, &f);
    if (r < 0)
        return aik_fail(err, r, "layers", "cannot make a fragment: %s", strerror(-r));
    for (uint32_t i = 0; i < pkg->hdr.tensor_count; i++) {
        const aik_slm_tensor *t = &pkg->tensors[i];

        if (!in_range(t->name, layer_first, layer_end))
            continue;
        r = aik_segment_add(f, t->name, t->dtype, t->n_dims, t->shape, t->data, t->size, err);
        if (r < 0) {
            aik_adapter_free(f);
            return r;
        }
    }
    *ret_fragment = f;
    return 0;
}

int aik_segment_apply(const aik_slm *base, const aik_adapter *fragment, const char *out_path, aik_error *err)
{
    aik_slm_writer *w = NULL;
    int r;

    if (!base || !fragment || !out_path)
        return aik_fail(err, -EINVAL, NULL, "missing argument");
    if (fragment->kind != AIK_ADAPTER_SEGMENT)
        return aik_fail(err, -EINVAL, "fragment", "is %s, not a segment fragment (ASG1)",
                        aik_adapter_kind_magic(fragment->kind));
    /* Check before writing: a fragment either fits the base or no file is
     * made. The check also guarantees each payload's dtype and shape (hence
     * its byte size) are the replaced tensor's, so the writer gets the same
     * layout and the layout checksum is unchanged. */
    if (aik_adapter_check(fragment, base, err) != AIK_ADAPTER_COMPATIBLE)
        return -EINVAL;
    r = aik_slm_writer_begin(out_path, &base->hdr, base->layers, base->tokenizer, base->hdr.tokenizer_size, &w,
                             err);
    if (r < 0)
        return r;
    for (uint32_t i = 0; i < base->hdr.tensor_count; i++) {
        const aik_slm_tensor *t = &base->tensors[i];
        const aik_adapter_tensor *ft = aik_adapter_find(fragment, t->name);
        const void *data = ft ? (const void *)ft->data : t->data;
        uint64_t size = ft ? ft->data_size : t->size;

        r = aik_slm_writer_add_tensor_sized(w, t->name, t->dtype, t->n_dims, t->shape, data, size, err);
        if (r < 0) {
            aik_slm_writer_abort(w);
            return r;
        }
    }
    return aik_slm_writer_finish(w, err);
}
