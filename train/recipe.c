/* SPDX-License-Identifier: MIT */
#include "train/recipe.h"

#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"
#include "train/bpe_trainer.h"
#include "train/model_init.h"

#define RECIPE_MAX_BYTES (1u << 20)
#define CORPUS_MAX_BYTES ((size_t)4 << 30)

/* ---- strict JSON access ---- */

static int only_keys(json_t *o, const char *path, const char *const *allowed, aik_error *err)
{
    const char *key;
    json_t *v;

    if (!json_is_object(o))
        return aik_fail(err, -EINVAL, path, "must be an object");
    json_object_foreach(o, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = true;
        if (!ok)
            return aik_fail(err, -EINVAL, path, "unknown key '%s'", key);
    }
    return 0;
}

static int get_u32(json_t *o, const char *path, const char *key, bool required, uint32_t def, uint32_t lo,
                   uint32_t hi, uint32_t *out, aik_error *err)
{
    json_t *v = json_object_get(o, key);
    char where[128];

    snprintf(where, sizeof(where), "%s.%s", path, key);
    if (!v) {
        if (required)
            return aik_fail(err, -EINVAL, where, "is required");
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo || json_integer_value(v) > (json_int_t)hi)
        return aik_fail(err, -EINVAL, where, "must be an integer in %u..%u", lo, hi);
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

static int get_f32(json_t *o, const char *path, const char *key, float def, double lo, double hi, float *out,
                   aik_error *err)
{
    json_t *v = json_object_get(o, key);
    char where[128];

    snprintf(where, sizeof(where), "%s.%s", path, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi))
        return aik_fail(err, -EINVAL, where, "must be a number in [%g, %g]", lo, hi);
    *out = (float)json_number_value(v);
    return 0;
}

/* A string that may be a path: resolved against the recipe's directory.
 * must_exist: the file must be a readable regular file now. */
static int get_path(json_t *o, const char *path, const char *key, bool required, bool must_exist, const char *dir,
                    char **out, aik_error *err)
{
    json_t *v = json_object_get(o, key);
    char where[128];
    struct stat st;

    snprintf(where, sizeof(where), "%s.%s", path, key);
    *out = NULL;
    if (!v) {
        if (required)
            return aik_fail(err, -EINVAL, where, "is required");
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0)
        return aik_fail(err, -EINVAL, where, "must be a non-empty string");
    const char *s = json_string_value(v);
    if (s[0] == '/') {
        *out = strdup(s);
    } else if (asprintf(out, "%s/%s", dir, s) < 0) {
        *out = NULL;
    }
    if (!*out)
        return aik_fail(err, -ENOMEM, where, "out of memory");
    if (must_exist && (stat(*out, &st) < 0 || !S_ISREG(st.st_mode) || access(*out, R_OK) < 0))
        return aik_fail(err, -ENOENT, where, "'%s' is not a readable file", *out);
    return 0;
}

void aik_recipe_free(aik_recipe *r)
{
    if (!r)
        return;
    free(r->dir);
    free(r->train_path);
    free(r->valid_path);
    free(r->test_path);
    free(r->base_path);
    free(r->teacher_path);
    for (size_t i = 0; i < r->n_lora_targets; i++)
        free(r->lora_targets[i]);
    free(r->lora_targets);
    free(r->checkpoint_path);
    free(r->output_path);
    free(r);
}

