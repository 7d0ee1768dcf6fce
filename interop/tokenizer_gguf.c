/* SPDX-License-Identifier: MIT */
/* GGUF tokenizer.ggml.* keys <-> runtime/tokenizer blobs. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "interop/internal.h"

/* llama.cpp's pre-tokenizer regexes (llama-vocab.cpp) for the names its
 * converter writes to tokenizer.ggml.pre. Where llama.cpp applies several
 * regexes in sequence, the entry is the equivalent single alternation. */
#define RX_LLAMA3                                                                                                 \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "      \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_QWEN2                                                                                                  \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "           \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RX_DIGITS_GPT2 "\\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static const struct {
    const char *name;
    const char *regex; /* NULL = AIK_TOKENIZER_GPT2_REGEX */
    bool ignore_merges;
} pre_table[] = {
    { "default", NULL, false },   { "gpt-2", NULL, false },        { "gpt2", NULL, false },
    { "llama3", RX_LLAMA3, true }, { "llama-bpe", RX_LLAMA3, true }, { "llama-v3", RX_LLAMA3, true },
    { "smaug-bpe", RX_LLAMA3, false }, { "qwen2", RX_QWEN2, false }, { "deepseek-r1-qwen", RX_QWEN2, false },
    { "smollm", RX_DIGITS_GPT2, false }, { "starcoder", RX_DIGITS_GPT2, false },
    { "refact", RX_DIGITS_GPT2, false },
};

bool pre_regex_for_name(const char *name, const char **ret_regex, bool *ret_ignore_merges)
{
    for (size_t i = 0; i < sizeof(pre_table) / sizeof(pre_table[0]); i++)
        if (strcmp(name, pre_table[i].name) == 0) {
            *ret_regex = pre_table[i].regex;
            *ret_ignore_merges = pre_table[i].ignore_merges;
            return true;
        }
    return false;
}

const char *pre_name_for_regex(const char *regex, bool ignore_merges)
{
    if (!regex || strcmp(regex, AIK_TOKENIZER_GPT2_REGEX) == 0)
        return "default";
    for (size_t i = 0; i < sizeof(pre_table) / sizeof(pre_table[0]); i++)
        if (pre_table[i].regex && strcmp(regex, pre_table[i].regex) == 0 && pre_table[i].ignore_merges == ignore_merges)
            return pre_table[i].name;
    return "default";
}

/* A NUL-terminated copy of a GGUF string value, or NULL when absent. */
static int dup_str_key(const aik_gguf *g, const char *key, size_t max, char **ret, aik_error *err)
{
    const char *s;
    size_t len;
    int r;

    *ret = NULL;
    if (aik_gguf_find_kv(g, key) < 0)
        return 0;
    if ((r = aik_gguf_get_str(g, key, &s, &len, err)) < 0)
        return r;
    if (len > max)
        return aik_fail(err, -E2BIG, key, "%zu bytes, limit %zu", len, max);
    if (memchr(s, 0, len))
        return aik_fail(err, -EINVAL, key, "contains a NUL byte");
    *ret = strndup(s, len);
    return *ret ? 0 : aik_fail(err, -ENOMEM, key, "out of memory");
}

static int opt_id(const aik_gguf *g, const char *key, int32_t *ret, aik_error *err)
{
    int64_t v;
    int r;

    *ret = -1;
    if (aik_gguf_find_kv(g, key) < 0)
        return 0;
    if ((r = aik_gguf_get_i64(g, key, &v, err)) < 0)
        return r;
    if (v < -1 || v > INT32_MAX)
        return aik_fail(err, -ERANGE, key, "token id %" PRId64 " out of range", v);
    *ret = (int32_t)v;
    return 0;
}

static int opt_bool(const aik_gguf *g, const char *key, bool dflt, bool *ret, aik_error *err)
{
    *ret = dflt;
    if (aik_gguf_find_kv(g, key) < 0)
        return 0;
    return aik_gguf_get_bool(g, key, ret, err);
}

