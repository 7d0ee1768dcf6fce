/* SPDX-License-Identifier: MIT */
/* Hugging Face checkpoint directory -> .slm (JSON via jansson). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "interop/internal.h"
#include "interop/safetensors.h"

#define MAX_JSON (64u << 20)   /* config/tokenizer files */
#define MAX_SHARDS 1024

typedef struct hf_ctx {
    const char *dir;
    aik_safetensors **shards;
    uint32_t n_shards;
    json_t *config, *tokenizer, *tok_config;
    const aik_interop_opts *opts;
} hf_ctx;

static int load_json(const char *dir, const char *name, bool required, json_t **ret, aik_error *err)
{
    char path[4096];
    char *data = NULL;
    size_t len;
    json_error_t je;
    int r;

    *ret = NULL;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    r = aik_read_file(path, MAX_JSON, &data, &len);
    if (r == -ENOENT && !required)
        return 0;
    if (r < 0)
        return aik_fail(err, r, name, "cannot read: %s", strerror(-r));
    *ret = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    free(data);
    if (!*ret)
        return aik_fail(err, -EBADMSG, name, "JSON error at %d:%d: %s", je.line, je.column, je.text);
    if (!json_is_object(*ret)) {
        json_decref(*ret);
        *ret = NULL;
        return aik_fail(err, -EBADMSG, name, "is not a JSON object");
    }
    return 0;
}

/* config.json integer in [lo, hi]; dflt < 0 means required. */
static int cfg_u32(const json_t *cfg, const char *k, int64_t dflt, uint32_t lo, uint32_t hi, uint32_t *ret, aik_error *err)
{
    json_t *v = json_object_get(cfg, k);
    json_int_t i;
    char where[96];

    snprintf(where, sizeof(where), "config.json: %s", k);
    if (!v || json_is_null(v)) {
        if (dflt < 0)
            return aik_fail(err, -EINVAL, where, "missing");
        *ret = (uint32_t)dflt;
        return 0;
    }
    if (!json_is_integer(v))
        return aik_fail(err, -EINVAL, where, "is not an integer");
    i = json_integer_value(v);
    if (i < lo || i > hi)
        return aik_fail(err, -EINVAL, where, "%" JSON_INTEGER_FORMAT " is outside %u..%u", i, lo, hi);
    *ret = (uint32_t)i;
    return 0;
}

static int cfg_f32(const json_t *cfg, const char *k, double dflt, float *ret, aik_error *err)
{
    json_t *v = json_object_get(cfg, k);
    char where[96];

    snprintf(where, sizeof(where), "config.json: %s", k);
    if (!v || json_is_null(v)) {
        if (dflt < 0)
            return aik_fail(err, -EINVAL, where, "missing");
        *ret = (float)dflt;
        return 0;
    }
    if (!json_is_number(v))
        return aik_fail(err, -EINVAL, where, "is not a number");
    *ret = (float)json_number_value(v);
    if (!(*ret > 0.0f))
        return aik_fail(err, -EINVAL, where, "must be > 0");
    return 0;
}