static int parse(json_t *root, aik_recipe *r, aik_error *err)
{
    static const char *const top_keys[] = { "data", "tokenizer", "model", "train", "eval", "checkpoint", "output",
                                            "comment", NULL };
    static const char *const data_keys[] = { "train", "valid", "test", NULL };
    static const char *const tok_keys[] = { "vocab_size", "train_bytes", NULL };
    static const char *const model_keys[] = { "base", "layers", "dim", "heads", "kv_heads", "head_dim", "ffn_dim",
                                              "context", "rope_theta", "norm_eps", "tied_embeddings", NULL };
    static const char *const train_keys[] = { "mode", "seq_len", "micro_batches", "steps", "warmup_steps", "lr",
                                              "min_lr", "weight_decay", "beta1", "beta2", "grad_clip", "seed",
                                              "threads", "lora", "distill", NULL };
    static const char *const lora_keys[] = { "rank", "alpha", "targets", NULL };
    static const char *const distill_keys[] = { "teacher", "temperature", "ce_weight", NULL };
    static const char *const eval_keys[] = { "every", "sequences", NULL };
    static const char *const ckpt_keys[] = { "path", "every", NULL };
    static const char *const out_keys[] = { "package", "dtype", NULL };
    json_t *o;
    uint32_t u;
    int e;

    if ((e = only_keys(root, "recipe", top_keys, err)) < 0)
        return e;

    o = json_object_get(root, "data");
    if (!o)
        return aik_fail(err, -EINVAL, "data", "is required");
    if ((e = only_keys(o, "data", data_keys, err)) < 0 ||
        (e = get_path(o, "data", "train", true, true, r->dir, &r->train_path, err)) < 0 ||
        (e = get_path(o, "data", "valid", true, true, r->dir, &r->valid_path, err)) < 0 ||
        (e = get_path(o, "data", "test", false, true, r->dir, &r->test_path, err)) < 0)
        return e;

    o = json_object_get(root, "model");
    if (!o)
        return aik_fail(err, -EINVAL, "model", "is required");
    if ((e = only_keys(o, "model", model_keys, err)) < 0 ||
        (e = get_path(o, "model", "base", false, true, r->dir, &r->base_path, err)) < 0)
        return e;
    if (r->base_path) {
        if (json_object_size(o) != 1)
            return aik_fail(err, -EINVAL, "model", "'base' continues an existing package: no other model keys");
    } else {
        aik_slm_header *h = &r->hdr;
        json_t *tied = json_object_get(o, "tied_embeddings");
        h->model_type = AIK_SLM_MODEL_LLAMA;
        if ((e = get_u32(o, "model", "layers", true, 0, 1, AIK_SLM_MAX_LAYERS, &h->n_layers, err)) < 0 ||
            (e = get_u32(o, "model", "dim", true, 0, 8, 16384, &h->dim, err)) < 0 ||
            (e = get_u32(o, "model", "heads", true, 0, 1, 1024, &h->n_heads, err)) < 0 ||
            (e = get_u32(o, "model", "kv_heads", false, h->n_heads, 1, 1024, &h->n_kv_heads, err)) < 0 ||
            (e = get_u32(o, "model", "head_dim", false, h->dim / h->n_heads, 2, 1024, &h->head_dim, err)) < 0 ||
            (e = get_u32(o, "model", "ffn_dim", true, 0, 1, 65536, &h->ffn_dim, err)) < 0 ||
            (e = get_u32(o, "model", "context", true, 0, 2, 65536, &h->ctx_len, err)) < 0 ||
            (e = get_f32(o, "model", "rope_theta", 10000.0f, 1.0, 1e9, &h->rope_theta, err)) < 0 ||
            (e = get_f32(o, "model", "norm_eps", 1e-5f, 1e-12, 1e-1, &h->norm_eps, err)) < 0)
            return e;
        if (h->n_heads % h->n_kv_heads)
            return aik_fail(err, -EINVAL, "model.kv_heads", "%u heads are not a multiple of %u kv heads", h->n_heads,
                            h->n_kv_heads);
        if (h->head_dim % 2)
            return aik_fail(err, -EINVAL, "model.head_dim", "must be even (RoPE rotates pairs)");
        if (tied && !json_is_boolean(tied))
            return aik_fail(err, -EINVAL, "model.tied_embeddings", "must be true or false");
        if (!tied || json_is_true(tied))
            h->flags |= AIK_SLM_FLAG_TIED_EMBEDDINGS;
    }

    o = json_object_get(root, "tokenizer");
    if (!r->base_path && !o)
        return aik_fail(err, -EINVAL, "tokenizer", "is required for a new model");
    if (o) {
        if (r->base_path)
            return aik_fail(err, -EINVAL, "tokenizer", "a base package brings its own tokenizer");
        uint32_t tb = 0;
        if ((e = only_keys(o, "tokenizer", tok_keys, err)) < 0 ||
            (e = get_u32(o, "tokenizer", "vocab_size", true, 0, 260, AIK_SLM_MAX_VOCAB, &r->tok_vocab, err)) < 0 ||
            (e = get_u32(o, "tokenizer", "train_bytes", false, 0, 0, UINT32_MAX, &tb, err)) < 0)
            return e;
        r->tok_train_bytes = tb;
        r->hdr.n_vocab = r->tok_vocab;
    }

    aik_train_config_default(&r->train);
    o = json_object_get(root, "train");
    if (!o)
        return aik_fail(err, -EINVAL, "train", "is required");
    if ((e = only_keys(o, "train", train_keys, err)) < 0)
        return e;
    json_t *mode = json_object_get(o, "mode");
    if (mode) {
        if (json_is_string(mode) && strcmp(json_string_value(mode), "full") == 0)
            r->train.mode = AIK_TRAIN_FULL;
        else if (json_is_string(mode) && strcmp(json_string_value(mode), "lora") == 0)
            r->train.mode = AIK_TRAIN_LORA;
        else
            return aik_fail(err, -EINVAL, "train.mode", "must be \"full\" or \"lora\"");
    }
    aik_train_config *c = &r->train;
    if ((e = get_u32(o, "train", "seq_len", false, c->seq_len, 2, 65536, &c->seq_len, err)) < 0 ||
        (e = get_u32(o, "train", "micro_batches", false, c->micro_batches, 1, 4096, &c->micro_batches, err)) < 0 ||
        (e = get_u32(o, "train", "steps", true, 0, 1, 100000000, &c->steps, err)) < 0 ||
        (e = get_u32(o, "train", "warmup_steps", false, c->warmup_steps < c->steps ? c->warmup_steps : 0, 0,
                     c->steps, &c->warmup_steps, err)) < 0 ||
        (e = get_f32(o, "train", "lr", c->lr, 1e-9, 10, &c->lr, err)) < 0 ||
        (e = get_f32(o, "train", "min_lr", c->lr < c->min_lr ? c->lr : c->min_lr, 0, c->lr, &c->min_lr, err)) < 0 ||
        (e = get_f32(o, "train", "weight_decay", c->weight_decay, 0, 10, &c->weight_decay, err)) < 0 ||
        (e = get_f32(o, "train", "beta1", c->beta1, 0, 0.999999, &c->beta1, err)) < 0 ||
        (e = get_f32(o, "train", "beta2", c->beta2, 0, 0.999999, &c->beta2, err)) < 0 ||
        (e = get_f32(o, "train", "grad_clip", c->grad_clip, 0, 1e6, &c->grad_clip, err)) < 0 ||
        (e = get_u32(o, "train", "seed", false, 0, 0, UINT32_MAX, &u, err)) < 0)
        return e;
    c->seed = u;
    if ((e = get_u32(o, "train", "threads", false, 0, 0, 1024, &c->n_threads, err)) < 0)
        return e;
    if (!r->base_path && c->seq_len > r->hdr.ctx_len)
        return aik_fail(err, -EINVAL, "train.seq_len", "%u exceeds model.context %u", c->seq_len, r->hdr.ctx_len);
    json_t *lo = json_object_get(o, "lora");
    if (lo) {
        json_t *targets;
        if ((e = only_keys(lo, "train.lora", lora_keys, err)) < 0 ||
            (e = get_u32(lo, "train.lora", "rank", false, c->lora_rank, 1, 1024, &c->lora_rank, err)) < 0 ||
            (e = get_f32(lo, "train.lora", "alpha", c->lora_alpha, 1e-6, 1e6, &c->lora_alpha, err)) < 0)
            return e;
        targets = json_object_get(lo, "targets");
        if (targets) {
            size_t i;
            json_t *t;
            if (!json_is_array(targets) || json_array_size(targets) == 0 || json_array_size(targets) > 64)
                return aik_fail(err, -EINVAL, "train.lora.targets", "must be a list of 1..64 tensor names");
            r->lora_targets = calloc(json_array_size(targets), sizeof(char *));
            if (!r->lora_targets)
                return aik_fail(err, -ENOMEM, "train.lora.targets", "out of memory");
            json_array_foreach(targets, i, t) {
                if (!json_is_string(t))
                    return aik_fail(err, -EINVAL, "train.lora.targets", "entry %zu is not a string", i);
                r->lora_targets[i] = strdup(json_string_value(t));
                r->n_lora_targets = i + 1;
            }
        }
    }
    if (c->mode == AIK_TRAIN_LORA && !r->base_path)
        return aik_fail(err, -EINVAL, "train.mode", "lora trains adapters over a base: set model.base");
    json_t *di = json_object_get(o, "distill");
    if (di) {
        if ((e = only_keys(di, "train.distill", distill_keys, err)) < 0 ||
            (e = get_path(di, "train.distill", "teacher", true, true, r->dir, &r->teacher_path, err)) < 0 ||
            (e = get_f32(di, "train.distill", "temperature", c->distill_temp, 1e-3, 100, &c->distill_temp, err)) < 0 ||
            (e = get_f32(di, "train.distill", "ce_weight", 0.5f, 0, 1, &c->ce_weight, err)) < 0)
            return e;
    }

    o = json_object_get(root, "eval");
    r->eval_every = 100;
    r->eval_sequences = 16;
    if (o && ((e = only_keys(o, "eval", eval_keys, err)) < 0 ||
              (e = get_u32(o, "eval", "every", false, 100, 0, 100000000, &r->eval_every, err)) < 0 ||
              (e = get_u32(o, "eval", "sequences", false, 16, 1, 100000, &r->eval_sequences, err)) < 0))
        return e;

    o = json_object_get(root, "checkpoint");
    if (o && ((e = only_keys(o, "checkpoint", ckpt_keys, err)) < 0 ||
              (e = get_path(o, "checkpoint", "path", true, false, r->dir, &r->checkpoint_path, err)) < 0 ||
              (e = get_u32(o, "checkpoint", "every", false, 200, 1, 100000000, &r->checkpoint_every, err)) < 0))
        return e;

    o = json_object_get(root, "output");
    if (!o)
        return aik_fail(err, -EINVAL, "output", "is required");
    if ((e = only_keys(o, "output", out_keys, err)) < 0 ||
        (e = get_path(o, "output", "package", true, false, r->dir, &r->output_path, err)) < 0)
        return e;
    r->output_dtype = AIK_DTYPE_F32;
    json_t *dt = json_object_get(o, "dtype");
    if (dt && (!json_is_string(dt) || aik_dtype_from_name(json_string_value(dt), &r->output_dtype) < 0))
        return aik_fail(err, -EINVAL, "output.dtype", "must be one of f32, f16, bf16, q8_0, q4_0");
    if (r->train.mode == AIK_TRAIN_LORA)
        return aik_fail(err, -EINVAL, "train.mode", "lora recipes write adapters: use aikctl distill (not yet in this build)");
    return 0;
}