int gguf_tokenizer_blob(const aik_gguf *g, uint8_t **ret_blob, size_t *ret_len, aik_error *err)
{
    aik_tokenizer_spec spec;
    const char **tokens = NULL;
    uint32_t *lens = NULL;
    float *scores = NULL;
    uint8_t *types = NULL;
    char **merges = NULL, *model = NULL, *pre = NULL, *regex = NULL, *tmpl = NULL;
    aik_gguf_type et;
    uint64_t n_vocab = 0, n_merges = 0, n;
    int k, r;

    memset(&spec, 0, sizeof(spec));
    if ((r = dup_str_key(g, "tokenizer.ggml.model", 64, &model, err)) < 0)
        goto out;
    if (!model) {
        r = aik_fail(err, -ENOENT, "tokenizer.ggml.model", "missing: the file has no tokenizer");
        goto out;
    }
    if (strcmp(model, "llama") == 0)
        spec.kind = AIK_TOKENIZER_SPM_BPE;
    else if (strcmp(model, "gpt2") == 0)
        spec.kind = AIK_TOKENIZER_BYTE_BPE;
    else {
        r = aik_fail(err, -ENOTSUP, "tokenizer.ggml.model", "'%s' is not supported (only \"llama\" and \"gpt2\")", model);
        goto out;
    }

    k = aik_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n_vocab, err);
    if (k < 0) {
        r = k;
        goto out;
    }
    if (et != AIK_GGUF_STRING || n_vocab == 0 || n_vocab > AIK_TOKENIZER_MAX_VOCAB) {
        r = aik_fail(err, -EINVAL, "tokenizer.ggml.tokens", "must be 1..%u strings", AIK_TOKENIZER_MAX_VOCAB);
        goto out;
    }
    spec.n_vocab = (uint32_t)n_vocab;
    tokens = calloc(n_vocab, sizeof(*tokens));
    lens = calloc(n_vocab, sizeof(*lens));
    if (!tokens || !lens) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    for (uint64_t i = 0; i < n_vocab; i++) {
        size_t len;
        aik_gguf_arr_str(g, k, i, &tokens[i], &len);
        if (len > AIK_TOKENIZER_MAX_TOKEN_LEN) {
            r = aik_fail(err, -E2BIG, "tokenizer.ggml.tokens", "token %" PRIu64 " is %zu bytes long", i, len);
            goto out;
        }
        lens[i] = (uint32_t)len;
    }
    spec.tokens = tokens;
    spec.token_lens = lens;

    if (aik_gguf_find_kv(g, "tokenizer.ggml.scores") >= 0) {
        k = aik_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &n, err);
        if (k < 0 || n != n_vocab || (et != AIK_GGUF_FLOAT32 && et != AIK_GGUF_FLOAT64)) {
            r = aik_fail(err, -EINVAL, "tokenizer.ggml.scores", "must be %" PRIu64 " floats", n_vocab);
            goto out;
        }
        scores = malloc(n_vocab * sizeof(float));
        if (!scores) {
            r = aik_fail(err, -ENOMEM, NULL, "out of memory");
            goto out;
        }
        for (uint64_t i = 0; i < n; i++) {
            double d = 0;
            aik_gguf_arr_f64(g, k, i, &d);
            scores[i] = (float)d;
        }
        spec.scores = scores;
    }
    if (aik_gguf_find_kv(g, "tokenizer.ggml.token_type") >= 0) {
        k = aik_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &n, err);
        if (k < 0 || n != n_vocab) {
            r = aik_fail(err, -EINVAL, "tokenizer.ggml.token_type", "must be %" PRIu64 " integers", n_vocab);
            goto out;
        }
        types = malloc(n_vocab);
        if (!types) {
            r = aik_fail(err, -ENOMEM, NULL, "out of memory");
            goto out;
        }
        for (uint64_t i = 0; i < n; i++) {
            int64_t v;
            if (aik_gguf_arr_int(g, k, i, &v) < 0 || v < 0 || v > AIK_TOKEN_BYTE) {
                r = aik_fail(err, -EINVAL, "tokenizer.ggml.token_type", "entry %" PRIu64 " is not a token type 0..6", i);
                goto out;
            }
            types[i] = (uint8_t)v;
        }
        spec.token_types = types;
    }
    if (aik_gguf_find_kv(g, "tokenizer.ggml.merges") >= 0) {
        k = aik_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n_merges, err);
        if (k < 0 || et != AIK_GGUF_STRING || n_merges > AIK_TOKENIZER_MAX_MERGES) {
            r = aik_fail(err, -EINVAL, "tokenizer.ggml.merges", "must be at most %u strings", AIK_TOKENIZER_MAX_MERGES);
            goto out;
        }
        merges = calloc(n_merges ? n_merges : 1, sizeof(*merges));
        if (!merges) {
            r = aik_fail(err, -ENOMEM, NULL, "out of memory");
            goto out;
        }
        for (uint64_t i = 0; i < n_merges; i++) {
            const char *s;
            size_t len;
            aik_gguf_arr_str(g, k, i, &s, &len);
            if (len > 2 * AIK_TOKENIZER_MAX_TOKEN_LEN + 1 || memchr(s, 0, len)) {
                r = aik_fail(err, -EINVAL, "tokenizer.ggml.merges", "merge %" PRIu64 " is malformed", i);
                goto out;
            }
            if (!(merges[i] = strndup(s, len))) {
                r = aik_fail(err, -ENOMEM, NULL, "out of memory");
                goto out;
            }
        }
        spec.n_merges = (uint32_t)n_merges;
        spec.merges = (const char *const *)merges;
    }
    if ((r = opt_id(g, "tokenizer.ggml.bos_token_id", &spec.bos_id, err)) < 0 ||
        (r = opt_id(g, "tokenizer.ggml.eos_token_id", &spec.eos_id, err)) < 0 ||
        (r = opt_id(g, "tokenizer.ggml.unknown_token_id", &spec.unk_id, err)) < 0 ||
        (r = opt_id(g, "tokenizer.ggml.padding_token_id", &spec.pad_id, err)) < 0)
        goto out;
    /* llama.cpp's defaults: SPM adds BOS and a space prefix, BPE neither. */
    if ((r = opt_bool(g, "tokenizer.ggml.add_bos_token", spec.kind == AIK_TOKENIZER_SPM_BPE, &spec.add_bos, err)) < 0 ||
        (r = opt_bool(g, "tokenizer.ggml.add_eos_token", false, &spec.add_eos, err)) < 0 ||
        (r = opt_bool(g, "tokenizer.ggml.add_space_prefix", spec.kind == AIK_TOKENIZER_SPM_BPE,
                      &spec.add_space_prefix, err)) < 0)
        goto out;

    if (spec.kind == AIK_TOKENIZER_BYTE_BPE) {
        const char *rx = NULL;
        bool ignore = false;
        /* Our own exports carry the exact regex; otherwise map the name. */
        if ((r = dup_str_key(g, "aikernel.tokenizer.pre_regex", AIK_TOKENIZER_MAX_REGEX, &regex, err)) < 0)
            goto out;
        if ((r = dup_str_key(g, "tokenizer.ggml.pre", 128, &pre, err)) < 0)
            goto out;
        if (!regex && pre && !pre_regex_for_name(pre, &rx, &ignore)) {
            r = aik_fail(err, -ENOTSUP, "tokenizer.ggml.pre", "pre-tokenizer '%s' is not known", pre);
            goto out;
        }
        spec.pre_regex = regex ? regex : rx;
        spec.ignore_merges = ignore;
        if ((r = opt_bool(g, "aikernel.tokenizer.ignore_merges", spec.ignore_merges, &spec.ignore_merges, err)) < 0)
            goto out;
    }
    if ((r = dup_str_key(g, "tokenizer.chat_template", AIK_TOKENIZER_MAX_TEMPLATE, &tmpl, err)) < 0)
        goto out;
    spec.chat_template = tmpl;

    r = aik_tokenizer_blob_build(&spec, ret_blob, ret_len, err);
    if (r < 0)
        aik_error_prefix(err, "tokenizer");