static int open_shards(hf_ctx *c, aik_error *err)
{
    json_t *index = NULL, *wm;
    const char *key;
    json_t *v;
    const char **files = NULL;
    uint32_t n = 0;
    char path[4096];
    int r;

    if ((r = load_json(c->dir, "model.safetensors.index.json", false, &index, err)) < 0)
        return r;
    if (!index) {
        c->shards = calloc(1, sizeof(*c->shards));
        if (!c->shards)
            return aik_fail(err, -ENOMEM, NULL, "out of memory");
        snprintf(path, sizeof(path), "%s/model.safetensors", c->dir);
        if ((r = aik_safetensors_open(path, &c->shards[0], err)) < 0)
            return r;
        c->n_shards = 1;
        return 0;
    }
    wm = json_object_get(index, "weight_map");
    if (!json_is_object(wm)) {
        r = aik_fail(err, -EBADMSG, "model.safetensors.index.json: weight_map", "is not an object");
        goto out;
    }
    files = calloc(MAX_SHARDS, sizeof(*files));
    if (!files) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    json_object_foreach(wm, key, v) {
        const char *f = json_string_value(v);
        uint32_t i;
        if (!f || !f[0] || strchr(f, '/') || strcmp(f, "..") == 0 || strcmp(f, ".") == 0) {
            /* shard names are plain file names inside the directory */
            r = aik_fail(err, -EBADMSG, "model.safetensors.index.json: weight_map", "entry '%.80s' is not a plain file name",
                         key);
            goto out;
        }
        for (i = 0; i < n; i++)
            if (strcmp(files[i], f) == 0)
                break;
        if (i == n) {
            if (n == MAX_SHARDS) {
                r = aik_fail(err, -E2BIG, "model.safetensors.index.json", "more than %d shards", MAX_SHARDS);
                goto out;
            }
            files[n++] = f;
        }
    }
    c->shards = calloc(n ? n : 1, sizeof(*c->shards));
    if (!c->shards) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", c->dir, files[i]);
        if ((r = aik_safetensors_open(path, &c->shards[i], err)) < 0)
            goto out;
        c->n_shards = i + 1;
    }
    r = 0;
out:
    free(files);
    json_decref(index);
    return r;
}

static const aik_st_tensor *find_hf(const hf_ctx *c, const char *name)
{
    for (uint32_t i = 0; i < c->n_shards; i++) {
        const aik_st_tensor *t = aik_safetensors_find(c->shards[i], name);
        if (t)
            return t;
    }
    return NULL;
}

/* GGUF llama name -> Hugging Face name. */
static void hf_name(const char *gg, char *out, size_t len)
{
    static const struct { const char *gg, *hf; } glob[] = {
        { "token_embd.weight", "model.embed_tokens.weight" },
        { "output_norm.weight", "model.norm.weight" },
        { "output.weight", "lm_head.weight" },
    };
    static const struct { const char *gg, *hf; } per[] = {
        { "attn_norm.weight", "input_layernorm.weight" },
        { "attn_q.weight", "self_attn.q_proj.weight" },   { "attn_k.weight", "self_attn.k_proj.weight" },
        { "attn_v.weight", "self_attn.v_proj.weight" },   { "attn_q.bias", "self_attn.q_proj.bias" },
        { "attn_k.bias", "self_attn.k_proj.bias" },       { "attn_v.bias", "self_attn.v_proj.bias" },
        { "attn_output.weight", "self_attn.o_proj.weight" },
        { "ffn_norm.weight", "post_attention_layernorm.weight" },
        { "ffn_gate.weight", "mlp.gate_proj.weight" },    { "ffn_up.weight", "mlp.up_proj.weight" },
        { "ffn_down.weight", "mlp.down_proj.weight" },
    };
    unsigned layer;
    int off = 0;

    for (size_t i = 0; i < sizeof(glob) / sizeof(glob[0]); i++)
        if (strcmp(gg, glob[i].gg) == 0) {
            snprintf(out, len, "%s", glob[i].hf);
            return;
        }
    if (sscanf(gg, "blk.%u.%n", &layer, &off) == 1 && off > 0)
        for (size_t i = 0; i < sizeof(per) / sizeof(per[0]); i++)
            if (strcmp(gg + off, per[i].gg) == 0) {
                snprintf(out, len, "model.layers.%u.%s", layer, per[i].hf);
                return;
            }
    snprintf(out, len, "?");
}

/* ---- tokenizer.json ------------------------------------------------------ */

static const char *tok_string(const json_t *v)
{
    /* tokenizer_config.json tokens are "text" or {"content": "text", ...} */
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_object(v))
        return json_string_value(json_object_get(v, "content"));
    return NULL;
}

