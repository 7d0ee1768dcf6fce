/* SPDX-License-Identifier: MIT */
#include "runtime/model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/error.h"
#include "modules/llama/llama_arch.h"
#include "scheduler/packed_weights.h"

const aik_arch_ops *aik_builtin_arch(uint32_t model_type)
{
    return model_type == AIK_SLM_MODEL_LLAMA ? &aik_llama_arch_ops : NULL;
}

static int finish_open(aik_slm *pkg, bool owns, const aik_arch_ops *arch, aik_model **ret, aik_error *err)
{
    aik_model *m = calloc(1, sizeof(*m));
    int r;

    if (!m) {
        if (owns)
            aik_slm_close(pkg);
        return aik_fail(err, -ENOMEM, "model", "out of memory");
    }
    m->pkg = pkg;
    m->owns_pkg = owns;
    if (!arch)
        arch = aik_builtin_arch(pkg->hdr.model_type);
    if (!arch) {
        r = aik_fail(err, -ENOEXEC, "header.model_type", "no architecture module for model type %u",
                     pkg->hdr.model_type);
        goto fail;
    }
    if (arch->model_type != pkg->hdr.model_type) {
        r = aik_fail(err, -ENOEXEC, "header.model_type", "package is model type %u, architecture module builds %u",
                     pkg->hdr.model_type, arch->model_type);
        goto fail;
    }
    r = aik_tokenizer_load(pkg->tokenizer, pkg->hdr.tokenizer_size, &m->tok, err);
    if (r < 0) {
        aik_error_prefix(err, "tokenizer");
        goto fail;
    }
    if (aik_tokenizer_n_vocab(m->tok) > pkg->hdr.n_vocab) {
        r = aik_fail(err, -EINVAL, "tokenizer", "has %u tokens, the model's vocabulary is %u",
                     aik_tokenizer_n_vocab(m->tok), pkg->hdr.n_vocab);
        goto fail;
    }
    r = aik_graph_hparams_from_slm(pkg, &m->hp, &m->layers);
    if (r < 0) {
        aik_fail(err, r, "model", "out of memory");
        goto fail;
    }
    r = aik_graph_build(arch, &m->hp, pkg, &m->graph, err);
    if (r < 0)
        goto fail;
    r = aik_packed_weights_new(m->graph, &m->packed);
    if (r < 0) {
        aik_fail(err, r, "model", "out of memory");
        goto fail;
    }
    *ret = m;
    return 0;
fail:
    aik_model_free(m);
    return r;
}

int aik_model_open_fd(int fd, unsigned slm_flags, const aik_arch_ops *arch, aik_model **ret, aik_error *err)
{
    aik_slm *pkg;
    int r = aik_slm_open_fd(fd, slm_flags, &pkg, err);

    if (r < 0)
        return r;
    return finish_open(pkg, true, arch, ret, err);
}

int aik_model_open(const char *path, unsigned slm_flags, const aik_arch_ops *arch, aik_model **ret, aik_error *err)
{
    aik_slm *pkg;
    int r = aik_slm_open(path, slm_flags, &pkg, err);

    if (r < 0)
        return r;
    return finish_open(pkg, true, arch, ret, err);
}

int aik_model_from_slm(const aik_slm *pkg, const aik_arch_ops *arch, aik_model **ret, aik_error *err)
{
    if (!pkg)
        return aik_fail(err, -EINVAL, "model", "no package");
    /* not owned: finish_open never closes it (owns == false) */
    return finish_open((aik_slm *)pkg, false, arch, ret, err);
}

void aik_model_free(aik_model *m)
{
    if (!m)
        return;
    aik_packed_weights_free(m->packed);
    aik_graph_free(m->graph);
    aik_tokenizer_free(m->tok);
    free(m->layers);
    if (m->owns_pkg)
        aik_slm_close(m->pkg);
    free(m);
}
