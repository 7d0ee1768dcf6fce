/* SPDX-License-Identifier: MIT */
#include "train/model_init.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/rng.h"
#include "graph/graph.h"
#include "kernels/cpu/cpu_kernels.h"
#include "runtime/model.h"

/* Box–Muller normal deviate. */
static float normal(uint64_t *state)
{
    double u1 = ((double)(aik_splitmix64(state) >> 11) + 0.5) * 0x1.0p-53;
    double u2 = (double)(aik_splitmix64(state) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int aik_model_init_write(const char *path, const aik_model_init *cfg, aik_error *err)
{
    const aik_arch_ops *arch;
    aik_model_hparams hp;
    aik_layer_hparams *lh = NULL;
    aik_slm_layer *sl = NULL;
    aik_graph *g = NULL;
    aik_slm_writer *w = NULL;
    float *f = NULL;
    void *q = NULL;
    uint64_t rng;
    float std;
    int r;

    if (!path || !cfg || !cfg->tokenizer)
        return aik_fail(err, -EINVAL, "init", "missing path, configuration or tokenizer");
    arch = cfg->arch ? cfg->arch : aik_builtin_arch(cfg->hdr.model_type);
    if (!arch)
        return aik_fail(err, -ENOEXEC, "init.model_type", "no architecture for model type %u", cfg->hdr.model_type);
    if (cfg->hdr.n_layers == 0 || cfg->hdr.n_layers > AIK_SLM_MAX_LAYERS)
        return aik_fail(err, -EINVAL, "init.n_layers", "must be 1..%d", AIK_SLM_MAX_LAYERS);
    if (!aik_dtype_valid(cfg->weight_dtype))
        return aik_fail(err, -EINVAL, "init.weight_dtype", "unknown dtype");

    lh = calloc(cfg->hdr.n_layers, sizeof(*lh));
    sl = calloc(cfg->hdr.n_layers, sizeof(*sl));
    if (!lh || !sl) {
        r = aik_fail(err, -ENOMEM, "init", "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < cfg->hdr.n_layers; i++) {
        if (cfg->layers)
            sl[i] = cfg->layers[i];
        else
            sl[i] = (aik_slm_layer){ cfg->hdr.n_heads, cfg->hdr.n_kv_heads, cfg->hdr.ffn_dim, 0 };
        lh[i] = (aik_layer_hparams){ sl[i].n_heads, sl[i].n_kv_heads, sl[i].ffn_dim };
    }
    memset(&hp, 0, sizeof(hp));
    hp.struct_size = sizeof(hp);
    hp.model_type = cfg->hdr.model_type;
    hp.flags = cfg->hdr.flags;
    hp.n_vocab = cfg->hdr.n_vocab;
    hp.dim = cfg->hdr.dim;
    hp.n_layers = cfg->hdr.n_layers;
    hp.head_dim = cfg->hdr.head_dim;
    hp.ctx_len = cfg->hdr.ctx_len;
    hp.rope_theta = cfg->hdr.rope_theta;
    hp.norm_eps = cfg->hdr.norm_eps;
    hp.layers = lh;
    r = aik_graph_build(arch, &hp, NULL, &g, err);
    if (r < 0)
        goto out;

    r = aik_slm_writer_begin(path, &cfg->hdr, sl, cfg->tokenizer, cfg->tokenizer_len, &w, err);
    if (r < 0)
        goto out;
    rng = cfg->seed;
    std = cfg->init_std > 0 ? cfg->init_std : 0.02f;
    for (aik_node i = 0; i < g->n_nodes; i++) {
        const aik_gnode *n = &g->nodes[i];
        uint64_t ne = n->shape[0] * n->shape[1] * n->shape[2] * n->shape[3], bytes;
        aik_dtype dt = n->n_dims == 1 ? AIK_DTYPE_F32 : cfg->weight_dtype;
        float s = std;

        if (n->op != AIK_OP_WEIGHT)
            continue;
        /* Quantized rows must be whole blocks; fall back to f32 otherwise. */
        if (aik_dtype_block_elems(dt) > 1 && n->shape[0] % aik_dtype_block_elems(dt))
            dt = AIK_DTYPE_F32;
        if (aik_dtype_bytes(dt, ne, &bytes) < 0 || ne > (1ull << 31)) {
            r = aik_fail(err, -EFBIG, n->name, "tensor too large to initialise");
            goto out;
        }
        free(f);
        free(q);
        q = NULL;
        f = malloc(ne * sizeof(float));
        if (!f || (dt != AIK_DTYPE_F32 && !(q = malloc(bytes)))) {
            r = aik_fail(err, -ENOMEM, n->name, "out of memory");
            goto out;
        }
        /* GPT-2 style: residual output projections scaled down with depth. */
        if (ends_with(n->name, "attn_output.weight") || ends_with(n->name, "ffn_down.weight"))
            s = std / sqrtf(2.0f * (float)cfg->hdr.n_layers);
        for (uint64_t k = 0; k < ne; k++)
            f[k] = n->n_dims == 1 ? (ends_with(n->name, "norm.weight") ? 1.0f : 0.0f) : s * normal(&rng);
        if (q)
            for (uint64_t row = 0; row < ne / n->shape[0]; row++) {
                uint64_t rb;
                aik_dtype_bytes(dt, n->shape[0], &rb);
                aik_quantize_row(dt, f + row * n->shape[0], (uint8_t *)q + row * rb, (int64_t)n->shape[0]);
            }
        r = aik_slm_writer_add_tensor(w, n->name, dt, n->n_dims, n->shape, q ? q : (void *)f, err);
        if (r < 0)
            goto out;
    }
    r = aik_slm_writer_finish(w, err);
    w = NULL;
out:
    aik_slm_writer_abort(w);
    aik_graph_free(g);
    free(f);
    free(q);
    free(lh);
    free(sl);
    return r;
}