static bool has_type(const json_t *node, const char *type)
{
    const char *t;
    json_t *seq;
    size_t i;
    json_t *x;

    if (!json_is_object(node))
        return false;
    t = json_string_value(json_object_get(node, "type"));
    if (t && strcmp(t, type) == 0)
        return true;
    seq = json_object_get(node, "pretokenizers");
    if (!seq)
        seq = json_object_get(node, "normalizers");
    json_array_foreach(seq, i, x) if (has_type(x, type)) return true;
    return false;
}

/* First Split regex of a pre_tokenizer (possibly inside a Sequence). */
static const char *split_regex(const json_t *node)
{
    const char *t = json_string_value(json_object_get(node, "type"));
    size_t i;
    json_t *x;

    if (t && strcmp(t, "Split") == 0)
        return json_string_value(json_object_get(json_object_get(node, "pattern"), "Regex"));
    json_array_foreach(json_object_get(node, "pretokenizers"), i, x) {
        const char *r = split_regex(x);
        if (r)
            return r;
    }
    return NULL;
}

static int find_token(json_t *vocab_ids_by_text, const char *text, int32_t *ret)
{
    json_t *v = text ? json_object_get(vocab_ids_by_text, text) : NULL;
    if (!json_is_integer(v))
        return -ENOENT;
    *ret = (int32_t)json_integer_value(v);
    return 0;
}

