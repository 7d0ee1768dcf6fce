/* SPDX-License-Identifier: MIT */
#include "runtime/generate.h"

#include "scheduler/packed_weights.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/error.h"

struct aik_session {
    const aik_model *m;
    aik_threadpool *pool;
    aik_cpu_exec *exec;     /* owned; NULL on a split executor */
    aik_split_exec *split;  /* borrowed (aik_session_config.split) */
    uint32_t ctx_len;       /* split: the positions this session may use (<= the executor's) */
    uint32_t fallbacks_at_start; /* aik_split_exec_fallback_count when the session began */
    uint32_t batch;
};

/* A session over a caller's split executor: no threads of its own. */
static int split_session_new(const aik_model *m, const aik_session_config *cfg, aik_session **ret, aik_error *err)
{
    aik_session *s;
    uint32_t ctx = aik_split_exec_ctx_len(cfg->split), mb = aik_split_exec_max_batch(cfg->split);

    if (cfg->ctx_len > ctx)
        return aik_fail(err, -EINVAL, "session.ctx_len", "%u exceeds the split executor's context of %u",
                        cfg->ctx_len, ctx);
    s = calloc(1, sizeof(*s));
    if (!s)
        return aik_fail(err, -ENOMEM, "session", "out of memory");
    s->m = m;
    s->split = cfg->split;
    s->ctx_len = cfg->ctx_len ? cfg->ctx_len : ctx;
    s->batch = cfg->batch ? cfg->batch : 256;
    if (s->batch > mb)
        s->batch = mb;
    s->fallbacks_at_start = aik_split_exec_fallback_count(s->split);
    /* A borrowed executor may hold another session's positions. */
    aik_split_exec_truncate(s->split, 0);
    *ret = s;
    return 0;
}

int aik_session_new(const aik_model *m, const aik_session_config *cfg_in, aik_session **ret, aik_error *err)
{
    aik_session_config cfg = { 0 };
    aik_cpu_exec_config ecfg = { 0 };
    aik_session *s;
    int r;

    if (!m || !ret)
        return aik_fail(err, -EINVAL, "session", "missing model");
    if (cfg_in)
        cfg = *cfg_in;
    if (cfg.ctx_len > m->hp.ctx_len)
        return aik_fail(err, -EINVAL, "session.ctx_len", "%u exceeds the model's context of %u", cfg.ctx_len,
                        m->hp.ctx_len);
    if (cfg.split)
        return split_session_new(m, &cfg, ret, err);
    s = calloc(1, sizeof(*s));
    if (!s)
        return aik_fail(err, -ENOMEM, "session", "out of memory");
    s->m = m;
    s->batch = cfg.batch ? cfg.batch : 256;
    r = aik_threadpool_new((int)cfg.n_threads, &s->pool);
    if (r < 0) {
        free(s);
        return aik_fail(err, r, "session", "cannot start threads");
    }
    ecfg.max_batch = s->batch;
    ecfg.ctx_len = cfg.ctx_len;
    ecfg.profile = cfg.profile;
    /* Packing is a speed-up, not a requirement: without the memory for it
     * the session runs on the file layout. */
    if (!cfg.file_layout && m->packed && aik_packed_weights_fill(m->packed, s->pool) == 0)
        ecfg.packed = m->packed;
    r = aik_cpu_exec_new(m->graph, &ecfg, s->pool, &s->exec, err);
    if (r < 0) {
        aik_session_free(s);
        return r;
    }
    *ret = s;
    return 0;
}

void aik_session_free(aik_session *s)
{
    if (!s)
        return;
    aik_cpu_exec_free(s->exec);
    aik_threadpool_free(s->pool);
    free(s);
}

aik_cpu_exec *aik_session_exec(aik_session *s) { return s->exec; }
aik_split_exec *aik_session_split(aik_session *s) { return s->split; }
const aik_model *aik_session_model(const aik_session *s) { return s->m; }

void aik_session_reset(aik_session *s)
{
    if (s->split)
        aik_split_exec_truncate(s->split, 0);
    else
        aik_cpu_exec_truncate(s->exec, 0);
}

uint32_t aik_session_n_past(const aik_session *s)
{
    return s->split ? aik_split_exec_n_past(s->split) : aik_cpu_exec_n_past(s->exec);
}

uint32_t aik_session_ctx_len(const aik_session *s)
{
    return s->split ? s->ctx_len : aik_cpu_exec_ctx_len(s->exec);
}

const aik_error *aik_session_fallback(const aik_session *s)
{
    if (!s->split || aik_split_exec_fallback_count(s->split) == s->fallbacks_at_start)
        return NULL;
    return aik_split_exec_fallback(s->split);
}

