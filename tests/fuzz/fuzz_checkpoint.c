/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: trainer checkpoint loading. A tiny model and trainer are made
 * once; every input is offered as a checkpoint for it. With
 * AIK_FUZZ_WRITE_SEED=PATH the target writes a valid checkpoint (the seed
 * corpus) and exits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "train/bpe_trainer.h"
#include "train/model_init.h"
#include "train/trainer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static aik_trainer *tr;
static aik_model *model;
static char ckpt[64];

static void die(const char *what, const aik_error *err)
{
    fprintf(stderr, "fuzz_checkpoint setup: %s: %s: %s\n", what, err->where, err->message);
    abort();
}

static void setup(void)
{
    aik_error err;
    aik_model_init mi = { 0 };
    aik_train_config cfg;
    uint8_t *blob;
    size_t len;
    char pkg[64];

    /* a real (tiny) tokenizer from the project's own BPE trainer */
    static const char text[] = "the quick brown fox jumps over the lazy dog, the end";
    aik_bpe_trainer_opts opts = { .vocab_size = 262 };
    if (aik_bpe_train(&opts, text, sizeof(text) - 1, &blob, &len, &err) < 0)
        die("tokenizer", &err);
    snprintf(pkg, sizeof(pkg), "/tmp/aik-fuzz-ckpt-%d.slm", (int)getpid());
    snprintf(ckpt, sizeof(ckpt), "/tmp/aik-fuzz-ckpt-%d.bin", (int)getpid());
    mi.hdr.model_type = AIK_SLM_MODEL_LLAMA;
    mi.hdr.n_vocab = 262;
    mi.hdr.dim = 16;
    mi.hdr.n_layers = 1;
    mi.hdr.n_heads = 2;
    mi.hdr.n_kv_heads = 1;
    mi.hdr.head_dim = 8;
    mi.hdr.ffn_dim = 16;
    mi.hdr.ctx_len = 8;
    mi.hdr.rope_theta = 10000.0f;
    mi.hdr.norm_eps = 1e-5f;
    mi.weight_dtype = AIK_DTYPE_F32;
    mi.tokenizer = blob;
    mi.tokenizer_len = len;
    if (aik_model_init_write(pkg, &mi, &err) < 0 || aik_model_open(pkg, 0, NULL, &model, &err) < 0)
        die("model", &err);
    free(blob);
    unlink(pkg); /* the mapping stays valid */
    aik_train_config_default(&cfg);
    cfg.seq_len = 4;
    cfg.micro_batches = 1;
    cfg.steps = 2;
    cfg.warmup_steps = 0;
    cfg.n_threads = 1;
    if (aik_trainer_new(model, &cfg, &tr, &err) < 0)
        die("trainer", &err);
    const char *seed = getenv("AIK_FUZZ_WRITE_SEED");
    if (seed) {
        uint64_t state = 42;
        exit(aik_trainer_save_checkpoint(tr, seed, &state, sizeof(state), NULL) < 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void *extra = NULL;
    size_t extra_len = 0;

    if (!tr)
        setup();
    if (aik_write_file_atomic(ckpt, data, size, 0600) < 0)
        return 0;
    aik_trainer_load_checkpoint(tr, ckpt, &extra, &extra_len, NULL);
    free(extra);
    unlink(ckpt);
    return 0;
}