out:
    if (merges)
        for (uint64_t i = 0; i < n_merges; i++)
            free(merges[i]);
    free(merges);
    free(tokens);
    free(lens);
    free(scores);
    free(types);
    free(model);
    free(pre);
    free(regex);
    free(tmpl);
    return r;
}

int gguf_tokenizer_write(aik_gguf_writer *w, const void *blob, size_t len, aik_error *err)
{
    aik_tokenizer *tok = NULL;
    aik_tokenizer_spec *spec = NULL;
    size_t *lens = NULL;
    int32_t *types = NULL;
    int r;

    if ((r = aik_tokenizer_load(blob, len, &tok, err)) < 0) {
        aik_error_prefix(err, "tokenizer");
        return r;
    }
    if ((r = aik_tokenizer_to_spec(tok, &spec)) < 0) {
        r = aik_fail(err, r, "tokenizer", "cannot export the vocabulary");
        goto out;
    }
    lens = malloc(spec->n_vocab * sizeof(*lens));
    types = malloc(spec->n_vocab * sizeof(*types));
    if (!lens || !types) {
        r = aik_fail(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < spec->n_vocab; i++) {
        lens[i] = spec->token_lens ? spec->token_lens[i] : strlen(spec->tokens[i]);
        types[i] = spec->token_types ? spec->token_types[i] : AIK_TOKEN_NORMAL;
    }
#define CK(x)             \
    do {                  \
        if ((r = (x)) < 0) \
            goto out;     \
    } while (0)
    CK(aik_gguf_writer_add_str(w, "tokenizer.ggml.model", spec->kind == AIK_TOKENIZER_SPM_BPE ? "llama" : "gpt2",
                               spec->kind == AIK_TOKENIZER_SPM_BPE ? 5 : 4, err));
    if (spec->kind == AIK_TOKENIZER_BYTE_BPE) {
        const char *pre = pre_name_for_regex(spec->pre_regex, spec->ignore_merges);
        CK(aik_gguf_writer_add_str(w, "tokenizer.ggml.pre", pre, strlen(pre), err));
    }
    CK(aik_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", spec->tokens, lens, spec->n_vocab, err));
    if (spec->scores)
        CK(aik_gguf_writer_add_arr(w, "tokenizer.ggml.scores", AIK_GGUF_FLOAT32, spec->scores, spec->n_vocab, err));
    CK(aik_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", AIK_GGUF_INT32, types, spec->n_vocab, err));
    if (spec->n_merges)
        CK(aik_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", spec->merges, NULL, spec->n_merges, err));
    if (spec->bos_id >= 0)
        CK(aik_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)spec->bos_id, err));
    if (spec->eos_id >= 0)
        CK(aik_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)spec->eos_id, err));
    if (spec->unk_id >= 0)
        CK(aik_gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)spec->unk_id, err));
    if (spec->pad_id >= 0)
        CK(aik_gguf_writer_add_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)spec->pad_id, err));
    CK(aik_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", spec->add_bos, err));
    CK(aik_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", spec->add_eos, err));
    CK(aik_gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", spec->add_space_prefix, err));
    if (spec->chat_template)
        CK(aik_gguf_writer_add_str(w, "tokenizer.chat_template", spec->chat_template, strlen(spec->chat_template), err));
    if (spec->kind == AIK_TOKENIZER_BYTE_BPE) {
        /* Exact pre-tokenizer for our own re-import (llama.cpp ignores it). */
        if (spec->pre_regex)
            CK(aik_gguf_writer_add_str(w, "aikernel.tokenizer.pre_regex", spec->pre_regex, strlen(spec->pre_regex), err));
        CK(aik_gguf_writer_add_bool(w, "aikernel.tokenizer.ignore_merges", spec->ignore_merges, err));
    }
#undef CK
out:
    free(lens);
    free(types);
    aik_tokenizer_spec_free(spec);
    aik_tokenizer_free(tok);
    return r;
}