int aik_session_eval(aik_session *s, const int32_t *tokens, size_t n, uint32_t n_out, const float **ret_logits,
                     aik_error *err)
{
    const float *logits = NULL;
    size_t done = 0;

    if (n == 0 || n_out == 0)
        return aik_fail(err, -EINVAL, "session", "nothing to evaluate");
    while (done < n) {
        uint32_t chunk = (uint32_t)((n - done) < s->batch ? (n - done) : s->batch);
        bool last = done + chunk == n;
        uint32_t want = last ? (n_out < chunk ? n_out : chunk) : 1;
        int r;
        /* A split session stops at its own context, which may be shorter
         * than the executor's. */
        if (s->split && aik_split_exec_n_past(s->split) + chunk > s->ctx_len)
            return aik_fail(err, -ENOSPC, "session", "context full: %u positions used + %u new > %u",
                            aik_split_exec_n_past(s->split), chunk, s->ctx_len);
        r = s->split ? aik_split_exec_run(s->split, tokens + done, chunk, want, &logits, err)
                     : aik_cpu_exec_run(s->exec, tokens + done, chunk, want, &logits, err);
        if (r < 0)
            return r;
        done += chunk;
    }
    *ret_logits = logits;
    return 0;
}

static const char *const stop_names[] = { "length", "eos", "stop-token", "stop-string", "context", "cancelled" };

const char *aik_stop_reason_name(aik_stop_reason r)
{
    return (unsigned)r < sizeof(stop_names) / sizeof(stop_names[0]) ? stop_names[r] : "?";
}

void aik_generate_params_default(aik_generate_params *p)
{
    memset(p, 0, sizeof(*p));
    p->n_predict = 128;
    aik_sampler_config_default(&p->sampling);
    p->tokenize_flags = AIK_TOKENIZE_ADD_SPECIAL;
}