int aik_recipe_load(const char *path, aik_recipe **ret, aik_error *err)
{
    aik_recipe *r;
    json_error_t jerr;
    json_t *root;
    char *data = NULL, *copy;
    size_t len;
    int e = aik_read_file(path, RECIPE_MAX_BYTES, &data, &len);

    if (e < 0)
        return aik_fail(err, e, path, "cannot read recipe (%s)", e == -EFBIG ? "larger than 1 MiB" : "missing or unreadable");
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    free(data);
    if (!root)
        return aik_fail(err, -EINVAL, path, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    r = calloc(1, sizeof(*r));
    copy = strdup(path);
    if (!r || !copy) {
        free(r);
        free(copy);
        json_decref(root);
        return aik_fail(err, -ENOMEM, path, "out of memory");
    }
    r->dir = strdup(dirname(copy));
    free(copy);
    e = r->dir ? parse(root, r, err) : aik_fail(err, -ENOMEM, path, "out of memory");
    json_decref(root);
    if (e < 0) {
        aik_recipe_free(r);
        return e;
    }
    *ret = r;
    return 0;
}

/* ---- running ---- */

int aik_corpus_tokenize(const aik_tokenizer *tok, const char *text, size_t len, int32_t **ret_ids, size_t *ret_n,
                        aik_error *err)
{
    int32_t bos = aik_tokenizer_bos_id(tok), eos = aik_tokenizer_eos_id(tok);
    int32_t *ids = NULL, *doc = NULL;
    size_t n = 0, cap = 0, pos = 0;
    int e = 0;

    while (pos < len) {
        const char *end = memmem(text + pos, len - pos, "\n\n", 2);
        size_t dlen = end ? (size_t)(end - (text + pos)) : len - pos, nd = 0;
        while (dlen && (text[pos] == '\n')) {
            pos++;
            dlen--;
        }
        if (dlen) {
            e = aik_tokenizer_encode_alloc(tok, text + pos, dlen, 0, &doc, &nd);
            if (e < 0) {
                aik_fail(err, e, "corpus", "cannot tokenize the document at byte %zu", pos);
                goto fail;
            }
            if (n + nd + 2 > cap) {
                size_t nc = cap ? cap * 2 : 1 << 20;
                while (nc < n + nd + 2)
                    nc *= 2;
                int32_t *ni = realloc(ids, nc * sizeof(int32_t));
                if (!ni) {
                    e = aik_fail(err, -ENOMEM, "corpus", "out of memory");
                    goto fail;
                }
                ids = ni;
                cap = nc;
            }
            if (bos >= 0)
                ids[n++] = bos;
            memcpy(ids + n, doc, nd * sizeof(int32_t));
            n += nd;
            /* With BOS == EOS (<|endoftext|>) one token separates documents. */
            if (eos >= 0 && eos != bos)
                ids[n++] = eos;
            free(doc);
            doc = NULL;
        }
        pos += dlen + (end ? 2 : 0);
    }
    *ret_ids = ids;
    *ret_n = n;
    return 0;
fail:
    free(doc);
    free(ids);
    return e;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t next_rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Consecutive windows of seq_len + 1 tokens (for validation and test). */
static int32_t *windows(const int32_t *ids, size_t n, uint32_t T, uint32_t count, uint32_t *ret_count)
{
    uint32_t have = n > T ? (uint32_t)((n - 1) / T) : 0;
    int32_t *w;
    if (count > have)
        count = have;
    if (count == 0)
        return NULL;
    w = malloc((size_t)count * (T + 1) * sizeof(int32_t));
    if (!w)
        return NULL;
    for (uint32_t i = 0; i < count; i++)
        memcpy(w + (size_t)i * (T + 1), ids + (size_t)i * T, (T + 1) * sizeof(int32_t));
    *ret_count = count;
    return w;
}

static int load_split(const char *path, const aik_tokenizer *tok, int32_t **ids, size_t *n, aik_error *err)
{
    char *text = NULL;
    size_t len;
    int e = aik_read_file(path, CORPUS_MAX_BYTES, &text, &len);
    if (e < 0)
        return aik_fail(err, e, path, "cannot read corpus");
    e = aik_corpus_tokenize(tok, text, len, ids, n, err);
    free(text);
    return e;
}

int aik_recipe_run(const aik_recipe *r, bool resume, aik_recipe_progress_fn fn, void *user, aik_error *err)
{
    aik_recipe_progress pr = { .test_loss = -1 };
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    aik_tokenizer *tok = NULL;
    int32_t *train_ids = NULL, *val = NULL, *test = NULL, *batch = NULL;
    size_t n_train = 0, n_ids;
    uint32_t n_val = 0, n_test = 0;
    char *init_path = NULL;
    aik_model *m = NULL, *teacher = NULL;
    aik_trainer *tr = NULL;
    aik_train_config cfg = r->train;
    uint64_t rng;
    int e;

    /* tokenizer */
    pr.phase = "tokenizer";
    if (fn)
        fn(user, &pr);
    if (r->base_path) {
        e = aik_model_open(r->base_path, AIK_SLM_VERIFY_CHECKSUMS, NULL, &m, err);
        if (e < 0)
            goto out;
        tok = NULL;
    } else {
        aik_bpe_trainer_opts o = { .vocab_size = r->tok_vocab, .add_bos = true };
        char *text = NULL;
        size_t len;
        e = aik_read_file(r->train_path, CORPUS_MAX_BYTES, &text, &len);
        if (e < 0) {
            aik_fail(err, e, r->train_path, "cannot read corpus");
            goto out;
        }
        if (r->tok_train_bytes && len > r->tok_train_bytes)
            len = r->tok_train_bytes;
        e = aik_bpe_train(&o, text, len, &blob, &blob_len, err);
        free(text);
        if (e < 0)
            goto out;
    }
    if (!m) {
        e = aik_tokenizer_load(blob, blob_len, &tok, err);
        if (e < 0)
            goto out;
    }
    const aik_tokenizer *T_tok = m ? m->tok : tok;

    /* data */
    pr.phase = "data";
    if (fn)
        fn(user, &pr);
    if ((e = load_split(r->train_path, T_tok, &train_ids, &n_train, err)) < 0)
        goto out;
    if (n_train < (size_t)cfg.seq_len + 2) {
        e = aik_fail(err, -EINVAL, "data.train", "only %zu tokens: fewer than one sequence", n_train);
        goto out;
    }
    {
        int32_t *ids;
        if ((e = load_split(r->valid_path, T_tok, &ids, &n_ids, err)) < 0)
            goto out;
        val = windows(ids, n_ids, cfg.seq_len, r->eval_sequences, &n_val);
        free(ids);
        if (!val) {
            e = aik_fail(err, -EINVAL, "data.valid", "too short for one sequence of %u tokens", cfg.seq_len + 1);
            goto out;
        }
        if (r->test_path) {
            if ((e = load_split(r->test_path, T_tok, &ids, &n_ids, err)) < 0)
                goto out;
            test = windows(ids, n_ids, cfg.seq_len, 1u << 30, &n_test);
            free(ids);
        }
    }

    /* model */
    if (!m) {
        aik_model_init mi = { 0 };
        mi.hdr = r->hdr;
        mi.weight_dtype = AIK_DTYPE_F32;
        mi.seed = cfg.seed;
        mi.tokenizer = blob;
        mi.tokenizer_len = blob_len;
        if (asprintf(&init_path, "%s.init", r->output_path) < 0) {
            init_path = NULL;
            e = aik_fail(err, -ENOMEM, "model", "out of memory");
            goto out;
        }
        e = aik_model_init_write(init_path, &mi, err);
        if (e < 0)
            goto out;
        e = aik_model_open(init_path, 0, NULL, &m, err);
        if (e < 0)
            goto out;
    }
    if (r->teacher_path) {
        e = aik_model_open(r->teacher_path, AIK_SLM_VERIFY_CHECKSUMS, NULL, &teacher, err);
        if (e < 0)
            goto out;
        cfg.teacher = teacher;
    }
    cfg.lora_targets = (const char *const *)r->lora_targets;
    if (r->n_lora_targets)
        cfg.n_lora_targets = r->n_lora_targets;
    e = aik_trainer_new(m, &cfg, &tr, err);
    if (e < 0)
        goto out;

    rng = cfg.seed * 0x9E3779B97F4A7C15ull + 1;
    if (resume && r->checkpoint_path && access(r->checkpoint_path, F_OK) == 0) {
        void *extra = NULL;
        size_t extra_len = 0;
        e = aik_trainer_load_checkpoint(tr, r->checkpoint_path, &extra, &extra_len, err);
        if (e < 0)
            goto out;
        if (extra_len != sizeof(rng)) {
            free(extra);
            e = aik_fail(err, -EBADMSG, r->checkpoint_path, "sampler state missing from checkpoint");
            goto out;
        }
        memcpy(&rng, extra, sizeof(rng));
        free(extra);
    }

    batch = malloc((size_t)cfg.micro_batches * (cfg.seq_len + 1) * sizeof(int32_t));
    if (!batch) {
        e = aik_fail(err, -ENOMEM, "train", "out of memory");
        goto out;
    }
    pr.steps = cfg.steps;
    double t0 = now_s();
    uint32_t first = aik_trainer_step_count(tr);
    for (uint32_t s = first; s < cfg.steps; s++) {
        aik_train_stats st;
        for (uint32_t b = 0; b < cfg.micro_batches; b++) {
            size_t start = (size_t)(next_rng(&rng) % (n_train - cfg.seq_len - 1));
            memcpy(batch + (size_t)b * (cfg.seq_len + 1), train_ids + start, (cfg.seq_len + 1) * sizeof(int32_t));
        }
        e = aik_trainer_step(tr, batch, &st, err);
        if (e < 0)
            goto out;
        double el = now_s() - t0;
        pr.phase = "train";
        pr.step = st.step;
        pr.loss = st.loss;
        pr.grad_norm = st.grad_norm;
        pr.lr = st.lr;
        pr.tokens_per_s = (double)(st.step - first) * cfg.micro_batches * cfg.seq_len / el;
        pr.eta_s = el / (st.step - first) * (cfg.steps - st.step);
        pr.gflops = pr.tokens_per_s * aik_trainer_flops_per_token(tr) / 1e9;
        if (fn)
            fn(user, &pr);
        if ((r->eval_every && st.step % r->eval_every == 0) || st.step == cfg.steps) {
            e = aik_trainer_eval(tr, val, n_val, &pr.val_loss, err);
            if (e < 0)
                goto out;
            pr.phase = "eval";
            if (fn)
                fn(user, &pr);
        }
        if (r->checkpoint_path && (st.step % r->checkpoint_every == 0 || st.step == cfg.steps)) {
            e = aik_trainer_save_checkpoint(tr, r->checkpoint_path, &rng, sizeof(rng), err);
            if (e < 0)
                goto out;
            pr.phase = "checkpoint";
            if (fn)
                fn(user, &pr);
        }
    }
    e = aik_trainer_write_package(tr, r->output_path, r->output_dtype, err);
    if (e < 0)
        goto out;
    e = aik_trainer_eval(tr, val, n_val, &pr.val_loss, err);
    if (e == 0 && test)
        e = aik_trainer_eval(tr, test, n_test, &pr.test_loss, err);
    if (e < 0)
        goto out;
    pr.phase = "done";
    if (fn)
        fn(user, &pr);
out:
    if (init_path)
        unlink(init_path);
    free(init_path);
    aik_trainer_free(tr);
    aik_model_free(m);
    aik_model_free(teacher);
    aik_tokenizer_free(tok);
    free(blob);
    free(train_ids);
    free(val);
    free(test);
    free(batch);
    return e;
}