static int hf_tokenizer_blob(hf_ctx *c, uint32_t n_vocab, uint8_t **ret_blob, size_t *ret_len, aik_error *err)
{
    json_t *model = json_object_get(c->tokenizer, "model"), *vocab, *jm, *added, *pre, *x, *all = NULL;
    aik_tokenizer_spec spec;
    const char **tokens = NULL;
    char **merges = NULL, **pads = NULL;
    uint8_t *types = NULL;
    float *scores = NULL;
    size_t n_merges = 0, i;
    const char *key, *mt;
    json_t *v;
    int r = 0;

    memset(&spec, 0, sizeof(spec));
    mt = json_string_value(json_object_get(model, "type"));
    if (!mt || strcmp(mt, "BPE") != 0)
        return aik_fail(err, -ENOTSUP, "tokenizer.json: model.type", "'%s' is not supported (only BPE)", mt ? mt : "?");
    vocab = json_object_get(model, "vocab");
    jm = json_object_get(model, "merges");
    if (!json_is_object(vocab) || (jm && !json_is_array(jm)))
        return aik_fail(err, -EBADMSG, "tokenizer.json: model", "vocab must be an object and merges an array");
    pre = json_object_get(c->tokenizer, "pre_tokenizer");
    if (has_type(pre, "ByteLevel") || has_type(json_object_get(c->tokenizer, "decoder"), "ByteLevel"))
        spec.kind = AIK_TOKENIZER_BYTE_BPE;
    else if (json_is_true(json_object_get(model, "byte_fallback")) || has_type(pre, "Metaspace") ||
             has_type(json_object_get(c->tokenizer, "normalizer"), "Replace"))
        spec.kind = AIK_TOKENIZER_SPM_BPE;
    else
        return aik_fail(err, -ENOTSUP, "tokenizer.json: pre_tokenizer", "neither byte-level nor SentencePiece-style BPE");

    spec.n_vocab = n_vocab;
    tokens = calloc(n_vocab, sizeof(*tokens));
    types = calloc(n_vocab, 1);
    pads = calloc(n_vocab, sizeof(*pads));
    all = json_object(); /* text -> id, over vocab and added tokens */
    if (!tokens || !types || !pads || !all) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    json_object_foreach(vocab, key, v) {
        json_int_t id = json_integer_value(v);
        if (!json_is_integer(v) || id < 0 || id >= n_vocab) {
            r = aik_fail(err, -EINVAL, "tokenizer.json: model.vocab", "id of '%.60s' is outside 0..%u", key, n_vocab - 1);
            goto out;
        }
        if (tokens[id]) {
            r = aik_fail(err, -EINVAL, "tokenizer.json: model.vocab", "id %" JSON_INTEGER_FORMAT " is used twice", id);
            goto out;
        }
        tokens[id] = key;
        types[id] = AIK_TOKEN_NORMAL;
        if (spec.kind == AIK_TOKENIZER_SPM_BPE && strlen(key) == 6 && strncmp(key, "<0x", 3) == 0 && key[5] == '>')
            types[id] = AIK_TOKEN_BYTE;
        json_object_set(all, key, v);
    }
    added = json_object_get(c->tokenizer, "added_tokens");
    json_array_foreach(added, i, x) {
        json_t *jid = json_object_get(x, "id");
        const char *content = json_string_value(json_object_get(x, "content"));
        json_int_t id = json_integer_value(jid);
        if (!json_is_integer(jid) || !content || id < 0 || id >= n_vocab) {
            r = aik_fail(err, -EINVAL, "tokenizer.json: added_tokens", "entry %zu is malformed or its id is out of range", i);
            goto out;
        }
        if (tokens[id] && strcmp(tokens[id], content) != 0) {
            r = aik_fail(err, -EINVAL, "tokenizer.json: added_tokens", "id %" JSON_INTEGER_FORMAT " is already '%.60s'",
                         id, tokens[id]);
            goto out;
        }
        tokens[id] = content;
        types[id] = json_is_true(json_object_get(x, "special")) ? AIK_TOKEN_CONTROL : AIK_TOKEN_USER_DEFINED;
        json_object_set(all, content, jid);
    }
    for (uint32_t id = 0; id < n_vocab; id++)
        if (!tokens[id]) {
            /* embedding rows beyond the tokenizer: as convert_hf_to_gguf.py */
            if (asprintf(&pads[id], "[PAD%u]", id) < 0) {
                pads[id] = NULL;
                r = aik_fail(err, -ENOMEM, NULL, "out of memory");
                goto out;
            }
            tokens[id] = pads[id];
            types[id] = AIK_TOKEN_UNUSED;
        }
    spec.tokens = tokens;
    spec.token_types = types;

    n_merges = json_array_size(jm);
    if (n_merges > AIK_TOKENIZER_MAX_MERGES) {
        r = aik_fail(err, -E2BIG, "tokenizer.json: model.merges", "%zu merges, limit %u", n_merges, AIK_TOKENIZER_MAX_MERGES);
        goto out;
    }
    merges = calloc(n_merges ? n_merges : 1, sizeof(*merges));
    if (!merges) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    json_array_foreach(jm, i, x) {
        /* "a b" (older files) or ["a", "b"] (tokenizers >= 0.20) */
        const char *a = json_string_value(x), *b = NULL;
        if (!a && json_is_array(x) && json_array_size(x) == 2) {
            a = json_string_value(json_array_get(x, 0));
            b = json_string_value(json_array_get(x, 1));
            if (!a || !b)
                a = NULL;
        }
        if (!a || (b ? asprintf(&merges[i], "%s %s", a, b) : asprintf(&merges[i], "%s", a)) < 0) {
            merges[i] = NULL;
            r = aik_fail(err, -EINVAL, "tokenizer.json: model.merges", "entry %zu is malformed", i);
            goto out;
        }
    }
    if (spec.kind == AIK_TOKENIZER_BYTE_BPE) {
        const char *rx = split_regex(pre);
        spec.n_merges = (uint32_t)n_merges;
        spec.merges = (const char *const *)merges;
        spec.ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
        if (rx)
            spec.pre_regex = rx;
        else if (has_type(pre, "Digits"))
            pre_regex_for_name("smollm", &spec.pre_regex, &(bool){ false });
        else
            spec.pre_regex = NULL; /* ByteLevel's own regex is GPT-2's */
    } else {
        /* SentencePiece BPE merges the pair whose result scores highest;
         * without tokenizer.model the merge rank gives that order. */
        scores = malloc(n_vocab * sizeof(float));
        if (!scores) {
            r = aik_fail(err, -ENOMEM, NULL, "out of memory");
            goto out;
        }
        for (uint32_t id = 0; id < n_vocab; id++)
            scores[id] = -(float)(n_merges + 1);
        for (i = 0; i < n_merges; i++) {
            char *sp = strchr(merges[i] + 1, ' ');
            int32_t id;
            if (!sp)
                continue;
            memmove(sp, sp + 1, strlen(sp)); /* "a b" -> "ab" */
            if (find_token(all, merges[i], &id) == 0 && scores[id] < -(float)i)
                scores[id] = -(float)i;
        }
        spec.scores = scores;
        spec.add_space_prefix = true;
        {
            json_t *p = json_object_get(c->tokenizer, "pre_tokenizer");
            const char *scheme = json_string_value(json_object_get(p, "prepend_scheme"));
            if (has_type(p, "Metaspace") &&
                (json_is_false(json_object_get(p, "add_prefix_space")) || (scheme && strcmp(scheme, "never") == 0)))
                spec.add_space_prefix = false;
        }
    }
    spec.bos_id = spec.eos_id = spec.unk_id = spec.pad_id = -1;
    find_token(all, json_string_value(json_object_get(model, "unk_token")), &spec.unk_id);
    if (c->tok_config) {
        json_t *tmpl = json_object_get(c->tok_config, "chat_template");
        find_token(all, tok_string(json_object_get(c->tok_config, "bos_token")), &spec.bos_id);
        find_token(all, tok_string(json_object_get(c->tok_config, "eos_token")), &spec.eos_id);
        find_token(all, tok_string(json_object_get(c->tok_config, "pad_token")), &spec.pad_id);
        if (json_is_string(tmpl))
            spec.chat_template = json_string_value(tmpl);
        json_array_foreach(tmpl, i, x) {
            const char *name = json_string_value(json_object_get(x, "name"));
            if (name && strcmp(name, "default") == 0)
                spec.chat_template = json_string_value(json_object_get(x, "template"));
        }
    }
    /* config.json ids fill what tokenizer_config.json did not say */
    if (spec.bos_id < 0 && json_is_integer(json_object_get(c->config, "bos_token_id")))
        spec.bos_id = (int32_t)json_integer_value(json_object_get(c->config, "bos_token_id"));
    if (spec.eos_id < 0 && json_is_integer(json_object_get(c->config, "eos_token_id")))
        spec.eos_id = (int32_t)json_integer_value(json_object_get(c->config, "eos_token_id"));
    spec.add_bos = spec.kind == AIK_TOKENIZER_SPM_BPE;
    if (c->tok_config && json_is_boolean(json_object_get(c->tok_config, "add_bos_token")))
        spec.add_bos = json_is_true(json_object_get(c->tok_config, "add_bos_token"));
    if (c->tok_config && json_is_boolean(json_object_get(c->tok_config, "add_eos_token")))
        spec.add_eos = json_is_true(json_object_get(c->tok_config, "add_eos_token"));
    if (spec.add_bos && spec.bos_id < 0)
        spec.add_bos = false;

    r = aik_tokenizer_blob_build(&spec, ret_blob, ret_len, err);
    if (r < 0)
        aik_error_prefix(err, "tokenizer.json");
out:
    if (merges)
        for (i = 0; i < n_merges; i++)
            free(merges[i]);
    if (pads)
        for (uint32_t id = 0; id < n_vocab; id++)
            free(pads[id]);
    free(merges);
    free(pads);
    free(tokens);
    free(types);
    free(scores);
    json_decref(all);
    return r;
}