void aik_generate_result_clear(aik_generate_result *r)
{
    if (!r)
        return;
    free(r->text);
    free(r->tokens);
    memset(r, 0, sizeof(*r));
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Growable text with the streaming cursor. */
typedef struct textbuf {
    char *data;
    size_t len, cap, emitted;
} textbuf;

static int tb_append(textbuf *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *d = realloc(t->data, cap);
        if (!d)
            return -ENOMEM;
        t->data = d;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
    return 0;
}

/* Bytes at the end of [0, len) that form an incomplete UTF-8 sequence. */
static size_t utf8_incomplete_tail(const char *s, size_t len)
{
    for (size_t back = 1; back <= 4 && back <= len; back++) {
        unsigned char c = (unsigned char)s[len - back];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation byte: look further back */
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

/* How much of the text may be streamed now: hold back any suffix that could
 * still become a stop string, and an unfinished UTF-8 character. */
static size_t safe_end(const textbuf *t, const aik_generate_params *p)
{
    size_t end = t->len - utf8_incomplete_tail(t->data, t->len);

    for (size_t i = 0; i < p->n_stop_strings; i++) {
        const char *st = p->stop_strings[i];
        size_t sl = strlen(st);
        for (size_t k = sl > 1 ? sl - 1 : 0; k > 0; k--) {
            if (k <= t->len && memcmp(t->data + t->len - k, st, k) == 0) {
                if (t->len - k < end)
                    end = t->len - k;
                break;
            }
        }
    }
    return end < t->emitted ? t->emitted : end;
}

static int emit(textbuf *t, size_t end, const aik_generate_params *p)
{
    int r = 0;
    if (end > t->emitted && p->on_text)
        r = p->on_text(p->user, t->data + t->emitted, end - t->emitted);
    if (end > t->emitted)
        t->emitted = end;
    return r;
}

int aik_generate(aik_session *s, const char *prompt, size_t prompt_len, const aik_generate_params *p,
                 aik_generate_result *ret, aik_error *err)
{
    const aik_model *m = s->m;
    aik_generate_result res = { 0 };
    aik_sampler *smp = NULL;
    int32_t *hist = NULL, *ids = NULL;
    size_t n_ids = 0, n_hist = 0;
    textbuf tb = { 0 };
    const float *logits;
    struct timespec t0;
    uint32_t ctx = aik_session_ctx_len(s);
    int32_t eos = -1;
    int r;

    if (!prompt || !p || !ret)
        return aik_fail(err, -EINVAL, "generate", "missing prompt, parameters or result");
    for (size_t i = 0; i < p->n_stop_strings; i++)
        if (!p->stop_strings[i] || !p->stop_strings[i][0])
            return aik_fail(err, -EINVAL, "generate.stop_strings", "stop string %zu is empty", i);
    /* Rows past the tokenizer's vocabulary (padded embeddings) are never sampled. */
    uint32_t n_sample = aik_tokenizer_n_vocab(m->tok) < m->hp.n_vocab ? aik_tokenizer_n_vocab(m->tok) : m->hp.n_vocab;
    r = aik_sampler_new(&p->sampling, n_sample, &smp, err);
    if (r < 0)
        return r;
    r = aik_tokenizer_encode_alloc(m->tok, prompt, prompt_len, p->tokenize_flags, &ids, &n_ids);
    if (r < 0) {
        aik_fail(err, r, "prompt", "cannot tokenize the prompt");
        goto out;
    }
    if (n_ids == 0) {
        r = aik_fail(err, -EINVAL, "prompt", "empty prompt (no tokens and no BOS)");
        goto out;
    }
    if (n_ids + 1 > ctx) {
        if (p->prompt_policy != AIK_PROMPT_TRUNCATE) {
            r = aik_fail(err, -E2BIG, "prompt", "%zu tokens leave no room in a context of %u (truncation not requested)",
                         n_ids, ctx);
            goto out;
        }
        bool bos = aik_tokenizer_bos_id(m->tok) >= 0 && ids[0] == aik_tokenizer_bos_id(m->tok);
        uint32_t reserve = p->n_predict < ctx / 2 ? p->n_predict : ctx / 2;
        size_t keep = ctx - reserve - (bos ? 1 : 0);
        size_t from = n_ids - keep;
        res.n_prompt_dropped = (uint32_t)(from - (bos ? 1 : 0));
        memmove(ids + (bos ? 1 : 0), ids + from, keep * sizeof(int32_t));
        n_ids = keep + (bos ? 1 : 0);
    }
    res.n_prompt = (uint32_t)n_ids;
    hist = malloc((n_ids + p->n_predict + 1) * sizeof(int32_t));
    res.tokens = malloc((p->n_predict + 1) * sizeof(int32_t));
    if (!hist || !res.tokens) {
        r = aik_fail(err, -ENOMEM, "generate", "out of memory");
        goto out;
    }
    memcpy(hist, ids, n_ids * sizeof(int32_t));
    n_hist = n_ids;
    if (!p->ignore_eos)
        eos = aik_tokenizer_eos_id(m->tok);

    aik_session_reset(s);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = aik_session_eval(s, ids, n_ids, 1, &logits, err);
    res.prompt_ms = ms_since(&t0);
    if (r < 0)
        goto out;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    res.stop = AIK_STOP_LENGTH;
    for (uint32_t i = 0; i < p->n_predict; i++) {
        int32_t tok;
        char piece[AIK_TOKENIZER_MAX_TOKEN_LEN + 8];
        size_t plen = 0;
        bool stop = false;

        if (p->cancel && atomic_load(p->cancel)) {
            res.stop = AIK_STOP_CANCELLED;
            break;
        }
        tok = aik_sampler_sample(smp, logits, hist, n_hist);
        res.tokens[res.n_tokens++] = tok;
        hist[n_hist++] = tok;
        if (tok == eos) {
            res.stop = AIK_STOP_EOS;
            break;
        }
        for (size_t k = 0; k < p->n_stop_tokens; k++)
            if (tok == p->stop_tokens[k])
                stop = true;
        if (stop) {
            res.stop = AIK_STOP_TOKEN;
            break;
        }
        r = aik_tokenizer_decode_token(m->tok, tok, piece, sizeof(piece), &plen);
        if (r < 0) {
            aik_fail(err, r, "generate", "cannot decode token %d", tok);
            goto out;
        }
        size_t before = tb.len;
        if ((r = tb_append(&tb, piece, plen)) < 0) {
            aik_fail(err, r, "generate", "out of memory");
            goto out;
        }
        /* Stop strings: search only where a new match can start. */
        for (size_t k = 0; k < p->n_stop_strings && !stop; k++) {
            size_t sl = strlen(p->stop_strings[k]);
            size_t from = before >= sl ? before - sl + 1 : 0;
            char *hit = memmem(tb.data + from, tb.len - from, p->stop_strings[k], sl);
            if (hit) {
                tb.len = (size_t)(hit - tb.data);
                tb.data[tb.len] = '\0';
                stop = true;
            }
        }
        if (stop) {
            res.stop = AIK_STOP_STRING;
            break;
        }
        if (emit(&tb, safe_end(&tb, p), p) != 0) {
            res.stop = AIK_STOP_CANCELLED;
            break;
        }
        if (i + 1 == p->n_predict)
            break;
        if (aik_session_n_past(s) + 1 > ctx) {
            res.stop = AIK_STOP_CONTEXT;
            break;
        }
        r = aik_session_eval(s, &tok, 1, 1, &logits, err);
        if (r < 0)
            goto out;
    }
    if (res.stop != AIK_STOP_CANCELLED)
        emit(&tb, tb.len, p);
    res.gen_ms = ms_since(&t0);
    if (!tb.data && tb_append(&tb, "", 0) < 0) {
        r = aik_fail(err, -ENOMEM, "generate", "out of memory");
        goto out;
    }
    res.text = tb.data;
    res.text_len = tb.len;
    tb.data = NULL;
    *ret = res;
    memset(&res, 0, sizeof(res));
    r = 0;
out:
    free(tb.data);
    free(ids);
    free(hist);
    aik_generate_result_clear(&res);
    aik_sampler_free(smp);
    return r;
}