/* ---- model --------------------------------------------------------------- */

static int st_dtype(const aik_st_tensor *t, aik_dtype *ret, aik_error *err)
{
    switch (t->dtype) {
    case AIK_ST_F32: *ret = AIK_DTYPE_F32; return 0;
    case AIK_ST_F16: *ret = AIK_DTYPE_F16; return 0;
    case AIK_ST_BF16: *ret = AIK_DTYPE_BF16; return 0;
    default:
        return aik_fail(err, -ENOTSUP, t->name, "dtype %s is not supported (f32, f16, bf16)", aik_st_dtype_name(t->dtype));
    }
}

int aik_import_hf(const char *dir, const char *slm_path, const aik_interop_opts *opts, aik_error *err)
{
    hf_ctx c = { .dir = dir, .opts = opts };
    aik_slm_header h;
    aik_slm_layer *layers = NULL;
    llama_tensor *lt = NULL;
    aik_slm_writer *w = NULL;
    uint8_t *tok = NULL;
    size_t tok_len = 0;
    uint32_t nh, nkv, ffn, tie;
    const char *archname;
    json_t *archs, *rs;
    int n_lt = 0, r;

    if (!dir || !slm_path)
        return aik_fail(err, -EINVAL, NULL, "invalid argument");
    memset(&h, 0, sizeof(h));
    if ((r = load_json(dir, "config.json", true, &c.config, err)) < 0 ||
        (r = load_json(dir, "tokenizer.json", true, &c.tokenizer, err)) < 0 ||
        (r = load_json(dir, "tokenizer_config.json", false, &c.tok_config, err)) < 0)
        goto out;
    archs = json_object_get(c.config, "architectures");
    archname = json_string_value(json_array_get(archs, 0));
    if (!archname || (strcmp(archname, "LlamaForCausalLM") != 0 && strcmp(archname, "MistralForCausalLM") != 0 &&
                      strcmp(archname, "Qwen2ForCausalLM") != 0)) {
        r = aik_fail(err, -ENOTSUP, "config.json: architectures",
                     "'%s' is not supported (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)",
                     archname ? archname : "?");
        goto out;
    }
    rs = json_object_get(c.config, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        r = aik_fail(err, -ENOTSUP, "config.json: rope_scaling", "rope scaling is not supported");
        goto out;
    }
    if ((r = cfg_u32(c.config, "hidden_size", -1, 1, AIK_SLM_MAX_DIM, &h.dim, err)) < 0 ||
        (r = cfg_u32(c.config, "num_hidden_layers", -1, 1, AIK_SLM_MAX_LAYERS, &h.n_layers, err)) < 0 ||
        (r = cfg_u32(c.config, "num_attention_heads", -1, 1, AIK_SLM_MAX_DIM, &nh, err)) < 0 ||
        (r = cfg_u32(c.config, "num_key_value_heads", nh, 1, nh, &nkv, err)) < 0 ||
        (r = cfg_u32(c.config, "intermediate_size", -1, 1, AIK_SLM_MAX_DIM, &ffn, err)) < 0 ||
        (r = cfg_u32(c.config, "vocab_size", -1, 1, AIK_SLM_MAX_VOCAB, &h.n_vocab, err)) < 0 ||
        (r = cfg_u32(c.config, "max_position_embeddings", 2048, 1, AIK_SLM_MAX_CTX, &h.ctx_len, err)) < 0 ||
        (r = cfg_u32(c.config, "head_dim", h.dim / nh, 2, AIK_SLM_MAX_DIM, &h.head_dim, err)) < 0 ||
        (r = cfg_f32(c.config, "rms_norm_eps", 1e-6, &h.norm_eps, err)) < 0 ||
        (r = cfg_f32(c.config, "rope_theta", 10000.0, &h.rope_theta, err)) < 0)
        goto out;
    if (!json_object_get(c.config, "head_dim") && h.dim % nh != 0) {
        r = aik_fail(err, -EINVAL, "config.json: hidden_size", "%u is not a multiple of num_attention_heads %u "
                     "and there is no head_dim", h.dim, nh);
        goto out;
    }
    tie = json_is_true(json_object_get(c.config, "tie_word_embeddings"));
    layers = calloc(h.n_layers, sizeof(*layers));
    if (!layers) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < h.n_layers; i++)
        layers[i] = (aik_slm_layer){ .n_heads = nh, .n_kv_heads = nkv, .ffn_dim = ffn };
    if ((r = llama_check_dims(&h, layers, err)) < 0)
        goto out;
    if ((r = open_shards(&c, err)) < 0)
        goto out;
    h.model_type = AIK_SLM_MODEL_LLAMA;
    h.flags = AIK_SLM_FLAG_ROPE_NEOX; /* HF rotate_half */
    if (find_hf(&c, "model.layers.0.self_attn.q_proj.bias"))
        h.flags |= AIK_SLM_FLAG_QKV_BIAS;
    if (tie || !find_hf(&c, "lm_head.weight")) {
        h.flags |= AIK_SLM_FLAG_TIED_EMBEDDINGS;
        if (find_hf(&c, "lm_head.weight"))
            interop_warn(opts, "lm_head.weight", "ignored: tie_word_embeddings is set");
    }
    n_lt = llama_expected_tensors(&h, layers, &lt);
    if (n_lt < 0) {
        r = aik_fail(err, n_lt, NULL, "out of memory");
        goto out;
    }
    /* Every checkpoint tensor must map to one we place. */
    for (uint32_t s = 0; s < c.n_shards; s++)
        for (uint32_t i = 0; i < aik_safetensors_count(c.shards[s]); i++) {
            const aik_st_tensor *t = aik_safetensors_at(c.shards[s], i);
            char hf[128];
            bool known = strstr(t->name, "rotary_emb.inv_freq") != NULL ||
                         ((h.flags & AIK_SLM_FLAG_TIED_EMBEDDINGS) && strcmp(t->name, "lm_head.weight") == 0);
            for (int j = 0; j < n_lt && !known; j++) {
                hf_name(lt[j].name, hf, sizeof(hf));
                known = strcmp(hf, t->name) == 0;
            }
            if (!known) {
                r = aik_fail(err, -ENOTSUP, t->name, "tensor is not part of the llama layout this importer supports");
                goto out;
            }
        }
    if ((r = hf_tokenizer_blob(&c, h.n_vocab, &tok, &tok_len, err)) < 0)
        goto out;
    if ((r = aik_slm_writer_begin(slm_path, &h, layers, tok, tok_len, &w, err)) < 0)
        goto out;
    for (int j = 0; j < n_lt; j++) {
        char hf[128];
        const aik_st_tensor *t;
        uint64_t shape[AIK_MAX_DIMS] = { lt[j].ne[0], lt[j].ne[1], 1, 1 };
        aik_dtype dt = AIK_DTYPE_F32;

        hf_name(lt[j].name, hf, sizeof(hf));
        t = find_hf(&c, hf);
        if (!t) {
            r = aik_fail(err, -EINVAL, hf, "missing (for %s)", lt[j].name);
            goto out;
        }
        /* HF stores [out, in] row-major: reversed, that is GGUF's ne. */
        if (t->n_dims != lt[j].n_dims || t->shape[t->n_dims - 1] != lt[j].ne[0] ||
            (t->n_dims == 2 && t->shape[0] != lt[j].ne[1])) {
            r = aik_fail(err, -EINVAL, hf, "shape does not match config.json (expected %" PRIu64 " x %" PRIu64 ")",
                         lt[j].ne[1], lt[j].ne[0]);
            goto out;
        }
        if ((r = st_dtype(t, &dt, err)) < 0)
            goto out;
        if ((r = aik_slm_writer_add_tensor(w, lt[j].name, dt, lt[j].n_dims, shape, t->data, err)) < 0)
            goto out;
    }
    r = aik_slm_writer_finish(w, err);
    w = NULL;
out:
    aik_slm_writer_abort(w);
    free(lt);
    free(tok);
    free(layers);
    for (uint32_t i = 0; i < c.n_shards; i++)
        aik_safetensors_close(c.shards[i]);
    free(c.shards);
    json_decref(c.config);
    json_decref(c.tokenizer);
    json_decref(c.tok_config);
    return r;
}
